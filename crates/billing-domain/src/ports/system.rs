//! Ports to the world outside storage and processors: time, ids and email.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

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

/// An email ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMessage {
    pub to: String,
    pub subject: String,
    pub body: String,
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
    async fn send(&self, message: &EmailMessage) -> Result<(), NotifyError>;
}
