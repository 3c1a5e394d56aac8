//! Decisions on payment activity and their effects.
use chrono::{TimeZone, Utc};

use super::*;
use crate::events::PaymentActivityKind;
use crate::ids::{EventId, ProcessorId};
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
        },
    }
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
