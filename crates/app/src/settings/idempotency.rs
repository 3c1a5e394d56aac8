//! API idempotency keys.

use serde::Deserialize;

use super::problems::Problems;

/// How `Idempotency-Key` is honoured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdempotencySettings {
    /// How long a key is remembered, in seconds.
    pub ttl_secs: u64,
    /// Seconds between deletions of expired keys; 0 turns the job off.
    pub prune_interval_secs: u64,
    /// How long a retry waits for the first request with its key, in milliseconds.
    pub wait_ms: u64,
    /// After this many seconds an unfinished key is taken to be abandoned.
    pub abandoned_after_secs: u64,
}

impl IdempotencySettings {
    pub(super) fn validate(&self, p: &mut Problems) {
        if !(60..=30 * 86_400).contains(&self.ttl_secs) {
            p.add("idempotency.ttl_secs", "must be between 60 and 2592000 (30 days)");
        }
        if self.wait_ms > 60_000 {
            p.add("idempotency.wait_ms", "must be at most 60000");
        }
        if !(1..=3600).contains(&self.abandoned_after_secs) {
            p.add("idempotency.abandoned_after_secs", "must be between 1 and 3600");
        }
    }

    /// The edge's view of these settings.
    pub fn to_edge(&self) -> billing_http::idempotency::IdempotencyPolicy {
        billing_http::idempotency::IdempotencyPolicy {
            ttl: chrono::Duration::seconds(i64::try_from(self.ttl_secs).unwrap_or(i64::MAX)),
            wait: std::time::Duration::from_millis(self.wait_ms),
            abandoned_after: chrono::Duration::seconds(i64::try_from(self.abandoned_after_secs).unwrap_or(i64::MAX)),
        }
    }
}
