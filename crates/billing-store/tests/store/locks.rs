//! The per-subject serialization point (`Transaction::lock`) and the parked-event queries built on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use billing_domain::ids::{CustomerId, EventId, ProcessorId, WorkspaceId};
use billing_domain::ports::{BillingSubject, EventInbox, SubscriptionRepository, UnitOfWork, WorkspaceRepository};
use billing_domain::subscription::SubscriptionStatus::Active;
use billing_store::Store;

use crate::helpers::{Backend, at, now, processor_event, run, subscription, workspace, ws_id};

fn customer(id: &str) -> BillingSubject {
    BillingSubject::Customer { processor: ProcessorId::new("sandbox"), customer: CustomerId::new(id) }
}

/// Holds `first` locked in one transaction for a moment and reports whether a second transaction locking `second`
/// got through before the first committed.
async fn second_waits(store: &Store, first: BillingSubject, second: BillingSubject) -> bool {
    let holder = UnitOfWork::begin(store).await.unwrap();
    holder.lock(&first).await.unwrap();
    let committed = Arc::new(AtomicBool::new(false));
    let contender = {
        let (store, committed) = (store.clone(), committed.clone());
        tokio::spawn(async move {
            let tx = UnitOfWork::begin(&store).await.unwrap();
            tx.lock(&second).await.unwrap();
            let waited = committed.load(Ordering::SeqCst);
            tx.commit().await.unwrap();
            waited
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    committed.store(true, Ordering::SeqCst);
    holder.commit().await.unwrap();
    contender.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_lock_serializes_its_transactions_and_only_those_on_postgres() {
    run(Backend::Postgres, |store: Store| async move {
        assert!(second_waits(&store, customer("cus_1"), customer("cus_1")).await, "same customer must wait");
        let acme = BillingSubject::Workspace(ws_id("acme"));
        assert!(second_waits(&store, acme.clone(), acme.clone()).await, "same workspace must wait");
        assert!(!second_waits(&store, customer("cus_1"), customer("cus_2")).await, "other customers run on");
        assert!(!second_waits(&store, customer("cus_1"), acme).await, "a customer and a workspace are distinct");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_transaction_releases_its_lock_on_postgres() {
    run(Backend::Postgres, |store: Store| async move {
        let tx = UnitOfWork::begin(&store).await.unwrap();
        tx.lock(&customer("cus_1")).await.unwrap();
        tx.lock(&customer("cus_1")).await.unwrap(); // re-locking a held subject does not wait for itself
        drop(tx);
        let tx = tokio::time::timeout(Duration::from_secs(5), async {
            let tx = UnitOfWork::begin(&store).await.unwrap();
            tx.lock(&customer("cus_1")).await.unwrap();
            tx
        })
        .await
        .expect("the lock is free after rollback");
        tx.commit().await.unwrap();
    })
    .await;
}

both!(locking_is_accepted_on_every_backend, |store: Store| async move {
    let tx = UnitOfWork::begin(&store).await.unwrap();
    tx.lock(&customer("cus_1")).await.unwrap();
    tx.lock(&BillingSubject::Workspace(WorkspaceId::parse("acme").unwrap())).await.unwrap();
    tx.commit().await.unwrap();
});

both!(unpark_claims_an_event_once, |store: Store| async move {
    let sandbox = ProcessorId::new("sandbox");
    store.park(&processor_event("evt_1", "cus_1"), "customer:cus_1", at(1)).await.unwrap();
    store.park(&processor_event("evt_2", "cus_1"), "customer:cus_1", at(2)).await.unwrap();
    assert!(store.unpark(&sandbox, &EventId::new("evt_1")).await.unwrap());
    assert!(!store.unpark(&sandbox, &EventId::new("evt_1")).await.unwrap(), "claimed already");
    let left = store.take_parked(&sandbox, "customer:cus_1").await.unwrap();
    assert_eq!(left.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["evt_2"]);
});

both!(parked_ready_lists_only_events_whose_link_exists, |store: Store| async move {
    let sandbox = ProcessorId::new("sandbox");
    store.park(&processor_event("evt_linked", "cus_1"), "customer:cus_1", at(1)).await.unwrap();
    store.park(&processor_event("evt_waiting", "cus_9"), "customer:cus_9", at(2)).await.unwrap();
    store.park(&processor_event("evt_sub", "cus_1"), "subscription:sub_1", at(3)).await.unwrap();
    store.park(&processor_event("evt_sub_waiting", "cus_1"), "subscription:sub_9", at(4)).await.unwrap();
    assert!(store.parked_ready(10).await.unwrap().is_empty(), "no link exists yet");

    WorkspaceRepository::insert(&store, &workspace("team_1")).await.unwrap();
    store.link_customer(&sandbox, &CustomerId::new("cus_1"), &ws_id("team_1"), at(5)).await.unwrap();
    let ready: Vec<String> = store.parked_ready(10).await.unwrap().into_iter().map(|e| e.id.to_string()).collect();
    assert_eq!(ready, ["evt_linked"]);

    SubscriptionRepository::insert(&store, &subscription("sub_1", "team_1", Active, 6), now()).await.unwrap();
    let ready: Vec<String> = store.parked_ready(10).await.unwrap().into_iter().map(|e| e.id.to_string()).collect();
    assert_eq!(ready, ["evt_linked", "evt_sub"], "oldest first");
    assert_eq!(store.parked_ready(1).await.unwrap().len(), 1, "limit");
});

both!(linked_customers_are_paged_by_customer_id, |store: Store| async move {
    let sandbox = ProcessorId::new("sandbox");
    for (n, ws) in ["team_a", "team_b", "team_c"].iter().enumerate() {
        WorkspaceRepository::insert(&store, &workspace(ws)).await.unwrap();
        let customer = CustomerId::new(format!("cus_{n}"));
        store.link_customer(&sandbox, &customer, &ws_id(ws), at(1)).await.unwrap();
    }
    let first = store.linked_customers(&sandbox, None, 2).await.unwrap();
    assert_eq!(first, [(CustomerId::new("cus_0"), ws_id("team_a")), (CustomerId::new("cus_1"), ws_id("team_b"))]);
    let rest = store.linked_customers(&sandbox, Some(CustomerId::new("cus_1")), 2).await.unwrap();
    assert_eq!(rest, [(CustomerId::new("cus_2"), ws_id("team_c"))]);
    assert!(store.linked_customers(&ProcessorId::new("stripe"), None, 2).await.unwrap().is_empty());
});
