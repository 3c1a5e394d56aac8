//! The plan catalog: what can be sold, with its limits and features. Loaded from `config/plans.toml`, validated once,
//! then read-only. The file format is the serde shape of [`CatalogFile`]; the binary parses TOML into it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// One problem in the catalog file, printed as one line at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogProblem(pub String);

impl fmt::Display for CatalogProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
}

impl Catalog {
    /// Validates the whole file and returns every problem found, one per line, or the catalog.
    pub fn from_file(file: CatalogFile) -> Result<Self, Vec<CatalogProblem>> {
        let mut problems = Vec::new();
        let mut problem = |text: String| problems.push(CatalogProblem(text));
        for (name, declaration) in &file.limits {
            match declaration.source() {
                Some(LimitSource::Usage { metric }) if !file.metrics.contains_key(&metric) => {
                    problem(format!("limit `{name}` reads metric `{metric}`, which is not declared under [metrics]"));
                }
                None => problem(format!("limit `{name}` has source = \"usage\" but no metric")),
                _ => {}
            }
        }

        let mut plans = Vec::new();
        let mut by_id = HashMap::new();
        let mut by_price = HashMap::new();
        let mut defaults = Vec::new();
        for (index, entry) in file.plans.into_iter().enumerate() {
            let at = format!("plans[{index}] (`{}`)", entry.id);
            let id_ok = !entry.id.is_empty()
                && entry.id.len() <= 64
                && entry.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
            if !id_ok {
                problem(format!("{at}: id must be 1-64 characters of a-z, 0-9, '_' or '-'"));
            }
            if entry.name.trim().is_empty() {
                problem(format!("{at}: name must not be empty"));
            }
            let kind = match (entry.kind.as_str(), entry.interval, entry.credits) {
                ("subscription", Some(interval), None) => Some(PlanKind::Subscription { interval }),
                ("subscription", None, _) => {
                    problem(format!("{at}: a subscription plan needs interval = \"month\" or \"year\""));
                    None
                }
                ("subscription", Some(_), Some(_)) => {
                    problem(format!("{at}: a subscription plan cannot grant credits; use kind = \"credits\""));
                    None
                }
                ("credits", None, Some(credits)) if credits > 0 => Some(PlanKind::Credits { credits }),
                ("credits", _, _) => {
                    problem(format!("{at}: a credits plan needs credits > 0 and no interval"));
                    None
                }
                (other, _, _) => {
                    problem(format!("{at}: kind must be \"subscription\" or \"credits\", not {other:?}"));
                    None
                }
            };
            let currency = match Currency::parse(&entry.price.currency) {
                Ok(c) => Some(c),
                Err(_) => {
                    problem(format!("{at}: price.currency must be a three-letter ISO 4217 code"));
                    None
                }
            };
            if entry.price.amount < 0 {
                problem(format!("{at}: price.amount must not be negative"));
            }
            for name in entry.limits.keys() {
                if !file.limits.contains_key(name) {
                    problem(format!("{at}: limit `{name}` is not declared under [limits]"));
                }
            }
            for name in &entry.features {
                if !file.features.contains_key(name) {
                    problem(format!("{at}: feature `{name}` is not declared under [features]"));
                }
            }
            for component in &entry.metered {
                if !file.metrics.contains_key(&component.metric) {
                    problem(format!("{at}: metered metric `{}` is not declared under [metrics]", component.metric));
                }
                if component.unit_price.is_sign_negative() || component.included.is_sign_negative() {
                    problem(format!("{at}: metered `{}` prices and quantities must not be negative", component.metric));
                }
            }
            let plan_id = PlanId::new(entry.id.clone());
            if by_id.insert(plan_id.clone(), index).is_some() {
                problem(format!("{at}: duplicate plan id `{}`", entry.id));
            }
            let mut processor_prices = BTreeMap::new();
            for (processor, price) in entry.processor_prices {
                let key = (ProcessorId::new(processor.clone()), PriceId::new(price.clone()));
                if price.trim().is_empty() {
                    problem(format!("{at}: processor_prices.{processor} must not be empty"));
                } else if let Some(&other) = by_price.get(&key) {
                    problem(format!("{at}: {processor} price `{price}` is already used by plans[{other}]"));
                } else {
                    by_price.insert(key.clone(), index);
                }
                processor_prices.insert(key.0, key.1);
            }
            if entry.default {
                defaults.push(index);
                if entry.price.amount != 0 || !matches!(kind, Some(PlanKind::Subscription { .. })) {
                    problem(format!("{at}: the default plan must be a free (amount = 0) subscription plan"));
                }
            }
            if let (Some(kind), Some(currency)) = (kind, currency) {
                plans.push(Plan {
                    id: plan_id,
                    name: entry.name,
                    description: entry.description,
                    kind,
                    price: Money::new(entry.price.amount, currency),
                    processor_prices,
                    limits: entry.limits,
                    features: entry.features.into_iter().collect(),
                    metered: entry.metered,
                    is_default: entry.default,
                });
            }
        }
        if defaults.len() != 1 {
            problem(format!("exactly one plan must have default = true (the free plan); found {}", defaults.len()));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            plans,
            by_id,
            by_price,
            default_plan: defaults[0],
            limits: file.limits,
            features: file.features,
            metrics: file.metrics,
        })
    }

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
}

/// A request named a plan the catalog does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown plan `{requested}`; valid plans: {}", valid.join(", "))]
pub struct UnknownPlan {
    pub requested: String,
    pub valid: Vec<String>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small catalog for tests across the crate: free (default), pro (monthly) and a 10-credit pack.
    pub(crate) fn test_catalog() -> Catalog {
        let file: CatalogFile = serde_json::from_value(serde_json::json!({
            "limits": {
                "workspace_members": {"description": "members", "source": "count"},
                "alerts_per_month": {"description": "alerts", "source": "usage", "metric": "alerts"}
            },
            "features": {"sla_tracking": "SLA tracking"},
            "metrics": {"alerts": {"description": "alerts raised", "aggregation": "sum"}},
            "plans": [
                {"id": "free", "name": "Free", "kind": "subscription", "interval": "month",
                 "price": {"amount": 0, "currency": "usd"}, "default": true,
                 "limits": {"workspace_members": 1, "alerts_per_month": 100}},
                {"id": "pro", "name": "Pro", "kind": "subscription", "interval": "month",
                 "price": {"amount": 4900, "currency": "USD"},
                 "processor_prices": {"sandbox": "sbx_price_pro", "stripe": "price_pro"},
                 "limits": {"workspace_members": 10, "alerts_per_month": "unlimited"},
                 "features": ["sla_tracking"]},
                {"id": "credits10", "name": "10 credits", "kind": "credits", "credits": 10,
                 "price": {"amount": 999, "currency": "USD"},
                 "processor_prices": {"sandbox": "sbx_price_credits10"}}
            ]
        }))
        .unwrap();
        Catalog::from_file(file).unwrap()
    }

    #[test]
    fn looks_plans_up_by_id_and_price() {
        let catalog = test_catalog();
        assert_eq!(catalog.default_plan().id.as_str(), "free");
        let pro = catalog.by_price(&ProcessorId::new("sandbox"), &PriceId::new("sbx_price_pro")).unwrap();
        assert_eq!(pro.id.as_str(), "pro");
        assert_eq!(pro.limits["alerts_per_month"], Limit::Unlimited);
        let unknown = catalog.require("gold").unwrap_err();
        assert_eq!(unknown.valid, ["free", "pro", "credits10"]);
    }

    #[test]
    fn reports_every_problem_once() {
        let file: CatalogFile = serde_json::from_value(serde_json::json!({
            "limits": {"seats": {"description": "s", "source": "usage", "metric": "nope"}},
            "plans": [
                {"id": "a", "name": "A", "kind": "subscription", "interval": "month",
                 "price": {"amount": 0, "currency": "USD"}, "limits": {"ghost": 1},
                 "features": ["ghost_feature"], "processor_prices": {"stripe": "price_x"}},
                {"id": "a", "name": "", "kind": "credits", "price": {"amount": -1, "currency": "dollars"},
                 "processor_prices": {"stripe": "price_x"}}
            ]
        }))
        .unwrap();
        let problems: Vec<String> = Catalog::from_file(file).unwrap_err().iter().map(|p| p.to_string()).collect();
        let expected = [
            "limit `seats` reads metric `nope`",
            "limit `ghost` is not declared",
            "feature `ghost_feature` is not declared",
            "name must not be empty",
            "a credits plan needs credits > 0",
            "price.currency must be",
            "price.amount must not be negative",
            "duplicate plan id `a`",
            "price `price_x` is already used by plans[0]",
            "exactly one plan must have default = true",
        ];
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
        for (line, fragment) in problems.iter().zip(expected) {
            assert!(line.contains(fragment), "{line} should contain {fragment}");
        }
    }

    #[test]
    fn limits_reject_negative_numbers_and_other_words() {
        assert_eq!(serde_json::from_str::<Limit>("\"unlimited\"").unwrap(), Limit::Unlimited);
        assert_eq!(serde_json::from_str::<Limit>("5").unwrap(), Limit::Limited(5));
        assert!(serde_json::from_str::<Limit>("-1").is_err());
        assert!(serde_json::from_str::<Limit>("\"lots\"").is_err());
        assert!(Limit::Limited(5).allows(4, 1));
        assert!(!Limit::Limited(5).allows(5, 1));
        assert!(Limit::Unlimited.allows(u64::MAX, u64::MAX));
    }
}
