//! The dunning schedule and its job.

use billing_domain::dunning::{DunningSchedule, DunningStep};
use serde::Deserialize;

use super::problems::Problems;

/// `[dunning]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DunningSettings {
    /// Seconds between runs of the job that takes each open case's due step; 0 turns it off.
    pub interval_secs: u64,
    /// The steps, by day after the payment failed.
    pub steps: Vec<DunningStep>,
}

impl DunningSettings {
    pub(super) fn validate(&self, p: &mut Problems) {
        if let Err(problem) = DunningSchedule::new(self.steps.clone()) {
            p.add("dunning.steps", &problem.to_string());
        }
    }

    /// The schedule; validated at startup.
    pub fn schedule(&self) -> DunningSchedule {
        DunningSchedule::new(self.steps.clone()).unwrap_or_default()
    }
}
