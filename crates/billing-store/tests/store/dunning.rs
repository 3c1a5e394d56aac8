//! Dunning cases: one per invoice, opened and closed, stepped by compare-and-set — on PostgreSQL also with
//! concurrent workers racing for the same step — and the workspace restriction they set and lift.

use billing_domain::dunning::{CaseStatus, CloseReason, NewCase};
use billing_domain::error::StoreError;
use billing_domain::ids::{InvoiceId, ProcessorId};
use billing_domain::money::{Currency, Money};
use billing_domain::ports::{DunningRepository, WorkspaceRepository};
use billing_store::Store;

use crate::helpers::{at, workspace, ws_id};

fn case(invoice: &str, opened: i64) -> NewCase {
    NewCase {
        workspace_id: ws_id("team_1"),
        processor: ProcessorId::new("sandbox"),
        invoice_id: InvoiceId::new(invoice),
        subscription_id: Some("sub_1".into()),
        amount: Money::new(4900, Currency::parse("USD").unwrap()),
        opened_at: at(opened),
        first_step_at: Some(at(opened)),
    }
}

both!(a_case_opens_once_per_invoice_and_steps_until_closed, |store: Store| async move {
    let repo: &dyn DunningRepository = &store;
    let opened = repo.open(&case("in_1", 10)).await.unwrap();
    assert_eq!((opened.status, opened.next_step, opened.next_step_at), (CaseStatus::Open, 0, Some(at(10))));
    assert_eq!(opened.amount.minor, 4900);
    assert!(matches!(repo.open(&case("in_1", 11)).await, Err(StoreError::Duplicate(_))));
    assert_eq!(repo.open_case(&ws_id("team_1")).await.unwrap(), Some(opened.clone()));
    assert_eq!(repo.case_for_invoice(&ws_id("team_1"), &InvoiceId::new("in_1")).await.unwrap(), Some(opened.clone()));

    assert!(repo.due(at(9), 10).await.unwrap().is_empty(), "not due before its first step");
    assert_eq!(repo.due(at(10), 10).await.unwrap(), vec![opened.clone()]);
    assert!(repo.advance(opened.id, 0, Some(at(100))).await.unwrap());
    assert!(!repo.advance(opened.id, 0, Some(at(100))).await.unwrap(), "step 0 ran already");
    assert!(repo.due(at(99), 10).await.unwrap().is_empty());
    assert!(repo.reschedule(opened.id, 1, at(50)).await.unwrap());
    assert!(!repo.reschedule(opened.id, 0, at(50)).await.unwrap(), "not at step 0 any more");
    let stepped = repo.get_case(opened.id).await.unwrap().unwrap();
    assert_eq!((stepped.next_step, stepped.next_step_at), (1, Some(at(50))));

    assert!(repo.close(opened.id, CloseReason::Paid, at(60)).await.unwrap());
    assert!(!repo.close(opened.id, CloseReason::Canceled, at(61)).await.unwrap(), "closed once");
    assert!(!repo.advance(opened.id, 1, None).await.unwrap(), "a closed case does not step");
    let closed = repo.get_case(opened.id).await.unwrap().unwrap();
    assert_eq!(
        (closed.status, closed.closed_reason, closed.closed_at),
        (CaseStatus::Closed, Some(CloseReason::Paid), Some(at(60)))
    );
    assert_eq!(closed.next_step_at, None);
    assert!(repo.due(at(1_000), 10).await.unwrap().is_empty());
    assert_eq!(repo.open_case(&ws_id("team_1")).await.unwrap(), None);
    assert_eq!(repo.latest_case(&ws_id("team_1")).await.unwrap().map(|c| c.id), Some(opened.id));
});

both!(a_paid_invoice_leaves_a_closed_marker_that_keeps_its_late_failure_out, |store: Store| async move {
    let repo: &dyn DunningRepository = &store;
    repo.insert_closed(&case("in_9", 5), CloseReason::Paid).await.unwrap();
    repo.insert_closed(&case("in_9", 6), CloseReason::Paid).await.unwrap();
    let marker = repo.case_for_invoice(&ws_id("team_1"), &InvoiceId::new("in_9")).await.unwrap().unwrap();
    assert_eq!((marker.status, marker.closed_reason), (CaseStatus::Closed, Some(CloseReason::Paid)));
    assert!(matches!(repo.open(&case("in_9", 7)).await, Err(StoreError::Duplicate(_))));
    assert!(repo.due(at(1_000), 10).await.unwrap().is_empty());
});

both!(concurrent_workers_run_a_step_exactly_once, |store: Store| async move {
    let opened = store.open(&case("in_1", 0)).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.advance(opened.id, 0, Some(at(3))).await.unwrap() })
        })
        .collect();
    let won = futures::future::join_all(tasks).await.into_iter().filter(|won| *won.as_ref().unwrap()).count();
    assert_eq!(won, 1, "one worker ran step 0");
    assert_eq!(store.get_case(opened.id).await.unwrap().unwrap().next_step, 1);
});

both!(a_restriction_is_set_and_lifted_with_its_reason, |store: Store| async move {
    let repo: &dyn WorkspaceRepository = &store;
    repo.insert(&workspace("team_1")).await.unwrap();
    repo.set_restricted(&ws_id("team_1"), true, Some("dunning".into()), at(5)).await.unwrap();
    let restricted = repo.get(&ws_id("team_1")).await.unwrap().unwrap();
    assert_eq!((restricted.restricted, restricted.restricted_reason.as_deref()), (true, Some("dunning")));
    repo.set_restricted(&ws_id("team_1"), false, None, at(6)).await.unwrap();
    let lifted = repo.get(&ws_id("team_1")).await.unwrap().unwrap();
    assert_eq!((lifted.restricted, lifted.restricted_reason, lifted.updated_at), (false, None, at(6)));
    assert!(matches!(repo.set_restricted(&ws_id("ghost"), true, None, at(7)).await, Err(StoreError::Other(_))));
});
