//! `GET /v1/admin/clock`, `POST /v1/admin/clock/advance`.

use billing_domain::error::{ValidationError, ValidationErrors};
use billing_domain::ports::AdvanceReport;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

/// The clock billing runs on.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClockView {
    /// `system` or `test`.
    pub mode: &'static str,
    pub now: DateTime<Utc>,
    /// How far a test clock is ahead of real time.
    pub offset_seconds: i64,
}

/// Exactly one of `days`, `hours` (forward from now) or `to` (a later time).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceBody {
    #[validate(range(min = 1, max = 3650, message = "must be between 1 and 3650"))]
    #[schema(minimum = 1, maximum = 3650)]
    pub days: Option<u32>,
    #[validate(range(min = 1, max = 87600, message = "must be between 1 and 87600"))]
    #[schema(minimum = 1, maximum = 87600)]
    pub hours: Option<u32>,
    pub to: Option<DateTime<Utc>>,
}

impl AdvanceBody {
    /// The time to move to from `now`.
    pub fn target(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, ValidationErrors> {
        let one = |field: &str| {
            let mut errors = ValidationErrors::default();
            errors.push(ValidationError::new(field, "give exactly one of days, hours or to"));
            errors
        };
        match (self.days, self.hours, self.to) {
            (Some(days), None, None) => Ok(now + chrono::Duration::days(i64::from(days))),
            (None, Some(hours), None) => Ok(now + chrono::Duration::hours(i64::from(hours))),
            (None, None, Some(to)) => Ok(to),
            (None, None, None) => Err(one("days")),
            _ => Err(one("to")),
        }
    }
}

/// What advancing did.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdvanceView {
    pub from: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub stops: u32,
    pub dunning_steps: usize,
    pub trial_reminders: u32,
    pub renewal_deliveries: usize,
}

impl From<AdvanceReport> for AdvanceView {
    fn from(r: AdvanceReport) -> Self {
        Self {
            from: r.from,
            now: r.to,
            stops: r.stops,
            dunning_steps: r.dunning_steps,
            trial_reminders: r.trial_reminders,
            renewal_deliveries: r.renewal_deliveries,
        }
    }
}
