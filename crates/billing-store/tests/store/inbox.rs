//! The webhook inbox and parked events.

use std::collections::BTreeSet;

use billing_domain::error::StoreError;
use billing_domain::ids::{EventId, ProcessorId};
use billing_domain::ports::{EventInbox, InboxStatus, Recorded};
use billing_store::Store;

use crate::helpers::{at, inbox_event, now, processor_event};

both!(concurrent_deliveries_record_one_new, |store: Store| async move {
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.record(&inbox_event("evt_1")).await.unwrap() })
        })
        .collect();
    let outcomes: Vec<Recorded> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    let new = outcomes.iter().filter(|r| **r == Recorded::New).count();
    assert_eq!(new, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|r| matches!(r, Recorded::New | Recorded::Seen { status: InboxStatus::Received, attempts: 1 }))
    );
    assert_eq!(store.count_by_status(InboxStatus::Received).await.unwrap(), 1);
});

both!(failures_and_retry_claims_are_compare_and_set, |store: Store| async move {
    let inbox: &dyn EventInbox = &store;
    let event = inbox_event("evt_1");
    let (processor, id) = (event.processor.clone(), event.event_id.clone());

    // A failure of an event whose insert was rolled back records it as failed.
    inbox.record_failure(&event, "boom").await.unwrap();
    assert_eq!(inbox.record(&event).await.unwrap(), Recorded::Seen { status: InboxStatus::Failed, attempts: 1 });
    assert!(!inbox.claim_retry(&processor, &id, 2).await.unwrap(), "wrong attempt count");
    assert!(inbox.claim_retry(&processor, &id, 1).await.unwrap());
    assert!(!inbox.claim_retry(&processor, &id, 1).await.unwrap(), "already claimed");
    assert_eq!(inbox.record(&event).await.unwrap(), Recorded::Seen { status: InboxStatus::Received, attempts: 2 });

    inbox.record_failure(&event, "boom again").await.unwrap();
    assert_eq!(inbox.record(&event).await.unwrap(), Recorded::Seen { status: InboxStatus::Failed, attempts: 3 });
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (store, processor, id) = (store.clone(), processor.clone(), id.clone());
            tokio::spawn(async move { store.claim_retry(&processor, &id, 3).await.unwrap() })
        })
        .collect();
    let claims = futures::future::join_all(tasks).await.into_iter().filter(|c| *c.as_ref().unwrap()).count();
    assert_eq!(claims, 1);

    // A failure reported for an event another delivery has settled meanwhile leaves it settled: marking it failed
    // would let a redelivery apply it twice.
    let settled = inbox_event("evt_settled");
    assert_eq!(inbox.record(&settled).await.unwrap(), Recorded::New);
    inbox.set_status(&processor, &settled.event_id, InboxStatus::Processed, None, now()).await.unwrap();
    inbox.record_failure(&settled, "late failure").await.unwrap();
    assert_eq!(inbox.record(&settled).await.unwrap(), Recorded::Seen { status: InboxStatus::Processed, attempts: 1 });
    assert!(!inbox.claim_retry(&processor, &EventId::new("evt_unknown"), 1).await.unwrap());
});

both!(statuses_are_set_and_counted, |store: Store| async move {
    let inbox: &dyn EventInbox = &store;
    for id in ["evt_1", "evt_2", "evt_3"] {
        assert_eq!(inbox.record(&inbox_event(id)).await.unwrap(), Recorded::New);
    }
    let sandbox = ProcessorId::new("sandbox");
    inbox.set_status(&sandbox, &EventId::new("evt_1"), InboxStatus::Processed, None, now()).await.unwrap();
    inbox
        .set_status(&sandbox, &EventId::new("evt_2"), InboxStatus::Ignored, Some("unhandled type".into()), now())
        .await
        .unwrap();
    assert_eq!(inbox.count_by_status(InboxStatus::Received).await.unwrap(), 1);
    assert_eq!(inbox.count_by_status(InboxStatus::Processed).await.unwrap(), 1);
    assert_eq!(inbox.count_by_status(InboxStatus::Ignored).await.unwrap(), 1);
    assert_eq!(inbox.count_by_status(InboxStatus::Failed).await.unwrap(), 0);
    assert_eq!(
        inbox.record(&inbox_event("evt_2")).await.unwrap(),
        Recorded::Seen { status: InboxStatus::Ignored, attempts: 1 }
    );
    let missing = inbox.set_status(&sandbox, &EventId::new("evt_9"), InboxStatus::Processed, None, now()).await;
    assert!(matches!(missing, Err(StoreError::Other(_))));
});

both!(parked_events_are_taken_exactly_once, |store: Store| async move {
    let inbox: &dyn EventInbox = &store;
    let sandbox = ProcessorId::new("sandbox");
    let (first, second) = (processor_event("evt_1", "cus_1"), processor_event("evt_2", "cus_1"));
    inbox.park(&first, "customer:cus_1", at(1)).await.unwrap();
    inbox.park(&second, "customer:cus_1", at(2)).await.unwrap();
    inbox.park(&first, "customer:cus_1", at(3)).await.unwrap(); // a redelivery parks nothing new
    inbox.park(&processor_event("evt_3", "cus_2"), "customer:cus_2", at(4)).await.unwrap();

    assert_eq!(inbox.take_parked(&sandbox, "customer:cus_1").await.unwrap(), vec![first, second]);
    assert_eq!(inbox.take_parked(&sandbox, "customer:cus_1").await.unwrap(), vec![]);
    assert_eq!(inbox.take_parked(&ProcessorId::new("stripe"), "customer:cus_2").await.unwrap(), vec![]);
    assert_eq!(inbox.take_parked(&sandbox, "customer:cus_2").await.unwrap().len(), 1);
});

both!(concurrent_takers_split_parked_events, |store: Store| async move {
    for i in 0..6 {
        store.park(&processor_event(&format!("evt_{i}"), "cus_1"), "customer:cus_1", at(i)).await.unwrap();
    }
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(
                async move { store.take_parked(&ProcessorId::new("sandbox"), "customer:cus_1").await.unwrap() },
            )
        })
        .collect();
    let taken: Vec<String> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .flat_map(|t| t.unwrap())
        .map(|e| e.id.as_str().to_owned())
        .collect();
    let distinct: BTreeSet<&String> = taken.iter().collect();
    assert_eq!(taken.len(), 6, "{taken:?}");
    assert_eq!(distinct.len(), 6);
});
