//! `GET /v1/plans`: the public catalog.

use std::collections::{BTreeMap, BTreeSet};

use billing_domain::catalog::{Catalog, Interval, LimitDeclaration, LimitSourceKind, MeteredComponent, Plan, PlanKind};
use serde::Serialize;

use super::common::{LimitValue, MoneyView};
use utoipa::ToSchema;

/// Every plan, and the declarations of the limits and features plans refer to.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlansResponse<'a> {
    pub plans: Vec<PlanView<'a>>,
    pub limits: BTreeMap<&'a str, LimitDeclarationView<'a>>,
    pub features: &'a BTreeMap<String, String>,
}

impl<'a> From<&'a Catalog> for PlansResponse<'a> {
    fn from(catalog: &'a Catalog) -> Self {
        Self {
            plans: catalog.plans().iter().map(PlanView::from).collect(),
            limits: catalog.limit_declarations().iter().map(|(name, d)| (name.as_str(), d.into())).collect(),
            features: catalog.feature_declarations(),
        }
    }
}

/// A plan with its price, limits and features.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    #[serde(flatten)]
    pub kind: PlanKindView,
    pub price: MoneyView<'a>,
    pub limits: BTreeMap<&'a str, LimitValue>,
    pub features: &'a BTreeSet<String>,
    pub metered: Vec<MeteredView<'a>>,
    pub default: bool,
}

impl<'a> From<&'a Plan> for PlanView<'a> {
    fn from(p: &'a Plan) -> Self {
        Self {
            id: p.id.as_str(),
            name: &p.name,
            description: &p.description,
            kind: PlanKindView::from(&p.kind),
            price: MoneyView::from(&p.price),
            limits: p.limits.iter().map(|(name, limit)| (name.as_str(), LimitValue(*limit))).collect(),
            features: &p.features,
            metered: p.metered.iter().map(MeteredView::from).collect(),
            default: p.is_default,
        }
    }
}

/// `kind: "subscription"` with its `interval`, or `kind: "credits"` with how many.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PlanKindView {
    Subscription { interval: &'static str },
    Credits { credits: u32 },
}

impl From<&PlanKind> for PlanKindView {
    fn from(kind: &PlanKind) -> Self {
        match kind {
            PlanKind::Subscription { interval: Interval::Month } => Self::Subscription { interval: "month" },
            PlanKind::Subscription { interval: Interval::Year } => Self::Subscription { interval: "year" },
            PlanKind::Credits { credits } => Self::Credits { credits: *credits },
        }
    }
}

/// A metered price component; decimals as strings, exact.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeteredView<'a> {
    pub metric: &'a str,
    pub unit_price: String,
    pub included: String,
}

impl<'a> From<&'a MeteredComponent> for MeteredView<'a> {
    fn from(m: &'a MeteredComponent) -> Self {
        Self { metric: &m.metric, unit_price: m.unit_price.to_string(), included: m.included.to_string() }
    }
}

/// A declared limit: `source` is `count` (the caller counts) or `usage` (metered, with its `metric`).
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitDeclarationView<'a> {
    pub description: &'a str,
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<&'a str>,
}

impl<'a> From<&'a LimitDeclaration> for LimitDeclarationView<'a> {
    fn from(d: &'a LimitDeclaration) -> Self {
        let source = match d.source_kind {
            LimitSourceKind::Count => "count",
            LimitSourceKind::Usage => "usage",
        };
        Self { description: &d.description, source, metric: d.metric.as_deref() }
    }
}
