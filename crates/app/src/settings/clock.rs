//! Which clock billing runs on.

use serde::Deserialize;

use super::Settings;
use super::problems::Problems;

/// `[clock]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSettings {
    pub mode: ClockMode,
}

/// The real clock, or a test clock an operator advances (`POST /v1/admin/clock/advance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    System,
    Test,
}

pub(super) fn validate(settings: &Settings, p: &mut Problems) {
    if settings.clock.mode == ClockMode::Test {
        if !settings.sandbox.enabled {
            p.add("clock.mode", "\"test\" needs sandbox.enabled = true (a test clock never runs real billing)");
        }
        if settings.env == "production" {
            p.add("clock.mode", "\"test\" is refused when TOLLGATE_ENV=production");
        }
    }
}
