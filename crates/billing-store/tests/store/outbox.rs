//! The outbox: dedup on enqueue, leases on claim, delivery and failure bookkeeping.

use std::collections::BTreeSet;

use billing_domain::error::StoreError;
use billing_domain::ports::{Lease, Outbox};
use billing_domain::records::OutboxStatus;
use billing_store::Store;

use crate::helpers::{at, outbox_message};

/// A worker's 60-second lease taken at wall-clock second `now` (billing and wall time agree unless a test says).
fn lease(now: i64) -> Lease {
    Lease { now: at(now), until: at(now + 60) }
}

both!(enqueue_dedups_on_key, |store: Store| async move {
    let outbox: &dyn Outbox = &store;
    assert!(outbox.enqueue(&outbox_message("k1"), at(0)).await.unwrap());
    assert!(!outbox.enqueue(&outbox_message("k1"), at(1)).await.unwrap());
    assert!(outbox.enqueue(&outbox_message("k2"), at(1)).await.unwrap());
    assert_eq!(outbox.claim_due(at(5), lease(5), 10).await.unwrap().len(), 2);
});

both!(claims_lease_messages_until_the_lease_ends, |store: Store| async move {
    let outbox: &dyn Outbox = &store;
    for key in ["k1", "k2", "k3"] {
        outbox.enqueue(&outbox_message(key), at(0)).await.unwrap();
    }
    assert!(outbox.claim_due(at(-1), lease(-1), 10).await.unwrap().is_empty(), "not due yet");

    let first = outbox.claim_due(at(1), lease(1), 2).await.unwrap();
    let keys: Vec<&str> = first.iter().map(|m| m.message.dedup_key.as_str()).collect();
    assert_eq!(keys, ["k1", "k2"]);
    assert_eq!(first[0].message, outbox_message("k1"));
    assert_eq!(first[0].attempts, 0);

    let second = outbox.claim_due(at(2), lease(2), 10).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].message.dedup_key, "k3");
    assert!(outbox.claim_due(at(30), lease(30), 10).await.unwrap().is_empty(), "all leased");

    let expired = outbox.claim_due(at(61), lease(61), 10).await.unwrap();
    let keys: Vec<&str> = expired.iter().map(|m| m.message.dedup_key.as_str()).collect();
    assert_eq!(keys, ["k1", "k2"], "a lease that ended frees the message");
    assert_eq!(outbox.claim_due(at(0), lease(0), 0).await.unwrap(), vec![]);
});

both!(concurrent_claims_never_share_a_message, |store: Store| async move {
    for i in 0..20 {
        store.enqueue(&outbox_message(&format!("k{i}")), at(0)).await.unwrap();
    }
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_due(at(1), lease(1), 8).await.unwrap() })
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
    let claimed = outbox.claim_due(at(1), lease(1), 10).await.unwrap();
    let (k1, k2) = (claimed[0].id, claimed[1].id);

    outbox.mark_failed(k1, "smtp timeout", Some(at(100))).await.unwrap();
    outbox.mark_failed(k2, "mailbox gone", None).await.unwrap();
    assert!(outbox.claim_due(at(99), lease(99), 10).await.unwrap().is_empty(), "retry not due, dead never");
    let retried = outbox.claim_due(at(100), lease(100), 10).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].id, retried[0].attempts), (k1, 1));

    outbox.mark_delivered(k1, at(101)).await.unwrap();
    assert!(outbox.claim_due(at(1000), lease(1000), 10).await.unwrap().is_empty());
    // A late failure report of a delivered message changes nothing.
    outbox.mark_failed(k1, "late", Some(at(200))).await.unwrap();
    assert!(outbox.claim_due(at(1000), lease(1000), 10).await.unwrap().is_empty());

    assert!(matches!(outbox.mark_delivered(9_999, at(1)).await, Err(StoreError::Other(_))));
    assert!(matches!(outbox.mark_failed(9_999, "x", None).await, Err(StoreError::Other(_))));
});

both!(a_lease_runs_on_the_wall_clock_not_billing_time, |store: Store| async move {
    let outbox: &dyn Outbox = &store;
    outbox.enqueue(&outbox_message("k1"), at(0)).await.unwrap();
    assert_eq!(outbox.claim_due(at(1), lease(1), 10).await.unwrap().len(), 1);
    // A test clock jumps a day ahead while the worker still sends: the message is due, but still leased.
    assert!(outbox.claim_due(at(86_400), lease(2), 10).await.unwrap().is_empty(), "leased until wall second 61");
    assert_eq!(outbox.claim_due(at(86_400), lease(61), 10).await.unwrap().len(), 1, "the lease ended");
});

both!(operators_list_and_retry_messages, |store: Store| async move {
    let outbox: &dyn Outbox = &store;
    for key in ["k1", "k2", "k3"] {
        outbox.enqueue(&outbox_message(key), at(0)).await.unwrap();
    }
    let claimed = outbox.claim_due(at(1), lease(1), 10).await.unwrap();
    let (k1, k2, k3) = (claimed[0].id, claimed[1].id, claimed[2].id);
    outbox.mark_failed(k1, "endpoint answered 500", None).await.unwrap();
    outbox.mark_delivered(k2, at(2)).await.unwrap();
    outbox.mark_failed(k3, "timeout", Some(at(500))).await.unwrap();

    let dead = outbox.list_messages(OutboxStatus::Dead, 10, None).await.unwrap();
    assert_eq!(dead.iter().map(|e| e.id).collect::<Vec<_>>(), [k1]);
    assert_eq!((dead[0].attempts, dead[0].last_error.as_deref()), (1, Some("endpoint answered 500")));
    assert_eq!(dead[0].message, outbox_message("k1"));
    let pending = outbox.list_messages(OutboxStatus::Pending, 10, None).await.unwrap();
    assert_eq!(pending.iter().map(|e| e.id).collect::<Vec<_>>(), [k3]);
    assert_eq!(pending[0].available_at, at(500));
    let delivered = outbox.list_messages(OutboxStatus::Delivered, 10, None).await.unwrap();
    assert_eq!((delivered.len(), delivered[0].delivered_at), (1, Some(at(2))));
    assert!(outbox.list_messages(OutboxStatus::Dead, 10, Some(k1)).await.unwrap().is_empty(), "ids below k1");

    // A dead message comes back due now with its attempts starting over; a waiting one is due now.
    assert!(outbox.retry(k1, at(10)).await.unwrap());
    assert!(outbox.retry(k3, at(10)).await.unwrap());
    let again = outbox.get(k1).await.unwrap().unwrap();
    assert_eq!((again.status, again.attempts, again.last_error), (OutboxStatus::Pending, 0, None));
    let due: Vec<i64> = outbox.claim_due(at(10), lease(100), 10).await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(due, [k1, k3]);
    // A delivered message is never sent again; an unknown one is not there to retry.
    assert!(!outbox.retry(k2, at(10)).await.unwrap());
    assert!(!outbox.retry(9_999, at(10)).await.unwrap());
    assert_eq!(outbox.get(9_999).await.unwrap(), None);
});
