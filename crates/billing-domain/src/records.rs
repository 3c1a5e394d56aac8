//! What a state change leaves behind in the same transaction: audit entries and outbox messages.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{EventId, ProcessorId, WorkspaceId};

/// Who or what caused a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    /// A service API key, by its configured name (never the key).
    ApiKey { name: String },
    /// A processor webhook event.
    Webhook { processor: ProcessorId, event_id: EventId },
    /// A background job of Tollgate itself.
    System { job: String },
    /// An end user, by the `sub` of their token.
    User { id: String },
}

impl Actor {
    /// Who this is, as a prefix of the keys derived from its requests (a processor idempotency key, a synthetic
    /// event id): two callers sending the same `Idempotency-Key` never share an effect.
    pub fn key_scope(&self) -> String {
        match self {
            Actor::ApiKey { name } => format!("key:{name}"),
            Actor::Webhook { processor, event_id } => format!("webhook:{processor}:{event_id}"),
            Actor::System { job } => format!("system:{job}"),
            Actor::User { id } => format!("user:{id}"),
        }
    }
}

/// An audit entry about to be written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub workspace_id: WorkspaceId,
    /// Stable dotted name (`subscription.updated`, `checkout.payment_failed`, `workspace.created`).
    pub action: String,
    pub actor: Actor,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub request_id: Option<String>,
}

/// An audit entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub record: AuditRecord,
}

/// Emails Tollgate sends to a workspace owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    PaymentSucceeded,
    PaymentFailed,
    CancellationScheduled,
    SubscriptionEnded,
    TrialEnding,
    /// A step of the dunning schedule (which one is in the payload's `step`).
    DunningStep,
}

/// Where an outbox message goes after commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "snake_case")]
pub enum OutboxTarget {
    /// An email to the workspace owner, through the `Notifier` port.
    Email { kind: NotificationKind },
    /// A signed outbound webhook to the product backend (`billing.subscription.updated`, …), not yet addressed:
    /// its delivery fans it out to one [`OutboxTarget::Endpoint`] message per subscribed endpoint.
    Webhook { topic: String },
    /// One outbound webhook for one configured endpoint; `payload` is the whole body (`{id, type, created,
    /// data}`), fixed when it was fanned out, so every retry sends the same bytes but for the signature.
    Endpoint { endpoint: String, topic: String },
}

/// A message written in the same transaction as the change that caused it, delivered after commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// Unique: the same key is enqueued once, so one cause never sends twice.
    pub dedup_key: String,
    pub workspace_id: WorkspaceId,
    pub target: OutboxTarget,
    pub payload: serde_json::Value,
    /// The request that caused it (`X-Request-Id`: an API call or a webhook delivery); `None` for a job's.
    pub request_id: Option<String>,
}

/// An outbox message claimed for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMessage {
    pub id: i64,
    pub attempts: u32,
    /// When it was enqueued: the `created` of the outbound webhook it becomes.
    pub created_at: DateTime<Utc>,
    pub message: OutboxMessage,
}

/// Where an outbox message is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Waiting for its first attempt or its next retry (or leased by a worker right now).
    Pending,
    Delivered,
    /// Every attempt failed; an operator may retry it.
    Dead,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Dead => "dead",
        }
    }
}

/// What the outbox holds undelivered, for metrics and alerts: a growing `pending` or an old `oldest_pending`
/// means deliveries are stuck; `dead` messages wait for an operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxBacklog {
    pub pending: u64,
    pub dead: u64,
    /// When the oldest pending message was enqueued.
    pub oldest_pending: Option<DateTime<Utc>>,
}

/// An outbox message as stored, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    pub message: OutboxMessage,
    pub status: OutboxStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// When a pending message is due (its first attempt or its next retry), in billing time.
    pub available_at: DateTime<Utc>,
    /// While a worker delivers it (wall-clock time).
    pub leased_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}
