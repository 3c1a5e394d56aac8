//! Delivering the outbox: the worker (`[outbox]`), owner emails (`[notifications]`) and the product's webhook
//! endpoints (`[outbound_webhooks]`). The email and webhook adapters validate their own sections.

use std::time::Duration;

use billing_domain::services::DeliveryPolicy;
use billing_notify::{Backoff, EmailConfig, OutboundConfig};
use serde::Deserialize;

use super::problems::{Problems, check_http_url};

/// The outbox worker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSettings {
    /// Milliseconds between looks for due messages when the last look found none; 0 turns delivery off.
    pub poll_ms: u64,
    /// Messages claimed and sent at once per round.
    pub batch: u32,
    /// Seconds a claimed message stays with its worker; a worker that dies frees it after this.
    pub lease_secs: u64,
    /// First retry delay in seconds; each later one doubles (with jitter) up to `max_backoff_secs`.
    pub min_backoff_secs: u64,
    pub max_backoff_secs: u64,
    /// Attempts before a message is dead (an operator may retry it).
    pub max_attempts: u32,
}

/// Owner emails.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// Where an owner manages billing, `{workspace_id}` replaced; linked from emails that ask them to act.
    /// Empty: no link.
    pub manage_url: String,
    pub email: EmailConfig,
}

impl OutboxSettings {
    pub(super) fn validate(&self, p: &mut Problems, longest_delivery_ms: u64) {
        if self.poll_ms > 60_000 {
            p.add("outbox.poll_ms", "must be at most 60000");
        }
        if !(1..=500).contains(&self.batch) {
            p.add("outbox.batch", "must be between 1 and 500");
        }
        // Another worker may take a message whose lease ended: a lease shorter than a delivery could send twice.
        if self.lease_secs.saturating_mul(1000) < longest_delivery_ms.saturating_mul(2) || self.lease_secs > 86_400 {
            p.add(
                "outbox.lease_secs",
                "must be at least twice the longest delivery timeout (smtp and webhooks) and at most 86400",
            );
        }
        if self.min_backoff_secs == 0 || self.max_backoff_secs < self.min_backoff_secs {
            p.add("outbox.min_backoff_secs/max_backoff_secs", "need 0 < min_backoff_secs <= max_backoff_secs");
        }
        if self.max_backoff_secs > 30 * 86_400 {
            p.add("outbox.max_backoff_secs", "must be at most 2592000 (30 days)");
        }
        if !(1..=100).contains(&self.max_attempts) {
            p.add("outbox.max_attempts", "must be between 1 and 100");
        }
    }

    /// The retry schedule.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(
            Duration::from_secs(self.min_backoff_secs),
            Duration::from_secs(self.max_backoff_secs),
            self.max_attempts,
        )
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_ms)
    }
}

impl NotificationSettings {
    pub(super) fn validate(&self, p: &mut Problems) {
        if !self.manage_url.is_empty() {
            check_http_url(p, "notifications.manage_url", &self.manage_url.replace("{workspace_id}", "w"));
        }
        p.extend(self.email.validate("notifications.email"));
    }
}

/// The worker's policy.
pub fn delivery_policy(outbox: &OutboxSettings, notifications: &NotificationSettings) -> DeliveryPolicy {
    DeliveryPolicy {
        batch: outbox.batch,
        lease: chrono::Duration::seconds(i64::try_from(outbox.lease_secs).unwrap_or(i64::MAX)),
        manage_url: Some(notifications.manage_url.clone()).filter(|url| !url.is_empty()),
    }
}

pub(super) fn validate_outbound(config: &OutboundConfig, p: &mut Problems) {
    p.extend(config.validate("outbound_webhooks"));
}
