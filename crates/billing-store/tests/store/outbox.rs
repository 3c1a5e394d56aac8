//! The outbox: dedup on enqueue, leases on claim, delivery and failure bookkeeping.

use std::collections::BTreeSet;

use billing_domain::error::StoreError;
use billing_domain::ports::Outbox;
use billing_store::Store;

use crate::helpers::{at, outbox_message};

both!(enqueue_dedups_on_key, |store: Store| async move {
    let outbox: &dyn Outbox = &store;
    assert!(outbox.enqueue(&outbox_message("k1"), at(0)).await.unwrap());
    assert!(!outbox.enqueue(&outbox_message("k1"), at(1)).await.unwrap());
    assert!(outbox.enqueue(&outbox_message("k2"), at(1)).await.unwrap());
    assert_eq!(outbox.claim_due(at(5), at(65), 10).await.unwrap().len(), 2);
});

both!(claims_lease_messages_until_the_lease_ends, |store: Store| async move {
    let outbox: &dyn Outbox = &store;
    for key in ["k1", "k2", "k3"] {
        outbox.enqueue(&outbox_message(key), at(0)).await.unwrap();
    }
    assert!(outbox.claim_due(at(-1), at(59), 10).await.unwrap().is_empty(), "not due yet");

    let first = outbox.claim_due(at(1), at(61), 2).await.unwrap();
    let keys: Vec<&str> = first.iter().map(|m| m.message.dedup_key.as_str()).collect();
    assert_eq!(keys, ["k1", "k2"]);
    assert_eq!(first[0].message, outbox_message("k1"));
    assert_eq!(first[0].attempts, 0);

    let second = outbox.claim_due(at(2), at(62), 10).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].message.dedup_key, "k3");
    assert!(outbox.claim_due(at(30), at(90), 10).await.unwrap().is_empty(), "all leased");

    let expired = outbox.claim_due(at(61), at(121), 10).await.unwrap();
    let keys: Vec<&str> = expired.iter().map(|m| m.message.dedup_key.as_str()).collect();
    assert_eq!(keys, ["k1", "k2"], "a lease that ended frees the message");
    assert_eq!(outbox.claim_due(at(0), at(60), 0).await.unwrap(), vec![]);
});

both!(concurrent_claims_never_share_a_message, |store: Store| async move {
    for i in 0..20 {
        store.enqueue(&outbox_message(&format!("k{i}")), at(0)).await.unwrap();
    }
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_due(at(1), at(61), 8).await.unwrap() })
        })
        .collect();
    let ids: Vec<i64> =
        futures::future::join_all(tasks).await.into_iter().flat_map(|claimed| claimed.unwrap()).map(|m| m.id).collect();
    let distinct: BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), distinct.len(), "a message was claimed twice: {ids:?}");
    assert_eq!(ids.len(), 20);
});

both!(delivery_and_failures_are_recorded, |store: Store| async move {
    let outbox: &dyn Outbox = &store;
    outbox.enqueue(&outbox_message("k1"), at(0)).await.unwrap();
    outbox.enqueue(&outbox_message("k2"), at(0)).await.unwrap();
    let claimed = outbox.claim_due(at(1), at(61), 10).await.unwrap();
    let (k1, k2) = (claimed[0].id, claimed[1].id);

    outbox.mark_failed(k1, "smtp timeout", Some(at(100))).await.unwrap();
    outbox.mark_failed(k2, "mailbox gone", None).await.unwrap();
    assert!(outbox.claim_due(at(99), at(159), 10).await.unwrap().is_empty(), "retry not due, dead never");
    let retried = outbox.claim_due(at(100), at(160), 10).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].id, retried[0].attempts), (k1, 1));

    outbox.mark_delivered(k1, at(101)).await.unwrap();
    assert!(outbox.claim_due(at(1000), at(1060), 10).await.unwrap().is_empty());
    // A late failure report of a delivered message changes nothing.
    outbox.mark_failed(k1, "late", Some(at(200))).await.unwrap();
    assert!(outbox.claim_due(at(1000), at(1060), 10).await.unwrap().is_empty());

    assert!(matches!(outbox.mark_delivered(9_999, at(1)).await, Err(StoreError::Other(_))));
    assert!(matches!(outbox.mark_failed(9_999, "x", None).await, Err(StoreError::Other(_))));
});
