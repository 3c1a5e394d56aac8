//! Commands a caller may issue against a subscription (cancel, resume, change plan), checked against its state
//! before any processor call. The processor's answer then comes back as a snapshot and applies like a webhook.

use crate::catalog::Catalog;
use crate::ids::PlanId;
use crate::subscription::{Subscription, SubscriptionStatus};

/// What a caller asks of a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionCommand {
    /// Cancel now, or at the end of the current period.
    Cancel { at_period_end: bool },
    /// Undo a scheduled cancellation.
    Resume,
    /// Move to another subscription plan.
    ChangePlan { plan: PlanId },
}

/// Why a command is not allowed in the subscription's current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IllegalTransition {
    #[error("the subscription has ended ({0}); start a new checkout instead")]
    Ended(&'static str),
    #[error("the subscription is already set to cancel at the end of its period")]
    AlreadyScheduled,
    #[error("the subscription is not scheduled for cancellation")]
    NotScheduled,
    #[error("a {0} subscription cannot change plan until it is paid")]
    NotChangeable(&'static str),
    #[error("the subscription is already on plan `{0}`")]
    SamePlan(PlanId),
    #[error("plan `{0}` is not a subscription plan that can be bought")]
    NotASubscriptionPlan(PlanId),
}

/// Checks `command` against `subscription`: `Ok` means the processor may be asked to carry it out.
pub fn check_command(
    catalog: &Catalog,
    subscription: &Subscription,
    command: &SubscriptionCommand,
) -> Result<(), IllegalTransition> {
    use SubscriptionCommand::{Cancel, ChangePlan, Resume};
    let status = subscription.status;
    if status.is_terminal() {
        return Err(IllegalTransition::Ended(status.as_str()));
    }
    let scheduled = subscription.terms.cancel_at_period_end;
    match command {
        Cancel { at_period_end: true } if scheduled => Err(IllegalTransition::AlreadyScheduled),
        Cancel { .. } => Ok(()),
        Resume if !scheduled => Err(IllegalTransition::NotScheduled),
        Resume => Ok(()),
        ChangePlan { plan } => {
            if matches!(status, SubscriptionStatus::Incomplete | SubscriptionStatus::Unpaid) {
                return Err(IllegalTransition::NotChangeable(status.as_str()));
            }
            if plan == &subscription.terms.plan_id {
                return Err(IllegalTransition::SamePlan(plan.clone()));
            }
            match catalog.get(plan) {
                Some(target) if target.is_subscription() && !target.is_default => Ok(()),
                _ => Err(IllegalTransition::NotASubscriptionPlan(plan.clone())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SubscriptionCommand::{Cancel, ChangePlan, Resume};
    use super::*;
    use crate::ids::WorkspaceId;
    use crate::subscription::{Observation, ObservedTerms, SubscriptionTerms, TermsSource};
    use crate::testing::test_catalog;
    use chrono::{TimeZone, Utc};

    fn subscription(status: SubscriptionStatus, scheduled: bool) -> Subscription {
        let terms = SubscriptionTerms {
            plan_id: "pro".into(),
            price_id: "sbx_price_pro".into(),
            quantity: 1,
            cancel_at_period_end: scheduled,
            current_period_start: None,
            current_period_end: None,
            trial_end: None,
        };
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let observation =
            Observation { at, status, terms: Some(ObservedTerms { source: TermsSource::Snapshot, terms }) };
        Subscription::from_observation(
            "sub_1".into(),
            "sandbox".into(),
            WorkspaceId::parse("w").unwrap(),
            "c".into(),
            observation,
        )
        .unwrap()
    }

    #[test]
    fn ended_subscriptions_accept_no_command() {
        let catalog = test_catalog();
        for status in [SubscriptionStatus::Canceled, SubscriptionStatus::IncompleteExpired] {
            for command in [Cancel { at_period_end: false }, Resume, ChangePlan { plan: "credits10".into() }] {
                assert_eq!(
                    check_command(&catalog, &subscription(status, false), &command),
                    Err(IllegalTransition::Ended(status.as_str()))
                );
            }
        }
    }

    #[test]
    fn cancellation_can_be_scheduled_once_and_resumed_once() {
        let catalog = test_catalog();
        let active = subscription(SubscriptionStatus::Active, false);
        let scheduled = subscription(SubscriptionStatus::Active, true);
        assert_eq!(check_command(&catalog, &active, &Cancel { at_period_end: true }), Ok(()));
        assert_eq!(
            check_command(&catalog, &scheduled, &Cancel { at_period_end: true }),
            Err(IllegalTransition::AlreadyScheduled)
        );
        assert_eq!(check_command(&catalog, &scheduled, &Cancel { at_period_end: false }), Ok(()));
        assert_eq!(check_command(&catalog, &active, &Resume), Err(IllegalTransition::NotScheduled));
        assert_eq!(check_command(&catalog, &scheduled, &Resume), Ok(()));
        let trialing = subscription(SubscriptionStatus::Trialing, false);
        assert_eq!(check_command(&catalog, &trialing, &Cancel { at_period_end: true }), Ok(()));
    }

    #[test]
    fn plan_changes_need_another_purchasable_subscription_plan() {
        let catalog = test_catalog();
        let active = subscription(SubscriptionStatus::Active, false);
        let change = |plan: &str| ChangePlan { plan: plan.into() };
        assert_eq!(check_command(&catalog, &active, &change("pro")), Err(IllegalTransition::SamePlan("pro".into())));
        for plan in ["free", "credits10", "gold"] {
            assert_eq!(
                check_command(&catalog, &active, &change(plan)),
                Err(IllegalTransition::NotASubscriptionPlan(plan.into())),
                "{plan}"
            );
        }
        let incomplete = subscription(SubscriptionStatus::Incomplete, false);
        assert_eq!(
            check_command(&catalog, &incomplete, &change("free")),
            Err(IllegalTransition::NotChangeable("incomplete"))
        );
    }
}
