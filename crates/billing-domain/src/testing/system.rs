//! A clock that moves only when told and ids that count, so tests are deterministic.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::ports::{Clock, IdGenerator};

/// 2024-01-31 12:00:00 UTC, the builders' default time: a month end, so period arithmetic has to clamp.
pub const T0_UNIX: i64 = 1_706_702_400;

/// [`T0_UNIX`] as a time.
pub fn t0() -> DateTime<Utc> {
    Utc.timestamp_opt(T0_UNIX, 0).single().expect("a valid timestamp")
}

/// A clock stuck at a time until a test moves it.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn at(now: DateTime<Utc>) -> Self {
        Self(Mutex::new(now))
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = now;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Default for FixedClock {
    fn default() -> Self {
        Self::at(t0())
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Ids `prefix1`, `prefix2`, … from one counter.
#[derive(Debug, Default)]
pub struct CountingIds(AtomicU64);

impl CountingIds {
    /// Ids counting on after `last` (a restarted process must not hand out the ids of the one before).
    pub fn starting_at(last: u64) -> Self {
        Self(AtomicU64::new(last))
    }
}

impl IdGenerator for CountingIds {
    fn new_id(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.0.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_moves_only_when_told_and_ids_count() {
        let clock = FixedClock::default();
        assert_eq!(clock.now(), t0());
        clock.advance(Duration::days(1));
        assert_eq!(clock.now(), t0() + Duration::days(1));
        clock.set(t0());
        assert_eq!(clock.now(), t0());
        let ids = CountingIds::default();
        assert_eq!((ids.new_id("cus_"), ids.new_id("sub_")), ("cus_1".to_owned(), "sub_2".to_owned()));
    }
}
