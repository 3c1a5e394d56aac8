//! When a failed delivery is tried again: exponential backoff with jitter (backon), up to a cap, for a bounded
//! number of attempts.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use billing_domain::ports::RetrySchedule;

/// Delays of `min`, about `2·min`, `4·min`, … capped at `max`, each with up to as much again of random jitter (so
/// a burst of failures does not retry in lockstep: a delay lies between the capped value and twice it); after
/// `max_attempts` attempts the message is dead.
#[derive(Debug, Clone)]
pub struct Backoff {
    builder: ExponentialBuilder,
    max_attempts: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration, max_attempts: u32) -> Self {
        let builder = ExponentialBuilder::default()
            .with_min_delay(min)
            .with_max_delay(max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        Self { builder, max_attempts }
    }
}

impl RetrySchedule for Backoff {
    fn next_delay(&self, failed: u32) -> Option<Duration> {
        if failed == 0 || failed >= self.max_attempts {
            return None;
        }
        let nth = usize::try_from(failed - 1).unwrap_or(usize::MAX);
        self.builder.build().nth(nth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_with_jitter_up_to_the_cap_then_give_up() {
        let backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(100), 6);
        let first = backoff.next_delay(1).unwrap();
        assert!((Duration::from_secs(10)..=Duration::from_secs(20)).contains(&first), "{first:?}");
        let third = backoff.next_delay(3).unwrap();
        assert!((Duration::from_secs(40)..=Duration::from_secs(80)).contains(&third), "{third:?}");
        for failed in 4..6 {
            let capped = backoff.next_delay(failed).unwrap();
            assert!(capped <= Duration::from_secs(200), "capped (jitter included): {capped:?}");
        }
        assert_eq!(backoff.next_delay(6), None, "six attempts made: dead");
        let spread: std::collections::BTreeSet<_> = (0..20).map(|_| backoff.next_delay(2).unwrap()).collect();
        assert!(spread.len() > 1, "jittered: {spread:?}");
    }
}
