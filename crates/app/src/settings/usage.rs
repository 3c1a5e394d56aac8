//! Usage metering: how late and how early an event may be, and reporting usage to the processor's meters.

use billing_domain::services::MeterReportPolicy;
use billing_domain::usage::UsagePolicy;
use serde::Deserialize;

use super::problems::Problems;

/// `[usage]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageSettings {
    /// Events older than this many seconds are rejected (`timestamp_too_old`).
    pub late_window_secs: u64,
    /// Events more than this many seconds ahead of the clock are rejected (`timestamp_in_future`).
    pub future_skew_secs: u64,
    /// Seconds between runs of the job reporting usage to the processor's meters (0: off).
    pub report_interval_secs: u64,
    /// Seconds a replica holds the reporting cursor without saving it: how long reporting waits after a replica
    /// dies mid-run before another takes over.
    pub report_lease_secs: u64,
    /// Events one transaction records at most, from the batches queued together (group commit); 1,000 or less
    /// records each batch alone.
    pub group_commit_max_events: usize,
    /// PostgreSQL: the events recorded together are split by workspace into this many transactions run side by
    /// side. SQLite has one writer, so it always uses one.
    pub write_partitions: usize,
}

impl UsageSettings {
    pub(super) fn validate(&self, p: &mut Problems) {
        // 35 days: Stripe's meters take no event older than that.
        if self.late_window_secs == 0 || self.late_window_secs > 35 * 86_400 {
            p.add("usage.late_window_secs", "must be between 1 and 3024000 (35 days)");
        }
        if self.future_skew_secs > 3_600 {
            p.add("usage.future_skew_secs", "must be at most 3600");
        }
        if self.report_interval_secs > 86_400 {
            p.add("usage.report_interval_secs", "must be at most 86400 (a day), or 0 for off");
        }
        if self.group_commit_max_events > 100_000 {
            p.add("usage.group_commit_max_events", "must be at most 100000");
        }
        if !(1..=16).contains(&self.write_partitions) {
            p.add("usage.write_partitions", "must be between 1 and 16");
        }
        // The cursor is saved every 50 sends; a lease shorter than those take could pass to another replica
        // while the first is still sending.
        if !(5..=3_600).contains(&self.report_lease_secs) {
            p.add("usage.report_lease_secs", "must be between 5 and 3600");
        }
    }

    /// How the meter reporter runs: the lease from here, pages and saves at their defaults.
    pub fn report_policy(&self) -> MeterReportPolicy {
        let lease = chrono::Duration::seconds(i64::try_from(self.report_lease_secs).unwrap_or(i64::MAX));
        MeterReportPolicy { lease, ..MeterReportPolicy::default() }
    }

    pub fn policy(&self) -> UsagePolicy {
        let secs = |s: u64| chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX));
        UsagePolicy { late_window: secs(self.late_window_secs), future_skew: secs(self.future_skew_secs) }
    }
}
