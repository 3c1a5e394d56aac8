use proptest::prelude::*;

use super::*;
use crate::money::Currency;
use crate::testing::t0;

fn observation(status: PaymentStatus, refunded: Option<i64>) -> PaymentObservation {
    PaymentObservation {
        id: PaymentId::new("pi_1"),
        processor: ProcessorId::new("stripe"),
        workspace_id: WorkspaceId::parse("ws_1").unwrap(),
        customer_id: CustomerId::new("cus_1"),
        amount: Money::new(1000, Currency::parse("USD").unwrap()),
        status,
        refunded,
        plan_id: None,
        description: None,
    }
}

fn apply_all(observations: &[PaymentObservation]) -> Payment {
    let (first, rest) = observations.split_first().unwrap();
    let mut payment = Payment::from_observation(first, t0());
    for next in rest {
        payment = payment.merged(next, t0());
    }
    payment
}

fn arbitrary_observation() -> impl Strategy<Value = PaymentObservation> {
    let status = prop_oneof![Just(PaymentStatus::Pending), Just(PaymentStatus::Failed), Just(PaymentStatus::Succeeded)];
    (status, proptest::option::of(0i64..=1000)).prop_map(|(status, refunded)| observation(status, refunded))
}

/// Every order of `items` (Heap's algorithm); the lists here have at most five elements.
fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    fn heap<T: Clone>(k: usize, items: &mut Vec<T>, out: &mut Vec<Vec<T>>) {
        if k <= 1 {
            out.push(items.clone());
            return;
        }
        for i in 0..k {
            heap(k - 1, items, out);
            let j = if k.is_multiple_of(2) { i } else { 0 };
            items.swap(j, k - 1);
        }
    }
    let mut out = Vec::new();
    heap(items.len(), &mut items.to_vec(), &mut out);
    out
}

proptest! {
    /// Convergence: whatever order the processor's events and Tollgate's own observations arrive in — every
    /// order of up to five, duplicates included — the record ends the same. The plan and description are set by
    /// one observation only (Tollgate's own, at creation), as in production.
    #[test]
    fn observations_converge_in_any_order(
        mut observations in proptest::collection::vec(arbitrary_observation(), 1..6),
        with_plan in any::<bool>(),
    ) {
        if with_plan {
            observations[0].plan_id = Some(crate::ids::PlanId::new("credits10"));
            observations[0].description = Some("Ten credits".into());
        }
        let expected = apply_all(&observations);
        for order in permutations(&observations) {
            prop_assert_eq!(&apply_all(&order), &expected);
        }
    }

    /// A reservation given back never drops the refunded total below what the processor reported.
    #[test]
    fn a_release_keeps_what_the_processor_reported(reserved in 0i64..=1000, reported in 0i64..=1000, back in 0i64..=1000) {
        let mut payment = apply_all(&[observation(PaymentStatus::Succeeded, Some(reported))]);
        payment.refunded = payment.refunded.max(reserved);
        let released = payment.released(back, t0());
        prop_assert!(released.refunded >= reported);
        prop_assert!(released.refunded <= payment.refunded);
    }
}

#[test]
fn a_status_never_moves_back() {
    let paid = apply_all(&[observation(PaymentStatus::Succeeded, None), observation(PaymentStatus::Pending, None)]);
    assert_eq!(paid.status, PaymentStatus::Succeeded);
    let retried = apply_all(&[observation(PaymentStatus::Failed, None), observation(PaymentStatus::Succeeded, None)]);
    assert_eq!(retried.status, PaymentStatus::Succeeded);
    let failed = apply_all(&[observation(PaymentStatus::Pending, None), observation(PaymentStatus::Failed, None)]);
    assert_eq!(failed.status, PaymentStatus::Failed);
}

#[test]
fn only_a_paid_payment_is_refundable_and_only_what_is_left() {
    let pending = apply_all(&[observation(PaymentStatus::Pending, None)]);
    assert_eq!(pending.refundable(), 0);
    let paid = apply_all(&[observation(PaymentStatus::Succeeded, Some(300))]);
    assert_eq!((paid.refunded, paid.refundable()), (300, 700));
    let older_total = paid.merged(&observation(PaymentStatus::Succeeded, Some(100)), t0());
    assert_eq!(older_total.refundable(), 700, "an older, smaller total changes nothing");
}

#[test]
fn amounts_are_positive_and_bounded() {
    assert_eq!(validate_amount("amount", 0).unwrap_err().field, "amount");
    assert_eq!(validate_amount("amount", -5).unwrap_err().field, "amount");
    assert!(validate_amount("amount", MAX_PAYMENT_MINOR + 1).is_err());
    assert!(validate_amount("amount", 1).is_ok());
}

#[test]
fn words_round_trip() {
    for status in [PaymentStatus::Pending, PaymentStatus::Succeeded, PaymentStatus::Failed] {
        assert_eq!(PaymentStatus::parse(status.as_str()), Some(status));
    }
    for status in [RefundStatus::Pending, RefundStatus::Succeeded, RefundStatus::Failed] {
        assert_eq!(RefundStatus::parse(status.as_str()), Some(status));
    }
    assert_eq!(RefundReason::parse("requested_by_customer"), Some(RefundReason::RequestedByCustomer));
    assert_eq!(RefundStatus::from_processor("requires_action"), RefundStatus::Pending);
}

#[test]
fn the_convergence_check_tries_every_order() {
    let orders = permutations(&[1, 2, 3, 4]);
    let distinct: std::collections::BTreeSet<Vec<i32>> = orders.iter().cloned().collect();
    assert_eq!((orders.len(), distinct.len()), (24, 24));
}
