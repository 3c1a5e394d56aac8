//! Webhook signatures cross-checked with Stripe's official Python library (`stripe` in the venv at
//! `TOLLGATE_PYTHON`): headers it generates must pass the adapter's verification exactly when Stripe's rules say so,
//! and headers we sign must pass its `verify_header`.

use std::process::{Command, Output};

use billing_domain::events::{EventPayload, ProcessorEvent};
use billing_domain::ids::{CustomerId, InvoiceId, PriceId, SubscriptionId};
use billing_domain::money::{Currency, Money};
use billing_domain::ports::{WebhookError, WebhookOps};
use billing_stripe::{SIGNATURE_HEADER, StripeProcessor, signature};
use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::support::{self, WEBHOOK_SECRET};

/// Webhook-only adapters never call the API; nothing listens here.
const NO_API: &str = "http://127.0.0.1:9";
/// The secret a rotation retires, still active next to [`WEBHOOK_SECRET`] during the rotation.
const OTHER_SECRET: &str = "whsec_tollgate_rotated_secret";
/// When the test deliveries were signed.
const T: i64 = 1_721_954_100;

/// A delivery as Stripe sends it: pretty-printed, current API shape, with non-ASCII text so that both sides must
/// sign the same UTF-8 bytes.
const PAYLOAD: &str = r#"{
  "id": "evt_1PgcA2B7WZ01zgkWq3Yb9xLm",
  "object": "event",
  "api_version": "2025-06-30.basil",
  "created": 1721954100,
  "data": {
    "object": {
      "id": "in_1Pgc6tB7WZ01zgkWu9fdqL6I",
      "object": "invoice",
      "amount_due": 2000,
      "amount_paid": 2000,
      "amount_remaining": 0,
      "attempt_count": 1,
      "currency": "eur",
      "customer": "cus_QXg1o8vcGmoR32",
      "customer_name": "Zoë Müller — Café ☕",
      "lines": {
        "object": "list",
        "data": [
          {
            "id": "il_1Pgc6sB7WZ01zgkWFnxLrLCq",
            "object": "line_item",
            "amount": 2000,
            "currency": "eur",
            "period": {"end": 1724632500, "start": 1721954100},
            "parent": {
              "subscription_item_details": {
                "proration": false,
                "subscription": "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw",
                "subscription_item": "si_QXhVnC2h0Jczwc"
              },
              "type": "subscription_item_details"
            },
            "pricing": {
              "price_details": {"price": "price_1PgafmB7WZ01zgkW6dKueIc5", "product": "prod_QXg1hqf4jFNsqG"},
              "type": "price_details",
              "unit_amount_decimal": "2000"
            },
            "quantity": 1
          }
        ],
        "has_more": false,
        "url": "/v1/invoices/in_1Pgc6tB7WZ01zgkWu9fdqL6I/lines"
      },
      "parent": {
        "subscription_details": {"metadata": {}, "subscription": "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"},
        "type": "subscription_details"
      },
      "status": "paid"
    }
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {"id": null, "idempotency_key": null},
  "type": "invoice.paid"
}
"#;

fn at(unix: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix, 0).expect("a valid timestamp")
}

fn headers(header: &str) -> Vec<(String, String)> {
    vec![(SIGNATURE_HEADER.to_owned(), header.to_owned())]
}

/// An adapter whose active webhook secrets are `secrets`, in that order.
fn adapter_with(secrets: &[&str]) -> StripeProcessor {
    let mut config = support::config(NO_API);
    config.webhook_secrets = secrets.iter().map(|s| SecretString::from(*s)).collect();
    config.validate().expect("test config is valid");
    StripeProcessor::new(config).expect("adapter builds")
}

/// The adapter's tolerance for delivery timestamps.
fn tolerance() -> i64 {
    support::config(NO_API).tolerance_secs
}

/// Runs `script` with the venv Python and `args`, failing loudly when Python itself cannot run.
fn run_python(script: &str, args: &[&str]) -> Output {
    let python = support::python();
    Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"))
}

/// The `Stripe-Signature` value Stripe's library generates for `payload`.
fn python_header(payload: &str, secret: &str, timestamp: i64) -> String {
    const SCRIPT: &str = "import stripe,sys; \
        print(stripe.WebhookSignature.generate_signature_header(sys.argv[1], sys.argv[2], int(sys.argv[3])))";
    let output = run_python(SCRIPT, &[payload, secret, &timestamp.to_string()]);
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    assert!(output.status.success(), "python failed: {}", String::from_utf8_lossy(&output.stderr));
    let header = stdout.trim().to_owned();
    assert!(header.starts_with(&format!("t={timestamp},v1=")), "unexpected header {header:?}");
    header
}

/// Whether Stripe's library accepts `header` for `payload`: `Ok` or its rejection message.
fn python_verifies(payload: &str, header: &str, secret: &str, tolerance: i64) -> Result<(), String> {
    const SCRIPT: &str = "import stripe,sys
try:
    stripe.WebhookSignature.verify_header(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
except stripe.SignatureVerificationError as e:
    print('rejected:', e.user_message or e)
    sys.exit(3)
print('verified')";
    let output = run_python(SCRIPT, &[payload, header, secret, &tolerance.to_string()]);
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    match output.status.code() {
        Some(0) if stdout == "verified" => Ok(()),
        Some(3) => Err(stdout),
        _ => panic!("python failed ({}): {stdout} {}", output.status, String::from_utf8_lossy(&output.stderr)),
    }
}

fn parsed_payload() -> ProcessorEvent {
    stripe_wire::parse_event(&StripeProcessor::processor_id(), PAYLOAD.as_bytes()).expect("PAYLOAD parses")
}

#[test]
fn a_header_generated_by_stripes_library_is_accepted() {
    let header = python_header(PAYLOAD, WEBHOOK_SECRET, T);
    let event = support::adapter(NO_API).verify_and_parse(&headers(&header), PAYLOAD.as_bytes(), at(T)).unwrap();
    assert_eq!(event.id.as_str(), "evt_1PgcA2B7WZ01zgkWq3Yb9xLm");
    assert_eq!(event.event_type, "invoice.paid");
    assert_eq!(event.occurred_at, at(T));
    let expected = EventPayload::InvoicePaid {
        invoice_id: InvoiceId::new("in_1Pgc6tB7WZ01zgkWu9fdqL6I"),
        customer_id: CustomerId::new("cus_QXg1o8vcGmoR32"),
        subscription_id: Some(SubscriptionId::new("sub_1Pgc6rB7WZ01zgkWNy0Cn5nw")),
        price_id: Some(PriceId::new("price_1PgafmB7WZ01zgkW6dKueIc5")),
        amount: Money::new(2000, Currency::parse("eur").unwrap()),
        period_start: Some(at(1_721_954_100)),
        period_end: Some(at(1_724_632_500)),
        invoice_url: None,
    };
    assert_eq!(event.payload, expected);
    // Both sides computed the same tag: ours is byte-for-byte the header Stripe's library made.
    assert_eq!(signature::sign(&SecretString::from(WEBHOOK_SECRET), T, PAYLOAD.as_bytes()), header);
}

#[test]
fn a_python_header_is_accepted_by_the_second_of_two_active_secrets() {
    let header = python_header(PAYLOAD, WEBHOOK_SECRET, T);
    let rotating = adapter_with(&[OTHER_SECRET, WEBHOOK_SECRET]);
    assert_eq!(rotating.verify_and_parse(&headers(&header), PAYLOAD.as_bytes(), at(T)), Ok(parsed_payload()));
    // And the first one too, so a rotation in either direction keeps deliveries flowing.
    let other = python_header(PAYLOAD, OTHER_SECRET, T);
    assert_eq!(rotating.verify_and_parse(&headers(&other), PAYLOAD.as_bytes(), at(T)), Ok(parsed_payload()));
    // Once the secret is retired, its deliveries stop verifying.
    let retired = adapter_with(&[OTHER_SECRET]);
    assert_eq!(retired.verify_and_parse(&headers(&header), PAYLOAD.as_bytes(), at(T)), Err(WebhookError::BadSignature));
}

#[test]
fn a_python_header_is_accepted_only_within_the_tolerance() {
    let tolerance = tolerance();
    assert_eq!(tolerance, 300, "Stripe's libraries default to a 300 s tolerance");
    let header = python_header(PAYLOAD, WEBHOOK_SECRET, T);
    let adapter = support::adapter(NO_API);
    let verify = |now: i64| adapter.verify_and_parse(&headers(&header), PAYLOAD.as_bytes(), at(now)).map(drop);
    let stale = Err(WebhookError::StaleTimestamp { tolerance_secs: tolerance });
    assert_eq!(verify(T + tolerance - 1), Ok(()));
    assert_eq!(verify(T + tolerance), Ok(()));
    assert_eq!(verify(T + tolerance + 1), stale);
    assert_eq!(verify(T + 86_400), stale);
    // A timestamp from the future is as suspicious as an old one.
    assert_eq!(verify(T - tolerance + 1), Ok(()));
    assert_eq!(verify(T - tolerance - 1), stale);
}

#[test]
fn a_python_header_does_not_cover_a_tampered_body() {
    let header = python_header(PAYLOAD, WEBHOOK_SECRET, T);
    let adapter = support::adapter(NO_API);
    // One byte of the amount paid: still a valid event, so only the signature can catch it.
    let at_amount = PAYLOAD.find("\"amount_paid\": 2000").expect("PAYLOAD has amount_paid") + "\"amount_paid\": ".len();
    let mut tampered = PAYLOAD.as_bytes().to_vec();
    tampered[at_amount] = b'9';
    assert!(stripe_wire::parse_event(&StripeProcessor::processor_id(), &tampered).is_ok());
    assert_eq!(adapter.verify_and_parse(&headers(&header), &tampered, at(T)), Err(WebhookError::BadSignature));
    // A trailing newline dropped, or the header's timestamp moved, breaks it too.
    let trimmed = PAYLOAD.trim_end().as_bytes();
    assert_eq!(adapter.verify_and_parse(&headers(&header), trimmed, at(T)), Err(WebhookError::BadSignature));
    let moved = header.replacen(&format!("t={T}"), &format!("t={}", T + 1), 1);
    assert_eq!(adapter.verify_and_parse(&headers(&moved), PAYLOAD.as_bytes(), at(T)), Err(WebhookError::BadSignature));
}

#[test]
fn a_python_header_with_an_extra_bogus_v1_is_accepted() {
    let header = python_header(PAYLOAD, WEBHOOK_SECRET, T);
    let (timestamp, tag) = header.split_once(',').expect("t=…,v1=…");
    let bogus = format!("v1={}", "0".repeat(64));
    let adapter = support::adapter(NO_API);
    for combined in [
        format!("{header},{bogus}"),
        format!("{timestamp},{bogus},{tag}"),
        format!("{timestamp},v1=zz-not-hex,{tag}"),
        format!("{timestamp},v0={},{tag}", "1".repeat(64)),
    ] {
        assert_eq!(
            adapter.verify_and_parse(&headers(&combined), PAYLOAD.as_bytes(), at(T)),
            Ok(parsed_payload()),
            "{combined}"
        );
    }
    // Bogus entries alone verify nothing.
    let only_bogus = format!("{timestamp},{bogus}");
    assert_eq!(
        adapter.verify_and_parse(&headers(&only_bogus), PAYLOAD.as_bytes(), at(T)),
        Err(WebhookError::BadSignature)
    );
}

#[test]
fn garbage_headers_are_refused_without_panicking() {
    let header = python_header(PAYLOAD, WEBHOOK_SECRET, T);
    let tag = header.split_once(",v1=").expect("t=…,v1=…").1;
    let adapter = support::adapter(NO_API);
    let garbage = [
        String::new(),
        " ".to_owned(),
        "t=abc".to_owned(),
        "v1=xyz".to_owned(),
        format!("v1={tag}"),
        format!("t=abc,v1={tag}"),
        format!("t={T}"),
        format!("t={T},v1="),
        format!("t={T},v1={}", &tag[..tag.len() - 1]),
        format!("t={T},v1={tag}00"),
        format!("t={T};v1={tag}"),
        "=,=,=".to_owned(),
        ",,,,".to_owned(),
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit".to_owned(),
        "t=☕,v1=Zoë".to_owned(),
        format!("t=-{},v1={}", i64::MAX, "ab".repeat(32)),
        format!("t={T},v1={}", "0".repeat(64)),
        "x".repeat(100_000),
        format!("t={T},{}", "v1=00,".repeat(10_000)),
    ];
    for value in garbage {
        let result = adapter.verify_and_parse(&headers(&value), PAYLOAD.as_bytes(), at(T));
        let shown: String = value.chars().take(60).collect();
        assert!(
            matches!(result, Err(WebhookError::MalformedSignature | WebhookError::BadSignature)),
            "{shown:?} gave {result:?}"
        );
    }
}

#[test]
fn a_missing_header_is_reported_as_missing() {
    let header = python_header(PAYLOAD, WEBHOOK_SECRET, T);
    let adapter = support::adapter(NO_API);
    let unsigned = [
        vec![],
        vec![("content-type".to_owned(), "application/json".to_owned())],
        // A valid signature under another name does not count.
        vec![("x-stripe-signature".to_owned(), header.clone()), ("signature".to_owned(), header)],
    ];
    for headers in unsigned {
        let result = adapter.verify_and_parse(&headers, PAYLOAD.as_bytes(), at(T));
        assert!(matches!(result, Err(WebhookError::MissingSignature(_))), "{headers:?} gave {result:?}");
    }
}

#[test]
fn a_header_we_sign_is_accepted_by_stripes_library() {
    // Python checks the tolerance against its own clock, so sign at the current time.
    let now = Utc::now().timestamp();
    let ours = signature::sign(&SecretString::from(WEBHOOK_SECRET), now, PAYLOAD.as_bytes());
    assert_eq!(python_verifies(PAYLOAD, &ours, WEBHOOK_SECRET, tolerance()), Ok(()));

    // The check is real: Python refuses what it should.
    let wrong_secret = python_verifies(PAYLOAD, &ours, OTHER_SECRET, tolerance()).unwrap_err();
    assert!(wrong_secret.contains("No signatures found matching"), "{wrong_secret}");
    let tampered = PAYLOAD.replacen("2000", "9000", 1);
    assert!(python_verifies(&tampered, &ours, WEBHOOK_SECRET, tolerance()).is_err());
    let old = signature::sign(&SecretString::from(WEBHOOK_SECRET), now - 3_600, PAYLOAD.as_bytes());
    let stale = python_verifies(PAYLOAD, &old, WEBHOOK_SECRET, tolerance()).unwrap_err();
    assert!(stale.contains("tolerance"), "{stale}");
}

#[test]
fn no_error_shows_a_secret() {
    let header = python_header(PAYLOAD, WEBHOOK_SECRET, T);
    let adapter = adapter_with(&[OTHER_SECRET, WEBHOOK_SECRET]);
    let verify = |headers: &Vec<(String, String)>, body: &[u8], now: i64| {
        adapter.verify_and_parse(headers, body, at(now)).expect_err("refused")
    };
    // A body that verifies but does not parse, and mentions the secret, must not be echoed either.
    let leaky_body = format!(r#"{{"id": "{WEBHOOK_SECRET}", "type": 7, "created": {T}}}"#);
    let leaky_header = python_header(&leaky_body, WEBHOOK_SECRET, T);
    let errors = [
        verify(&vec![], PAYLOAD.as_bytes(), T),
        verify(&headers(&format!("t={T},v1={WEBHOOK_SECRET}")), PAYLOAD.as_bytes(), T),
        verify(&headers(WEBHOOK_SECRET), PAYLOAD.as_bytes(), T),
        verify(&headers(&python_header(PAYLOAD, "whsec_attacker", T)), PAYLOAD.as_bytes(), T),
        verify(&headers(&header), b"{}", T),
        verify(&headers(&header), PAYLOAD.as_bytes(), T + 3_600),
        verify(&headers(&leaky_header), leaky_body.as_bytes(), T),
    ];
    assert!(matches!(errors.last(), Some(WebhookError::MalformedPayload(_))), "{errors:?}");
    for error in &errors {
        for shown in [error.to_string(), format!("{error:?}")] {
            for secret in [WEBHOOK_SECRET, OTHER_SECRET] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
    }
    let config = format!("{:?}", support::config(NO_API));
    assert!(!config.contains(WEBHOOK_SECRET), "{config}");
}
