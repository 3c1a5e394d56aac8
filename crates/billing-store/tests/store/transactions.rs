//! The unit of work: a dropped transaction leaves nothing, a committed one leaves everything.

use billing_domain::ids::{CustomerId, ProcessorId};
use billing_domain::ports::{
    AuditLog, ConsumeOutcome, EventInbox, Outbox, Recorded, SubscriptionRepository, Transaction, UnitOfWork,
    WorkspaceRepository,
};
use billing_domain::subscription::SubscriptionStatus::Active;
use billing_store::Store;

use crate::helpers::{
    at, audit_record, inbox_event, now, outbox_message, processor_event, subscription, workspace, ws_id,
};

/// Writes one of everything through `tx`.
async fn write_everything(tx: &dyn Transaction) {
    let ws = workspace("team_1");
    tx.workspaces().insert(&ws).await.unwrap();
    tx.workspaces()
        .link_customer(&ProcessorId::new("sandbox"), &CustomerId::new("cus_1"), &ws.id, at(1))
        .await
        .unwrap();
    assert!(tx.workspaces().grant_credits(&ws.id, 10, "grant:a", at(1)).await.unwrap());
    assert_eq!(
        tx.workspaces().consume_credits(&ws.id, 3, "consume:a", at(2)).await.unwrap(),
        ConsumeOutcome::Consumed { balance: 7 }
    );
    tx.subscriptions().insert(&subscription("sub_1", "team_1", Active, 1), now()).await.unwrap();
    assert_eq!(tx.inbox().record(&inbox_event("evt_1")).await.unwrap(), Recorded::New);
    assert_eq!(tx.inbox().take_parked(&ProcessorId::new("sandbox"), "customer:cus_1").await.unwrap().len(), 1);
    tx.audit().append(&audit_record("team_1", "workspace.created"), at(1)).await.unwrap();
    assert!(tx.outbox().enqueue(&outbox_message("k1"), at(1)).await.unwrap());
}

both!(a_dropped_transaction_leaves_nothing, |store: Store| async move {
    store.park(&processor_event("evt_0", "cus_1"), "customer:cus_1", at(0)).await.unwrap();
    let tx = UnitOfWork::begin(&store).await.unwrap();
    write_everything(tx.as_ref()).await;
    drop(tx);

    assert_eq!(WorkspaceRepository::get(&store, &ws_id("team_1")).await.unwrap(), None);
    let sandbox = ProcessorId::new("sandbox");
    assert_eq!(store.workspace_of_customer(&sandbox, &CustomerId::new("cus_1")).await.unwrap(), None);
    assert_eq!(store.current_for_workspace(&ws_id("team_1")).await.unwrap(), None);
    assert_eq!(store.record(&inbox_event("evt_1")).await.unwrap(), Recorded::New);
    assert!(store.list(&ws_id("team_1"), 10, None).await.unwrap().is_empty());
    assert!(store.enqueue(&outbox_message("k1"), at(1)).await.unwrap());
    let parked = store.take_parked(&sandbox, "customer:cus_1").await.unwrap();
    assert_eq!(parked.len(), 1, "the parked event stays parked");
});

both!(a_committed_transaction_leaves_everything, |store: Store| async move {
    store.park(&processor_event("evt_0", "cus_1"), "customer:cus_1", at(0)).await.unwrap();
    let tx = UnitOfWork::begin(&store).await.unwrap();
    write_everything(tx.as_ref()).await;
    tx.commit().await.unwrap();

    let ws = WorkspaceRepository::get(&store, &ws_id("team_1")).await.unwrap().unwrap();
    assert_eq!(ws.credit_balance, 7);
    let sandbox = ProcessorId::new("sandbox");
    assert_eq!(store.workspace_of_customer(&sandbox, &CustomerId::new("cus_1")).await.unwrap(), Some(ws.id.clone()));
    assert!(store.current_for_workspace(&ws.id).await.unwrap().is_some());
    assert!(matches!(store.record(&inbox_event("evt_1")).await.unwrap(), Recorded::Seen { .. }));
    assert_eq!(store.list(&ws.id, 10, None).await.unwrap().len(), 1);
    assert!(!store.enqueue(&outbox_message("k1"), at(1)).await.unwrap());
    assert!(store.take_parked(&sandbox, "customer:cus_1").await.unwrap().is_empty());
    assert_eq!(
        store.consume_credits(&ws.id, 3, "consume:a", at(3)).await.unwrap(),
        ConsumeOutcome::AlreadyConsumed { balance: 7 }
    );
});

both!(a_losing_write_inside_a_transaction_keeps_it_usable, |store: Store| async move {
    // On PostgreSQL a raised unique violation would abort the whole transaction; the adapter must not raise one
    // for outcomes the ports report as values.
    WorkspaceRepository::insert(&store, &workspace("team_1")).await.unwrap();
    store.grant_credits(&ws_id("team_1"), 5, "grant:a", at(0)).await.unwrap();
    store.record(&inbox_event("evt_1")).await.unwrap();
    store.enqueue(&outbox_message("k1"), at(0)).await.unwrap();

    let tx = UnitOfWork::begin(&store).await.unwrap();
    assert!(!tx.workspaces().grant_credits(&ws_id("team_1"), 5, "grant:a", at(1)).await.unwrap());
    assert!(matches!(tx.inbox().record(&inbox_event("evt_1")).await.unwrap(), Recorded::Seen { .. }));
    assert!(!tx.outbox().enqueue(&outbox_message("k1"), at(1)).await.unwrap());
    assert_eq!(
        tx.workspaces().consume_credits(&ws_id("team_1"), 50, "consume:x", at(1)).await.unwrap(),
        ConsumeOutcome::Insufficient { balance: 5 }
    );
    assert!(tx.workspaces().grant_credits(&ws_id("team_1"), 1, "grant:b", at(2)).await.unwrap());
    tx.commit().await.unwrap();
    let ws = WorkspaceRepository::get(&store, &ws_id("team_1")).await.unwrap().unwrap();
    assert_eq!(ws.credit_balance, 6);
});
