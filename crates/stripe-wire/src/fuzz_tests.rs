//! Property tests standing in for a fuzzer over the raw-body parsers (SPEC §9): whatever bytes arrive as a
//! webhook — random, a real event with a field swapped for any JSON value, a real event with bytes flipped or cut,
//! any signature header — the parsers answer `Ok` or an error and never panic. Bounded (`CASES` per property), so
//! CI runs them on every push.

use billing_domain::ids::ProcessorId;
use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use secrecy::SecretString;
use serde_json::{Map, Value, json};

use crate::parse::parse_event;
use crate::signature::{sign, verify};

const CASES: u32 = 2_000;

const FIXTURES: [&str; 3] = [
    include_str!("../testdata/stripe/subscription.json"),
    include_str!("../testdata/stripe/invoice.json"),
    include_str!("../testdata/stripe/checkout_session.json"),
];

/// Every type the parser reads, and some it does not.
const TYPES: [&str; 15] = [
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "customer.subscription.trial_will_end",
    "invoice.upcoming",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
    "account.updated",
];

/// Any JSON value, a few levels deep, with the numbers that break arithmetic.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        ".{0,24}".prop_map(Value::String),
        Just(json!("")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,12}", inner), 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn envelope(event_type: &str, object: Value) -> Vec<u8> {
    json!({
        "id": "evt_fuzz", "object": "event", "created": 1_721_954_100, "livemode": false,
        "data": {"object": object, "previous_attributes": {}}, "type": event_type,
    })
    .to_string()
    .into_bytes()
}

/// A fixture with one of its fields (at the top or one level down) replaced by `value`.
fn mutated(fixture: usize, pick: usize, value: Value) -> Value {
    let mut object: Value = serde_json::from_str(FIXTURES[fixture]).unwrap();
    let keys: Vec<String> = object.as_object().unwrap().keys().cloned().collect();
    let key = &keys[pick % keys.len()];
    match object.get_mut(key) {
        Some(Value::Object(inner)) if !inner.is_empty() => {
            let inner_key = inner.keys().nth(pick % inner.len()).unwrap().clone();
            inner.insert(inner_key, value);
        }
        Some(slot) => *slot = value,
        None => {}
    }
    object
}

fn stripe() -> ProcessorId {
    ProcessorId::new("stripe")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_event(&stripe(), &body);
    }

    #[test]
    fn a_real_event_with_any_field_swapped_never_panics(
        fixture in 0..FIXTURES.len(),
        kind in 0..TYPES.len(),
        pick in any::<usize>(),
        value in any_json(),
    ) {
        let _ = parse_event(&stripe(), &envelope(TYPES[kind], mutated(fixture, pick, value)));
    }

    #[test]
    fn a_real_event_with_bytes_flipped_or_cut_never_panics(
        fixture in 0..FIXTURES.len(),
        kind in 0..TYPES.len(),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in any::<usize>(),
    ) {
        let object: Value = serde_json::from_str(FIXTURES[fixture]).unwrap();
        let mut body = envelope(TYPES[kind], object);
        for (at, byte) in flips {
            let len = body.len();
            body[at % len] = byte;
        }
        body.truncate(cut % (body.len() + 1));
        let _ = parse_event(&stripe(), &body);
    }

    #[test]
    fn any_signature_header_never_panics(
        header in prop_oneof![
            ".{0,120}",
            "(t=-?[0-9]{0,21}|v1=[0-9a-f]{0,70}|v0=[a-z]{0,4}|=|,|[a-z]{0,3}=?)(,(t=-?[0-9]{0,21}|v1=[0-9a-f]{0,70}|x=y| ?)){0,6}",
        ],
        body in prop::collection::vec(any::<u8>(), 0..64),
        now in any::<i32>(),
        tolerance in any::<i64>(),
    ) {
        let secrets = [SecretString::from("whsec_fuzz")];
        let now = Utc.timestamp_opt(i64::from(now), 0).unwrap();
        let _ = verify(&header, &body, &secrets, now, tolerance);
    }

    #[test]
    fn a_signed_delivery_at_any_timestamp_is_judged_without_panicking(t in any::<i64>(), tolerance in any::<i64>()) {
        let secret = SecretString::from("whsec_fuzz");
        let body = br#"{"id":"evt_1"}"#;
        let header = sign(&secret, t, body);
        let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let verdict = verify(&header, body, std::slice::from_ref(&secret), now, tolerance);
        let age = 1_700_000_000_i64.checked_sub(t).map(i64::unsigned_abs);
        let fresh = age.is_some_and(|age| age <= tolerance.max(0).unsigned_abs());
        prop_assert_eq!(verdict.is_ok(), fresh);
    }
}
