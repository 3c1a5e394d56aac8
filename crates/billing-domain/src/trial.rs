//! Trials: one per workspace, a configured plan for a configured number of days.

use chrono::{DateTime, Duration, Utc};

use crate::ids::PlanId;

/// Trial settings (default 14 days of `pro`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialPolicy {
    pub days: u32,
    pub plan: PlanId,
}

impl Default for TrialPolicy {
    fn default() -> Self {
        Self { days: 14, plan: PlanId::new("pro") }
    }
}

impl TrialPolicy {
    /// When a trial started at `now` ends.
    pub fn ends_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + Duration::days(i64::from(self.days))
    }
}

/// A trial is active strictly before its end: it ends exactly at `trial_ends_at`.
pub fn is_active(trial_ends_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    trial_ends_at.is_some_and(|end| now < end)
}

/// Whole days left, rounded up (one second left is one day); 0 once ended or when there is no trial.
pub fn days_remaining(trial_ends_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> u32 {
    let Some(end) = trial_ends_at else { return 0 };
    let left = (end - now).num_seconds();
    if left <= 0 {
        return 0;
    }
    u32::try_from((left + 86_399) / 86_400).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ends_exactly_at_its_end_and_rounds_days_up() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let end = TrialPolicy::default().ends_at(start);
        assert_eq!(end, Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap());
        assert_eq!(days_remaining(Some(end), start), 14);
        assert_eq!(days_remaining(Some(end), start + Duration::seconds(1)), 14);
        assert_eq!(days_remaining(Some(end), end - Duration::seconds(1)), 1);
        assert!(is_active(Some(end), end - Duration::seconds(1)));
        assert!(!is_active(Some(end), end));
        assert_eq!(days_remaining(Some(end), end), 0);
        assert_eq!(days_remaining(None, start), 0);
    }
}
