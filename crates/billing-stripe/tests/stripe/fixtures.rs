//! Event parsing over Stripe's own example objects (`fixtures3.json` of the `stripe/openapi` repository, current API
//! shapes). Each object is wrapped in the event envelope Stripe delivers it in, for every event type Tollgate reads it
//! from, and every field of the translation is compared with the fixture's own values.

use std::path::PathBuf;
use std::sync::OnceLock;

use billing_domain::events::{CheckoutMode, EventPayload, ProcessorEvent, SubscriptionSnapshot};
use billing_domain::ids::{
    CheckoutSessionId, CustomerId, EventId, InvoiceId, PlanId, PriceId, SubscriptionId, WorkspaceId,
};
use billing_domain::money::{Currency, Money};
use billing_domain::ports::{WebhookError, WebhookOps};
use billing_domain::subscription::SubscriptionStatus;
use billing_stripe::StripeProcessor;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::{Map, Value, json};

use crate::support;

/// Stripe's example objects, vendored with their source and license note (tests/fixtures/stripe/README.md).
const FIXTURES: &str = "tests/fixtures/stripe/fixtures3.json";

/// A workspace id the way Tollgate's checkout writes it into `client_reference_id` and `metadata.workspace_id`.
const WORKSPACE: &str = "ws_fixture.team-01";
/// A plan id the way Tollgate's checkout writes it into `metadata.plan_id`.
const PLAN: &str = "credits-100";

/// The `resources` map of the fixture file, read once.
fn resources() -> &'static Map<String, Value> {
    static RESOURCES: OnceLock<Map<String, Value>> = OnceLock::new();
    RESOURCES.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(FIXTURES);
        let raw = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read Stripe's fixtures at {}: {e}", path.display()));
        let mut file: Value = serde_json::from_str(&raw).expect("fixtures3.json is JSON");
        match file.get_mut("resources").map(Value::take) {
            Some(Value::Object(resources)) => resources,
            _ => panic!("fixtures3.json has no `resources` map"),
        }
    })
}

/// A copy of the fixture object `name`, checked to be the object it claims to be.
fn resource(name: &str) -> Value {
    let object = resources().get(name).unwrap_or_else(|| panic!("fixtures3.json has no `{name}`")).clone();
    let kind = object.get("object").and_then(Value::as_str);
    assert!(kind == Some(name) || name.starts_with("deleted_"), "fixture `{name}` is a {kind:?}");
    object
}

/// The string at `pointer` in `object`; the fixture must have it.
fn text(object: &Value, pointer: &str) -> String {
    match object.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        other => panic!("fixture has no string at {pointer}: {other:?}"),
    }
}

/// The integer at `pointer` in `object`; the fixture must have it.
fn int(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or_else(|| panic!("fixture has no integer at {pointer}"))
}

/// The unix timestamp at `pointer` in `object` as a time; the fixture must have it.
fn time(object: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    let unix = int(object, pointer);
    Some(DateTime::from_timestamp(unix, 0).unwrap_or_else(|| panic!("{pointer} = {unix} is out of range")))
}

/// Whether `object` has no value (or `null`) at `pointer`.
fn absent(object: &Value, pointer: &str) -> bool {
    object.pointer(pointer).is_none_or(Value::is_null)
}

/// The id a reference at `pointer` names, whether Stripe sent the id or the expanded object; `None` when absent.
fn reference(object: &Value, pointer: &str) -> Option<String> {
    match object.pointer(pointer)? {
        Value::String(id) => Some(id.clone()),
        Value::Object(expanded) => expanded.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// The event id of the envelope wrapping an object for `event_type`.
fn event_id(event_type: &str) -> String {
    format!("evt_fixture_{}", event_type.replace('.', "_"))
}

/// When an event about `object` was created: when the object was, or for objects without `created` (invoice items)
/// when the fixture's own event was.
fn created_of(object: &Value) -> i64 {
    object.get("created").and_then(Value::as_i64).unwrap_or_else(|| int(&resource("event"), "/created"))
}

/// `object` in the envelope Stripe delivers it in.
fn envelope(event_type: &str, object: &Value) -> Vec<u8> {
    json!({
        "id": event_id(event_type),
        "object": "event",
        "api_version": billing_stripe::api::api_version(),
        "created": created_of(object),
        "data": {"object": object, "previous_attributes": {}},
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": event_type,
    })
    .to_string()
    .into_bytes()
}

/// Parses `body` as the Stripe adapter does, checking the envelope fields against `object`.
fn parse(event_type: &str, object: &Value) -> Result<EventPayload, WebhookError> {
    let event = stripe_wire::parse_event(&StripeProcessor::processor_id(), &envelope(event_type, object))?;
    assert_envelope(&event, event_type, &event_id(event_type), created_of(object));
    Ok(event.payload)
}

fn assert_envelope(event: &ProcessorEvent, event_type: &str, id: &str, created: i64) {
    assert_eq!(event.id, EventId::new(id));
    assert_eq!(event.processor, StripeProcessor::processor_id());
    assert_eq!(event.event_type, event_type);
    assert_eq!(Some(event.occurred_at), DateTime::from_timestamp(created, 0));
}

/// The reason of a [`WebhookError::MalformedPayload`], failing on anything else.
fn malformed_reason(result: Result<EventPayload, WebhookError>) -> String {
    match result {
        Err(WebhookError::MalformedPayload(reason)) => reason,
        other => panic!("expected MalformedPayload, got {other:?}"),
    }
}

/// The fixture checkout session with what Tollgate's checkout sets on every session it creates: the workspace in
/// `client_reference_id` and `metadata.workspace_id`, the plan in `metadata.plan_id`.
fn tollgate_session() -> Value {
    let mut session = resource("checkout.session");
    session["client_reference_id"] = json!(WORKSPACE);
    session["metadata"]["workspace_id"] = json!(WORKSPACE);
    session["metadata"]["plan_id"] = json!(PLAN);
    session
}

fn workspace() -> WorkspaceId {
    WorkspaceId::parse(WORKSPACE).expect("a valid workspace id")
}

/// The snapshot the fixture subscription describes.
fn expected_snapshot(subscription: &Value, status: SubscriptionStatus) -> SubscriptionSnapshot {
    // Current API versions keep the period on the item only; the item's values must be read.
    assert!(absent(subscription, "/current_period_start") && absent(subscription, "/current_period_end"));
    SubscriptionSnapshot {
        subscription_id: SubscriptionId::new(text(subscription, "/id")),
        customer_id: CustomerId::new(text(subscription, "/customer")),
        price_id: PriceId::new(text(subscription, "/items/data/0/price/id")),
        status,
        quantity: u32::try_from(int(subscription, "/items/data/0/quantity")).unwrap(),
        cancel_at_period_end: subscription["cancel_at_period_end"].as_bool().expect("a boolean"),
        current_period_start: time(subscription, "/items/data/0/current_period_start"),
        current_period_end: time(subscription, "/items/data/0/current_period_end"),
        trial_end: time(subscription, "/trial_end"),
    }
}

#[test]
fn the_fixture_file_is_found_and_holds_the_objects_tollgate_reads() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(FIXTURES);
    let canonical = path.canonicalize().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        canonical.ends_with("crates/billing-stripe/tests/fixtures/stripe/fixtures3.json"),
        "{}",
        canonical.display()
    );
    for name in ["checkout.session", "subscription", "invoice", "event", "customer", "charge"] {
        resource(name);
    }
}

#[test]
fn subscription_events_read_the_fixture_subscription() {
    let subscription = resource("subscription");
    let status = SubscriptionStatus::parse(&text(&subscription, "/status")).expect("a known status");
    // The item names both an expanded price and a legacy plan; the price is the one the catalog maps.
    assert_ne!(text(&subscription, "/items/data/0/price/id"), text(&subscription, "/items/data/0/plan/id"));
    for event_type in ["customer.subscription.created", "customer.subscription.updated"] {
        let payload = parse(event_type, &subscription).unwrap();
        assert_eq!(
            payload,
            EventPayload::SubscriptionChanged(expected_snapshot(&subscription, status)),
            "{event_type}"
        );
    }
}

#[test]
fn subscription_deleted_reads_the_fixture_subscription_as_canceled() {
    let subscription = resource("subscription");
    assert_ne!(text(&subscription, "/status"), SubscriptionStatus::Canceled.as_str());
    let payload = parse("customer.subscription.deleted", &subscription).unwrap();
    let expected = expected_snapshot(&subscription, SubscriptionStatus::Canceled);
    assert_eq!(payload, EventPayload::SubscriptionChanged(expected));
}

#[test]
fn the_fixture_subscription_as_an_api_response_matches_its_event() {
    let subscription = resource("subscription");
    let snapshot = stripe_wire::subscription_snapshot(subscription.to_string().as_bytes()).unwrap();
    let status = SubscriptionStatus::parse(&text(&subscription, "/status")).unwrap();
    assert_eq!(snapshot, expected_snapshot(&subscription, status));
    assert_eq!(parse("customer.subscription.updated", &subscription), Ok(EventPayload::SubscriptionChanged(snapshot)));
}

#[test]
fn trial_will_end_reads_the_fixture_subscription() {
    let subscription = resource("subscription");
    let payload = parse("customer.subscription.trial_will_end", &subscription).unwrap();
    let expected = EventPayload::TrialWillEnd {
        customer_id: CustomerId::new(text(&subscription, "/customer")),
        subscription_id: SubscriptionId::new(text(&subscription, "/id")),
        trial_end: time(&subscription, "/trial_end"),
    };
    assert_eq!(payload, expected);
}

#[test]
fn invoice_paid_events_read_the_fixture_invoice() {
    let invoice = resource("invoice");
    // Current API versions moved the subscription under `parent.subscription_details` and the price under
    // `pricing.price_details`; this invoice's only line is an invoice item without a price.
    assert!(absent(&invoice, "/subscription"));
    let line = "/lines/data/0";
    let price = reference(&invoice, &format!("{line}/pricing/price_details/price"))
        .or_else(|| reference(&invoice, &format!("{line}/price")))
        .or_else(|| reference(&invoice, &format!("{line}/plan")));
    let currency = Currency::parse(&text(&invoice, "/currency")).expect("an ISO currency");
    for event_type in ["invoice.paid", "invoice.payment_succeeded"] {
        let payload = parse(event_type, &invoice).unwrap();
        let expected = EventPayload::InvoicePaid {
            invoice_id: InvoiceId::new(text(&invoice, "/id")),
            customer_id: CustomerId::new(text(&invoice, "/customer")),
            subscription_id: Some(SubscriptionId::new(text(&invoice, "/parent/subscription_details/subscription"))),
            price_id: price.clone().map(PriceId::new),
            amount: Money::new(int(&invoice, "/amount_paid"), currency.clone()),
            period_start: time(&invoice, &format!("{line}/period/start")),
            period_end: time(&invoice, &format!("{line}/period/end")),
            invoice_url: None,
        };
        assert_eq!(payload, expected, "{event_type}");
    }
}

#[test]
fn invoice_payment_failed_reads_the_fixture_invoice() {
    let invoice = resource("invoice");
    // amount_due, not amount_paid, is what failed; the fixture keeps them apart.
    assert_ne!(int(&invoice, "/amount_due"), int(&invoice, "/amount_paid"));
    let payload = parse("invoice.payment_failed", &invoice).unwrap();
    let expected = EventPayload::InvoicePaymentFailed {
        invoice_id: InvoiceId::new(text(&invoice, "/id")),
        customer_id: CustomerId::new(text(&invoice, "/customer")),
        subscription_id: Some(SubscriptionId::new(text(&invoice, "/parent/subscription_details/subscription"))),
        amount: Money::new(int(&invoice, "/amount_due"), Currency::parse(&text(&invoice, "/currency")).unwrap()),
        attempt_count: u32::try_from(int(&invoice, "/attempt_count")).unwrap(),
    };
    assert_eq!(payload, expected);
}

#[test]
fn checkout_completed_of_the_unpaid_fixture_payment_session_is_ignored() {
    let session = tollgate_session();
    // A one-time payment still unpaid at `completed` (bank debit, voucher) grants nothing yet.
    assert_eq!(text(&session, "/mode"), "payment");
    assert_eq!(text(&session, "/payment_status"), "unpaid");
    assert_eq!(parse("checkout.session.completed", &session), Ok(EventPayload::Ignored));
}

#[test]
fn checkout_async_payment_succeeded_of_the_fixture_session_completes_it() {
    let mut session = tollgate_session();
    // Tollgate creates every session for a customer; the fixture's `customer` is null, so take the fixture customer.
    assert!(absent(&session, "/customer") && absent(&session, "/subscription"));
    session["customer"] = json!(text(&resource("customer"), "/id"));
    let expected = EventPayload::CheckoutCompleted {
        session_id: CheckoutSessionId::new(text(&session, "/id")),
        workspace_id: workspace(),
        customer_id: CustomerId::new(text(&session, "/customer")),
        mode: CheckoutMode::Payment,
        subscription_id: None,
        plan_id: Some(PlanId::new(PLAN)),
    };
    assert_eq!(parse("checkout.session.async_payment_succeeded", &session), Ok(expected.clone()));

    // Either place Tollgate writes the workspace to is enough.
    let mut metadata_only = session.clone();
    metadata_only["client_reference_id"] = Value::Null;
    assert_eq!(parse("checkout.session.async_payment_succeeded", &metadata_only), Ok(expected.clone()));
    let mut reference_only = session;
    reference_only["metadata"] = json!({});
    let EventPayload::CheckoutCompleted { workspace_id, plan_id, .. } =
        parse("checkout.session.async_payment_succeeded", &reference_only).unwrap()
    else {
        panic!("expected CheckoutCompleted");
    };
    assert_eq!((workspace_id, plan_id), (workspace(), None));
}

#[test]
fn checkout_completed_of_the_fixture_session_in_subscription_mode_names_the_subscription() {
    // The same session as Tollgate's checkout of a subscription plan creates it, for the fixture subscription.
    let subscription = resource("subscription");
    let mut session = tollgate_session();
    session["mode"] = json!("subscription");
    session["customer"] = json!(text(&subscription, "/customer"));
    session["subscription"] = json!(text(&subscription, "/id"));
    let expected = EventPayload::CheckoutCompleted {
        session_id: CheckoutSessionId::new(text(&session, "/id")),
        workspace_id: workspace(),
        customer_id: CustomerId::new(text(&subscription, "/customer")),
        mode: CheckoutMode::Subscription,
        subscription_id: Some(SubscriptionId::new(text(&subscription, "/id"))),
        plan_id: Some(PlanId::new(PLAN)),
    };
    assert_eq!(parse("checkout.session.completed", &session), Ok(expected));
}

#[test]
fn checkout_async_payment_failed_reads_the_fixture_session() {
    let session = tollgate_session();
    // The fixture names no payment error, so the generic reason is reported.
    assert!(absent(&session, "/last_payment_error"));
    let expected = EventPayload::CheckoutFailed {
        session_id: CheckoutSessionId::new(text(&session, "/id")),
        workspace_id: workspace(),
        plan_id: Some(PlanId::new(PLAN)),
        reason: "payment_failed".to_owned(),
    };
    assert_eq!(parse("checkout.session.async_payment_failed", &session), Ok(expected));
}

#[test]
fn the_fixture_session_without_a_customer_cannot_complete() {
    let session = tollgate_session();
    assert!(absent(&session, "/customer"));
    let reason = malformed_reason(parse("checkout.session.async_payment_succeeded", &session));
    assert!(reason.contains("checkout.session.async_payment_succeeded"), "{reason}");
    assert!(reason.contains("`customer`"), "{reason}");
}

#[test]
fn the_fixture_session_without_a_workspace_is_malformed() {
    // As Stripe's example has it: no `client_reference_id` and no `metadata.workspace_id`, so not Tollgate's.
    let session = resource("checkout.session");
    assert!(absent(&session, "/client_reference_id") && absent(&session, "/metadata/workspace_id"));
    for event_type in ["checkout.session.async_payment_succeeded", "checkout.session.async_payment_failed"] {
        let reason = malformed_reason(parse(event_type, &session));
        assert!(reason.contains("`client_reference_id`"), "{event_type}: {reason}");
    }
}

#[test]
fn unhandled_event_types_over_fixture_objects_are_ignored() {
    let cases = [
        ("customer.created", "customer"),
        ("customer.updated", "customer"),
        ("charge.captured", "charge"),
        ("charge.succeeded", "charge"),
        ("payment_intent.created", "payment_intent"),
        ("price.created", "price"),
        ("product.updated", "product"),
        ("invoiceitem.created", "invoiceitem"),
        ("invoice.created", "invoice"),
        ("invoice.finalized", "invoice"),
        ("checkout.session.expired", "checkout.session"),
    ];
    for (event_type, name) in cases {
        assert_eq!(parse(event_type, &resource(name)), Ok(EventPayload::Ignored), "{event_type}");
    }
}

#[test]
fn payment_activity_of_fixture_objects_is_read_for_customers_and_ignored_for_guests() {
    use billing_domain::events::PaymentActivityKind;
    // Stripe's examples are guest payments (no customer): no workspace to tell.
    for (event_type, name) in [("payment_intent.succeeded", "payment_intent"), ("charge.refunded", "charge")] {
        let object = resource(name);
        assert!(object["customer"].is_null());
        assert_eq!(parse(event_type, &object), Ok(EventPayload::Ignored), "{event_type}");
    }
    let mut intent = resource("payment_intent");
    intent["customer"] = Value::from("cus_fixture");
    let Ok(EventPayload::PaymentActivity { activity, object_id, amount, .. }) =
        parse("payment_intent.payment_failed", &intent)
    else {
        panic!("a customer's failed PaymentIntent is payment activity")
    };
    assert_eq!(activity, PaymentActivityKind::PaymentFailed);
    assert_eq!(object_id, text(&intent, "/id"));
    assert_eq!(
        (amount.minor, amount.currency.as_str().to_lowercase()),
        (int(&intent, "/amount"), text(&intent, "/currency"))
    );
    let mut charge = resource("charge");
    charge["customer"] = Value::from("cus_fixture");
    let Ok(EventPayload::PaymentActivity { activity, amount, refunded, .. }) = parse("charge.refunded", &charge) else {
        panic!("a customer's refunded charge is payment activity")
    };
    assert_eq!((activity, amount.minor), (PaymentActivityKind::ChargeRefunded, int(&charge, "/amount")));
    assert_eq!(refunded.map(|r| r.minor), Some(int(&charge, "/amount_refunded")));
}

#[test]
fn the_fixture_event_parses_as_is() {
    let event = resource("event");
    let body = event.to_string();
    let parsed = stripe_wire::parse_event(&StripeProcessor::processor_id(), body.as_bytes()).unwrap();
    assert_envelope(&parsed, &text(&event, "/type"), &text(&event, "/id"), int(&event, "/created"));
    assert_eq!(parsed.payload, EventPayload::Ignored, "{} is not a type Tollgate handles", text(&event, "/type"));
}

#[test]
fn signed_fixture_events_verify_and_parse_through_the_adapter() {
    let adapter = support::adapter("http://127.0.0.1:9");
    let secret = SecretString::from(support::WEBHOOK_SECRET);
    let cases = [
        ("customer.subscription.updated", resource("subscription")),
        ("customer.subscription.trial_will_end", resource("subscription")),
        ("invoice.paid", resource("invoice")),
        ("invoice.payment_failed", resource("invoice")),
        ("checkout.session.async_payment_failed", tollgate_session()),
        ("customer.created", resource("customer")),
    ];
    for (event_type, object) in cases {
        let body = envelope(event_type, &object);
        let t = created_of(&object);
        let headers =
            vec![(billing_stripe::SIGNATURE_HEADER.to_owned(), billing_stripe::signature::sign(&secret, t, &body))];
        let now = DateTime::from_timestamp(t, 0).unwrap();
        let via_adapter = adapter.verify_and_parse(&headers, &body, now).unwrap();
        assert_eq!(via_adapter.payload, parse(event_type, &object).unwrap(), "{event_type}");
        assert_envelope(&via_adapter, event_type, &event_id(event_type), t);
    }
}
