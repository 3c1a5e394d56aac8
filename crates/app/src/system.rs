//! Adapters of the system ports: the real clock and UUIDv7 ids.

use billing_domain::ports::{Clock, IdGenerator};
use chrono::{DateTime, Utc};

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Time-ordered UUIDv7 ids: unique across restarts and replicas, sortable by creation.
pub struct UuidIds;

impl IdGenerator for UuidIds {
    fn new_id(&self, prefix: &str) -> String {
        format!("{prefix}{}", uuid::Uuid::now_v7().simple())
    }
}
