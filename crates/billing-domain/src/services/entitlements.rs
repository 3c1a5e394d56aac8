//! Entitlements of a workspace: every limit and feature of its effective plan, and single checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;

use super::Context;
use crate::catalog::{Limit, LimitSource};
use crate::entitlements::{CheckResult, LimitCheck, PlanSource, UnknownEntitlement, check, check_limit};
use crate::error::StoreError;
use crate::ids::{PlanId, WorkspaceId};
use crate::ports::UsageRepository;
use crate::subscription::Subscription;
use crate::usage::{UsageRange, UsageTotals, period_at};

/// Errors of entitlement queries.
#[derive(Debug, thiserror::Error)]
pub enum EntitlementError {
    #[error("workspace not found")]
    WorkspaceNotFound,
    #[error(transparent)]
    Unknown(#[from] UnknownEntitlement),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One limit with its current usage (count limits report no usage: the caller knows the count).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitView {
    pub description: String,
    #[serde(flatten)]
    pub check: LimitCheck,
}

/// Everything the effective plan grants.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntitlementsView {
    pub plan: PlanId,
    pub plan_source: PlanSource,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub limits: BTreeMap<String, LimitView>,
    pub features: BTreeMap<String, bool>,
}

/// Entitlement use cases.
pub struct EntitlementService {
    ctx: Context,
    usage: Arc<dyn UsageRepository>,
}

impl EntitlementService {
    pub fn new(ctx: Context, usage: Arc<dyn UsageRepository>) -> Self {
        Self { ctx, usage }
    }

    /// Every limit and feature of the workspace's effective plan, with metered usage of the current period.
    pub async fn all(&self, id: &WorkspaceId) -> Result<EntitlementsView, EntitlementError> {
        let (workspace, subscription) = self.ctx.billing_state(id).await?.ok_or(EntitlementError::WorkspaceNotFound)?;
        let now = self.ctx.clock.now();
        let effective = self.ctx.effective_plan(&workspace, subscription.as_ref(), now);
        let period = usage_period(subscription.as_ref(), now);
        let totals = self.usage.totals(id, period).await?;
        let limits = self
            .ctx
            .catalog
            .limit_declarations()
            .iter()
            .map(|(name, declaration)| {
                let limit = effective.plan.limits.get(name).copied().unwrap_or(Limit::Limited(0));
                let used = match declaration.source() {
                    Some(LimitSource::Usage { metric }) => self.used(&totals, &metric),
                    _ => 0,
                };
                let view = LimitView {
                    description: declaration.description.clone(),
                    check: check_limit(name, limit, used, 0),
                };
                (name.clone(), view)
            })
            .collect();
        let features = self
            .ctx
            .catalog
            .feature_declarations()
            .keys()
            .map(|name| (name.clone(), effective.plan.features.contains(name)))
            .collect();
        Ok(EntitlementsView {
            plan: effective.plan.id.clone(),
            plan_source: effective.source,
            period_start: period.start,
            period_end: period.end,
            limits,
            features,
        })
    }

    /// Whether `requested` more of `key` are allowed (a limit), or whether the feature is on.
    pub async fn check(
        &self,
        id: &WorkspaceId,
        key: &str,
        requested: u64,
        current: Option<u64>,
    ) -> Result<CheckResult, EntitlementError> {
        let (workspace, subscription) = self.ctx.billing_state(id).await?.ok_or(EntitlementError::WorkspaceNotFound)?;
        let now = self.ctx.clock.now();
        let effective = self.ctx.effective_plan(&workspace, subscription.as_ref(), now);
        let needs_usage = matches!(
            self.ctx.catalog.limit_declarations().get(key).and_then(|d| d.source()),
            Some(LimitSource::Usage { .. })
        );
        let totals = if needs_usage {
            self.usage.totals(id, usage_period(subscription.as_ref(), now)).await?
        } else {
            UsageTotals::new()
        };
        let metered = |metric: &str| self.used(&totals, metric);
        Ok(check(&self.ctx.catalog, effective.plan, key, requested, current, &metered)?)
    }
}

impl EntitlementService {
    /// What a usage limit reads of `metric`: its total or peak, as the catalog aggregates it.
    fn used(&self, totals: &UsageTotals, metric: &str) -> u64 {
        let aggregation = self.ctx.catalog.metric_declarations().get(metric).map(|d| d.aggregation);
        let value = totals.get(metric).zip(aggregation).map(|(total, aggregation)| total.value(aggregation));
        whole_units(value)
    }
}

/// Usage limits count whole units; a fraction counts as a whole one so a limit is never silently exceeded.
pub(crate) fn whole_units(total: Option<Decimal>) -> u64 {
    total.map_or(0, |t| t.ceil().to_u64().unwrap_or(u64::MAX))
}

/// The period `*_per_month` limits count in now: the subscription's current period when it holds `now`, else the
/// calendar month (UTC).
pub(crate) fn usage_period(subscription: Option<&Subscription>, now: DateTime<Utc>) -> UsageRange {
    period_at(subscription, now)
}
