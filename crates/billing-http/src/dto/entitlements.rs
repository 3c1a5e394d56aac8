//! Entitlements: every limit and feature of the effective plan, and the hot-path check.

use std::collections::BTreeMap;

use billing_domain::entitlements::{CheckResult, LimitCheck};
use billing_domain::services::{ConsumeCheck, EntitlementsView, LimitView};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use validator::Validate;

use super::common::LimitValue;
use super::workspaces::plan_source;
use utoipa::openapi::schema::{AnyOfBuilder, Schema};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// `POST /v1/workspaces/{id}/entitlements/check`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    /// A limit or feature of the catalog (the document lists this server's).
    #[validate(custom(function = "entitlement_key"))]
    pub key: String,
    /// How many more the caller wants to use (default 1).
    #[validate(range(max = MAX_COUNT, message = "must be at most 9223372036854775807"))]
    pub requested: Option<u64>,
    /// For count limits: how many the workspace has now.
    #[validate(range(max = MAX_COUNT, message = "must be at most 9223372036854775807"))]
    pub current: Option<u64>,
    /// Record this much usage of the limit's metric if it fits, in the same step as the check (usage limits
    /// whose metric sums; needs `usage:write`).
    #[validate(range(min = 1, max = MAX_COUNT, message = "must be between 1 and 9223372036854775807"))]
    #[schema(minimum = 1)]
    pub consume: Option<u64>,
    /// With `consume` (and then required): the consumption's key (it becomes the usage event's id), so a retry
    /// consumes once.
    #[validate(length(min = 1, max = 255, message = "must be 1-255 characters"))]
    #[schema(min_length = 1, max_length = 255)]
    pub idempotency_key: Option<String>,
}

/// The largest count a request may send: the signed 64-bit range its schema (`int64`) promises.
const MAX_COUNT: u64 = i64::MAX as u64;

fn entitlement_key(key: &str) -> Result<(), validator::ValidationError> {
    if key.trim().is_empty() || key.len() > 200 {
        let message = "must name a limit or feature of the catalog";
        return Err(validator::ValidationError::new("entitlement_key").with_message(message.into()));
    }
    Ok(())
}

/// The answer for a limit (`limit`, `used`, `remaining`, …) or a feature (`allowed` only).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum CheckView<'a> {
    Limit(LimitCheckView<'a>),
    Feature(FeatureCheckView<'a>),
}

/// A feature's answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeatureCheckView<'a> {
    pub allowed: bool,
    pub reason: Option<&'a str>,
}

/// What `POST …/entitlements/check` answers: a limit's answer (with `consumed` and `replayed` after a `consume`)
/// or a feature's. A documentation type: the handler sends `CheckView` or `ConsumeCheckView`.
pub struct CheckAnswer;

impl ToSchema for CheckAnswer {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((ConsumeCheckView::name().into(), ConsumeCheckView::schema()));
        <ConsumeCheckView as ToSchema>::schemas(schemas);
        schemas.push((LimitCheckView::name().into(), LimitCheckView::schema()));
        <LimitCheckView as ToSchema>::schemas(schemas);
        schemas.push((FeatureCheckView::name().into(), FeatureCheckView::schema()));
    }
}

impl PartialSchema for CheckAnswer {
    fn schema() -> RefOr<Schema> {
        // anyOf, not oneOf: a consuming check's answer is also a limit's answer.
        AnyOfBuilder::new()
            .item(Ref::from_schema_name(ConsumeCheckView::name()))
            .item(Ref::from_schema_name(LimitCheckView::name()))
            .item(Ref::from_schema_name(FeatureCheckView::name()))
            .into()
    }
}

impl<'a> From<&'a CheckResult> for CheckView<'a> {
    fn from(result: &'a CheckResult) -> Self {
        match result {
            CheckResult::Limit(check) => Self::Limit(LimitCheckView::from(check)),
            CheckResult::Feature { allowed, reason } => {
                Self::Feature(FeatureCheckView { allowed: *allowed, reason: reason.as_deref() })
            }
        }
    }
}

/// One limit's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitCheckView<'a> {
    pub allowed: bool,
    pub limit: LimitValue,
    pub used: u64,
    pub remaining: LimitValue,
    /// `None` for unlimited.
    pub percent_used: Option<f64>,
    pub reason: Option<&'a str>,
}

impl<'a> From<&'a LimitCheck> for LimitCheckView<'a> {
    fn from(check: &'a LimitCheck) -> Self {
        Self {
            allowed: check.allowed,
            limit: LimitValue(check.limit),
            used: check.used,
            remaining: LimitValue(check.remaining),
            percent_used: check.percent_used,
            reason: check.reason.as_deref(),
        }
    }
}

/// The answer of a check that consumes: the limit after it, and whether this call took the usage.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsumeCheckView<'a> {
    #[serde(flatten)]
    pub check: LimitCheckView<'a>,
    pub consumed: bool,
    /// The key had consumed before; nothing more was taken.
    pub replayed: bool,
}

impl<'a> From<&'a ConsumeCheck> for ConsumeCheckView<'a> {
    fn from(result: &'a ConsumeCheck) -> Self {
        Self { check: LimitCheckView::from(&result.check), consumed: result.consumed, replayed: result.replayed }
    }
}

/// `GET /v1/workspaces/{id}/entitlements`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntitlementsResponse<'a> {
    pub plan: &'a str,
    pub plan_source: &'static str,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub limits: BTreeMap<&'a str, LimitEntry<'a>>,
    pub features: &'a BTreeMap<String, bool>,
}

/// A limit with its description and current answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitEntry<'a> {
    pub description: &'a str,
    #[serde(flatten)]
    pub check: LimitCheckView<'a>,
}

impl<'a> From<&'a EntitlementsView> for EntitlementsResponse<'a> {
    fn from(view: &'a EntitlementsView) -> Self {
        let entry = |limit: &'a LimitView| LimitEntry {
            description: &limit.description,
            check: LimitCheckView::from(&limit.check),
        };
        Self {
            plan: view.plan.as_str(),
            plan_source: plan_source(view.plan_source),
            period_start: view.period_start,
            period_end: view.period_end,
            limits: view.limits.iter().map(|(name, limit)| (name.as_str(), entry(limit))).collect(),
            features: &view.features,
        }
    }
}
