//! Ports to the world outside storage and processors: time, ids and email.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::email::Email;
use crate::money::Money;
use crate::records::NotificationKind;

/// The current time. Inject a fixed clock in tests; never call `Utc::now()` in the core.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// Now, in UTC. MUST be monotonic enough that two calls in one request do not go backwards.
    fn now(&self) -> DateTime<Utc>;
}

/// Generates ids for Tollgate's own objects.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait IdGenerator: Send + Sync {
    /// A new id starting with `prefix` (`cs_sbx_…`). MUST never repeat, across restarts too.
    fn new_id(&self, prefix: &str) -> String;
}

/// An email to a workspace owner, with the facts its template shows. The adapter renders it (text and HTML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The outbox message it comes from: the adapter derives the `Message-ID` from it, so a redelivery (after a
    /// crash between sending and recording) carries the same id and the receiver can tell.
    pub outbox_id: i64,
    pub kind: NotificationKind,
    pub to: Email,
    pub workspace_name: String,
    pub facts: NotificationFacts,
}

/// What a notification's template may show; each kind uses the facts it needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotificationFacts {
    /// The amount paid or due.
    pub amount: Option<Money>,
    /// The plan's display name.
    pub plan: Option<String>,
    /// The processor's page of the invoice.
    pub invoice_url: Option<String>,
    /// Where the owner manages billing (updates the card, resumes a plan).
    pub manage_url: Option<String>,
    /// The date the email is about: when access ends, when the trial ends, the next dunning step.
    pub date: Option<DateTime<Utc>>,
    /// The failed invoice's attempt number.
    pub attempt: Option<u32>,
    /// A dunning email's step (`reminder`, `urgent`, `restrict`, `final_warning`, `cancel`).
    pub step: Option<String>,
}

/// Delivery failed; the outbox worker retries with backoff.
#[derive(Debug, thiserror::Error)]
#[error("email delivery failed: {0}")]
pub struct NotifyError(pub String);

/// Sends email to workspace owners (SMTP in production, a log line by default).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends one message. MUST return `NotifyError` on any failure so the caller retries; MUST NOT retry itself.
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError>;
}

/// An outbound webhook as the product backend receives it (`{id, type, created, data, request_id?}`); `id` is the
/// same on every delivery of one event, for the receiver's dedupe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub topic: String,
    /// Unix seconds, when the change that caused it committed.
    pub created: i64,
    pub data: serde_json::Value,
    /// The Tollgate request that caused it (its `X-Request-Id`), absent for a background job's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Publishing to one endpoint failed; the outbox worker retries with backoff.
#[derive(Debug, thiserror::Error)]
#[error("webhook delivery failed: {0}")]
pub struct PublishError(pub String);

/// The product backend's webhook endpoints (configured), each receiving the topics its filter allows.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait WebhookPublisher: Send + Sync {
    /// Names of the endpoints subscribed to `topic`, in a stable order.
    fn subscribers(&self, topic: &str) -> Vec<String>;
    /// Sends `event` to `endpoint`, signed. MUST fail (not panic) for an endpoint no longer configured, and
    /// MUST NOT retry itself.
    async fn publish(&self, endpoint: &str, event: &OutboundEvent) -> Result<(), PublishError>;
}

/// Where a test clock keeps how far it is ahead of real time, shared by every replica on one database.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait ClockOffsets: Send + Sync {
    /// Milliseconds ahead of real time (0 before any advance).
    async fn offset_ms(&self) -> Result<i64, crate::error::StoreError>;
    /// Moves the offset from `from` to `to` (compare-and-set: `false` when another replica moved it meanwhile).
    async fn move_offset(&self, from: i64, to: i64, now: DateTime<Utc>) -> Result<bool, crate::error::StoreError>;
}

/// What advancing a test clock did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvanceReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The stops made on the way, at each of which the time-driven jobs ran.
    pub stops: u32,
    pub dunning_steps: usize,
    pub trial_reminders: u32,
    /// Deliveries of sandbox renewals ingested on the way (a renewal is two: the subscription and its invoice).
    pub renewal_deliveries: usize,
}

/// Why a test clock did not move.
#[derive(Debug, thiserror::Error)]
pub enum TimeTravelError {
    #[error("the test clock only moves forward (it is at {0})")]
    Backwards(DateTime<Utc>),
    #[error(transparent)]
    Store(#[from] crate::error::StoreError),
}

/// A clock an operator moves forward in a test environment (`clock.mode = "test"`): every job and service reads
/// it through [`Clock`], and advancing it runs the time-driven jobs due on the way, in order.
#[async_trait]
pub trait TimeTravel: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// How far ahead of real time it is.
    fn offset(&self) -> chrono::Duration;
    /// Moves to `to`, stopping at least every few hours on the way to run the jobs due by then.
    async fn advance_to(&self, to: DateTime<Utc>) -> Result<AdvanceReport, TimeTravelError>;
}

/// When to try a failed delivery again.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait RetrySchedule: Send + Sync {
    /// The wait before attempt `failed + 1` after `failed` failed attempts (1 after the first failure); `None`
    /// gives up and the message is dead.
    fn next_delay(&self, failed: u32) -> Option<std::time::Duration>;
}
