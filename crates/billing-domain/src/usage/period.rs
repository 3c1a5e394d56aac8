//! The period a usage event counts in: the subscription's current billing period when the event falls in it,
//! else the calendar month (UTC). Late events land in their own period.

use chrono::{DateTime, Datelike, TimeZone, Utc};

use crate::subscription::Subscription;

/// A half-open time range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UsageRange {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl UsageRange {
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }
}

/// The period `at` counts in for a workspace whose current subscription is `subscription`.
pub fn period_at(subscription: Option<&Subscription>, at: DateTime<Utc>) -> UsageRange {
    if let Some(sub) = subscription
        && sub.status.grants_plan()
        && let (Some(start), Some(end)) = (sub.terms.current_period_start, sub.terms.current_period_end)
    {
        let range = UsageRange { start, end };
        if range.contains(at) {
            return range;
        }
    }
    calendar_month_of(at)
}

/// The calendar month (UTC) holding `at`.
fn calendar_month_of(at: DateTime<Utc>) -> UsageRange {
    calendar_month(at.year(), at.month()).unwrap_or(UsageRange { start: at, end: at })
}

/// The calendar month `year`-`month` (UTC); `None` for a month chrono cannot represent.
pub fn calendar_month(year: i32, month: u32) -> Option<UsageRange> {
    let start = Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0).single()?;
    let (next_year, next_month) = if month == 12 { (year.checked_add(1)?, 1) } else { (year, month + 1) };
    let end = Utc.with_ymd_and_hms(next_year, next_month, 1, 0, 0, 0).single()?;
    Some(UsageRange { start, end })
}
