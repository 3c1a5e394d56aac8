use billing_domain::events::{CheckoutMode, EventPayload, SubscriptionSnapshot};
use billing_domain::ids::{InvoiceId, ProcessorId};
use billing_domain::money::{Currency, Money};
use billing_domain::ports::WebhookError;
use billing_domain::subscription::SubscriptionStatus;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::parse_event;

const SUBSCRIPTION: &str = include_str!("../../testdata/stripe/subscription.json");
const INVOICE: &str = include_str!("../../testdata/stripe/invoice.json");
const CHECKOUT: &str = include_str!("../../testdata/stripe/checkout_session.json");

fn fixture(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap()
}

/// `object` wrapped in an event envelope the way Stripe delivers it.
fn wrap(event_type: &str, object: Value) -> Vec<u8> {
    json!({
        "id": "evt_test_1",
        "object": "event",
        "api_version": "2025-06-30.basil",
        "created": 1_721_954_100,
        "data": {"object": object, "previous_attributes": {}},
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": event_type,
    })
    .to_string()
    .into_bytes()
}

fn parse(body: &[u8]) -> Result<EventPayload, WebhookError> {
    parse_event(&ProcessorId::new("stripe"), body).map(|event| event.payload)
}

fn at(unix: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(unix, 0)
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("usd").unwrap())
}

fn malformed_reason(result: Result<EventPayload, WebhookError>) -> String {
    match result {
        Err(WebhookError::MalformedPayload(reason)) => reason,
        other => panic!("expected MalformedPayload, got {other:?}"),
    }
}

#[test]
fn reads_the_envelope() {
    let event = parse_event(&ProcessorId::new("stripe"), &wrap("plan.created", json!({}))).unwrap();
    assert_eq!(event.id.as_str(), "evt_test_1");
    assert_eq!(event.processor.as_str(), "stripe");
    assert_eq!(event.event_type, "plan.created");
    assert_eq!(Some(event.occurred_at), at(1_721_954_100));
    assert_eq!(event.payload, EventPayload::Ignored);
}

#[test]
fn reads_the_fixture_subscription_with_its_period_on_the_item() {
    let expected = SubscriptionSnapshot {
        subscription_id: "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw".into(),
        customer_id: "cus_QXg1o8vcGmoR32".into(),
        price_id: "price_1PgafmB7WZ01zgkW6dKueIc5".into(),
        status: SubscriptionStatus::Active,
        quantity: 1,
        cancel_at_period_end: true,
        current_period_start: at(1_896_570_518),
        current_period_end: at(976_287_773),
        trial_end: at(1_234_567_890),
    };
    for event_type in ["customer.subscription.created", "customer.subscription.updated"] {
        let payload = parse(&wrap(event_type, fixture(SUBSCRIPTION))).unwrap();
        assert_eq!(payload, EventPayload::SubscriptionChanged(expected.clone()));
    }
    let deleted = parse(&wrap("customer.subscription.deleted", fixture(SUBSCRIPTION))).unwrap();
    let canceled = SubscriptionSnapshot { status: SubscriptionStatus::Canceled, ..expected };
    assert_eq!(deleted, EventPayload::SubscriptionChanged(canceled));
}

#[test]
fn reads_the_fixture_subscription_as_a_trial_ending() {
    let payload = parse(&wrap("customer.subscription.trial_will_end", fixture(SUBSCRIPTION))).unwrap();
    assert_eq!(
        payload,
        EventPayload::TrialWillEnd {
            customer_id: "cus_QXg1o8vcGmoR32".into(),
            subscription_id: "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw".into(),
            trial_end: at(1_234_567_890),
        }
    );
}

#[test]
fn reads_an_old_subscription_with_its_period_and_plan_at_the_top() {
    // The shape localstripe and pre-2025 API versions send: period on the subscription, a legacy `plan`, no items.
    let old = json!({
        "id": "sub_old", "object": "subscription", "customer": {"id": "cus_old", "object": "customer"},
        "status": "past_due", "cancel_at_period_end": false, "quantity": 3,
        "current_period_start": 1_700_000_000, "current_period_end": 1_702_592_000,
        "plan": {"id": "price_old", "object": "plan"}, "trial_end": null,
    });
    let payload = parse(&wrap("customer.subscription.updated", old)).unwrap();
    assert_eq!(
        payload,
        EventPayload::SubscriptionChanged(SubscriptionSnapshot {
            subscription_id: "sub_old".into(),
            customer_id: "cus_old".into(),
            price_id: "price_old".into(),
            status: SubscriptionStatus::PastDue,
            quantity: 3,
            cancel_at_period_end: false,
            current_period_start: at(1_700_000_000),
            current_period_end: at(1_702_592_000),
            trial_end: None,
        })
    );
}

#[test]
fn reads_the_fixture_invoice_in_the_new_shape() {
    let paid = parse(&wrap("invoice.paid", fixture(INVOICE))).unwrap();
    let expected = EventPayload::InvoicePaid {
        invoice_id: "in_1Pgc6tB7WZ01zgkWu9fdqL6I".into(),
        customer_id: "cus_QXg1o8vcGmoR32".into(),
        // Found under `parent.subscription_details`, where the current API version moved it.
        subscription_id: Some("subscription".into()),
        price_id: None,
        amount: usd(0),
        period_start: at(1_721_954_054),
        period_end: at(1_721_954_054),
        invoice_url: None,
    };
    assert_eq!(paid, expected);
    let succeeded = parse(&wrap("invoice.payment_succeeded", fixture(INVOICE))).unwrap();
    assert_eq!(succeeded, expected);
    let failed = parse(&wrap("invoice.payment_failed", fixture(INVOICE))).unwrap();
    assert_eq!(
        failed,
        EventPayload::InvoicePaymentFailed {
            invoice_id: "in_1Pgc6tB7WZ01zgkWu9fdqL6I".into(),
            customer_id: "cus_QXg1o8vcGmoR32".into(),
            subscription_id: Some("subscription".into()),
            amount: usd(1000),
            attempt_count: 0,
        }
    );
}

#[test]
fn links_the_receipt_to_a_hosted_invoice_page_only_when_it_is_a_web_address() {
    let invoice = |url: serde_json::Value| {
        let body = json!({
            "id": "in_1", "customer": "cus_1", "currency": "usd", "amount_paid": 500, "hosted_invoice_url": url,
        });
        match parse(&wrap("invoice.paid", body)).unwrap() {
            EventPayload::InvoicePaid { invoice_url, .. } => invoice_url,
            other => panic!("not a paid invoice: {other:?}"),
        }
    };
    assert_eq!(invoice(json!("https://invoice.example/i/1")), Some("https://invoice.example/i/1".to_owned()));
    assert_eq!(invoice(json!("javascript:alert(1)")), None);
    assert_eq!(invoice(serde_json::Value::Null), None);
}

#[test]
fn takes_the_price_from_the_periods_own_line_not_a_proration() {
    let invoice = json!({
        "id": "in_1", "customer": "cus_1", "currency": "eur", "amount_paid": 500, "amount_due": 500,
        "lines": {"data": [
            {"pricing": {"price_details": {"price": "price_old"}}, "period": {"start": 1, "end": 2},
             "parent": {"subscription_item_details": {"subscription": "sub_1", "proration": true}}},
            {"pricing": {"price_details": {"price": "price_new"}}, "period": {"start": 3, "end": 4},
             "parent": {"subscription_item_details": {"subscription": "sub_1", "proration": false}}}
        ]}
    });
    let EventPayload::InvoicePaid { subscription_id, price_id, amount, period_start, period_end, .. } =
        parse(&wrap("invoice.paid", invoice)).unwrap()
    else {
        panic!("expected InvoicePaid");
    };
    assert_eq!(subscription_id, Some("sub_1".into()));
    assert_eq!(price_id, Some("price_new".into()));
    assert_eq!(amount, Money::new(500, Currency::parse("EUR").unwrap()));
    assert_eq!((period_start, period_end), (at(3), at(4)));
}

#[test]
fn reads_the_fixture_checkout_session() {
    // The fixture is an unpaid one-time payment: nothing is granted until `async_payment_succeeded`.
    let mut session = fixture(CHECKOUT);
    assert_eq!(parse(&wrap("checkout.session.completed", session.clone())).unwrap(), EventPayload::Ignored);
    session["client_reference_id"] = json!("ws_42");
    session["customer"] = json!("cus_QXg1o8vcGmoR32");
    session["metadata"] = json!({"plan_id": "credits10"});
    let expected = EventPayload::CheckoutCompleted {
        session_id: "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY".into(),
        workspace_id: billing_domain::ids::WorkspaceId::parse("ws_42").unwrap(),
        customer_id: "cus_QXg1o8vcGmoR32".into(),
        mode: CheckoutMode::Payment,
        subscription_id: None,
        plan_id: Some("credits10".into()),
    };
    let succeeded = wrap("checkout.session.async_payment_succeeded", session.clone());
    assert_eq!(parse(&succeeded).unwrap(), expected);
    session["payment_status"] = json!("paid");
    assert_eq!(parse(&wrap("checkout.session.completed", session.clone())).unwrap(), expected);
    let failed = parse(&wrap("checkout.session.async_payment_failed", session)).unwrap();
    assert_eq!(
        failed,
        EventPayload::CheckoutFailed {
            session_id: "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY".into(),
            workspace_id: billing_domain::ids::WorkspaceId::parse("ws_42").unwrap(),
            plan_id: Some("credits10".into()),
            reason: "payment_failed".to_owned(),
        }
    );
}

#[test]
fn finds_the_workspace_in_metadata_when_there_is_no_client_reference() {
    let session = json!({
        "id": "cs_1", "mode": "subscription", "payment_status": "paid", "customer": "cus_1",
        "subscription": {"id": "sub_1", "object": "subscription"},
        "client_reference_id": null, "metadata": {"workspace_id": "ws_9", "plan_id": "pro", "other": "x"}
    });
    let EventPayload::CheckoutCompleted { workspace_id, subscription_id, .. } =
        parse(&wrap("checkout.session.completed", session)).unwrap()
    else {
        panic!("expected CheckoutCompleted");
    };
    assert_eq!(workspace_id.as_str(), "ws_9");
    assert_eq!(subscription_id, Some("sub_1".into()));
}

#[test]
fn reports_what_a_handled_event_is_missing() {
    let cases = [
        (
            "checkout.session.completed",
            fixture(CHECKOUT).tap(|s| s["payment_status"] = json!("paid")),
            "checkout.session.completed: missing `client_reference_id`",
        ),
        (
            "checkout.session.completed",
            json!({"id": "cs_1", "mode": "subscription", "client_reference_id": "ws_1"}),
            "checkout.session.completed: missing `customer`",
        ),
        (
            "checkout.session.completed",
            json!({"id": "cs_1", "mode": "subscription", "customer": "c", "client_reference_id": "a/b"}),
            "checkout.session.completed: client_reference_id is not a valid workspace id",
        ),
        (
            "customer.subscription.updated",
            fixture(SUBSCRIPTION).tap(|s| s["status"] = json!("sleeping")),
            "customer.subscription.updated: unknown subscription status",
        ),
        (
            "customer.subscription.updated",
            fixture(SUBSCRIPTION).tap(|s| s["items"] = json!({"data": []})),
            "customer.subscription.updated: missing `items.data[0].price`",
        ),
        ("invoice.paid", fixture(INVOICE).tap(|s| s["currency"] = json!(null)), "invoice.paid: missing `currency`"),
        ("invoice.paid", fixture(INVOICE).tap(|s| s["currency"] = json!("dollars")), "invoice.paid: invalid currency"),
        ("invoice.paid", json!("not an object"), "invoice.paid: data.object is not an object"),
    ];
    for (event_type, object, reason) in cases {
        assert_eq!(malformed_reason(parse(&wrap(event_type, object))), reason);
    }
    let no_object = br#"{"id":"evt_1","type":"invoice.paid","created":1}"#;
    assert_eq!(malformed_reason(parse(no_object)), "invoice.paid: missing `data.object`");
}

#[test]
fn ignores_unhandled_types_whatever_their_object() {
    for event_type in ["customer.created", "charge.captured", "something.new"] {
        let body = format!(r#"{{"id":"evt_1","type":"{event_type}","created":1}}"#);
        assert_eq!(parse(body.as_bytes()), Ok(EventPayload::Ignored));
    }
}

#[test]
fn refuses_garbage_without_panicking_or_echoing_it() {
    let deep = "[".repeat(100_000);
    let garbage: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"   ".to_vec(),
        b"not json".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"evt\"".to_vec(),
        b"{}".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x7b],
        deep.into_bytes(),
        br#"{"id":"evt_1","type":"invoice.paid"}"#.to_vec(),
        br#"{"id":"","type":"invoice.paid","created":1,"data":{"object":{}}}"#.to_vec(),
        br#"{"id":5,"type":"invoice.paid","created":1}"#.to_vec(),
        br#"{"id":"evt_1","type":["invoice.paid"],"created":1}"#.to_vec(),
        br#"{"id":"evt_1","type":"x","created":"yesterday-SECRETVALUE"}"#.to_vec(),
        br#"{"id":"evt_1","type":"x","created":1e400}"#.to_vec(),
        br#"{"id":"evt_1","type":"x","created":99999999999999999999999}"#.to_vec(),
        br#"{"id":"evt_1","type":"x","created":9223372036854775807}"#.to_vec(),
        br#"{"id":"evt_1","type":"x","created":-9223372036854775808}"#.to_vec(),
        br#"{"id":"evt_1","type":"x","created":1,"data":7}"#.to_vec(),
        br#"{"id":"evt_1","type":"invoice.paid","created":1,"data":{"object":{"id":"in","customer":"c","currency":"usd","amount_paid":1e30}}}"#.to_vec(),
        br#"{"id":"evt_1","type":"invoice.paid","created":1,"data":{"object":{"id":"in","customer":"c","currency":"usd","amount_paid":1,"lines":{"data":[{"period":{"end":9223372036854775807}}]}}}}"#.to_vec(),
        br#"{"id":"evt_1","type":"customer.subscription.updated","created":1,"data":{"object":{"id":"s","customer":{"name":"no id"},"status":"active"}}}"#.to_vec(),
        br#"{"id":"evt_1","type":"customer.subscription.updated","created":1,"data":{"object":{"id":"s","customer":"c","status":"active","items":{"data":"SECRETVALUE"}}}}"#.to_vec(),
    ];
    for body in garbage {
        let reason = malformed_reason(parse(&body));
        assert!(reason.len() < 120, "reason too long: {reason}");
        assert!(!reason.contains("SECRETVALUE"), "{reason}");
    }
}

#[test]
fn saturates_oversized_counts_instead_of_failing() {
    let mut subscription = fixture(SUBSCRIPTION);
    subscription["items"]["data"][0]["quantity"] = json!(u64::MAX);
    let EventPayload::SubscriptionChanged(snapshot) =
        parse(&wrap("customer.subscription.updated", subscription)).unwrap()
    else {
        panic!("expected SubscriptionChanged");
    };
    assert_eq!(snapshot.quantity, u32::MAX);
    let mut invoice = fixture(INVOICE);
    invoice["attempt_count"] = json!(u64::MAX);
    let EventPayload::InvoicePaymentFailed { attempt_count, .. } =
        parse(&wrap("invoice.payment_failed", invoice)).unwrap()
    else {
        panic!("expected InvoicePaymentFailed");
    };
    assert_eq!(attempt_count, u32::MAX);
}

#[test]
fn never_panics_on_any_truncation_or_byte_flip_of_real_payloads() {
    for (event_type, raw) in [
        ("customer.subscription.updated", SUBSCRIPTION),
        ("invoice.paid", INVOICE),
        ("checkout.session.completed", CHECKOUT),
    ] {
        let body = wrap(event_type, fixture(raw));
        for cut in 0..body.len() {
            let _ = parse(&body[..cut]);
        }
        for at in (0..body.len()).step_by(7) {
            let mut flipped = body.clone();
            flipped[at] ^= 0x20;
            let _ = parse(&flipped);
        }
    }
}

#[test]
fn reads_expanded_references() {
    let invoice = json!({
        "id": "in_9", "customer": {"id": "cus_9", "object": "customer", "email": "a@b.c"},
        "subscription": {"id": "sub_9", "object": "subscription"}, "currency": "usd", "amount_paid": 4900,
        "lines": {"data": [{"price": {"id": "price_9", "object": "price"}, "period": {"start": 10, "end": 20}}]}
    });
    let EventPayload::InvoicePaid { invoice_id, customer_id, subscription_id, price_id, .. } =
        parse(&wrap("invoice.paid", invoice)).unwrap()
    else {
        panic!("expected InvoicePaid");
    };
    assert_eq!(invoice_id, InvoiceId::new("in_9"));
    assert_eq!(customer_id.as_str(), "cus_9");
    assert_eq!(subscription_id, Some("sub_9".into()));
    assert_eq!(price_id, Some("price_9".into()));
}

/// Lets a test tweak a fixture inline.
trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}

impl Tap for Value {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

mod payment_activity {
    use billing_domain::events::PaymentActivityKind;
    use billing_domain::ids::{CustomerId, PaymentId, PlanId};

    use super::*;

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::parse("usd").unwrap())
    }

    #[test]
    fn an_upcoming_invoice_is_named_by_its_subscription_and_charge_time() {
        let mut invoice = fixture(INVOICE);
        invoice.as_object_mut().unwrap().remove("id");
        invoice["next_payment_attempt"] = json!(1_767_225_600);
        invoice["amount_due"] = json!(2900);
        let EventPayload::PaymentActivity { activity, object_id, amount, subscription_id, .. } =
            parse(&wrap("invoice.upcoming", invoice.clone())).unwrap()
        else {
            panic!("not a payment activity")
        };
        assert_eq!(activity, PaymentActivityKind::InvoiceUpcoming);
        let subscription = subscription_id.expect("the fixture invoice belongs to a subscription");
        assert_eq!(object_id, format!("upcoming:{subscription}:1767225600"));
        assert_eq!(amount.minor, 2900);
        invoice.as_object_mut().unwrap().remove("customer");
        assert!(matches!(parse(&wrap("invoice.upcoming", invoice)), Err(WebhookError::MalformedPayload(_))));
    }

    #[test]
    fn payment_intent_outcomes_carry_the_amount_and_the_decline_code() {
        let succeeded = json!({"id": "pi_1", "object": "payment_intent", "customer": "cus_1", "amount": 1500,
            "amount_received": 1500, "currency": "eur",
            "metadata": {"workspace_id": "acme", "credits_plan_id": "credits_500"}});
        let payload = parse(&wrap("payment_intent.succeeded", succeeded)).unwrap();
        assert_eq!(
            payload,
            EventPayload::PaymentActivity {
                activity: PaymentActivityKind::PaymentSucceeded,
                customer_id: CustomerId::new("cus_1"),
                object_id: "pi_1".into(),
                amount: Money::new(1500, Currency::parse("eur").unwrap()),
                subscription_id: None,
                detail: None,
                payment_id: Some(PaymentId::new("pi_1")),
                plan_id: Some(PlanId::new("credits_500")),
                paid_for: None,
                refunded: None,
            }
        );
        // A credits checkout's own payment intent names its plan as `plan_id`: the checkout grants, not this.
        let from_checkout = json!({"id": "pi_4", "customer": "cus_1", "amount": 900, "currency": "usd",
            "metadata": {"workspace_id": "acme", "plan_id": "credits_500"}});
        let EventPayload::PaymentActivity { plan_id, paid_for, .. } =
            parse(&wrap("payment_intent.succeeded", from_checkout)).unwrap()
        else {
            panic!("not a payment activity")
        };
        assert_eq!((plan_id, paid_for), (None, Some(PlanId::new("credits_500"))));
        let failed = json!({"id": "pi_2", "customer": {"id": "cus_1"}, "amount": 700, "currency": "usd",
            "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"}});
        let EventPayload::PaymentActivity { activity, detail, amount, .. } =
            parse(&wrap("payment_intent.payment_failed", failed)).unwrap()
        else {
            panic!("not a payment activity")
        };
        assert_eq!(
            (activity, detail.as_deref(), amount),
            (PaymentActivityKind::PaymentFailed, Some("insufficient_funds"), usd(700))
        );
        let guest = json!({"id": "pi_3", "customer": null, "amount": 700, "currency": "usd"});
        assert_eq!(parse(&wrap("payment_intent.succeeded", guest)).unwrap(), EventPayload::Ignored);
    }

    #[test]
    fn a_refunded_charge_reports_its_payment_and_the_total_refunded() {
        let charge = json!({"id": "ch_1", "object": "charge", "customer": "cus_9", "amount": 2000,
            "amount_refunded": 500, "currency": "usd", "refunded": false, "payment_intent": "pi_9"});
        let EventPayload::PaymentActivity { activity, object_id, amount, customer_id, payment_id, refunded, .. } =
            parse(&wrap("charge.refunded", charge)).unwrap()
        else {
            panic!("not a payment activity")
        };
        assert_eq!(activity, PaymentActivityKind::ChargeRefunded);
        assert_eq!((object_id.as_str(), amount, customer_id), ("ch_1", usd(2000), CustomerId::new("cus_9")));
        assert_eq!((payment_id, refunded), (Some(PaymentId::new("pi_9")), Some(usd(500))));
    }
}
