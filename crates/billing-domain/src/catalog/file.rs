//! The catalog file's format: the serde shape of `config/plans.toml`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::*;

/// The catalog file as written: `[limits]`, `[features]`, `[metrics]` declarations and `[[plans]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    #[serde(default)]
    pub limits: BTreeMap<String, LimitDeclaration>,
    #[serde(default)]
    pub features: BTreeMap<String, String>,
    #[serde(default)]
    pub metrics: BTreeMap<String, MetricDeclaration>,
    #[serde(default)]
    pub plans: Vec<PlanEntry>,
}

/// A declared limit name with its description and source: `source = "count"`, or `source = "usage"` with
/// `metric = "…"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitDeclaration {
    pub description: String,
    #[serde(rename = "source")]
    pub source_kind: LimitSourceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
}

/// The `source` word of a limit declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitSourceKind {
    Count,
    Usage,
}

impl LimitDeclaration {
    /// The source, or `None` for a usage limit without a metric (reported by validation).
    pub fn source(&self) -> Option<LimitSource> {
        match (self.source_kind, &self.metric) {
            (LimitSourceKind::Count, _) => Some(LimitSource::Count),
            (LimitSourceKind::Usage, Some(metric)) => Some(LimitSource::Usage { metric: metric.clone() }),
            (LimitSourceKind::Usage, None) => None,
        }
    }
}

/// A declared usage metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricDeclaration {
    pub description: String,
    pub aggregation: Aggregation,
}

/// One `[[plans]]` entry before validation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanEntry {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `subscription` or `credits`.
    pub kind: String,
    pub interval: Option<Interval>,
    pub credits: Option<u32>,
    pub price: PriceEntry,
    #[serde(default)]
    pub processor_prices: BTreeMap<String, String>,
    #[serde(default)]
    pub limits: BTreeMap<String, Limit>,
    #[serde(default)]
    pub features: Vec<String>,
    #[serde(default)]
    pub metered: Vec<MeteredComponent>,
    #[serde(default)]
    pub default: bool,
}

/// Display price of a plan.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceEntry {
    pub amount: i64,
    pub currency: String,
}
