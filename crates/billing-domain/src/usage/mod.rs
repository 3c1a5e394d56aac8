//! Usage metering (SPEC §3.7): what an event must be to count (`validate.rs`), the period it counts in
//! (`period.rs`) and what a period's usage costs (`cost.rs`). Totals are kept per range by the store
//! (`UsageRepository`); the rules here decide what goes in and what comes out.

mod cost;
mod period;
#[cfg(test)]
mod tests;
mod validate;

pub use cost::{CostLine, UsageCost, cost_of, round_to_minor};
pub use period::{UsageRange, calendar_month, period_at};
pub use validate::{
    MAX_BATCH, MAX_QUANTITY_SCALE, RawUsageEvent, RawValue, RejectCode, Rejection, UsagePolicy, validate_event,
};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::catalog::Aggregation;
use crate::ids::WorkspaceId;

/// A valid usage event. `id` is the caller's idempotency key, unique per workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEvent {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub metric: String,
    pub quantity: Decimal,
    pub at: DateTime<Utc>,
}

/// One metric's events over a range, with both aggregations kept: the catalog says which one counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricTotal {
    pub sum: Decimal,
    pub max: Decimal,
    pub events: u64,
}

/// A range's totals by metric; metrics without events are absent.
pub type UsageTotals = BTreeMap<String, MetricTotal>;

/// The totals went beyond what an exact decimal holds (about 7.9 × 10²⁸).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("usage total overflows the decimal range")]
pub struct TotalOverflow;

impl MetricTotal {
    /// The total of one event.
    pub fn of_event(quantity: Decimal) -> Self {
        Self { sum: quantity, max: quantity, events: 1 }
    }

    /// Counts one more event.
    pub fn add(&mut self, quantity: Decimal) -> Result<(), TotalOverflow> {
        self.merge(&Self::of_event(quantity))
    }

    /// Counts another set of events (totals of disjoint events).
    pub fn merge(&mut self, other: &MetricTotal) -> Result<(), TotalOverflow> {
        if self.events == 0 {
            *self = *other;
            return Ok(());
        }
        if other.events == 0 {
            return Ok(());
        }
        self.sum = self.sum.checked_add(other.sum).ok_or(TotalOverflow)?;
        self.max = self.max.max(other.max);
        self.events += other.events;
        Ok(())
    }

    /// The value the metric's aggregation reads.
    pub fn value(&self, aggregation: Aggregation) -> Decimal {
        match aggregation {
            Aggregation::Sum => self.sum,
            Aggregation::Max => self.max,
        }
    }
}
