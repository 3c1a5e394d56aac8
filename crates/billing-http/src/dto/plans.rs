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
    /// `subscription` (billed every `interval`) or `credits` (a pack of `credits`, bought once).
    #[schema(value_type = PlanKindName)]
    pub kind: &'static str,
    /// A subscription's: `month` or `year`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<IntervalName>, nullable = false)]
    pub interval: Option<&'static str>,
    /// A credit pack's: how many credits it grants.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub credits: Option<u32>,
    pub price: MoneyView<'a>,
    pub limits: BTreeMap<&'a str, LimitValue>,
    pub features: &'a BTreeSet<String>,
    pub metered: Vec<MeteredView<'a>>,
    pub default: bool,
}

impl<'a> From<&'a Plan> for PlanView<'a> {
    fn from(p: &'a Plan) -> Self {
        let (kind, interval, credits) = match p.kind {
            PlanKind::Subscription { interval: Interval::Month } => ("subscription", Some("month"), None),
            PlanKind::Subscription { interval: Interval::Year } => ("subscription", Some("year"), None),
            PlanKind::Credits { credits } => ("credits", None, Some(credits)),
        };
        Self {
            id: p.id.as_str(),
            name: &p.name,
            description: &p.description,
            kind,
            interval,
            credits,
            price: MoneyView::from(&p.price),
            limits: p.limits.iter().map(|(name, limit)| (name.as_str(), LimitValue(*limit))).collect(),
            features: &p.features,
            metered: p.metered.iter().map(MeteredView::from).collect(),
            default: p.is_default,
        }
    }
}

/// What a plan sells: a `subscription`, or a pack of `credits`.
#[derive(ToSchema)]
#[schema(as = PlanKind)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum PlanKindName {
    Subscription,
    Credits,
}

/// How often a subscription bills.
#[derive(ToSchema)]
#[schema(as = Interval)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum IntervalName {
    Month,
    Year,
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
