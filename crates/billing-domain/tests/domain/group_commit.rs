//! Group commit (`WebhookService::ingest_batch`): events delivered together in one transaction end exactly where
//! the same events delivered one by one end, whatever the grouping; one event that fails — for good (a price the
//! catalog lacks) or for now (a write conflict) — leaves its neighbours applied.
//!
//! Like the convergence tests, these run one transaction at a time over the in-memory store: they check what a
//! batch decides and writes, not overlapping batches (the race harness in `tests/e2e/race` does that, on
//! PostgreSQL, through the binary, where group commit is on by default).

use std::sync::Arc;

use billing_domain::events::ProcessorEvent;
use billing_domain::ids::SubscriptionId;
use billing_domain::ports::InboxStatus;
use billing_domain::services::{Delivery, IngestOutcome, WebhookService};
use billing_domain::subscription::SubscriptionStatus;
use proptest::prelude::*;

use crate::convergence::{billing_state, catalog, clock, deliver, event, fresh_store, lifecycle, snapshot, streams};
use billing_domain::testing::{MemoryStore, State};

fn service(store: &MemoryStore) -> WebhookService {
    WebhookService::new(Arc::new(store.clone()), Arc::new(catalog()), clock())
}

fn deliveries(events: &[ProcessorEvent]) -> Vec<Delivery> {
    events.iter().map(|e| Delivery { event: e.clone(), raw: "{}".into(), request_id: None }).collect()
}

/// Delivers `events` in batches of the given sizes (the rest, if any, in one last batch); returns every answer and
/// the committed state.
fn deliver_in_batches(store: &MemoryStore, events: &[ProcessorEvent], sizes: &[usize]) -> Vec<IngestOutcome> {
    let service = service(store);
    let mut answers = Vec::new();
    let mut rest = events;
    let mut sizes = sizes.iter().copied().chain(std::iter::repeat(usize::MAX));
    futures::executor::block_on(async {
        while !rest.is_empty() {
            let size = sizes.next().unwrap_or(usize::MAX).clamp(1, rest.len());
            let (batch, after) = rest.split_at(size);
            for answer in service.ingest_batch(&deliveries(batch)).await.answers {
                answers.push(answer.expect("every delivery is recorded"));
            }
            rest = after;
        }
    });
    answers
}

fn committed(store: &MemoryStore) -> State {
    store.committed.lock().unwrap().clone()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any delivery order with duplicates, cut into batches of any sizes, converges to in-order delivery.
    #[test]
    fn any_grouping_into_batches_converges_to_in_order_delivery(
        (in_order, delivered) in streams(),
        sizes in proptest::collection::vec(1usize..=8, 0..12),
    ) {
        let expected = deliver(&in_order);
        let store = fresh_store();
        let answers = deliver_in_batches(&store, &delivered, &sizes);
        prop_assert_eq!(answers.len(), delivered.len());
        prop_assert_eq!(billing_state(&committed(&store)), billing_state(&expected));
    }
}

#[test]
fn a_batch_answers_each_delivery_as_a_single_delivery_would() {
    let events = lifecycle();
    let store = fresh_store();
    // The first copy of evt_02 arrives with its own second copy in one batch, before the checkout linking it.
    let batch: Vec<ProcessorEvent> = [&events[1], &events[1], &events[0], &events[2]].into_iter().cloned().collect();
    let answers = deliver_in_batches(&store, &batch, &[4]);
    assert_eq!(answers[0], IngestOutcome::Parked, "before the checkout, in the batch's order");
    assert_eq!(answers[1], IngestOutcome::Duplicate, "the second copy, answered after the first");
    assert_eq!(answers[2], IngestOutcome::Applied);
    assert_eq!(answers[3], IngestOutcome::Applied);
    let state = committed(&store);
    assert!(state.parked.is_empty(), "the checkout released what was parked before it in the same batch");
    assert_eq!(state.inbox.len(), 3, "one inbox row per event");
    assert!(state.inbox.values().all(|(status, _)| *status == InboxStatus::Processed), "{:?}", state.inbox);
    assert_eq!(
        state.subscriptions[&("sandbox".into(), "sub_1".into())].status,
        SubscriptionStatus::Active,
        "applied, not only recorded"
    );
}

#[test]
fn an_event_that_cannot_apply_fails_alone_and_its_neighbours_commit() {
    let events = lifecycle();
    let unknown = event(
        "evt_bad",
        "customer.subscription.updated",
        150,
        snapshot("sub_1", "price_nobody_sells", SubscriptionStatus::Active, false, 1),
    );
    let store = fresh_store();
    deliver_in_batches(&store, &events[..2], &[2]);
    let batch = vec![events[2].clone(), unknown, events[3].clone()];
    let answers = deliver_in_batches(&store, &batch, &[3]);
    assert_eq!(answers[0], IngestOutcome::Applied);
    assert!(
        matches!(&answers[1], IngestOutcome::Failed { reason } if reason.contains("price_nobody_sells")),
        "{answers:?}"
    );
    assert_eq!(answers[2], IngestOutcome::Applied);

    let state = committed(&store);
    assert_eq!(state.inbox[&("sandbox".into(), "evt_bad".into())].0, InboxStatus::Failed);
    let sub = &state.subscriptions[&("sandbox".into(), "sub_1".into())];
    assert_eq!(sub.terms.plan_id.as_str(), "pro", "evt_04 after the failed event still applied");
    let expected = deliver(&events[..4]);
    assert_eq!(state.subscriptions, expected.subscriptions, "as if the bad event had never come");
}

#[test]
fn an_event_whose_write_conflicts_is_retried_alone_and_nothing_else_is_lost() {
    let events = lifecycle();
    let store = fresh_store();
    deliver_in_batches(&store, &events[..1], &[1]);
    // The next write of sub_1 fails once: the first event of the batch that writes it.
    store.failing_writes.lock().unwrap().insert(SubscriptionId::new("sub_1"), 1);
    let answers = deliver_in_batches(&store, &events[1..6], &[5]);
    assert!(answers.iter().all(|a| *a == IngestOutcome::Applied), "{answers:?}");
    assert_eq!(store.failing_writes.lock().unwrap()[&SubscriptionId::new("sub_1")], 0, "the fault was hit");

    let state = committed(&store);
    let expected = deliver(&events[..6]);
    assert_eq!(state.subscriptions, expected.subscriptions);
    // The retried event applied after its neighbours, so another event may be the one an entry names; the entries
    // themselves are neither lost nor doubled.
    let actions = |s: &State| s.audit.iter().map(|a| a.action.clone()).collect::<Vec<_>>();
    assert_eq!(actions(&state), actions(&expected));
    assert!(state.inbox.values().all(|(status, _)| *status == InboxStatus::Processed), "{:?}", state.inbox);
    let retried: Vec<_> = state.inbox.iter().filter(|(_, (_, attempts))| *attempts == 2).map(|(k, _)| &k.1).collect();
    assert_eq!(retried.len(), 1, "exactly the conflicting event took a second attempt: {retried:?}");
}

#[test]
fn an_event_parked_in_a_batch_stays_parked_when_the_event_taking_it_is_rolled_back() {
    let events = lifecycle();
    let store = fresh_store();
    // evt_02 parks (no link yet); the checkout after it links the customer and takes it, and applying it writes
    // sub_1, which fails once: the checkout is rolled back to its savepoint and retried on its own.
    store.failing_writes.lock().unwrap().insert(SubscriptionId::new("sub_1"), 1);
    let batch = vec![events[1].clone(), events[0].clone()];
    let answers = deliver_in_batches(&store, &batch, &[2]);
    assert_eq!(answers, [IngestOutcome::Parked, IngestOutcome::Applied]);
    let state = committed(&store);
    assert!(state.parked.is_empty(), "the retried checkout took the parked event: {:?}", state.parked);
    let expected = deliver(&events[..2]);
    assert_eq!(state.subscriptions, expected.subscriptions);
    assert_eq!(state.customers, expected.customers);
}
