//! Rate limits that protect Tollgate itself: each API key gets its own token bucket (governor's GCRA: lock-free,
//! one atomic per key, no table to grow), and each end user one in a table keyed by user id (pruned of idle users
//! as it is used, so it stays as big as the set of recently active users). A bucket is checked once the caller
//! is known and before any work; over it, 429 problem+json with `Retry-After`. Webhooks carry no key and are
//! never limited: the processor's deliveries must always be taken.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{NotUntil, Quota, RateLimiter};

use crate::error::{ApiError, ErrorCode};

/// Requests per second a key may make, and how many above that it may make at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

/// One key's bucket.
#[derive(Debug, Clone)]
pub(crate) struct Bucket(Arc<RateLimiter<NotKeyed, InMemoryState, DefaultClock>>);

impl Bucket {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self(Arc::new(RateLimiter::direct(Quota::per_second(limit.per_second).allow_burst(limit.burst))))
    }

    /// Takes one request from the bucket, or 429 with how long to wait.
    pub(crate) fn take(&self) -> Result<(), ApiError> {
        self.0.check().map_err(|refused| over_limit(&refused, "this API key"))
    }
}

/// One bucket per key of a table (end users by id).
#[derive(Debug)]
pub(crate) struct KeyedBuckets {
    limiter: RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>,
    /// Takes since the table was last pruned.
    since_prune: AtomicU32,
}

/// How many takes between prunings of idle keys: rare enough to cost nothing per request, often enough that
/// the table never holds more than this many idle users on top of the active ones.
const PRUNE_EVERY: u32 = 4096;

impl KeyedBuckets {
    pub(crate) fn new(limit: RateLimit) -> Self {
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
        Self { limiter: RateLimiter::keyed(quota), since_prune: AtomicU32::new(0) }
    }

    /// Takes one request from `key`'s bucket, or 429 naming `who` with how long to wait.
    pub(crate) fn take(&self, key: &str, who: &str) -> Result<(), ApiError> {
        if self.since_prune.fetch_add(1, Ordering::Relaxed) >= PRUNE_EVERY {
            self.since_prune.store(0, Ordering::Relaxed);
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&key.to_owned()).map_err(|refused| over_limit(&refused, who))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.limiter.len()
    }
}

/// 429 for a caller over its limit, with how long to wait.
fn over_limit(refused: &NotUntil<<DefaultClock as Clock>::Instant>, who: &str) -> ApiError {
    let wait: Duration = refused.wait_time_from(DefaultClock::default().now());
    // Whole seconds, rounded up: `Retry-After: 0` would invite an immediate retry.
    let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        "Too many requests",
        format!("{who} is over its rate limit; retry in {secs} s"),
    )
    .with_header(RETRY_AFTER, HeaderValue::from(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_a_wait() {
        let limit = RateLimit { per_second: NonZeroU32::new(1).unwrap(), burst: NonZeroU32::new(3).unwrap() };
        let bucket = Bucket::new(limit);
        for _ in 0..3 {
            assert!(bucket.take().is_ok());
        }
        let refused = bucket.take().unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.code, ErrorCode::RateLimited);
        let retry_after = refused.headers.iter().find(|(name, _)| name == RETRY_AFTER).unwrap();
        assert_eq!(retry_after.1, "1");
        // Another key's bucket is its own.
        assert!(Bucket::new(limit).take().is_ok());
    }

    #[test]
    fn keyed_buckets_limit_each_key_alone_and_forget_idle_ones() {
        let limit = RateLimit { per_second: NonZeroU32::new(1000).unwrap(), burst: NonZeroU32::new(2).unwrap() };
        let buckets = KeyedBuckets::new(limit);
        assert!(buckets.take("alice", "this user").is_ok());
        assert!(buckets.take("alice", "this user").is_ok());
        let refused = buckets.take("alice", "this user").unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.detail.contains("this user"), "{}", refused.detail);
        assert!(buckets.take("bob", "this user").is_ok());
        // Idle users' full buckets are pruned as the table is used: it does not grow with every user ever seen.
        std::thread::sleep(Duration::from_millis(5));
        for i in 0..PRUNE_EVERY + 1 {
            let _ = buckets.take(&format!("user-{}", i % 8), "this user");
        }
        assert!(buckets.len() <= 8 + 2, "{} keys kept", buckets.len());
    }
}
