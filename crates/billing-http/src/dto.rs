//! Request and response bodies of the v1 API, and their conversion into domain types.

use billing_domain::catalog::{Limit, MeteredComponent, Plan, PlanKind};
use billing_domain::error::{ValidationError, ValidationErrors};
use billing_domain::money::Money;
use billing_domain::services::WorkspaceOverview;
use billing_domain::subscription::Subscription;
use billing_domain::workspace::{BillingDetails, WorkspaceProfile};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// `PUT /v1/workspaces/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceBody {
    pub name: String,
    pub owner_email: String,
    #[serde(default)]
    pub billing_details: BillingDetails,
}

impl WorkspaceBody {
    pub fn try_into_domain(self) -> Result<WorkspaceProfile, ValidationErrors> {
        WorkspaceProfile::parse(&self.name, &self.owner_email, self.billing_details)
    }
}

/// A workspace with its billing state.
#[derive(Debug, Serialize)]
pub struct WorkspaceView {
    pub id: String,
    pub name: String,
    pub owner_email: String,
    pub billing_details: BillingDetails,
    pub plan: String,
    pub plan_source: billing_domain::entitlements::PlanSource,
    pub subscription_status: Option<&'static str>,
    pub cancel_at_period_end: bool,
    pub current_period_end: Option<DateTime<Utc>>,
    pub trial_ends_at: Option<DateTime<Utc>>,
    pub trial_days_remaining: u32,
    pub credit_balance: i64,
    pub restricted: bool,
    pub restricted_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<WorkspaceOverview> for WorkspaceView {
    fn from(o: WorkspaceOverview) -> Self {
        let ws = o.workspace;
        Self {
            id: ws.id.to_string(),
            name: ws.name,
            owner_email: ws.owner_email.to_string(),
            billing_details: ws.billing_details,
            plan: o.plan.to_string(),
            plan_source: o.plan_source,
            subscription_status: o.subscription.as_ref().map(|s| s.status.as_str()),
            cancel_at_period_end: o.subscription.as_ref().is_some_and(|s| s.terms.cancel_at_period_end),
            current_period_end: o.subscription.as_ref().and_then(|s| s.terms.current_period_end),
            trial_ends_at: ws.trial_ends_at,
            trial_days_remaining: o.trial_days_remaining,
            credit_balance: ws.credit_balance,
            restricted: ws.restricted,
            restricted_reason: ws.restricted_reason,
            created_at: ws.created_at,
            updated_at: ws.updated_at,
        }
    }
}

/// `POST /v1/workspaces/{id}/checkout`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBody {
    pub plan: String,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
}

/// Checks that a redirect URL is an absolute http(s) URL.
pub fn redirect_url(field: &str, value: &str) -> Result<String, ValidationError> {
    let ok = (value.starts_with("https://") || value.starts_with("http://"))
        && value.len() <= 2048
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok { Ok(value.to_owned()) } else { Err(ValidationError::new(field, "must be an absolute http(s) URL")) }
}

/// `POST /v1/workspaces/{id}/entitlements/check`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    pub key: String,
    /// How many more the caller wants to use (default 1).
    pub requested: Option<u64>,
    /// For count limits: how many the workspace has now.
    pub current: Option<u64>,
}

/// `GET /v1/workspaces/{id}/subscription`.
#[derive(Debug, Serialize)]
pub struct SubscriptionView {
    pub id: String,
    pub processor: String,
    pub status: &'static str,
    pub plan: String,
    pub price_id: String,
    pub quantity: u32,
    pub cancel_at_period_end: bool,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub trial_end: Option<DateTime<Utc>>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub status_changed_at: DateTime<Utc>,
}

impl From<Subscription> for SubscriptionView {
    fn from(s: Subscription) -> Self {
        Self {
            id: s.id.to_string(),
            processor: s.processor.to_string(),
            status: s.status.as_str(),
            plan: s.terms.plan_id.to_string(),
            price_id: s.terms.price_id.to_string(),
            quantity: s.terms.quantity,
            cancel_at_period_end: s.terms.cancel_at_period_end,
            current_period_start: s.terms.current_period_start,
            current_period_end: s.terms.current_period_end,
            trial_end: s.terms.trial_end,
            canceled_at: s.canceled_at,
            status_changed_at: s.status_at,
        }
    }
}

/// A plan as the public catalog shows it.
#[derive(Debug, Serialize)]
pub struct PlanView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    #[serde(flatten)]
    pub kind: &'a PlanKind,
    pub price: &'a Money,
    pub limits: &'a BTreeMap<String, Limit>,
    pub features: &'a BTreeSet<String>,
    pub metered: &'a [MeteredComponent],
    pub default: bool,
}

impl<'a> From<&'a Plan> for PlanView<'a> {
    fn from(p: &'a Plan) -> Self {
        Self {
            id: p.id.as_str(),
            name: &p.name,
            description: &p.description,
            kind: &p.kind,
            price: &p.price,
            limits: &p.limits,
            features: &p.features,
            metered: &p.metered,
            default: p.is_default,
        }
    }
}

/// `GET /v1/workspaces/{id}/audit` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub limit: Option<u32>,
    pub before: Option<i64>,
}
