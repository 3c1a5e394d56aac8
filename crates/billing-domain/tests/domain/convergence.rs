//! SPEC §3.5 "Convergence": the final state depends only on the set of events received, not on their order or on
//! how often each arrived. Checked on the real WebhookService with generated lifecycles, permutations and duplicates.

use std::sync::Arc;

use billing_domain::catalog::{Catalog, CatalogFile};
use billing_domain::events::{CheckoutMode, EventPayload, ProcessorEvent, SubscriptionSnapshot};
use billing_domain::ids::WorkspaceId;
use billing_domain::money::{Currency, Money};

use billing_domain::ports::InboxStatus;
use billing_domain::services::{IngestOutcome, SweepReport, WebhookService};
use billing_domain::subscription::SubscriptionStatus;
use billing_domain::workspace::BillingDetails;
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

use billing_domain::testing::{self, FixedClock, MemoryStore, State};

/// The clock of the services under test: a month after the events' own times.
pub(crate) fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::at(Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()))
}

pub(crate) fn catalog() -> Catalog {
    let file: CatalogFile = serde_json::from_value(serde_json::json!({
        "plans": [
            {"id": "free", "name": "Free", "kind": "subscription", "interval": "month",
             "price": {"amount": 0, "currency": "USD"}, "default": true},
            {"id": "hobby", "name": "Hobby", "kind": "subscription", "interval": "month",
             "price": {"amount": 900, "currency": "USD"}, "processor_prices": {"sandbox": "price_hobby"}},
            {"id": "pro", "name": "Pro", "kind": "subscription", "interval": "month",
             "price": {"amount": 4900, "currency": "USD"}, "processor_prices": {"sandbox": "price_pro"}},
            {"id": "credits10", "name": "10 credits", "kind": "credits", "credits": 10,
             "price": {"amount": 999, "currency": "USD"}, "processor_prices": {"sandbox": "price_credits"}}
        ]
    }))
    .unwrap();
    Catalog::from_file(file).unwrap()
}

pub(crate) fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap() + Duration::seconds(secs)
}

pub(crate) fn event(id: &str, kind: &str, at: i64, payload: EventPayload) -> ProcessorEvent {
    ProcessorEvent { id: id.into(), processor: "sandbox".into(), event_type: kind.into(), occurred_at: t(at), payload }
}

pub(crate) fn snapshot(sub: &str, price: &str, status: SubscriptionStatus, cancel: bool, period: i64) -> EventPayload {
    EventPayload::SubscriptionChanged(SubscriptionSnapshot {
        subscription_id: sub.into(),
        customer_id: "cus_1".into(),
        price_id: price.into(),
        status,
        quantity: 1,
        cancel_at_period_end: cancel,
        current_period_start: Some(t(period)),
        current_period_end: Some(t(period + 2_592_000)),
        trial_end: None,
    })
}

pub(crate) fn invoice_paid(invoice: &str, sub: &str, price: Option<&str>, period: i64) -> EventPayload {
    EventPayload::InvoicePaid {
        invoice_id: invoice.into(),
        customer_id: "cus_1".into(),
        subscription_id: Some(sub.into()),
        price_id: price.map(Into::into),
        amount: Money::new(4900, Currency::parse("USD").unwrap()),
        period_start: Some(t(period)),
        period_end: Some(t(period + 2_592_000)),
        invoice_url: None,
    }
}

pub(crate) fn payment_failed(invoice: &str, sub: &str, attempt: u32) -> EventPayload {
    EventPayload::InvoicePaymentFailed {
        invoice_id: invoice.into(),
        customer_id: "cus_1".into(),
        subscription_id: Some(sub.into()),
        amount: Money::new(4900, Currency::parse("USD").unwrap()),
        attempt_count: attempt,
    }
}

pub(crate) fn checkout(
    id: &str,
    session: &str,
    at: i64,
    mode: CheckoutMode,
    sub: Option<&str>,
    plan: &str,
) -> ProcessorEvent {
    event(
        id,
        "checkout.session.completed",
        at,
        EventPayload::CheckoutCompleted {
            session_id: session.into(),
            workspace_id: WorkspaceId::parse("acme").unwrap(),
            customer_id: "cus_1".into(),
            mode,
            subscription_id: sub.map(Into::into),
            plan_id: Some(plan.into()),
        },
    )
}

/// A realistic lifecycle with the hard cases: events before the checkout that links the customer, a status-only
/// failure before the subscription is known, same-second ties, a plan change, cancellation, deletion, a second
/// subscription after the first ended, and a credits purchase.
pub(crate) fn lifecycle() -> Vec<ProcessorEvent> {
    use SubscriptionStatus::*;
    vec![
        checkout("evt_01", "cs_1", 0, CheckoutMode::Subscription, Some("sub_1"), "hobby"),
        event("evt_02", "customer.subscription.created", 1, snapshot("sub_1", "price_hobby", Active, false, 1)),
        event("evt_03", "invoice.paid", 1, invoice_paid("in_1", "sub_1", Some("price_hobby"), 1)),
        event("evt_04", "customer.subscription.updated", 100, snapshot("sub_1", "price_pro", Active, false, 1)),
        event("evt_05", "invoice.payment_failed", 200, payment_failed("in_2", "sub_1", 1)),
        event("evt_06", "invoice.paid", 200, invoice_paid("in_2", "sub_1", None, 200)),
        event("evt_07", "invoice.payment_failed", 300, payment_failed("in_3", "sub_1", 1)),
        event("evt_08", "customer.subscription.updated", 300, snapshot("sub_1", "price_pro", PastDue, false, 200)),
        event("evt_09", "invoice.paid", 400, invoice_paid("in_3", "sub_1", Some("price_pro"), 200)),
        event("evt_10", "customer.subscription.updated", 500, snapshot("sub_1", "price_pro", Active, true, 200)),
        event("evt_11", "customer.subscription.deleted", 600, snapshot("sub_1", "price_pro", Canceled, true, 200)),
        event("evt_12", "invoice.paid", 650, invoice_paid("in_4", "sub_1", Some("price_pro"), 650)),
        checkout("evt_13", "cs_2", 700, CheckoutMode::Payment, None, "credits10"),
        event("evt_14", "invoice.payment_failed", 800, payment_failed("in_5", "sub_2", 1)),
        event("evt_15", "customer.subscription.created", 800, snapshot("sub_2", "price_hobby", Active, false, 800)),
        event("evt_16", "invoice.paid", 801, invoice_paid("in_6", "sub_2", Some("price_hobby"), 800)),
    ]
}

pub(crate) fn fresh_store() -> MemoryStore {
    let store = MemoryStore::default();
    let workspace = testing::workspace_with("acme", BillingDetails::default(), t(0));
    store.committed.lock().unwrap().workspaces.insert(workspace.id.clone(), workspace);
    store
}

/// Delivers events one by one through the real service and returns the final committed state.
pub(crate) fn deliver(events: &[ProcessorEvent]) -> State {
    let store = fresh_store();
    let service = WebhookService::new(Arc::new(store.clone()), Arc::new(catalog()), clock());
    futures::executor::block_on(async {
        for e in events {
            service.ingest(e, "{}").await.expect("ingest");
        }
    });
    store.committed.lock().unwrap().clone()
}

/// The state that must not depend on order: subscriptions (without storage versions), links, credits, what is
/// still parked, and each event's final inbox status.
pub(crate) fn billing_state(state: &State) -> impl PartialEq + std::fmt::Debug + use<> {
    let subscriptions: Vec<_> = state
        .subscriptions
        .values()
        .map(|s| billing_domain::subscription::Subscription { version: 0, ..s.clone() })
        .collect();
    let mut parked: Vec<_> = state.parked.iter().map(|(link, e)| (link.clone(), e.id.clone())).collect();
    parked.sort();
    let balances: Vec<_> = state.workspaces.values().map(|w| w.credit_balance).collect();
    (subscriptions, state.customers.clone(), balances, parked, state.inbox.clone())
}

/// A subset of the lifecycle, then that subset shuffled with random duplicates.
pub(crate) fn streams() -> impl Strategy<Value = (Vec<ProcessorEvent>, Vec<ProcessorEvent>)> {
    let all = lifecycle();
    let n = all.len();
    proptest::sample::subsequence(all, 1..=n).prop_flat_map(|subset| {
        let len = subset.len();
        let duplicates = proptest::collection::vec(0..len, 0..=len);
        (Just(subset), duplicates).prop_flat_map(|(subset, dups)| {
            let mut delivered = subset.clone();
            delivered.extend(dups.iter().map(|&i| subset[i].clone()));
            (Just(subset), Just(delivered).prop_shuffle())
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_order_with_duplicates_converges_to_in_order_delivery((in_order, delivered) in streams()) {
        let expected = deliver(&in_order);
        let actual = deliver(&delivered);
        prop_assert_eq!(billing_state(&actual), billing_state(&expected));
    }
}

#[test]
fn the_full_lifecycle_in_order_ends_where_it_should() {
    let state = deliver(&lifecycle());
    let sub_1 = &state.subscriptions[&("sandbox".into(), "sub_1".into())];
    assert_eq!(sub_1.status, SubscriptionStatus::Canceled);
    assert_eq!(sub_1.terms.plan_id.as_str(), "pro");
    assert_eq!(sub_1.canceled_at, Some(t(600)));
    let sub_2 = &state.subscriptions[&("sandbox".into(), "sub_2".into())];
    // The payment failure at 800 ties with the creation at 800 (past_due wins the tie), then the invoice paid at
    // 801 makes it active.
    assert_eq!(sub_2.status, SubscriptionStatus::Active);
    assert_eq!(sub_2.status_at, t(801));
    let without_last: Vec<_> = lifecycle().into_iter().filter(|e| e.id.as_str() != "evt_16").collect();
    let tied = deliver(&without_last);
    assert_eq!(tied.subscriptions[&("sandbox".into(), "sub_2".into())].status, SubscriptionStatus::PastDue);
    assert_eq!(state.workspaces.values().next().unwrap().credit_balance, 10);
    assert!(state.parked.is_empty(), "{:?}", state.parked);
}

#[test]
fn reversed_delivery_parks_then_applies_everything() {
    let mut events = lifecycle();
    events.reverse();
    let reversed = deliver(&events);
    assert!(reversed.parked.is_empty());
    assert_eq!(billing_state(&reversed), billing_state(&deliver(&lifecycle())));
    // Duplicated credits checkouts still grant once.
    let twice: Vec<_> = lifecycle().into_iter().chain(lifecycle()).collect();
    assert_eq!(deliver(&twice).workspaces.values().next().unwrap().credit_balance, 10);
}

/// The state a lost race left behind (before the per-subject lock closed it): events parked under a customer link
/// that was committed without taking them.
fn parked_behind_an_existing_link(events: &[ProcessorEvent]) -> (MemoryStore, WebhookService) {
    let store = fresh_store();
    let service = WebhookService::new(Arc::new(store.clone()), Arc::new(catalog()), clock());
    futures::executor::block_on(async {
        for e in events {
            assert_eq!(service.ingest(e, "{}").await.unwrap(), IngestOutcome::Parked);
        }
    });
    store
        .committed
        .lock()
        .unwrap()
        .customers
        .insert(("sandbox".into(), "cus_1".into()), WorkspaceId::parse("acme").unwrap());
    (store, service)
}

#[test]
fn a_redelivered_parked_event_applies_once_its_link_exists() {
    let paid = event("evt_03", "invoice.paid", 1, invoice_paid("in_1", "sub_1", Some("price_hobby"), 1));
    let (store, service) = parked_behind_an_existing_link(std::slice::from_ref(&paid));
    futures::executor::block_on(async {
        assert_eq!(service.ingest(&paid, "{}").await.unwrap(), IngestOutcome::Applied);
        assert_eq!(service.ingest(&paid, "{}").await.unwrap(), IngestOutcome::Duplicate, "applied once");
    });
    let state = store.committed.lock().unwrap().clone();
    assert!(state.parked.is_empty(), "{:?}", state.parked);
    assert_eq!(state.subscriptions[&("sandbox".into(), "sub_1".into())].status, SubscriptionStatus::Active);
    assert_eq!(state.inbox[&("sandbox".into(), "evt_03".into())].0, InboxStatus::Processed);
}

#[test]
fn the_sweep_applies_parked_events_whose_link_exists_exactly_once() {
    use SubscriptionStatus::*;
    let created =
        event("evt_02", "customer.subscription.created", 1, snapshot("sub_1", "price_hobby", Active, false, 1));
    let failed = event("evt_05", "invoice.payment_failed", 200, payment_failed("in_2", "sub_1", 1));
    let (store, service) = parked_behind_an_existing_link(&[created.clone(), failed.clone()]);
    let first = futures::executor::block_on(service.sweep_parked(10)).unwrap();
    assert_eq!(first, SweepReport { ready: 2, applied: 2, failed: 0, still_parked: 0 });
    let again = futures::executor::block_on(service.sweep_parked(10)).unwrap();
    assert_eq!(again, SweepReport::default(), "nothing is left to sweep");
    assert_eq!(futures::executor::block_on(service.ingest(&failed, "{}")).unwrap(), IngestOutcome::Duplicate);
    let state = store.committed.lock().unwrap().clone();
    assert!(state.parked.is_empty());
    assert_eq!(state.subscriptions[&("sandbox".into(), "sub_1".into())].status, PastDue);
    // The same as if the events had arrived after the link.
    let mut linked = vec![checkout("evt_01", "cs_1", 0, CheckoutMode::Subscription, Some("sub_1"), "hobby")];
    linked.extend([created, failed]);
    let in_order = deliver(&linked);
    assert_eq!(state.subscriptions, in_order.subscriptions);
}
