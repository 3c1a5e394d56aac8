//! The statements a group commit shares across its events (`seen_many`, `record_settled`, `lock_all`, the reads ahead, the
//! multi-row appends and status updates) and the savepoint that isolates each event in the shared transaction.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use billing_domain::error::StoreError;
use billing_domain::ids::{CustomerId, EventId, ProcessorId, SubscriptionId};
use billing_domain::ports::{
    AuditLog, BillingSubject, EventInbox, InboxStatus, Lease, Outbox, Recorded, Seen, SettledEvent, StatusUpdate,
    SubscriptionRepository, UnitOfWork, WorkspaceRepository,
};
use billing_domain::subscription::SubscriptionStatus::Active;
use billing_store::Store;

use crate::helpers::{
    Backend, at, audit_record, inbox_event, now, outbox_message, processor_event, run, subscription, workspace, ws_id,
};

fn status(id: &str, status: InboxStatus, error: Option<&str>) -> StatusUpdate {
    StatusUpdate {
        processor: ProcessorId::new("sandbox"),
        event_id: EventId::new(id),
        status,
        error: error.map(str::to_owned),
    }
}

both!(seen_many_reads_what_is_recorded_and_record_settled_writes_each_row_once, |store: Store| async move {
    let sandbox = ProcessorId::new("sandbox");
    assert_eq!(store.record(&inbox_event("evt_b")).await.unwrap(), Recorded::New);
    store.set_status(&sandbox, &EventId::new("evt_b"), InboxStatus::Parked, None, now()).await.unwrap();
    let keys: Vec<_> = ["evt_a", "evt_b", "evt_c"].map(|id| (sandbox.clone(), EventId::new(id))).into();
    let seen = store.seen_many(&keys).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[&keys[1]], Seen { status: InboxStatus::Parked, attempts: 1 });

    let settled = |id: &str, status, error: Option<&str>| SettledEvent {
        event: inbox_event(id),
        status,
        error: error.map(str::to_owned),
    };
    let rows = [
        settled("evt_a", InboxStatus::Processed, None),
        settled("evt_b", InboxStatus::Processed, None),
        settled("evt_c", InboxStatus::Failed, Some("unknown price")),
    ];
    assert_eq!(store.record_settled(&rows, now()).await.unwrap(), [true, false, true], "evt_b was recorded before");
    let seen = store.seen_many(&keys).await.unwrap();
    assert_eq!(seen[&keys[0]], Seen { status: InboxStatus::Processed, attempts: 1 });
    assert_eq!(seen[&keys[1]].status, InboxStatus::Parked, "an existing row is left as it was");
    assert_eq!(seen[&keys[2]].status, InboxStatus::Failed);
    assert!(store.seen_many(&[]).await.unwrap().is_empty());
    assert!(store.record_settled(&[], now()).await.unwrap().is_empty());
});

both!(set_statuses_writes_each_event_once_and_the_last_update_wins, |store: Store| async move {
    for id in ["evt_1", "evt_2"] {
        store.record(&inbox_event(id)).await.unwrap();
    }
    let updates = [
        status("evt_1", InboxStatus::Parked, None),
        status("evt_2", InboxStatus::Failed, Some("unknown price `price_x`")),
        status("evt_1", InboxStatus::Processed, None),
    ];
    store.set_statuses(&updates, now()).await.unwrap();
    assert_eq!(store.count_by_status(InboxStatus::Processed).await.unwrap(), 1);
    assert_eq!(store.count_by_status(InboxStatus::Failed).await.unwrap(), 1);
    assert_eq!(store.count_by_status(InboxStatus::Parked).await.unwrap(), 0);

    let missing = store
        .set_statuses(
            &[status("evt_1", InboxStatus::Processed, None), status("evt_9", InboxStatus::Processed, None)],
            now(),
        )
        .await;
    assert!(matches!(missing, Err(StoreError::Other(_))), "an unknown event is an error: {missing:?}");
});

both!(append_all_and_enqueue_all_write_every_row_once, |store: Store| async move {
    let records = [
        (audit_record("team_1", "subscription.created"), at(1)),
        (audit_record("team_1", "subscription.updated"), at(2)),
    ];
    store.append_all(&records).await.unwrap();
    let listed = AuditLog::list(&store, &ws_id("team_1"), 10, None).await.unwrap();
    let actions: Vec<&str> = listed.iter().map(|e| e.record.action.as_str()).collect();
    assert_eq!(actions, ["subscription.updated", "subscription.created"], "newest first, both kept");

    assert!(store.enqueue(&outbox_message("k1"), at(1)).await.unwrap());
    let messages = [(outbox_message("k1"), at(2)), (outbox_message("k2"), at(2)), (outbox_message("k2"), at(3))];
    store.enqueue_all(&messages).await.unwrap();
    let due = store.claim_due(at(10), Lease { now: at(10), until: at(20) }, 10).await.unwrap();
    let mut keys: Vec<String> = due.iter().map(|m| m.message.dedup_key.clone()).collect();
    keys.sort();
    assert_eq!(keys, ["k1", "k2"], "a dedup key is enqueued once, in or across calls");
});

both!(reads_ahead_answer_for_many_keys_at_once, |store: Store| async move {
    let sandbox = ProcessorId::new("sandbox");
    for id in ["team_1", "team_2"] {
        WorkspaceRepository::insert(&store, &workspace(id)).await.unwrap();
    }
    store.link_customer(&sandbox, &CustomerId::new("cus_1"), &ws_id("team_1"), at(1)).await.unwrap();
    store.link_customer(&sandbox, &CustomerId::new("cus_2"), &ws_id("team_2"), at(1)).await.unwrap();
    let customers = [CustomerId::new("cus_1"), CustomerId::new("cus_2"), CustomerId::new("cus_9")];
    let linked = store.workspaces_of_customers(&sandbox, &customers).await.unwrap();
    assert_eq!(linked.len(), 2);
    assert_eq!(linked[&CustomerId::new("cus_2")], ws_id("team_2"));
    assert!(store.workspaces_of_customers(&ProcessorId::new("stripe"), &customers).await.unwrap().is_empty());

    SubscriptionRepository::insert(&store, &subscription("sub_1", "team_1", Active, 1), now()).await.unwrap();
    SubscriptionRepository::insert(&store, &subscription("sub_2", "team_2", Active, 1), now()).await.unwrap();
    let ids = [SubscriptionId::new("sub_1"), SubscriptionId::new("sub_2"), SubscriptionId::new("sub_9")];
    let found = store.get_many(&sandbox, &ids).await.unwrap();
    assert_eq!(found.keys().map(SubscriptionId::as_str).collect::<Vec<_>>(), ["sub_1", "sub_2"]);
    assert_eq!(
        Some(&found[&ids[0]]),
        SubscriptionRepository::get(&store, &sandbox, &ids[0]).await.unwrap().as_ref(),
        "the same row as get"
    );
});

both!(a_rollback_to_the_savepoint_undoes_only_what_followed_it, |store: Store| async move {
    let tx = UnitOfWork::begin(&store).await.unwrap();
    tx.inbox().record(&inbox_event("evt_kept")).await.unwrap();
    tx.savepoint().await.unwrap();
    tx.inbox().record(&inbox_event("evt_undone")).await.unwrap();
    tx.rollback_to_savepoint().await.unwrap();
    // A new savepoint replaces the last one; the transaction goes on and commits what was kept.
    tx.savepoint().await.unwrap();
    tx.inbox().record(&inbox_event("evt_after")).await.unwrap();
    tx.commit().await.unwrap();
    assert!(matches!(store.record(&inbox_event("evt_kept")).await.unwrap(), Recorded::Seen { .. }));
    assert!(matches!(store.record(&inbox_event("evt_after")).await.unwrap(), Recorded::Seen { .. }));
    assert_eq!(store.record(&inbox_event("evt_undone")).await.unwrap(), Recorded::New, "rolled back");
});

both!(a_failed_statement_is_undone_by_its_savepoint_and_the_transaction_commits, |store: Store| async move {
    // On PostgreSQL a failed statement aborts the whole transaction unless a savepoint takes it back.
    SubscriptionRepository::insert(&store, &subscription("sub_1", "team_1", Active, 1), now()).await.unwrap();
    let tx = UnitOfWork::begin(&store).await.unwrap();
    tx.inbox().record(&inbox_event("evt_1")).await.unwrap();
    tx.savepoint().await.unwrap();
    let clash = tx.subscriptions().update(&subscription("sub_1", "team_1", Active, 2), 41, now()).await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");
    tx.audit().append(&audit_record("team_1", "not.kept"), at(1)).await.unwrap();
    tx.rollback_to_savepoint().await.unwrap();
    tx.inbox().record(&inbox_event("evt_2")).await.unwrap();
    tx.commit().await.unwrap();
    assert!(matches!(store.record(&inbox_event("evt_1")).await.unwrap(), Recorded::Seen { .. }));
    assert!(matches!(store.record(&inbox_event("evt_2")).await.unwrap(), Recorded::Seen { .. }));
    assert!(AuditLog::list(&store, &ws_id("team_1"), 10, None).await.unwrap().is_empty());
});

// A statement the database itself refuses (a foreign key here), which on PostgreSQL aborts the transaction, is
// taken back by the savepoint too.
both!(a_statement_the_database_refuses_is_undone_by_the_savepoint, |store: Store| async move {
    let tx = UnitOfWork::begin(&store).await.unwrap();
    tx.inbox().record(&inbox_event("evt_1")).await.unwrap();
    tx.savepoint().await.unwrap();
    let sandbox = ProcessorId::new("sandbox");
    let refused = tx.workspaces().link_customer(&sandbox, &CustomerId::new("cus_1"), &ws_id("nowhere"), at(1)).await;
    assert!(refused.is_err(), "no such workspace: {refused:?}");
    tx.rollback_to_savepoint().await.unwrap();
    tx.inbox().record(&inbox_event("evt_2")).await.unwrap();
    tx.commit().await.unwrap();
    assert!(matches!(store.record(&inbox_event("evt_1")).await.unwrap(), Recorded::Seen { .. }));
    assert!(matches!(store.record(&inbox_event("evt_2")).await.unwrap(), Recorded::Seen { .. }));
});

/// `lock_all` takes every lock it is given, held to commit, in one call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_all_holds_every_subject_until_commit_on_postgres() {
    run(Backend::Postgres, |store: Store| async move {
        let subjects: Vec<BillingSubject> = ["cus_1", "cus_2", "cus_3"]
            .into_iter()
            .map(|c| BillingSubject::Customer { processor: ProcessorId::new("sandbox"), customer: CustomerId::new(c) })
            .chain([BillingSubject::Workspace(ws_id("acme"))])
            .collect();
        let holder = UnitOfWork::begin(&store).await.unwrap();
        holder.lock_all(&subjects).await.unwrap();
        let mut contenders = Vec::new();
        for subject in subjects {
            let committed = Arc::new(AtomicBool::new(false));
            let contender = {
                let (store, committed, subject) = (store.clone(), committed.clone(), subject.clone());
                tokio::spawn(async move {
                    let tx = UnitOfWork::begin(&store).await.unwrap();
                    tx.lock(&subject).await.unwrap();
                    let after_commit = committed.load(Ordering::SeqCst);
                    tx.commit().await.unwrap();
                    after_commit
                })
            };
            tokio::time::sleep(Duration::from_millis(150)).await;
            assert!(!contender.is_finished(), "{subject:?} is held by the first transaction");
            contenders.push((contender, committed));
        }
        for (_, committed) in &contenders {
            committed.store(true, Ordering::SeqCst);
        }
        holder.commit().await.unwrap();
        for (contender, _) in contenders {
            assert!(contender.await.unwrap(), "each contender got its lock only after the commit");
        }
    })
    .await;
}

both!(park_all_parks_each_event_once_under_its_link, |store: Store| async move {
    let sandbox = ProcessorId::new("sandbox");
    let first = processor_event("evt_1", "cus_1");
    let second = processor_event("evt_2", "cus_1");
    store.park(&first, "customer:cus_1", at(1)).await.unwrap();
    let parked = [
        (first.clone(), "customer:cus_1".to_owned(), at(1)),
        (second.clone(), "customer:cus_1".to_owned(), at(2)),
        (second.clone(), "subscription:sub_1".to_owned(), at(2)),
    ];
    store.park_all(&parked).await.unwrap();
    assert_eq!(store.take_parked(&sandbox, "customer:cus_1").await.unwrap(), vec![first, second.clone()]);
    assert_eq!(store.take_parked(&sandbox, "subscription:sub_1").await.unwrap(), vec![second]);
    store.park_all(&[]).await.unwrap();
});
