//! The webhook publisher against a real HTTP receiver started here: the body, the signature (checked with the
//! same verifier Tollgate applies to Stripe's), the topic filters and the failures the worker retries.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use billing_domain::ports::{OutboundEvent, WebhookPublisher};
use billing_notify::{EndpointConfig, HttpPublisher, OutboundConfig, SIGNATURE_HEADER};
use chrono::Utc;
use secrecy::SecretString;
use stripe_wire::signature::verify;

const OLD_SECRET: &str = "whsec_old_0123456789abcdef";
const NEW_SECRET: &str = "whsec_new_0123456789abcdef";

/// One request: the path it was posted to, its signature header, its body.
type Request = (String, String, Vec<u8>);

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Request>>>);

/// A receiver on a free port: `/ok` records and answers 204, `/broken` records and answers 500.
async fn receiver() -> (String, Received) {
    let received = Received::default();
    let seen = received.clone();
    let server = HttpServer::new(move || {
        let seen = seen.clone();
        App::new().app_data(web::Data::new(seen)).route(
            "/{path}",
            web::post().to(|req: HttpRequest, body: web::Bytes, seen: web::Data<Received>| async move {
                let signature =
                    req.headers().get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let path = req.match_info().get("path").unwrap_or("").to_owned();
                seen.0.lock().unwrap().push((path.clone(), signature, body.to_vec()));
                if path == "ok" {
                    HttpResponse::NoContent().finish()
                } else {
                    HttpResponse::InternalServerError().finish()
                }
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let address = server.addrs()[0];
    tokio::spawn(server.run());
    (format!("http://{address}"), received)
}

fn endpoint(url: String, secrets: &[&str], events: &[&str]) -> EndpointConfig {
    EndpointConfig {
        url,
        secrets: secrets.iter().map(|s| SecretString::from(*s)).collect(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
    }
}

fn event() -> OutboundEvent {
    OutboundEvent {
        id: "evt_42".into(),
        topic: "billing.payment.failed".into(),
        created: 1_767_225_600,
        data: serde_json::json!({"invoice_id": "in_1", "attempt": 1}),
        request_id: Some("01938f2e-0000-7000-8000-000000000042".into()),
    }
}

#[actix_web::test]
async fn an_event_arrives_signed_with_every_active_secret() {
    let (base, received) = receiver().await;
    let config = OutboundConfig {
        timeout_ms: 5_000,
        endpoints: BTreeMap::from([(
            "backend".to_owned(),
            endpoint(format!("{base}/ok"), &[OLD_SECRET, NEW_SECRET], &["*"]),
        )]),
    };
    let publisher = HttpPublisher::new(&config).unwrap();
    publisher.publish("backend", &event()).await.unwrap();

    let received = received.0.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let (_, signature, body) = &received[0];
    let sent: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({
            "id": "evt_42", "type": "billing.payment.failed", "created": 1_767_225_600,
            "data": {"invoice_id": "in_1", "attempt": 1}, "request_id": "01938f2e-0000-7000-8000-000000000042",
        })
    );
    assert_eq!(signature.matches("v1=").count(), 2, "one tag per secret: {signature}");
    for secret in [OLD_SECRET, NEW_SECRET] {
        verify(signature, body, &[SecretString::from(secret)], Utc::now(), 300).expect("verifies with either secret");
    }
    assert!(verify(signature, body, &[SecretString::from("whsec_someone_else_000000")], Utc::now(), 300).is_err());
    assert!(verify(signature, b"{\"tampered\":true}", &[SecretString::from(NEW_SECRET)], Utc::now(), 300).is_err());
}

#[actix_web::test]
async fn each_endpoint_receives_only_the_topics_its_filter_lets_through() {
    let config = OutboundConfig {
        timeout_ms: 5_000,
        endpoints: BTreeMap::from([
            ("all".to_owned(), endpoint("http://127.0.0.1:9/a".into(), &[NEW_SECRET], &["*"])),
            ("payments".to_owned(), endpoint("http://127.0.0.1:9/b".into(), &[NEW_SECRET], &["billing.payment.*"])),
            ("trials".to_owned(), endpoint("http://127.0.0.1:9/c".into(), &[NEW_SECRET], &["billing.trial.ending"])),
        ]),
    };
    let publisher = HttpPublisher::new(&config).unwrap();
    assert_eq!(publisher.subscribers("billing.payment.failed"), ["all", "payments"]);
    assert_eq!(publisher.subscribers("billing.trial.ending"), ["all", "trials"]);
    assert_eq!(publisher.subscribers("billing.subscription.updated"), ["all"]);
}

#[actix_web::test]
async fn a_failing_or_unreachable_or_removed_endpoint_is_an_error_to_retry() {
    let (base, received) = receiver().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = OutboundConfig {
        timeout_ms: 5_000,
        endpoints: BTreeMap::from([
            ("broken".to_owned(), endpoint(format!("{base}/broken"), &[NEW_SECRET], &["*"])),
            (
                "down".to_owned(),
                endpoint(format!("http://127.0.0.1:{closed}/hook?token=s3cret"), &[NEW_SECRET], &["*"]),
            ),
        ]),
    };
    let publisher = HttpPublisher::new(&config).unwrap();
    let broken = publisher.publish("broken", &event()).await.unwrap_err().to_string();
    assert!(broken.contains("500"), "{broken}");
    assert_eq!(received.0.lock().unwrap().len(), 1, "it was sent once; the worker retries, not the publisher");
    let down = publisher.publish("down", &event()).await.unwrap_err().to_string();
    assert!(down.contains("unreachable") && !down.contains("s3cret"), "no URL (or its token) in the error: {down}");
    let removed = publisher.publish("gone", &event()).await.unwrap_err().to_string();
    assert!(removed.contains("no longer configured"), "{removed}");
}

/// The README's Python verifier, run as written against a signature this publisher makes: a product copying it
/// accepts Tollgate's deliveries and refuses a forged one.
#[test]
fn the_readmes_python_verifier_accepts_a_real_signature_and_refuses_a_forged_one() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    // The Python block that verifies (the README has others, such as the generated client's).
    let block = readme
        .split("```python\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default())
        .find(|block| block.contains("hmac"))
        .expect("a Python verifier in the README");
    let snippet: String =
        block.lines().map(|line| line.strip_prefix("  ").unwrap_or(line)).collect::<Vec<_>>().join("\n");
    let python = std::env::var("TOLLGATE_PYTHON").expect("TOLLGATE_PYTHON is unset: run scripts/test");
    let body = br#"{"id":"evt_1","type":"billing.payment.failed","created":1,"data":{}}"#;
    let now = Utc::now().timestamp();
    let secrets = [SecretString::from(OLD_SECRET), SecretString::from(NEW_SECRET)];
    let header = HttpPublisher::signature(&secrets, now, body);
    let run = |secret: &str, header: &str| {
        let program = format!(
            "{snippet}\nimport sys\nsys.exit(0 if verify(sys.stdin.buffer.read(), {header:?}, {secret:?}) else 3)\n"
        );
        let mut child = std::process::Command::new(&python)
            .args(["-c", &program])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(body).unwrap();
        child.wait().unwrap().code()
    };
    assert_eq!(run(NEW_SECRET, &header), Some(0), "verifies with the new secret");
    assert_eq!(run(OLD_SECRET, &header), Some(0), "and with the old one during rotation");
    assert_eq!(run("whsec_someone_else_000000", &header), Some(3), "a wrong secret is refused");
    let stale = HttpPublisher::signature(&secrets, now - 3_600, body);
    assert_eq!(run(NEW_SECRET, &stale), Some(3), "an old timestamp is refused");
}
