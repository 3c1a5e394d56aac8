//! Meter reporting against the binary: usage of metered metrics reaches a Stripe stand-in (wiremock: localstripe
//! has no Billing Meters) once per event, under the event's own identifier, with the right customer, value and
//! time — through 429s and 500s mid-run, two replicas on one PostgreSQL, and a reporter killed (SIGKILL) mid-run
//! whose successor takes over from the saved cursor. Nothing is skipped; what the kill makes Stripe see again is
//! at most one save's worth, and Stripe counts it once (same identifier).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use tollgate_e2e::{Server, postgres_database};

use crate::outbox::{subscribe, unique};
use crate::time_travel::call;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// `MeterReportPolicy::save_every`: the most sends a killed reporter leaves unsaved.
const SAVE_EVERY: usize = 50;

/// What the stand-in received, by identifier.
#[derive(Default)]
struct Ledger {
    requests: u64,
    /// identifier → (event name, customer, value, timestamp), as first received.
    received: BTreeMap<String, (String, String, String, String)>,
    /// Identifiers answered 200 at least once.
    answered: HashSet<String>,
    /// Sends of an identifier that had already been answered 200.
    resent_after_success: u64,
}

/// `POST /v1/billing/meter_events`: records each event; one request in 37 is refused with 429 before recording,
/// one in 41 is recorded and then answered 500 (the answer lost on the way, so the sender must try again).
#[derive(Clone, Default)]
struct MeterEvents(Arc<Mutex<Ledger>>);

impl Respond for MeterEvents {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let form = form(request);
        let field = |name: &str| form.get(name).cloned().unwrap_or_default();
        let identifier = field("identifier");
        let mut ledger = self.0.lock().unwrap();
        ledger.requests += 1;
        let n = ledger.requests;
        if n % 37 == 5 {
            return stripe_error(429, "rate_limit", "Too many requests");
        }
        let details =
            (field("event_name"), field("payload[stripe_customer_id]"), field("payload[value]"), field("timestamp"));
        ledger.received.entry(identifier.clone()).or_insert(details);
        if n % 41 == 20 {
            return stripe_error(500, "api_error", "Something went wrong");
        }
        if !ledger.answered.insert(identifier.clone()) {
            ledger.resent_after_success += 1;
        }
        ResponseTemplate::new(200).set_body_json(json!({"object": "billing.meter_event", "identifier": identifier}))
    }
}

/// `POST /v1/customers`: the customer of a workspace is `cus_<workspace id>`.
struct Customers;

impl Respond for Customers {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let workspace = form(request).get("metadata[workspace_id]").cloned().unwrap_or_default();
        ResponseTemplate::new(200).set_body_json(json!({
            "id": format!("cus_{workspace}"), "object": "customer", "metadata": {"workspace_id": workspace},
        }))
    }
}

fn form(request: &Request) -> BTreeMap<String, String> {
    let encoded = String::from_utf8_lossy(&request.body);
    reqwest::Url::parse(&format!("http://x/?{encoded}")).unwrap().query_pairs().into_owned().collect()
}

fn stripe_error(status: u16, kind: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"error": {"type": kind, "message": message}}))
}

async fn fake_stripe(meter_events: MeterEvents) -> MockServer {
    let stripe = MockServer::start().await;
    let empty = json!({"object": "list", "data": [], "has_more": false, "url": "/v1/customers"});
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(empty))
        .mount(&stripe)
        .await;
    Mock::given(method("POST")).and(path("/v1/customers")).respond_with(Customers).mount(&stripe).await;
    let session = json!({"id": "cs_test_meters", "object": "checkout.session", "url": "https://checkout.stripe.test/cs_test_meters"});
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(session))
        .mount(&stripe)
        .await;
    Mock::given(method("POST")).and(path("/v1/billing/meter_events")).respond_with(meter_events).mount(&stripe).await;
    stripe
}

fn reporting_env(database: &str, stripe: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TOLLGATE__DATABASE__URL", database.to_owned()),
        ("TOLLGATE__PROCESSOR", "stripe".to_owned()),
        ("TOLLGATE__SANDBOX__ENABLED", "false".to_owned()),
        ("TOLLGATE__STRIPE__SECRET_KEY", "sk_test_meters_never_logged".to_owned()),
        ("TOLLGATE__STRIPE__WEBHOOK_SECRETS", "whsec_meters_never_logged".to_owned()),
        ("TOLLGATE__STRIPE__API_BASE", stripe.to_owned()),
        // Every failure reaches the reporter, which stops and starts again from its cursor on the next run.
        ("TOLLGATE__STRIPE__MAX_RETRIES", "0".to_owned()),
        ("TOLLGATE__RECONCILE__INTERVAL_SECS", "0".to_owned()),
        ("TOLLGATE__USAGE__REPORT_INTERVAL_SECS", "1".to_owned()),
        ("TOLLGATE__USAGE__REPORT_LEASE_SECS", "5".to_owned()),
    ]
}

/// A workspace; with a customer at Stripe (created by starting a checkout) when `customer`.
async fn workspace(client: &reqwest::Client, base: &str, id: &str, customer: bool) {
    let body = json!({"name": id, "owner_email": format!("owner@{id}.test")});
    let (status, _) = call(client, reqwest::Method::PUT, format!("{base}/v1/workspaces/{id}"), Some(body)).await;
    assert_eq!(status, 201);
    if customer {
        let checkout = format!("{base}/v1/workspaces/{id}/checkout");
        let (status, body) = call(client, reqwest::Method::POST, checkout, Some(json!({"plan": "pro"}))).await;
        assert!((200..300).contains(&status), "checkout of {id}: {status} {body}");
    }
}

/// One usage event sent, and the meter event it must become (`None`: nothing reaches Stripe).
struct Sent {
    body: Value,
    expected: Option<(String, (String, String, String, String))>,
}

/// Six batches of 100 over four workspaces (the last without a customer) and three metrics (`alerts` names no
/// meter); quantities are written normalized (`"3.7"`), as the adapter sends them.
fn batches() -> Vec<Vec<Sent>> {
    let at = Utc::now().timestamp() - 120;
    (0..6)
        .map(|b| {
            (0..100)
                .map(|i| {
                    let n = b * 100 + i;
                    let workspace = format!("meter-{}", n % 4);
                    let metric = ["compute_hours", "bandwidth_gb", "alerts"][n % 3];
                    let quantity = format!("{}.{}", n % 7, 1 + n % 9);
                    let id = format!("u-{n}");
                    let timestamp = at + (n as i64 % 60);
                    let meter = match metric {
                        "compute_hours" => Some("tollgate_compute_hours"),
                        "bandwidth_gb" => Some("tollgate_bandwidth_gb"),
                        _ => None,
                    };
                    let expected = meter.filter(|_| n % 4 != 3).map(|meter| {
                        let details = (meter.to_owned(), format!("cus_{workspace}"), quantity.clone(), timestamp.to_string());
                        (format!("tollgate:usage:{workspace}:{id}"), details)
                    });
                    let body = json!({"id": id, "workspace_id": workspace, "metric": metric, "quantity": quantity, "timestamp": timestamp});
                    Sent { body, expected }
                })
                .collect()
        })
        .collect()
}

async fn send(client: &reqwest::Client, base: &str, batch: &[Sent]) {
    let body = json!({"events": batch.iter().map(|s| s.body.clone()).collect::<Vec<_>>()});
    let (status, answer) = call(client, reqwest::Method::POST, format!("{base}/v1/usage"), Some(body)).await;
    assert_eq!((status, answer["accepted"].as_u64()), (200, Some(batch.len() as u64)), "{answer}");
}

fn received(ledger: &Mutex<Ledger>) -> usize {
    ledger.lock().unwrap().received.len()
}

#[test]
fn usage_reaches_stripe_meters_once_through_faults_a_kill_and_two_replicas() {
    let database = postgres_database();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let events = MeterEvents::default();
    let stripe = runtime.block_on(fake_stripe(events.clone()));
    let env = reporting_env(&database, &stripe.uri());
    let client = reqwest::Client::new();
    let batches = batches();
    let expected: BTreeMap<String, (String, String, String, String)> =
        batches.iter().flatten().filter_map(|s| s.expected.clone()).collect();

    // One replica records and reports the first half; it is killed while reporting.
    let mut first = Server::start(&env);
    runtime.block_on(async {
        for w in 0..4 {
            workspace(&client, &first.base_url, &format!("meter-{w}"), w != 3).await;
        }
        for batch in &batches[..3] {
            send(&client, &first.base_url, batch).await;
        }
    });
    let started = Instant::now();
    while received(&events.0) < 60 {
        assert!(started.elapsed() < Duration::from_secs(60), "no meter events reached Stripe");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let at_kill = received(&events.0);
    assert!(at_kill < expected.len(), "the kill came mid-run ({at_kill} of {})", expected.len());

    // Two replicas on the same database take the rest, sent to both while they report.
    let second = Server::start(&env);
    let third = Server::start(&env);
    runtime.block_on(async {
        for (i, batch) in batches[3..].iter().enumerate() {
            let base = if i % 2 == 0 { &second.base_url } else { &third.base_url };
            send(&client, base, batch).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let started = Instant::now();
    while received(&events.0) < expected.len() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{} of {} meter events reached Stripe",
            received(&events.0),
            expected.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Settled: a few more runs send nothing new.
    std::thread::sleep(Duration::from_secs(3));
    assert!(second.stop().success());
    assert!(third.stop().success());

    let ledger = events.0.lock().unwrap();
    let missing: BTreeSet<&String> = expected.keys().filter(|id| !ledger.received.contains_key(*id)).collect();
    let unexpected: BTreeSet<&String> = ledger.received.keys().filter(|id| !expected.contains_key(*id)).collect();
    assert!(missing.is_empty(), "never reported: {missing:?}");
    assert!(unexpected.is_empty(), "reported but not metered or without a customer: {unexpected:?}");
    for (identifier, details) in &expected {
        assert_eq!(&ledger.received[identifier], details, "{identifier}: (meter, customer, value, timestamp)");
    }
    assert!(ledger.answered.len() == expected.len(), "every event was answered 200 in the end");
    assert!(
        ledger.resent_after_success as usize <= SAVE_EVERY,
        "{} events sent again after Stripe took them; only the kill's unsaved sends may be",
        ledger.resent_after_success
    );
    assert!(ledger.requests > expected.len() as u64, "the faults were met and retried");
}

/// With the sandbox (`cargo run`'s processor), reported usage shows up in its meter tallies, each event once.
#[test]
fn the_sandbox_tallies_the_meter_events_it_received_and_shows_them() {
    let db = std::env::temp_dir().join(format!("tollgate-e2e-{}.db", uuid::Uuid::new_v4().simple()));
    let env = vec![
        ("TOLLGATE__DATABASE__URL", format!("sqlite://{}?mode=rwc", db.display())),
        ("TOLLGATE__USAGE__REPORT_INTERVAL_SECS", "1".to_owned()),
    ];
    let server = Server::start(&env);
    let base = server.base_url.clone();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let meters = |id: &str| format!("{base}/v1/admin/sandbox/workspaces/{id}/meter-events");
        let id = unique("meters");
        subscribe(&client, &base, &id).await;
        let at = Utc::now().timestamp() - 60;
        let event = |n: &str, metric: &str, quantity: &str| {
            json!({"id": n, "workspace_id": id, "metric": metric, "quantity": quantity, "timestamp": at})
        };
        let batch = json!({"events": [
            event("e1", "compute_hours", "1.5"),
            event("e2", "compute_hours", "2.25"),
            event("e3", "bandwidth_gb", "3"),
            event("e4", "alerts", "7"),
        ]});
        let (status, answer) = call(&client, reqwest::Method::POST, format!("{base}/v1/usage"), Some(batch.clone())).await;
        assert_eq!((status, answer["accepted"].as_u64()), (200, Some(4)), "{answer}");
        // Sent again: duplicates at Tollgate, so nothing more reaches the meters.
        let (_, again) = call(&client, reqwest::Method::POST, format!("{base}/v1/usage"), Some(batch)).await;
        assert_eq!(again["duplicates"].as_u64(), Some(4), "{again}");

        let started = Instant::now();
        let shown = loop {
            let (status, shown) = call(&client, reqwest::Method::GET, meters(&id), None).await;
            assert_eq!(status, 200, "{shown}");
            if shown["meters"].as_array().is_some_and(|m| m.len() == 2) {
                break shown;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "not reported: {shown}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let by_meter: BTreeMap<&str, (u64, &str, u64)> = shown["meters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let (events, value, repeats) = (m["events"].as_u64().unwrap(), m["value"].as_str().unwrap(), m["repeats"].as_u64().unwrap());
                (m["meter"].as_str().unwrap(), (events, value, repeats))
            })
            .collect();
        let expected = BTreeMap::from([("tollgate_bandwidth_gb", (1, "3", 0)), ("tollgate_compute_hours", (2, "3.75", 0))]);
        assert_eq!(by_meter, expected, "{shown}");

        let (status, problem) = call(&client, reqwest::Method::GET, meters("nobody"), None).await;
        assert_eq!((status, problem["code"].as_str()), (404, Some("sandbox_customer_not_found")), "{problem}");
    });
    assert!(server.stop().success());
    let _ = std::fs::remove_file(&db);
}
