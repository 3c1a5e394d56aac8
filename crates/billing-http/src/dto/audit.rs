//! `GET /v1/workspaces/{id}/audit`.

use billing_domain::records::{Actor, AuditEntry};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

/// `?limit=&before=`.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Default 50.
    #[validate(range(min = 1, max = 200, message = "must be between 1 and 200"))]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_before` of the previous page.
    pub before: Option<i64>,
}

/// One page, newest first; `next_before` continues it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage<'a> {
    pub entries: Vec<AuditEntryView<'a>>,
    pub next_before: Option<i64>,
}

impl<'a> AuditPage<'a> {
    /// `entries` as read with `limit`: a full page may have more after it.
    pub fn new(entries: &'a [AuditEntry], limit: u32) -> Self {
        let next_before = super::common::next_before(entries.iter().map(|e| e.id), limit);
        Self { entries: entries.iter().map(AuditEntryView::from).collect(), next_before }
    }
}

/// An audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView<'a> {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub workspace_id: &'a str,
    pub action: &'a str,
    pub actor: ActorView<'a>,
    pub before: Option<&'a serde_json::Value>,
    pub after: Option<&'a serde_json::Value>,
    pub request_id: Option<&'a str>,
}

impl<'a> From<&'a AuditEntry> for AuditEntryView<'a> {
    fn from(entry: &'a AuditEntry) -> Self {
        let record = &entry.record;
        Self {
            id: entry.id,
            at: entry.at,
            workspace_id: record.workspace_id.as_str(),
            action: &record.action,
            actor: ActorView::from(&record.actor),
            before: record.before.as_ref(),
            after: record.after.as_ref(),
            request_id: record.request_id.as_deref(),
        }
    }
}

/// Who or what made the change: `{type: "api_key", name}`, `{type: "user", id}` (an end user's token),
/// `{type: "webhook", processor, event_id}` or `{type: "system", job}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ActorView<'a> {
    ApiKey { name: &'a str },
    Webhook { processor: &'a str, event_id: &'a str },
    System { job: &'a str },
    User { id: &'a str },
}

impl<'a> From<&'a Actor> for ActorView<'a> {
    fn from(actor: &'a Actor) -> Self {
        match actor {
            Actor::ApiKey { name } => Self::ApiKey { name },
            Actor::Webhook { processor, event_id } => {
                Self::Webhook { processor: processor.as_str(), event_id: event_id.as_str() }
            }
            Actor::System { job } => Self::System { job },
            Actor::User { id } => Self::User { id },
        }
    }
}
