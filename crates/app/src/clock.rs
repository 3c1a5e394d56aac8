//! The test clock (`clock.mode = "test"`): real time plus an offset that only grows, kept in the database so
//! every replica reads the same time, and the machine that advances it, running the time-driven jobs (trial
//! reminders, dunning steps) every six hours on the way so they happen in order. Refused unless the sandbox is on
//! and the environment is not production (settings).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use billing_domain::ports::{AdvanceReport, Clock, ClockOffsets, TimeTravel, TimeTravelError};
use billing_domain::services::{DunningService, RenewalReport, RenewalService, TrialService};
use chrono::{DateTime, Duration, Utc};

/// The longest jump between two runs of the jobs while advancing: finer than any job's schedule (dunning steps
/// and trial reminders are days apart), coarse enough that a month is a few hundred milliseconds of work.
const STOP_EVERY: Duration = Duration::hours(6);
/// Cases (or trials) each job takes per stop.
const BATCH: u32 = 500;

/// Real time plus `offset_ms`.
#[derive(Debug, Default)]
pub struct TestClock {
    offset_ms: AtomicI64,
}

impl TestClock {
    /// Moves this replica's clock to `offset_ms` ahead of real time; never back.
    pub fn catch_up(&self, offset_ms: i64) {
        self.offset_ms.fetch_max(offset_ms, Ordering::SeqCst);
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::SeqCst)
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_ms())
    }
}

/// Advances the shared test clock.
pub struct TimeMachine {
    pub clock: Arc<TestClock>,
    pub offsets: Arc<dyn ClockOffsets>,
    pub dunning: Arc<DunningService>,
    pub trials: Arc<TrialService>,
    /// The sandbox's renewals (with the sandbox on, which the test clock requires).
    pub renewals: Option<Arc<RenewalService>>,
}

impl TimeMachine {
    /// Reads the shared offset (another replica may have moved it).
    pub async fn sync(&self) -> Result<(), billing_domain::error::StoreError> {
        self.clock.catch_up(self.offsets.offset_ms().await?);
        Ok(())
    }
}

#[async_trait]
impl TimeTravel for TimeMachine {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn offset(&self) -> Duration {
        Duration::milliseconds(self.clock.offset_ms())
    }

    async fn advance_to(&self, to: DateTime<Utc>) -> Result<AdvanceReport, TimeTravelError> {
        self.sync().await?;
        let from = self.clock.now();
        if to <= from {
            return Err(TimeTravelError::Backwards(from));
        }
        let mut report =
            AdvanceReport { from, to, stops: 0, dunning_steps: 0, trial_reminders: 0, renewal_deliveries: 0 };
        let mut at = from;
        while at < to {
            at = (at + STOP_EVERY).min(to);
            // The offset that puts now at `at`; set by compare-and-set, so of two replicas advancing at once
            // each stop is made once and the clock never goes back.
            loop {
                let current = self.offsets.offset_ms().await?;
                let wanted = millis_rounded_up(at - Utc::now());
                if wanted <= current || self.offsets.move_offset(current, wanted, Utc::now()).await? {
                    self.clock.catch_up(wanted.max(current));
                    break;
                }
            }
            report.stops += 1;
            // Renewals first: a charge that declines at this stop opens its dunning case, whose first step is due
            // at once and runs below.
            if let Some(renewals) = &self.renewals {
                report.renewal_deliveries += log_renewals(renewals.run().await);
            }
            report.trial_reminders += self.trials.remind_ending(BATCH).await.map_err(|e| match e {
                billing_domain::services::TrialError::Store(e) => TimeTravelError::Store(e),
                other => TimeTravelError::Store(billing_domain::error::StoreError::Other(other.to_string())),
            })?;
            report.dunning_steps += self.dunning.run_due(BATCH).await?.steps.len();
        }
        Ok(report)
    }
}

/// Whole milliseconds, rounded up: an offset that stops short of a stop by a fraction of a millisecond would leave
/// `now` just before it — before a period end advanced to exactly, so that renewal would not be due.
fn millis_rounded_up(ahead: Duration) -> i64 {
    let whole = ahead.num_milliseconds();
    if ahead > Duration::milliseconds(whole) { whole + 1 } else { whole }
}

/// Logs a renewal run; answers how many renewal deliveries it ingested. A failed run is retried by the next one:
/// whatever it made at the sandbox stays pending there until acknowledged.
pub(crate) fn log_renewals(run: Result<RenewalReport, billing_domain::ports::SandboxControlError>) -> usize {
    match run {
        Ok(report) => {
            for problem in &report.problems {
                tracing::warn!(%problem, "sandbox delivery");
            }
            if report.renewal_deliveries + report.redelivered > 0 {
                tracing::info!(
                    renewal_deliveries = report.renewal_deliveries,
                    redelivered = report.redelivered,
                    "sandbox renewals ingested"
                );
            }
            report.renewal_deliveries
        }
        Err(error) => {
            tracing::error!(%error, "sandbox renewals failed");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_never_stops_short_of_its_stop() {
        assert_eq!(millis_rounded_up(Duration::microseconds(1_234_001)), 1_235);
        assert_eq!(millis_rounded_up(Duration::nanoseconds(1)), 1);
        assert_eq!(millis_rounded_up(Duration::milliseconds(1_234)), 1_234, "whole milliseconds stay");
        assert_eq!(millis_rounded_up(Duration::zero()), 0);
        // Real time plus the rounded offset is at or past the stop, however little time passed.
        let stop = Utc::now() + Duration::days(30);
        let now = Utc::now();
        assert!(now + Duration::milliseconds(millis_rounded_up(stop - now)) >= stop);
    }
}
