//! Rate limits that protect Tollgate itself: each API key gets its own token bucket (governor's GCRA: lock-free,
//! one atomic per key, no table to grow), checked once the key is known and before any work. A key over its
//! limit gets 429 problem+json with `Retry-After`. Webhooks carry no key and are never limited: the processor's
//! deliveries must always be taken.

use std::num::NonZeroU32;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use governor::clock::{Clock, DefaultClock};
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

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
        self.0.check().map_err(|refused| {
            let wait = refused.wait_time_from(DefaultClock::default().now());
            // Whole seconds, rounded up: `Retry-After: 0` would invite an immediate retry.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let secs = secs.max(1);
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                "Too many requests",
                format!("this API key is over its rate limit; retry in {secs} s"),
            )
            .with_header(RETRY_AFTER, HeaderValue::from(secs))
        })
    }
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
}
