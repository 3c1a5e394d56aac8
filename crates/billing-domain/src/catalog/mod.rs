//! The plan catalog: what can be sold, with its limits and features. Loaded from `config/plans.toml`, validated once,
//! then read-only. The file format is the serde shape of [`CatalogFile`] (`file.rs`); the binary parses TOML into
//! it, and [`Catalog::from_file`] (`build.rs`) validates it into the lookups below.

use std::collections::{BTreeMap, BTreeSet, HashMap};

mod build;
mod file;
#[cfg(test)]
pub(crate) mod tests;

pub use build::CatalogProblem;
pub use file::{CatalogFile, LimitDeclaration, LimitSourceKind, MetricDeclaration, PlanEntry, PriceEntry};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::{PlanId, PriceId, ProcessorId};
use crate::money::{Currency, Money};

/// A limit value: a non-negative count, or unlimited. Never the magic `-1` inside the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    Limited(u64),
    Unlimited,
}

impl Limit {
    /// Whether `used + requested` stays within the limit.
    pub fn allows(self, used: u64, requested: u64) -> bool {
        match self {
            Limit::Unlimited => true,
            Limit::Limited(max) => used.saturating_add(requested) <= max,
        }
    }
}

impl Serialize for Limit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Limit::Limited(n) => s.serialize_u64(*n),
            Limit::Unlimited => s.serialize_str("unlimited"),
        }
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) if n >= 0 => Ok(Limit::Limited(n as u64)),
            Raw::Number(_) => Err(serde::de::Error::custom("a limit must be a non-negative integer or \"unlimited\"")),
            Raw::Text(t) if t == "unlimited" => Ok(Limit::Unlimited),
            Raw::Text(t) => Err(serde::de::Error::custom(format!(
                "a limit must be a non-negative integer or \"unlimited\", got {t:?}"
            ))),
        }
    }
}

/// Billing interval of a subscription plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Month,
    Year,
}

/// What buying the plan does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PlanKind {
    /// A recurring subscription.
    Subscription { interval: Interval },
    /// A one-time purchase granting this many credits.
    Credits { credits: u32 },
}

/// How a limit's current value is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "lowercase")]
pub enum LimitSource {
    /// The caller passes the current count (e.g. members).
    Count,
    /// The metered total of `metric` in the current period.
    Usage { metric: String },
}

/// How usage events of a metric combine within a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    Sum,
    Max,
}

/// A metered price component of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeteredComponent {
    pub metric: String,
    /// Price of one unit beyond the included quantity, in major units of the plan's currency.
    pub unit_price: Decimal,
    #[serde(default)]
    pub included: Decimal,
    /// The processor meter this metric's usage is reported to (Stripe: the meter's `event_name`); none: the
    /// usage is kept here only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter_event: Option<String>,
}

/// A validated plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub id: PlanId,
    pub name: String,
    pub description: String,
    #[serde(flatten)]
    pub kind: PlanKind,
    pub price: Money,
    pub processor_prices: BTreeMap<ProcessorId, PriceId>,
    pub limits: BTreeMap<String, Limit>,
    pub features: BTreeSet<String>,
    pub metered: Vec<MeteredComponent>,
    /// The default free plan every workspace falls back to.
    pub is_default: bool,
}

impl Plan {
    pub fn price_for(&self, processor: &ProcessorId) -> Option<&PriceId> {
        self.processor_prices.get(processor)
    }

    pub fn is_subscription(&self) -> bool {
        matches!(self.kind, PlanKind::Subscription { .. })
    }
}

/// The validated, read-only catalog with O(1) lookups by plan id and by processor price id.
#[derive(Debug, Clone)]
pub struct Catalog {
    plans: Vec<Plan>,
    by_id: HashMap<PlanId, usize>,
    by_price: HashMap<(ProcessorId, PriceId), usize>,
    default_plan: usize,
    limits: BTreeMap<String, LimitDeclaration>,
    features: BTreeMap<String, String>,
    metrics: BTreeMap<String, MetricDeclaration>,
    /// Metric → the processor meter event its usage is reported to.
    meters: BTreeMap<String, String>,
}

impl Catalog {
    pub fn plans(&self) -> &[Plan] {
        &self.plans
    }

    pub fn get(&self, id: &PlanId) -> Option<&Plan> {
        self.by_id.get(id).map(|&i| &self.plans[i])
    }

    /// Looks a plan up, or returns [`UnknownPlan`] listing the valid ids.
    pub fn require(&self, id: &str) -> Result<&Plan, UnknownPlan> {
        self.get(&PlanId::new(id)).ok_or_else(|| UnknownPlan {
            requested: id.to_owned(),
            valid: self.plans.iter().map(|p| p.id.to_string()).collect(),
        })
    }

    /// Maps a processor's price id (from a webhook payload) back to its plan.
    pub fn by_price(&self, processor: &ProcessorId, price: &PriceId) -> Option<&Plan> {
        self.by_price.get(&(processor.clone(), price.clone())).map(|&i| &self.plans[i])
    }

    /// The free plan every workspace falls back to.
    pub fn default_plan(&self) -> &Plan {
        &self.plans[self.default_plan]
    }

    pub fn limit_declarations(&self) -> &BTreeMap<String, LimitDeclaration> {
        &self.limits
    }

    pub fn feature_declarations(&self) -> &BTreeMap<String, String> {
        &self.features
    }

    pub fn metric_declarations(&self) -> &BTreeMap<String, MetricDeclaration> {
        &self.metrics
    }

    /// The metrics reported to processor meters, each with its meter's event name.
    pub fn meter_events(&self) -> &BTreeMap<String, String> {
        &self.meters
    }
}

/// A request named a plan the catalog does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown plan `{requested}`; valid plans: {}", valid.join(", "))]
pub struct UnknownPlan {
    pub requested: String,
    pub valid: Vec<String>,
}
