//! Payments: observations merge into one row in any order, a refund reserves within what was paid — also when
//! many race for the last of it — and a refused refund gives its reservation back, never below what the processor
//! reported.

use std::sync::Arc;

use billing_domain::ids::{CustomerId, PaymentId, PlanId, ProcessorId, RefundId};
use billing_domain::money::{Currency, Money};
use billing_domain::payment::{PaymentObservation, PaymentStatus, RefundReason, RefundRecord, RefundStatus};
use billing_domain::ports::{PaymentRepository, RefundReservation, RefundSettlement, UnitOfWork};
use billing_store::Store;

use crate::helpers::{at, ws_id};

fn observed(id: &str, status: PaymentStatus, refunded: Option<i64>) -> PaymentObservation {
    PaymentObservation {
        id: PaymentId::new(id),
        processor: ProcessorId::new("sandbox"),
        workspace_id: ws_id("team_1"),
        customer_id: CustomerId::new("cus_1"),
        amount: Money::new(1000, Currency::parse("USD").unwrap()),
        status,
        refunded,
        plan_id: None,
        description: None,
    }
}

fn refund(id: &str, payment: &str, minor: i64) -> RefundRecord {
    RefundRecord {
        id: RefundId::new(id),
        payment_id: PaymentId::new(payment),
        amount: Money::new(minor, Currency::parse("USD").unwrap()),
        status: RefundStatus::Pending,
        reason: Some(RefundReason::RequestedByCustomer),
        processor_refund_id: None,
        request_key: None,
        created_at: at(5),
    }
}

both!(observations_merge_into_one_row_and_round_trip, |store: Store| async move {
    let payments: &dyn PaymentRepository = &store;
    let first = PaymentObservation {
        plan_id: Some(PlanId::new("credits10")),
        description: Some("10 credits".into()),
        ..observed("pi_1", PaymentStatus::Pending, None)
    };
    payments.observe(&first, at(1)).await.unwrap();
    payments.observe(&observed("pi_1", PaymentStatus::Succeeded, None), at(2)).await.unwrap();
    // An older event arriving late changes nothing.
    payments.observe(&observed("pi_1", PaymentStatus::Pending, None), at(3)).await.unwrap();
    let stored = payments.get(&PaymentId::new("pi_1")).await.unwrap().unwrap();
    assert_eq!(stored.status, PaymentStatus::Succeeded);
    assert_eq!(
        (stored.plan_id.as_ref().map(PlanId::as_str), stored.description.as_deref()),
        (Some("credits10"), Some("10 credits"))
    );
    assert_eq!((stored.created_at, stored.updated_at), (at(1), at(2)), "the replay wrote nothing");
    let again = payments.observe(&observed("pi_1", PaymentStatus::Succeeded, Some(400)), at(4)).await.unwrap();
    assert_eq!((again.refunded, again.processor_refunded, again.refundable()), (400, 400, 600));
    assert!(payments.get(&PaymentId::new("pi_none")).await.unwrap().is_none());
});

both!(a_webhook_observes_inside_its_transaction, |store: Store| async move {
    let tx = store.begin().await.unwrap();
    tx.payments().observe(&observed("pi_tx", PaymentStatus::Succeeded, None), at(1)).await.unwrap();
    drop(tx);
    assert!(store.get(&PaymentId::new("pi_tx")).await.unwrap().is_none(), "rolled back with its transaction");
    let tx = store.begin().await.unwrap();
    tx.payments().observe(&observed("pi_tx", PaymentStatus::Succeeded, None), at(1)).await.unwrap();
    tx.commit().await.unwrap();
    assert!(store.get(&PaymentId::new("pi_tx")).await.unwrap().is_some());
});

both!(refunds_reserve_within_what_was_paid_and_failures_give_back, |store: Store| async move {
    let payments: &dyn PaymentRepository = &store;
    payments.observe(&observed("pi_open", PaymentStatus::Pending, None), at(1)).await.unwrap();
    let refused = payments.reserve_refund(&refund("rf_0", "pi_open", 100), at(2)).await.unwrap();
    assert_eq!(refused, RefundReservation::NotRefundable(PaymentStatus::Pending));
    assert_eq!(
        payments.reserve_refund(&refund("rf_x", "pi_gone", 1), at(2)).await.unwrap(),
        RefundReservation::NotFound
    );

    payments.observe(&observed("pi_2", PaymentStatus::Succeeded, None), at(1)).await.unwrap();
    let RefundReservation::Reserved(after) =
        payments.reserve_refund(&refund("rf_1", "pi_2", 600), at(2)).await.unwrap()
    else {
        panic!("600 of 1000 fits")
    };
    assert_eq!(after.refundable(), 400);
    let over = payments.reserve_refund(&refund("rf_2", "pi_2", 401), at(3)).await.unwrap();
    assert_eq!(over, RefundReservation::Exceeds { refundable: 400 });
    let other_currency =
        RefundRecord { amount: Money::new(1, Currency::parse("EUR").unwrap()), ..refund("rf_eur", "pi_2", 1) };
    assert!(matches!(
        payments.reserve_refund(&other_currency, at(3)).await.unwrap(),
        RefundReservation::Exceeds { .. }
    ));

    let done = RefundSettlement { status: RefundStatus::Succeeded, processor_refund_id: Some("re_1".into()) };
    assert_eq!(payments.settle_refund(&RefundId::new("rf_1"), &done, at(4)).await.unwrap().refunded, 600);
    // The processor reports 600 refunded; a second reservation is then refused by the processor.
    payments.observe(&observed("pi_2", PaymentStatus::Succeeded, Some(600)), at(5)).await.unwrap();
    assert!(matches!(
        payments.reserve_refund(&refund("rf_3", "pi_2", 300), at(6)).await.unwrap(),
        RefundReservation::Reserved(_)
    ));
    let failed = RefundSettlement { status: RefundStatus::Failed, processor_refund_id: None };
    let back = payments.settle_refund(&RefundId::new("rf_3"), &failed, at(7)).await.unwrap();
    assert_eq!((back.refunded, back.refundable()), (600, 400), "given back to what the processor reported");
    // Settling twice changes nothing more.
    let twice = payments.settle_refund(&RefundId::new("rf_3"), &failed, at(8)).await.unwrap();
    assert_eq!(twice.refunded, 600);

    // rf_1 and rf_3 are settled; a new one is pending, and listed once it is older than the cutoff.
    assert!(matches!(
        payments.reserve_refund(&refund("rf_4", "pi_2", 100), at(8)).await.unwrap(),
        RefundReservation::Reserved(_)
    ));
    assert!(payments.pending_refunds(at(5), 10).await.unwrap().is_empty(), "asked for at 5, not before");
    let pending: Vec<String> =
        payments.pending_refunds(at(6), 10).await.unwrap().into_iter().map(|r| r.id.to_string()).collect();
    assert_eq!(pending, ["rf_4"]);
    let refunds = payments.refunds_of(&PaymentId::new("pi_2")).await.unwrap();
    let seen: Vec<(&str, RefundStatus, Option<&str>)> =
        refunds.iter().map(|r| (r.id.as_str(), r.status, r.processor_refund_id.as_deref())).collect();
    assert_eq!(
        seen,
        [
            ("rf_1", RefundStatus::Succeeded, Some("re_1")),
            ("rf_3", RefundStatus::Failed, None),
            ("rf_4", RefundStatus::Pending, None)
        ]
    );
    assert_eq!(refunds[0].reason, Some(RefundReason::RequestedByCustomer));
});

both!(a_refund_retried_with_its_key_is_the_same_refund, |store: Store| async move {
    let payments: &dyn PaymentRepository = &store;
    payments.observe(&observed("pi_k", PaymentStatus::Succeeded, None), at(1)).await.unwrap();
    let keyed = |id: &str| RefundRecord { request_key: Some("key:backend:r-1".into()), ..refund(id, "pi_k", 300) };
    assert!(matches!(payments.reserve_refund(&keyed("rf_a"), at(2)).await.unwrap(), RefundReservation::Reserved(_)));
    let RefundReservation::Existing(earlier) = payments.reserve_refund(&keyed("rf_b"), at(3)).await.unwrap() else {
        panic!("the retry finds the first")
    };
    assert_eq!((earlier.id.as_str(), earlier.status), ("rf_a", RefundStatus::Pending));
    assert_eq!(payments.get(&PaymentId::new("pi_k")).await.unwrap().unwrap().refunded, 300, "reserved once");
    // Without a key every request is its own refund.
    assert!(matches!(
        payments.reserve_refund(&refund("rf_c", "pi_k", 300), at(4)).await.unwrap(),
        RefundReservation::Reserved(_)
    ));
    assert!(matches!(
        payments.reserve_refund(&refund("rf_d", "pi_k", 300), at(4)).await.unwrap(),
        RefundReservation::Reserved(_)
    ));
});

both!(payments_list_newest_first_by_pages, |store: Store| async move {
    let payments: &dyn PaymentRepository = &store;
    for (i, id) in ["pi_a", "pi_b", "pi_c"].into_iter().enumerate() {
        payments.observe(&observed(id, PaymentStatus::Succeeded, None), at(i as i64)).await.unwrap();
    }
    let other = PaymentObservation { workspace_id: ws_id("team_2"), ..observed("pi_z", PaymentStatus::Pending, None) };
    payments.observe(&other, at(9)).await.unwrap();
    let ids =
        |page: Vec<billing_domain::payment::Payment>| page.into_iter().map(|p| p.id.to_string()).collect::<Vec<_>>();
    assert_eq!(ids(payments.list_for_workspace(&ws_id("team_1"), 2, None).await.unwrap()), ["pi_c", "pi_b"]);
    let rest = payments.list_for_workspace(&ws_id("team_1"), 2, Some(PaymentId::new("pi_b"))).await.unwrap();
    assert_eq!(ids(rest), ["pi_a"]);
});

both!(concurrent_refunds_never_exceed_the_payment, |store: Store| async move {
    store.observe(&observed("pi_race", PaymentStatus::Succeeded, None), at(1)).await.unwrap();
    let store = Arc::new(store);
    // Twelve refunds of 300 race for 1000: exactly three fit.
    let racers = (0..12).map(|i| {
        let store = store.clone();
        tokio::spawn(
            async move { store.reserve_refund(&refund(&format!("rf_{i}"), "pi_race", 300), at(2)).await.unwrap() },
        )
    });
    let outcomes = futures::future::join_all(racers).await;
    let reserved = outcomes.iter().filter(|o| matches!(o.as_ref().unwrap(), RefundReservation::Reserved(_))).count();
    assert_eq!(reserved, 3, "{outcomes:?}");
    let payment = store.get(&PaymentId::new("pi_race")).await.unwrap().unwrap();
    assert_eq!((payment.refunded, payment.refundable()), (900, 100));
    assert_eq!(store.refunds_of(&PaymentId::new("pi_race")).await.unwrap().len(), 3, "one row per reservation");
});
