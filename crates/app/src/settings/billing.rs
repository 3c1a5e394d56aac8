//! The plan catalog's location, the trial and grace-period policy, and checkout defaults.

use std::path::PathBuf;

use serde::Deserialize;

use super::problems::{Problems, check_http_url};

/// Where the plan catalog lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSettings {
    pub path: PathBuf,
}

/// Trial and grace period policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingSettings {
    pub trial_days: u32,
    pub trial_plan: String,
    pub grace_period_days: u32,
    /// Seconds between runs of the trial-ending reminder job; 0: off.
    pub trial_reminder_interval_secs: u64,
}

/// Defaults used when a checkout request omits its URLs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutSettings {
    pub success_url: String,
    pub cancel_url: String,
}

impl CatalogSettings {
    pub(super) fn validate(&self, p: &mut Problems) {
        if self.path.as_os_str().is_empty() {
            p.add("catalog.path", "must not be empty");
        }
    }
}

impl BillingSettings {
    pub(super) fn validate(&self, p: &mut Problems) {
        if self.trial_days == 0 {
            p.add("billing.trial_days", "must be at least 1");
        }
        if self.trial_plan.trim().is_empty() {
            p.add("billing.trial_plan", "must name a plan of the catalog");
        }
    }
}

impl CheckoutSettings {
    pub(super) fn validate(&self, p: &mut Problems) {
        check_http_url(p, "checkout.success_url", &self.success_url);
        check_http_url(p, "checkout.cancel_url", &self.cancel_url);
    }
}
