//! `GET /v1/admin/outbox`, `POST /v1/admin/outbox/{id}/retry`.

use billing_domain::records::{OutboxEntry, OutboxStatus, OutboxTarget};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

/// `?status=pending|dead|delivered&limit=&before=`.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OutboxQuery {
    #[param(value_type = OutboxStatusName)]
    pub status: OutboxStatus,
    /// Default 50.
    #[validate(range(min = 1, max = 200, message = "must be between 1 and 200"))]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_before` of the previous page.
    pub before: Option<i64>,
}

/// Where a message is: `pending` (waiting for an attempt, or being delivered), `delivered` or `dead` (every
/// attempt failed; an operator may retry it). Documents the domain's `OutboxStatus`, which has no schema derive.
#[derive(ToSchema)]
#[schema(as = OutboxStatus)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum OutboxStatusName {
    Pending,
    Delivered,
    Dead,
}

/// One page, newest first; `next_before` continues it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxPage<'a> {
    pub messages: Vec<OutboxMessageView<'a>>,
    pub next_before: Option<i64>,
}

impl<'a> OutboxPage<'a> {
    /// `entries` as read with `limit`: a full page may have more after it.
    pub fn new(entries: &'a [OutboxEntry], limit: u32) -> Self {
        let next_before = super::common::next_before(entries.iter().map(|e| e.id), limit);
        Self { messages: entries.iter().map(OutboxMessageView::from).collect(), next_before }
    }
}

/// A message and where its delivery stands. The payload is shown: it holds billing facts, never a secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxMessageView<'a> {
    pub id: i64,
    pub workspace_id: &'a str,
    /// `email`, `webhook` (not yet addressed to endpoints) or `endpoint` (one endpoint's delivery).
    pub channel: &'static str,
    /// The email kind or the webhook topic.
    pub topic: String,
    /// The endpoint, for an `endpoint` message.
    pub endpoint: Option<&'a str>,
    #[schema(value_type = OutboxStatusName)]
    pub status: OutboxStatus,
    pub attempts: u32,
    pub last_error: Option<&'a str>,
    /// A pending message's next attempt.
    pub available_at: DateTime<Utc>,
    /// While a worker is delivering it.
    pub leased_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub payload: &'a serde_json::Value,
}

impl<'a> From<&'a OutboxEntry> for OutboxMessageView<'a> {
    fn from(e: &'a OutboxEntry) -> Self {
        let (channel, topic, endpoint) = match &e.message.target {
            OutboxTarget::Email { kind } => {
                ("email", serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_owned)), None)
            }
            OutboxTarget::Webhook { topic } => ("webhook", Some(topic.clone()), None),
            OutboxTarget::Endpoint { endpoint, topic } => ("endpoint", Some(topic.clone()), Some(endpoint.as_str())),
        };
        Self {
            id: e.id,
            workspace_id: e.message.workspace_id.as_str(),
            channel,
            topic: topic.unwrap_or_default(),
            endpoint,
            status: e.status,
            attempts: e.attempts,
            last_error: e.last_error.as_deref(),
            available_at: e.available_at,
            leased_until: e.leased_until,
            created_at: e.created_at,
            delivered_at: e.delivered_at,
            payload: &e.message.payload,
        }
    }
}
