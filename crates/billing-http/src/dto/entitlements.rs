//! Entitlements: every limit and feature of the effective plan, and the hot-path check.

use std::collections::BTreeMap;

use billing_domain::entitlements::{CheckResult, LimitCheck};
use billing_domain::services::{ConsumeCheck, EntitlementsView, LimitView};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use validator::Validate;

use super::common::LimitValue;
use super::workspaces::plan_source;

/// `POST /v1/workspaces/{id}/entitlements/check`.
#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    #[validate(custom(function = "entitlement_key"))]
    pub key: String,
    /// How many more the caller wants to use (default 1).
    pub requested: Option<u64>,
    /// For count limits: how many the workspace has now.
    pub current: Option<u64>,
    /// Record this much usage of the limit's metric if it fits, in the same step as the check (usage limits
    /// whose metric sums; needs `usage:write`).
    #[validate(range(min = 1, message = "must be at least 1"))]
    pub consume: Option<u64>,
    /// With `consume`: the consumption's key (it becomes the usage event's id), so a retry consumes once.
    #[validate(length(min = 1, max = 255, message = "must be 1-255 characters"))]
    pub idempotency_key: Option<String>,
}

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
    Feature { allowed: bool, reason: Option<&'a str> },
}

impl<'a> From<&'a CheckResult> for CheckView<'a> {
    fn from(result: &'a CheckResult) -> Self {
        match result {
            CheckResult::Limit(check) => Self::Limit(LimitCheckView::from(check)),
            CheckResult::Feature { allowed, reason } => Self::Feature { allowed: *allowed, reason: reason.as_deref() },
        }
    }
}

/// One limit's answer.
#[derive(Debug, Serialize)]
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
#[derive(Debug, Serialize)]
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
#[derive(Debug, Serialize)]
pub struct EntitlementsResponse<'a> {
    pub plan: &'a str,
    pub plan_source: &'static str,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub limits: BTreeMap<&'a str, LimitEntry<'a>>,
    pub features: &'a BTreeMap<String, bool>,
}

/// A limit with its description and current answer.
#[derive(Debug, Serialize)]
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
