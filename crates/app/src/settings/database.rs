//! The SQL database and the group commit of webhook deliveries.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::problems::Problems;

/// The SQL database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`; secret because it may carry a password.
    pub url: SecretString,
    pub migrate_on_start: bool,
    /// PostgreSQL pool size; `None` follows workers and lanes (see `Settings::pool_size`).
    #[serde(default)]
    pub max_connections: Option<u32>,
}

/// Group commit of webhook deliveries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Parallel batches; 0 means four per core (SQLite: always 1).
    pub lanes: usize,
    /// Events per transaction at most; 1 turns group commit off.
    pub max_batch: usize,
    /// How long a batch waits for more once it has one, in microseconds.
    pub max_wait_us: u64,
}

/// Events one transaction may hold: each runs in a subtransaction (a credit grant opens one more), and PostgreSQL
/// tracks up to 64 of them per transaction cheaply (beyond that, every other session's snapshot checks get slower).
pub const MAX_BATCH: usize = 32;

impl DatabaseSettings {
    /// Whether the URL names SQLite (one writer: one group-commit lane, no pool sizing).
    pub fn is_sqlite(&self) -> bool {
        self.url.expose_secret().starts_with("sqlite:")
    }

    pub(super) fn validate(&self, p: &mut Problems) {
        let url = self.url.expose_secret();
        if !["sqlite:", "postgres:", "postgresql:"].iter().any(|scheme| url.starts_with(scheme)) {
            p.add("database.url", "must start with sqlite:, postgres: or postgresql: (value hidden)");
        }
        if self.max_connections == Some(0) {
            p.add("database.max_connections", "must be at least 1 (leave it unset to follow the workers)");
        }
    }
}

impl WebhookSettings {
    pub(super) fn validate(&self, p: &mut Problems) {
        if self.lanes > 256 {
            p.add("webhooks.lanes", "must be at most 256 (0 means one per CPU core)");
        }
        if !(1..=MAX_BATCH).contains(&self.max_batch) {
            p.add("webhooks.max_batch", &format!("must be between 1 and {MAX_BATCH}"));
        }
        if self.max_wait_us > 1_000_000 {
            p.add("webhooks.max_wait_us", "must be at most 1000000 (one second)");
        }
    }
}
