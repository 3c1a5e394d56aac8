//! Effective plan and entitlement checks: the product's hot path. Pure functions with the time passed in.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::catalog::{Catalog, Limit, LimitSource, Plan};
use crate::subscription::{Subscription, SubscriptionStatus};
use crate::trial;
use crate::workspace::Workspace;

/// Why a workspace has the plan it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanSource {
    /// Restricted by dunning: the free plan regardless of subscription.
    Restricted,
    Subscription,
    /// Past due, still inside the grace period.
    GracePeriod,
    Trial,
    /// Nothing paid or trialing: the default free plan.
    Default,
}

/// The plan that decides a workspace's entitlements right now.
#[derive(Debug, Clone, Copy)]
pub struct EffectivePlan<'c> {
    pub plan: &'c Plan,
    pub source: PlanSource,
}

/// restricted → free; active/trialing subscription → its plan; past due within `grace` → its plan; active trial →
/// the trial plan; otherwise free. A plan id the catalog no longer has falls back to free.
pub fn effective_plan<'c>(
    catalog: &'c Catalog,
    workspace: &Workspace,
    subscription: Option<&Subscription>,
    now: DateTime<Utc>,
    grace: Duration,
) -> EffectivePlan<'c> {
    let free = EffectivePlan { plan: catalog.default_plan(), source: PlanSource::Default };
    if workspace.restricted {
        return EffectivePlan { source: PlanSource::Restricted, ..free };
    }
    if let Some(sub) = subscription {
        let source = match sub.status {
            s if s.grants_plan() => Some(PlanSource::Subscription),
            SubscriptionStatus::PastDue if now < sub.status_at + grace => Some(PlanSource::GracePeriod),
            _ => None,
        };
        if let Some(plan) = source.and_then(|source| catalog.get(&sub.terms.plan_id).map(|plan| (plan, source))) {
            return EffectivePlan { plan: plan.0, source: plan.1 };
        }
    }
    if trial::is_active(workspace.trial_ends_at, now)
        && let Some(plan) = workspace.trial_plan.as_ref().and_then(|id| catalog.get(id))
    {
        return EffectivePlan { plan, source: PlanSource::Trial };
    }
    free
}

/// The answer for one limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitCheck {
    pub allowed: bool,
    pub limit: Limit,
    pub used: u64,
    pub remaining: Limit,
    /// `None` for unlimited.
    pub percent_used: Option<f64>,
    pub reason: Option<String>,
}

/// The answer for a limit or a feature.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CheckResult {
    Limit(LimitCheck),
    Feature { allowed: bool, reason: Option<String> },
}

/// The key is neither a declared limit nor a declared feature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown entitlement `{0}`")]
pub struct UnknownEntitlement(pub String);

/// Checks whether `requested` more of `limit_name` fit in `limit` given `used`. A limit the plan does not list is 0.
pub fn check_limit(limit_name: &str, limit: Limit, used: u64, requested: u64) -> LimitCheck {
    let allowed = limit.allows(used, requested);
    let (remaining, percent_used) = match limit {
        Limit::Unlimited => (Limit::Unlimited, None),
        Limit::Limited(max) => {
            let percent = if max == 0 {
                if used == 0 { 0.0 } else { 100.0 }
            } else {
                ((used as f64 / max as f64) * 1000.0).round() / 10.0
            };
            (Limit::Limited(max.saturating_sub(used)), Some(percent))
        }
    };
    let reason = match limit {
        Limit::Limited(max) if !allowed => {
            Some(format!("{limit_name}: {used} used + {requested} requested exceeds the limit of {max}"))
        }
        _ => None,
    };
    LimitCheck { allowed, limit, used, remaining, percent_used, reason }
}

/// Checks one limit or feature of `plan`.
pub fn check(
    catalog: &Catalog,
    plan: &Plan,
    key: &str,
    requested: u64,
    current: Option<u64>,
    metered: &dyn Fn(&str) -> u64,
) -> Result<CheckResult, UnknownEntitlement> {
    if let Some(declaration) = catalog.limit_declarations().get(key) {
        let limit = plan.limits.get(key).copied().unwrap_or(Limit::Limited(0));
        let used = match declaration.source() {
            Some(LimitSource::Usage { metric }) => metered(&metric),
            _ => current.unwrap_or(0),
        };
        return Ok(CheckResult::Limit(check_limit(key, limit, used, requested)));
    }
    if catalog.feature_declarations().contains_key(key) {
        let allowed = plan.features.contains(key);
        let reason = (!allowed).then(|| format!("feature `{key}` is not included in plan `{}`", plan.id));
        return Ok(CheckResult::Feature { allowed, reason });
    }
    Err(UnknownEntitlement(key.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::PlanId;
    use crate::subscription::{Observation, ObservedTerms, SubscriptionTerms, TermsSource};
    use crate::testing::{self, test_catalog};
    use crate::workspace::BillingDetails;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
    }

    fn workspace() -> Workspace {
        testing::workspace_with("acme", BillingDetails::default(), now())
    }

    fn subscription(status: SubscriptionStatus, status_at: DateTime<Utc>) -> Subscription {
        let terms = SubscriptionTerms {
            plan_id: PlanId::new("pro"),
            price_id: "sbx_price_pro".into(),
            quantity: 1,
            cancel_at_period_end: false,
            current_period_start: None,
            current_period_end: None,
            trial_end: None,
        };
        let observation =
            Observation { at: status_at, status, terms: Some(ObservedTerms { source: TermsSource::Snapshot, terms }) };
        Subscription::from_observation("sub_1".into(), "sandbox".into(), workspace().id, "cus_1".into(), observation)
            .unwrap()
    }

    fn plan_of(ws: &Workspace, sub: Option<&Subscription>, at: DateTime<Utc>) -> (String, PlanSource) {
        let catalog = test_catalog();
        let effective = effective_plan(&catalog, ws, sub, at, Duration::days(7));
        (effective.plan.id.to_string(), effective.source)
    }

    #[test]
    fn effective_plan_follows_the_rules_in_order() {
        let ws = workspace();
        let active = subscription(SubscriptionStatus::Active, now());
        assert_eq!(plan_of(&ws, None, now()), ("free".into(), PlanSource::Default));
        assert_eq!(plan_of(&ws, Some(&active), now()), ("pro".into(), PlanSource::Subscription));

        let past_due = subscription(SubscriptionStatus::PastDue, now());
        assert_eq!(plan_of(&ws, Some(&past_due), now() + Duration::days(6)), ("pro".into(), PlanSource::GracePeriod));
        assert_eq!(plan_of(&ws, Some(&past_due), now() + Duration::days(7)), ("free".into(), PlanSource::Default));

        let restricted = Workspace { restricted: true, ..ws.clone() };
        assert_eq!(plan_of(&restricted, Some(&active), now()), ("free".into(), PlanSource::Restricted));

        let trialing =
            Workspace { trial_ends_at: Some(now() + Duration::days(1)), trial_plan: Some("pro".into()), ..ws.clone() };
        let canceled = subscription(SubscriptionStatus::Canceled, now());
        assert_eq!(plan_of(&trialing, Some(&canceled), now()), ("pro".into(), PlanSource::Trial));
        assert_eq!(plan_of(&trialing, None, now() + Duration::days(1)), ("free".into(), PlanSource::Default));
    }

    #[test]
    fn limit_checks_report_usage_and_remaining() {
        let within = check_limit("workspace_members", Limit::Limited(10), 4, 1);
        assert!(within.allowed);
        assert_eq!(within.remaining, Limit::Limited(6));
        assert_eq!(within.percent_used, Some(40.0));
        let over = check_limit("workspace_members", Limit::Limited(10), 10, 1);
        assert!(!over.allowed);
        assert!(over.reason.unwrap().contains("exceeds the limit of 10"));
        let unlimited = check_limit("alerts_per_month", Limit::Unlimited, 1_000_000, 5);
        assert!(unlimited.allowed);
        assert_eq!((unlimited.remaining, unlimited.percent_used), (Limit::Unlimited, None));
    }

    #[test]
    fn checks_features_usage_limits_and_unknown_keys() {
        let catalog = test_catalog();
        let free = catalog.default_plan();
        let pro = catalog.get(&"pro".into()).unwrap();
        let metered = |metric: &str| if metric == "alerts" { 100 } else { 0 };
        let Ok(CheckResult::Limit(alerts)) = check(&catalog, free, "alerts_per_month", 1, None, &metered) else {
            panic!("alerts is a limit")
        };
        assert!(!alerts.allowed);
        assert_eq!(alerts.used, 100);
        assert_eq!(
            check(&catalog, pro, "sla_tracking", 1, None, &metered),
            Ok(CheckResult::Feature { allowed: true, reason: None })
        );
        assert!(matches!(
            check(&catalog, free, "sla_tracking", 1, None, &metered),
            Ok(CheckResult::Feature { allowed: false, .. })
        ));
        assert_eq!(check(&catalog, free, "teleport", 1, None, &metered), Err(UnknownEntitlement("teleport".into())));
    }
}
