//! Decisions on payment activity and their effects.
use chrono::{TimeZone, Utc};

use super::*;
use crate::events::PaymentActivityKind;
use crate::ids::{EventId, PaymentId, ProcessorId};
use crate::money::{Currency, Money};
use crate::testing::test_catalog;

fn refund_event() -> ProcessorEvent {
    ProcessorEvent {
        id: EventId::new("evt_refund"),
        processor: ProcessorId::new("stripe"),
        event_type: "charge.refunded".into(),
        occurred_at: Utc.timestamp_opt(1_767_225_600, 0).unwrap(),
        payload: EventPayload::PaymentActivity {
            activity: PaymentActivityKind::ChargeRefunded,
            customer_id: CustomerId::new("cus_1"),
            object_id: "ch_1".into(),
            amount: Money::new(500, Currency::parse("usd").unwrap()),
            subscription_id: None,
            detail: None,
            payment_id: Some(PaymentId::new("pi_1")),
            plan_id: None,
            paid_for: None,
            refunded: Some(Money::new(300, Currency::parse("usd").unwrap())),
        },
    }
}

fn payment_succeeded(plan: Option<&str>) -> ProcessorEvent {
    ProcessorEvent {
        id: EventId::new("evt_paid"),
        processor: ProcessorId::new("stripe"),
        event_type: "payment_intent.succeeded".into(),
        occurred_at: Utc.timestamp_opt(1_767_225_600, 0).unwrap(),
        payload: EventPayload::PaymentActivity {
            activity: PaymentActivityKind::PaymentSucceeded,
            customer_id: CustomerId::new("cus_1"),
            object_id: "pi_2".into(),
            amount: Money::new(999, Currency::parse("usd").unwrap()),
            subscription_id: None,
            detail: None,
            payment_id: Some(PaymentId::new("pi_2")),
            plan_id: plan.map(PlanId::new),
            paid_for: None,
            refunded: None,
        },
    }
}

#[test]
fn a_paid_payment_intent_for_a_credits_plan_grants_once_under_the_payment_key() {
    let catalog = test_catalog();
    let workspace = WorkspaceId::parse("acme").unwrap();
    let known = Known { catalog: &catalog, workspace: Some(&workspace), subscription: None };
    let Decision::Apply(changes) = decide(&payment_succeeded(Some("credits10")), known).unwrap() else {
        panic!("applies")
    };
    let grant = changes.credit_grant.expect("a grant");
    assert_eq!((grant.amount, grant.key.as_str()), (10, "grant:payment:pi_2"));
    let payment = changes.payment.expect("a payment observation");
    assert_eq!((payment.status, payment.amount.minor), (crate::payment::PaymentStatus::Succeeded, 999));

    let Decision::Apply(plain) = decide(&payment_succeeded(None), known).unwrap() else { panic!("applies") };
    assert!(plain.credit_grant.is_none(), "a payment for an amount grants nothing");
    assert!(plain.payment.is_some());
    assert_eq!(decide(&payment_succeeded(Some("gone")), known).unwrap_err(), DecisionError::UnknownPlan("gone".into()));
}

#[test]
fn payment_activity_is_audited_and_announced_once_per_object_without_state_changes() {
    let catalog = test_catalog();
    let workspace = WorkspaceId::parse("acme").unwrap();
    let known = Known { catalog: &catalog, workspace: Some(&workspace), subscription: None };
    let Decision::Apply(changes) = decide(&refund_event(), known).unwrap() else { panic!("applies") };
    assert_eq!(changes.audit.len(), 1);
    assert_eq!(changes.audit[0].action, "charge.refunded");
    assert_eq!(changes.audit[0].workspace_id, workspace);
    assert_eq!(changes.outbox.len(), 1);
    assert_eq!(changes.outbox[0].dedup_key, "webhook:charge.refunded:ch_1");
    assert_eq!(changes.outbox[0].target, OutboxTarget::Webhook { topic: "billing.charge.refunded".into() });
    assert!(changes.subscription.is_none() && changes.credit_grant.is_none() && changes.link_customer.is_none());
    let payment = changes.payment.as_ref().expect("the refund is merged into the payment");
    assert_eq!((payment.id.as_str(), payment.refunded), ("pi_1", Some(300)));
}

#[test]
fn payment_activity_of_an_unknown_customer_waits_for_the_link() {
    let catalog = test_catalog();
    let known = Known { catalog: &catalog, workspace: None, subscription: None };
    assert_eq!(
        decide(&refund_event(), known).unwrap(),
        Decision::Park { link: customer_link(&CustomerId::new("cus_1")) }
    );
}
