//! The outbox through the binary, with a real SMTP server (started by `scripts/test`) and a webhook receiver
//! started here: a paid checkout's receipt reaches the owner once, its webhooks reach each subscribed endpoint
//! once and signed, a dead endpoint is retried on its own and then shown to operators — on SQLite, and on
//! PostgreSQL with two replicas claiming from one outbox.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use secrecy::SecretString;
use serde_json::{Value, json};
use stripe_wire::signature::verify;
use tollgate_e2e::mailbox::{messages_to, smtp_port, wait_for};
use tollgate_e2e::{Server, postgres_database};

use crate::KEY;

const SECRET: &str = "whsec_product_backend_e2e";

/// What the receiver was sent: (path, signature header, body).
type Delivery = (String, String, Vec<u8>);

/// A product backend: `/ok` records and answers 200, `/broken` records and answers 503, `/slow` records and
/// answers 503 thirty seconds later.
pub(crate) struct Receiver {
    base: String,
    seen: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    pub(crate) fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let recorded = seen.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                HttpServer::new(move || {
                    let recorded = recorded.clone();
                    App::new().route(
                        "/{path}",
                        web::post().to(move |req: HttpRequest, body: web::Bytes| {
                            let recorded = recorded.clone();
                            async move {
                                let header = req.headers().get("Tollgate-Signature").and_then(|v| v.to_str().ok());
                                let path = req.match_info().get("path").unwrap_or("").to_owned();
                                let ok = path == "ok";
                                let slow = path == "slow";
                                recorded.lock().unwrap().push((path, header.unwrap_or("").to_owned(), body.to_vec()));
                                if slow {
                                    // Long enough for the test to kill the sender while it waits.
                                    actix_web::rt::time::sleep(Duration::from_secs(30)).await;
                                }
                                if ok {
                                    HttpResponse::Ok().finish()
                                } else {
                                    HttpResponse::ServiceUnavailable().finish()
                                }
                            }
                        }),
                    )
                })
                .workers(1)
                .listen(listener)
                .unwrap()
                .run()
                .await
                .unwrap();
            });
        });
        Self { base, seen }
    }

    /// The events `path` received, each verified against its signature; panics on a bad one.
    pub(crate) fn events(&self, path: &str) -> Vec<Value> {
        let seen = self.seen.lock().unwrap().clone();
        seen.iter()
            .filter(|(p, _, _)| p == path)
            .map(|(_, signature, body)| {
                verify(signature, body, &[SecretString::from(SECRET)], chrono::Utc::now(), 300)
                    .unwrap_or_else(|e| panic!("a delivery that does not verify ({e:?}): {signature}"));
                serde_json::from_slice(body).unwrap()
            })
            .collect()
    }
}

/// The server settings that send email to the test SMTP server and webhooks to `receiver`.
pub(crate) fn delivering_to(receiver: &Receiver, database: String) -> Vec<(&'static str, String)> {
    let mut env = emailing_the_test_server(database);
    env.extend([
        ("TOLLGATE__NOTIFICATIONS__MANAGE_URL", "https://app.example/billing/{workspace_id}".into()),
        ("TOLLGATE__OUTBOX__MIN_BACKOFF_SECS", "1".into()),
        ("TOLLGATE__OUTBOX__MAX_BACKOFF_SECS", "1".into()),
        ("TOLLGATE__OUTBOX__MAX_ATTEMPTS", "2".into()),
        ("TOLLGATE__OUTBOUND_WEBHOOKS__ENDPOINTS__BACKEND__URL", format!("{}/ok", receiver.base)),
        ("TOLLGATE__OUTBOUND_WEBHOOKS__ENDPOINTS__BACKEND__SECRETS", SECRET.into()),
        ("TOLLGATE__OUTBOUND_WEBHOOKS__ENDPOINTS__PAYMENTS__URL", format!("{}/broken", receiver.base)),
        ("TOLLGATE__OUTBOUND_WEBHOOKS__ENDPOINTS__PAYMENTS__SECRETS", SECRET.into()),
        ("TOLLGATE__OUTBOUND_WEBHOOKS__ENDPOINTS__PAYMENTS__EVENTS", "billing.payment.*".into()),
    ]);
    env
}

/// The server settings that send email to the SMTP server `scripts/test` started, and look at the outbox often.
pub(crate) fn emailing_the_test_server(database: String) -> Vec<(&'static str, String)> {
    vec![
        ("TOLLGATE__DATABASE__URL", database),
        ("TOLLGATE__NOTIFICATIONS__EMAIL__TRANSPORT", "smtp".into()),
        ("TOLLGATE__NOTIFICATIONS__EMAIL__FROM", "Billing <billing@tollgate.test>".into()),
        ("TOLLGATE__NOTIFICATIONS__EMAIL__SMTP__HOST", "127.0.0.1".into()),
        ("TOLLGATE__NOTIFICATIONS__EMAIL__SMTP__PORT", smtp_port().to_string()),
        ("TOLLGATE__NOTIFICATIONS__EMAIL__SMTP__TLS", "none".into()),
        ("TOLLGATE__OUTBOX__POLL_MS", "50".into()),
    ]
}

/// A unique owner address for workspace `id`.
pub(crate) fn owner_of(id: &str) -> String {
    format!("{id}@owners.test")
}

pub(crate) fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Creates workspace `id` on `base` and pays a `pro` checkout in the sandbox.
pub(crate) async fn subscribe(client: &reqwest::Client, base: &str, id: &str) {
    create_workspace(client, base, id).await;
    pay_checkout(client, base, id, "pro").await;
}

async fn create_workspace(client: &reqwest::Client, base: &str, id: &str) {
    let put = client
        .put(format!("{base}/v1/workspaces/{id}"))
        .bearer_auth(KEY)
        .json(&json!({"name": format!("Team {id}"), "owner_email": owner_of(id)}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
}

/// Starts a checkout of `plan` for `id` and presses Pay on the sandbox's page.
async fn pay_checkout(client: &reqwest::Client, base: &str, id: &str, plan: &str) {
    let session: Value = client
        .post(format!("{base}/v1/workspaces/{id}/checkout"))
        .bearer_auth(KEY)
        .json(&json!({"plan": plan}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paid = client.post(format!("{}/pay", session["url"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(paid.status(), 200);
}

/// Waits (at most 20 s) until `ready` holds.
pub(crate) fn eventually(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn outbox(client: &reqwest::Client, base: &str, query: &str) -> (u16, Value) {
    let response = client.get(format!("{base}/v1/admin/outbox?{query}")).bearer_auth(KEY).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[test]
fn a_receipt_and_signed_webhooks_leave_once_and_a_dead_endpoint_is_retried_alone_then_shown() {
    let receiver = Receiver::start();
    let db = std::env::temp_dir().join(format!("tollgate-e2e-{}.db", uuid::Uuid::new_v4().simple()));
    let server = Server::start(&delivering_to(&receiver, format!("sqlite://{}?mode=rwc", db.display())));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let id = unique("mail");
    runtime.block_on(subscribe(&client, &server.base_url, &id));

    let receipts = wait_for(&owner_of(&id), 1);
    assert_eq!(receipts.len(), 1, "the owner's receipt arrives");
    let receipt = receipts[0].parsed();
    assert_eq!(receipt.subject(), Some(format!("Receipt for Team {id}: 49.00 USD paid").as_str()));
    assert!(receipt.message_id().is_some_and(|m| m.starts_with("outbox-") && m.ends_with("@tollgate.test")));
    assert!(receipt.body_text(0).unwrap().contains("(Pro plan)"));

    let topics = |events: &[Value]| events.iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    eventually("the backend's webhooks", || {
        let got = topics(&receiver.events("ok"));
        got.contains(&"billing.subscription.updated".to_owned())
            && got.contains(&"billing.payment.succeeded".to_owned())
    });
    // The payments endpoint answers 503: tried twice (max_attempts), about a second apart, then dead.
    eventually("the broken endpoint's two attempts", || receiver.events("broken").len() >= 2);
    runtime.block_on(async {
        let base = &server.base_url;
        let deadline = Instant::now() + Duration::from_secs(20);
        let dead = loop {
            let (_, dead) = outbox(&client, base, "status=dead").await;
            if dead["messages"].as_array().is_some_and(|m| !m.is_empty()) {
                break dead;
            }
            assert!(Instant::now() < deadline, "the message was never marked dead");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let message = &dead["messages"][0];
        assert_eq!((message["channel"].as_str(), message["endpoint"].as_str()), (Some("endpoint"), Some("payments")));
        assert_eq!(message["topic"], "billing.payment.succeeded");
        assert_eq!(message["attempts"], 2);
        assert!(message["last_error"].as_str().unwrap().contains("503"), "{message}");

        let retry = client
            .post(format!("{base}/v1/admin/outbox/{}/retry", message["id"]))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(retry.status(), 200);
        let retried: Value = retry.json().await.unwrap();
        assert_eq!((retried["status"].as_str(), retried["attempts"].as_u64()), (Some("pending"), Some(0)));
        let deadline = Instant::now() + Duration::from_secs(20);
        while receiver.events("broken").len() < 3 {
            assert!(Instant::now() < deadline, "the retried message was never sent");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let (_, delivered) = outbox(&client, base, "status=delivered&limit=200").await;
        let delivered_id = delivered["messages"][0]["id"].clone();
        let again =
            client.post(format!("{base}/v1/admin/outbox/{delivered_id}/retry")).bearer_auth(KEY).send().await.unwrap();
        assert_eq!(again.status(), 409);
        let problem: Value = again.json().await.unwrap();
        assert_eq!(problem["code"], "outbox_message_delivered");
        let (status, problem) = outbox(&client, base, "status=sent").await;
        assert_eq!((status, problem["errors"][0]["field"].as_str()), (400, Some("status")), "{problem}");
        let (status, _) = outbox(&client, base, "status=dead&limit=0").await;
        assert_eq!(status, 400);
    });

    // Nothing is sent twice: give the worker time to (wrongly) repeat, then count.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(messages_to(&owner_of(&id)).len(), 1, "one receipt, once");
    let ids: Vec<String> = receiver.events("ok").iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    let mut unique_ids = ids.clone();
    unique_ids.sort();
    unique_ids.dedup();
    assert_eq!(ids.len(), unique_ids.len(), "each event once at the backend: {ids:?}");
    assert!(server.stop().success());
}

#[test]
fn two_replicas_on_postgres_deliver_every_message_exactly_once() {
    let receiver = Receiver::start();
    let database = postgres_database();
    let env = delivering_to(&receiver, database);
    let first = Server::start(&env);
    let second = Server::start(&env);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let teams: Vec<String> = (0..6).map(|_| unique("pair")).collect();
    runtime.block_on(async {
        // Half the checkouts through each replica, all at once: both workers find work in the same rounds.
        let bases = [first.base_url.clone(), second.base_url.clone()];
        let checkouts = teams.iter().enumerate().map(|(i, id)| subscribe(&client, &bases[i % 2], id));
        futures::future::join_all(checkouts).await;
    });
    for id in &teams {
        assert_eq!(wait_for(&owner_of(id), 1).len(), 1, "{id}'s receipt");
    }
    eventually("every team's two backend webhooks", || {
        let events = receiver.events("ok");
        teams.iter().all(|id| {
            let mine = |topic: &str| {
                events.iter().any(|e| {
                    e["type"] == topic && e["data"]["workspace_id"] == id.as_str() && e["data"]["plan"] == "pro"
                })
            };
            mine("billing.subscription.updated") && mine("billing.payment.succeeded")
        })
    });
    std::thread::sleep(Duration::from_millis(1500));
    for id in &teams {
        assert_eq!(messages_to(&owner_of(id)).len(), 1, "{id}: one receipt, though two workers claim");
    }
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    for event in receiver.events("ok") {
        *by_id.entry(event["id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    let repeated: Vec<_> = by_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "delivered more than once: {repeated:?}");
    assert!(first.stop().success());
    assert!(second.stop().success());
}

#[test]
fn every_change_of_a_credit_balance_is_announced_once_with_the_balance_after_it() {
    let receiver = Receiver::start();
    let db = std::env::temp_dir().join(format!("tollgate-e2e-{}.db", uuid::Uuid::new_v4().simple()));
    let server = Server::start(&delivering_to(&receiver, format!("sqlite://{}?mode=rwc", db.display())));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let base = server.base_url.clone();
    let id = unique("cred");
    runtime.block_on(async {
        create_workspace(&client, &base, &id).await;
        pay_checkout(&client, &base, &id, "credits10").await;
        for _ in 0..2 {
            // The same key twice: consumed once, announced once.
            let consumed = client
                .post(format!("{base}/v1/workspaces/{id}/credits/consume"))
                .bearer_auth(KEY)
                .json(&json!({"amount": 3, "idempotency_key": "export-1"}))
                .send()
                .await
                .unwrap();
            assert_eq!(consumed.status(), 200);
        }
    });
    let changes = || -> Vec<Value> {
        receiver
            .events("ok")
            .into_iter()
            .filter(|e| e["type"] == "billing.credits.changed" && e["data"]["workspace_id"] == id.as_str())
            .collect()
    };
    eventually("both credit changes", || changes().len() >= 2);
    std::thread::sleep(Duration::from_millis(1000));
    // Webhooks of one round may arrive in any order (each carries its balance for that reason): compare as a set.
    let mut seen: Vec<(i64, i64, String)> = changes()
        .iter()
        .map(|e| {
            let d = &e["data"];
            (d["delta"].as_i64().unwrap(), d["balance"].as_i64().unwrap(), d["reason"].as_str().unwrap().to_owned())
        })
        .collect();
    seen.sort();
    assert_eq!(seen, [(-3, 7, "consumed".to_owned()), (10, 10, "purchased".to_owned())]);
    assert!(server.stop().success());
}

#[test]
fn a_worker_killed_mid_delivery_loses_nothing_the_next_one_sends_it_with_the_same_id() {
    let receiver = Receiver::start();
    let database = postgres_database();
    // Short timeouts and lease, so the message a killed worker held is free again within seconds.
    let quick = |env: &mut Vec<(&'static str, String)>| {
        env.push(("TOLLGATE__OUTBOX__LEASE_SECS", "2".into()));
        env.push(("TOLLGATE__OUTBOUND_WEBHOOKS__TIMEOUT_MS", "1000".into()));
        env.push(("TOLLGATE__NOTIFICATIONS__EMAIL__SMTP__TIMEOUT_MS", "1000".into()));
    };
    let mut hanging = delivering_to(&receiver, database.clone());
    hanging.retain(|(key, _)| *key != "TOLLGATE__OUTBOUND_WEBHOOKS__ENDPOINTS__BACKEND__URL");
    hanging.push(("TOLLGATE__OUTBOUND_WEBHOOKS__ENDPOINTS__BACKEND__URL", format!("{}/slow", receiver.base)));
    quick(&mut hanging);
    let mut first = Server::start(&hanging);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let id = unique("kill");
    runtime.block_on(subscribe(&client, &first.base_url, &id));
    let mine = |path: &str| -> Vec<String> {
        receiver
            .events(path)
            .iter()
            .filter(|e| e["data"]["workspace_id"] == id.as_str())
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    eventually("a webhook in flight to the hanging endpoint", || !mine("slow").is_empty());
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let in_flight = mine("slow");

    // The next worker has a backend that answers: the message the dead one held is sent, with its id.
    let mut answering = delivering_to(&receiver, database);
    quick(&mut answering);
    let second = Server::start(&answering);
    eventually("the held message sent again", || in_flight.iter().all(|held| mine("ok").contains(held)));
    eventually("every webhook of the subscription", || {
        let topics: Vec<String> = receiver
            .events("ok")
            .iter()
            .filter(|e| e["data"]["workspace_id"] == id.as_str())
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect();
        topics.contains(&"billing.subscription.updated".to_owned())
            && topics.contains(&"billing.payment.succeeded".to_owned())
    });
    assert!(!wait_for(&owner_of(&id), 1).is_empty(), "the receipt, whichever worker sent it");
    std::thread::sleep(Duration::from_millis(1500));
    // At least once: the killed worker may have handed the receipt to SMTP before it could mark it sent. Sent
    // again, it is the same email (one Message-ID), which mail systems take once.
    let receipts = messages_to(&owner_of(&id));
    let message_ids: BTreeSet<String> =
        receipts.iter().map(|m| m.parsed().message_id().unwrap_or_default().to_owned()).collect();
    assert_eq!(message_ids.len(), 1, "one receipt, however often sent: {message_ids:?}");
    let delivered = mine("ok");
    let mut unique_ids = delivered.clone();
    unique_ids.sort();
    unique_ids.dedup();
    assert_eq!(delivered.len(), unique_ids.len(), "sent once by the answering worker: {delivered:?}");
    assert!(second.stop().success());
}
