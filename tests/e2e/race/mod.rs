//! The race harness (SPEC §5.8): generated Stripe lifecycles delivered over HTTP to the spawned binary by many
//! concurrent senders, in seeded shuffles with duplicates, must leave every workspace exactly as in-order delivery
//! does — on SQLite and, where races really happen, on PostgreSQL. A kill -9 variant stops the server mid-stream,
//! restarts it on the same database and redelivers.
//!
//! The parked-event sweep is switched off here, so a lost event cannot be repaired after the fact: what is checked
//! is that the ingest transactions themselves serialize per billing subject.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::Value;
use tollgate_e2e::{Server, postgres_database};
use tollgate_loadgen::{Event, Rng, generate, shuffled_with_duplicates, sign, unix_now, workspace_ids};

const KEY: &str = "tg_dev_local_only";
const STRIPE_KEY: &str = "sk_test_race_never_logged_7d3e";
const WEBHOOK_SECRET: &str = "whsec_race_never_logged_51ac";
/// Lifecycles per run: five stories, twelve workspaces each.
const LIFECYCLES: usize = 60;
/// Share of the events delivered twice in a shuffled run.
const DUPLICATE_PERCENT: u64 = 30;

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

fn fresh_database(backend: Backend) -> String {
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join("tollgate-race");
            std::fs::create_dir_all(&dir).unwrap();
            format!("sqlite://{}?mode=rwc", dir.join(format!("{}.db", uuid::Uuid::new_v4().simple())).display())
        }
        Backend::Postgres => postgres_database(),
    }
}

/// A Stripe-backed tollgate on `database` that calls no Stripe API: ingestion needs none. No job runs.
fn start(database: &str) -> Server {
    start_with(database, &[])
}

/// Like [`start`], with `extra` settings on top.
fn start_with(database: &str, extra: &[(&'static str, String)]) -> Server {
    start_logging(database, extra, None)
}

/// Like [`start`], logging each group commit (its size) to `log`, to show the run exercised batches.
fn start_logged(database: &str, log: &Path) -> Server {
    start_logging(database, &[("RUST_LOG", "warn,billing_http::group_commit=debug".to_owned())], Some(log))
}

/// The sizes of the group commits in a server's log.
fn batch_sizes(log: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "group commit")
        .filter_map(|line| line["events"].as_u64())
        .collect()
}

/// Asserts that the log shows transactions shared by several events: the runs test group commit, not one
/// transaction per event.
fn assert_batched(what: &str, log: &Path) {
    let sizes = batch_sizes(log);
    let shared = sizes.iter().filter(|&&n| n > 1).count();
    assert!(shared > 0, "{what}: no group commit held more than one event ({} batches logged)", sizes.len());
}

fn log_path(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("tollgate-race");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{what}-{}.log", uuid::Uuid::new_v4().simple()))
}

fn start_logging(database: &str, extra: &[(&'static str, String)], log: Option<&Path>) -> Server {
    let mut env = vec![
        ("TOLLGATE__DATABASE__URL", database.to_owned()),
        ("TOLLGATE__PROCESSOR", "stripe".to_owned()),
        ("TOLLGATE__SANDBOX__ENABLED", "false".to_owned()),
        ("TOLLGATE__STRIPE__SECRET_KEY", STRIPE_KEY.to_owned()),
        ("TOLLGATE__STRIPE__WEBHOOK_SECRETS", WEBHOOK_SECRET.to_owned()),
        ("TOLLGATE__STRIPE__API_BASE", "http://127.0.0.1:9".to_owned()),
        ("TOLLGATE__RECONCILE__INTERVAL_SECS", "0".to_owned()),
        ("TOLLGATE__RECONCILE__PARKED_SWEEP_SECS", "0".to_owned()),
        ("TOLLGATE__TELEMETRY__LEVEL", "warn".to_owned()),
    ];
    env.extend_from_slice(extra);
    Server::start_logging(&env, log)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn signature(body: &str) -> String {
    sign(WEBHOOK_SECRET, body, unix_now())
}

/// How a delivery run ended.
struct Delivered {
    /// Events the server acknowledged with a 2xx.
    acknowledged: Vec<String>,
    /// Events never acknowledged (the server was killed).
    unacknowledged: Vec<Event>,
}

/// Delivers `stream` to `/webhooks/stripe` with `senders` concurrent senders spread over the `replicas`, like
/// Stripe: a 5xx or a connection error is retried, a 2xx is the end of it. Once `dead` is set, undelivered events
/// are given up on.
async fn deliver(replicas: &[&str], stream: Vec<Event>, senders: usize, dead: Arc<AtomicBool>) -> Delivered {
    let queue = Arc::new(Mutex::new(VecDeque::from(stream)));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let unacked = Arc::new(Mutex::new(Vec::new()));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let urls: Vec<String> = replicas.iter().map(|base_url| format!("{base_url}/webhooks/stripe")).collect();
    let tasks: Vec<_> = (0..senders)
        .map(|sender| {
            let url = urls[sender % urls.len()].clone();
            let (queue, acked, unacked, client, dead) =
                (queue.clone(), acked.clone(), unacked.clone(), client.clone(), dead.clone());
            tokio::spawn(async move {
                loop {
                    let Some(event) = queue.lock().unwrap().pop_front() else { return };
                    let mut attempts = 0;
                    loop {
                        if dead.load(Ordering::SeqCst) {
                            unacked.lock().unwrap().push(event);
                            break;
                        }
                        attempts += 1;
                        let sent = client
                            .post(&url)
                            .header("content-type", "application/json")
                            .header("Stripe-Signature", signature(&event.body))
                            .body(event.body.clone())
                            .send()
                            .await;
                        match sent {
                            Ok(response) if response.status().is_success() => {
                                acked.lock().unwrap().push(event.id.clone());
                                break;
                            }
                            Ok(response) if response.status().is_client_error() => {
                                panic!("{} refused with {}: {:?}", event.id, response.status(), response.text().await)
                            }
                            _ => {
                                assert!(attempts < 50, "{} still not acknowledged after {attempts} attempts", event.id);
                                tokio::time::sleep(Duration::from_millis(20 * attempts)).await;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a sender panicked");
    }
    let acknowledged = std::mem::take(&mut *acked.lock().unwrap());
    let unacknowledged = std::mem::take(&mut *unacked.lock().unwrap());
    Delivered { acknowledged, unacknowledged }
}

async fn get(client: &reqwest::Client, base_url: &str, path: &str) -> (u16, Value) {
    let response = client.get(format!("{base_url}{path}")).bearer_auth(KEY).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Everything the product can see of each workspace's billing state, minus wall-clock stamps of our own writes.
async fn snapshot(base_url: &str, workspaces: &[String]) -> BTreeMap<String, Value> {
    let client = reqwest::Client::new();
    let mut state = BTreeMap::new();
    for id in workspaces {
        let (status, mut workspace) = get(&client, base_url, &format!("/v1/workspaces/{id}")).await;
        assert_eq!(status, 200, "workspace {id}");
        let object = workspace.as_object_mut().unwrap();
        object.remove("created_at");
        object.remove("updated_at");
        // Whether the workspace is in dunning depends only on which invoices are unpaid; the case's id, start
        // and invoice depend on which failure arrived first.
        let in_dunning = object.remove("dunning").is_some_and(|case| !case.is_null());
        object.insert("in_dunning".into(), in_dunning.into());
        let subscription = get(&client, base_url, &format!("/v1/workspaces/{id}/subscription")).await;
        let entitlements = get(&client, base_url, &format!("/v1/workspaces/{id}/entitlements")).await;
        let (status, audit) = get(&client, base_url, &format!("/v1/workspaces/{id}/audit?limit=200")).await;
        assert_eq!(status, 200, "audit of {id}");
        // One entry per event-bound action in any order; `subscription.updated` records the transitions this
        // delivery order happened to observe, so only its existence is order-independent. So do `dunning.*`:
        // a failure seen after its invoice's payment opens no case, while in order it opened and closed one.
        let mut actions = BTreeMap::<String, u32>::new();
        for entry in audit["entries"].as_array().unwrap() {
            let action = entry["action"].as_str().unwrap();
            if action != "subscription.updated" && !action.starts_with("dunning.") {
                *actions.entry(action.to_owned()).or_default() += 1;
            }
        }
        let view = serde_json::json!({
            "workspace": workspace, "subscription": subscription.1, "subscription_status": subscription.0,
            "entitlements": entitlements.1, "audit_counts": actions,
        });
        state.insert(id.clone(), view);
    }
    state
}

/// Rows of a count query on the server's database, read directly.
async fn count(database: &str, sql: &str) -> i64 {
    let db = Database::connect(database).await.unwrap();
    let backend = db.get_database_backend();
    let row = db.query_one_raw(Statement::from_string(backend, sql.to_owned())).await.unwrap().unwrap();
    let n: i64 = row.try_get_by_index(0).unwrap();
    db.close().await.ok();
    n
}

/// The first column of every row of `sql`, as text.
async fn texts(database: &str, sql: &str) -> Vec<String> {
    let db = Database::connect(database).await.unwrap();
    let backend = db.get_database_backend();
    let rows = db.query_all_raw(Statement::from_string(backend, sql.to_owned())).await.unwrap();
    db.close().await.ok();
    rows.iter().map(|row| row.try_get_by_index::<String>(0).unwrap()).collect()
}

/// Parked events whose link exists: events nobody will ever apply. Selected as `columns`.
fn stale_parked(columns: &str) -> String {
    format!(
        "SELECT {columns} FROM parked_events p WHERE EXISTS (SELECT 1 FROM processor_customers c \
         WHERE c.processor = p.processor AND p.link = 'customer:' || c.customer_id) OR EXISTS (SELECT 1 FROM \
         subscriptions s WHERE s.processor = p.processor AND p.link = 'subscription:' || s.id)"
    )
}
/// Inbox rows not settled: a delivery acknowledged without its effect applied.
const UNSETTLED: &str = "SELECT COUNT(*) FROM inbox_events WHERE status IN ('received', 'failed')";

/// Creates `workspaces` through the API, as a product backend would before any checkout.
async fn create_workspaces(base_url: &str, workspaces: &[String]) {
    let client = reqwest::Client::new();
    for id in workspaces {
        let body = serde_json::json!({"name": id, "owner_email": format!("owner@{id}.test")});
        let response =
            client.put(format!("{base_url}/v1/workspaces/{id}")).bearer_auth(KEY).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 201, "creating {id}");
    }
}

/// Runs one statement on the server's database, directly.
async fn execute(database: &str, sql: &str) {
    let db = Database::connect(database).await.unwrap();
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_string(backend, sql.to_owned())).await.unwrap();
    db.close().await.ok();
}

/// The lifecycles, their workspaces created first (as a product backend would, before any checkout).
struct Scenario {
    workspaces: Vec<String>,
    events: Vec<Event>,
}

impl Scenario {
    fn new() -> Self {
        // Periods start 20 days ago, so every subscription is mid-period now, whatever day the test runs.
        let base = unix_now() - 20 * 86_400;
        Self { workspaces: workspace_ids("race", LIFECYCLES), events: generate("race", LIFECYCLES, base) }
    }

    async fn create_workspaces(&self, base_url: &str) {
        create_workspaces(base_url, &self.workspaces).await;
    }

    /// The state in-order delivery by one sender leaves: what every other order must reproduce.
    async fn reference(&self, backend: Backend) -> BTreeMap<String, Value> {
        let database = fresh_database(backend);
        let server = start(&database);
        self.create_workspaces(&server.base_url).await;
        deliver(&[&server.base_url], self.events.clone(), 1, Arc::default()).await;
        let state = snapshot(&server.base_url, &self.workspaces).await;
        assert!(server.stop().success());
        assert_eq!(count(&database, UNSETTLED).await, 0, "in-order delivery left unsettled events");
        state
    }

    /// Checks the server's state against the reference, workspace by workspace, and its database for leftovers.
    async fn assert_converged(&self, what: &str, server: &Server, database: &str, reference: &BTreeMap<String, Value>) {
        let state = snapshot(&server.base_url, &self.workspaces).await;
        let differing: Vec<&String> = self.workspaces.iter().filter(|id| state[*id] != reference[*id]).collect();
        if let Some(first) = differing.first() {
            let parts = ["workspace", "subscription_status", "subscription", "entitlements", "audit_counts"];
            let diff: Vec<String> = parts
                .iter()
                .filter(|part| state[*first][**part] != reference[*first][**part])
                .map(|part| format!("  {part}: got {} expected {}", state[*first][*part], reference[*first][*part]))
                .collect();
            panic!(
                "{what}: {} of {} workspaces differ from in-order delivery: {differing:?}; first, {first}:\n{}",
                differing.len(),
                self.workspaces.len(),
                diff.join("\n")
            );
        }
        let stale = count(database, &stale_parked("COUNT(*)")).await;
        let described = stale_parked("p.event_id || ' under ' || p.link");
        assert_eq!(stale, 0, "{what}: parked events whose link exists: {:?}", texts(database, &described).await);
        assert_eq!(count(database, UNSETTLED).await, 0, "{what}: inbox events left received or failed");
    }

    /// Shuffled, duplicated delivery by `senders` concurrent senders converges to `reference`.
    async fn shuffled_run(&self, backend: Backend, seed: u64, senders: usize, reference: &BTreeMap<String, Value>) {
        let database = fresh_database(backend);
        let log = log_path("shuffled");
        let server = start_logged(&database, &log);
        self.create_workspaces(&server.base_url).await;
        let stream = shuffled_with_duplicates(&self.events, seed, DUPLICATE_PERCENT);
        let deliveries = stream.len();
        let delivered = deliver(&[&server.base_url], stream, senders, Arc::default()).await;
        assert_eq!(delivered.acknowledged.len(), deliveries);
        let what = format!("{backend:?}, seed {seed}, {senders} senders");
        self.assert_converged(&what, &server, &database, reference).await;
        assert_batched(&what, &log);
        assert!(server.stop().success());
    }

    /// Shuffled, duplicated delivery spread over two replicas on one PostgreSQL database converges too.
    async fn two_replica_run(&self, seed: u64, reference: &BTreeMap<String, Value>) {
        let database = fresh_database(Backend::Postgres);
        let (first, second) = (start(&database), start(&database));
        self.create_workspaces(&first.base_url).await;
        let stream = shuffled_with_duplicates(&self.events, seed, DUPLICATE_PERCENT);
        let deliveries = stream.len();
        let replicas = [first.base_url.as_str(), second.base_url.as_str()];
        let delivered = deliver(&replicas, stream, 16, Arc::default()).await;
        assert_eq!(delivered.acknowledged.len(), deliveries);
        let what = format!("two replicas, seed {seed}");
        self.assert_converged(&what, &second, &database, reference).await;
        assert!(first.stop().success() && second.stop().success());
    }

    /// kill -9 once two fifths of the deliveries are in the inbox; restart on the same database, redeliver what was
    /// not acknowledged, then everything once more.
    async fn killed_run(&self, backend: Backend, seed: u64, reference: &BTreeMap<String, Value>) {
        let database = fresh_database(backend);
        let log = log_path("killed");
        let mut server = start_logged(&database, &log);
        self.create_workspaces(&server.base_url).await;
        let stream = shuffled_with_duplicates(&self.events, seed, DUPLICATE_PERCENT);
        let kill_after = stream.len() * 2 / 5;
        let dead = Arc::new(AtomicBool::new(false));
        let sending = {
            let (base_url, dead, stream) = (server.base_url.clone(), dead.clone(), stream.clone());
            tokio::spawn(async move { deliver(&[&base_url], stream, 8, dead).await })
        };
        // Poll the acknowledgements through the inbox: the server is what counts them, not the senders.
        while (count(&database, "SELECT COUNT(*) FROM inbox_events").await as usize) < kill_after {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        server.child.kill().expect("kill -9");
        server.child.wait().unwrap();
        dead.store(true, Ordering::SeqCst);
        let first = sending.await.unwrap();
        assert!(!first.unacknowledged.is_empty(), "the kill came too late to interrupt anything");
        // Deliveries were being batched up to the kill, so it struck while group commits were in flight.
        assert_batched(&format!("{backend:?} before the kill"), &log);
        let server = start(&database);
        let again = deliver(&[&server.base_url], first.unacknowledged, 8, Arc::default()).await;
        assert!(again.unacknowledged.is_empty());
        let mut everything = self.events.clone();
        Rng(seed ^ 0xFFFF).shuffle(&mut everything);
        deliver(&[&server.base_url], everything, 8, Arc::default()).await;
        self.assert_converged(&format!("{backend:?}, killed at seed {seed}"), &server, &database, reference).await;
        assert!(server.stop().success());
    }
}

fn races(backend: Backend, runs: &[(u64, usize)]) {
    runtime().block_on(async {
        let scenario = Scenario::new();
        let reference = scenario.reference(backend).await;
        for &(seed, senders) in runs {
            scenario.shuffled_run(backend, seed, senders, &reference).await;
        }
    });
}

#[test]
fn racing_deliveries_converge_on_postgres() {
    races(Backend::Postgres, &[(1, 8), (2, 8), (3, 8), (4, 32)]);
}

#[test]
fn racing_deliveries_to_two_replicas_on_one_database_converge() {
    runtime().block_on(async {
        let scenario = Scenario::new();
        let reference = scenario.reference(Backend::Postgres).await;
        for seed in [21, 22] {
            scenario.two_replica_run(seed, &reference).await;
        }
    });
}

#[test]
fn racing_deliveries_converge_on_sqlite() {
    races(Backend::Sqlite, &[(1, 8), (2, 8)]);
}

#[test]
fn a_kill_9_mid_stream_loses_nothing_and_applies_nothing_twice_on_postgres() {
    runtime().block_on(async {
        let scenario = Scenario::new();
        let reference = scenario.reference(Backend::Postgres).await;
        scenario.killed_run(Backend::Postgres, 11, &reference).await;
    });
}

#[test]
fn a_kill_9_mid_stream_loses_nothing_and_applies_nothing_twice_on_sqlite() {
    runtime().block_on(async {
        let scenario = Scenario::new();
        let reference = scenario.reference(Backend::Sqlite).await;
        scenario.killed_run(Backend::Sqlite, 12, &reference).await;
    });
}

/// Two `tollgate` processes sweeping at once apply each stale parked event exactly once. The stale state is what
/// the race before the per-subject lock left: payments parked under customers whose links were committed later
/// without taking them.
#[test]
fn two_replicas_sweep_stale_parked_events_exactly_once() {
    runtime().block_on(async {
        let database = fresh_database(Backend::Postgres);
        let workspaces = workspace_ids("sweep", 40);
        let payments: Vec<Event> = workspaces
            .iter()
            .map(|ws| {
                let id = format!("evt_{ws}_pi");
                let object = serde_json::json!({
                    "id": format!("pi_{ws}"), "object": "payment_intent", "customer": format!("cus_{ws}"),
                    "amount": 900, "amount_received": 900, "currency": "usd", "status": "succeeded",
                });
                let body = serde_json::json!({
                    "id": id, "object": "event", "created": unix_now() - 60, "type": "payment_intent.succeeded",
                    "data": {"object": object}, "livemode": false,
                })
                .to_string();
                Event { id, body }
            })
            .collect();
        let server = start(&database);
        create_workspaces(&server.base_url, &workspaces).await;
        deliver(&[&server.base_url], payments.clone(), 8, Arc::default()).await;
        assert!(server.stop().success());
        assert_eq!(count(&database, "SELECT COUNT(*) FROM parked_events").await, 40, "no customer was linked");
        for ws in &workspaces {
            execute(
                &database,
                &format!(
                    "INSERT INTO processor_customers (processor, customer_id, workspace_id, created_at) \
                     VALUES ('stripe', 'cus_{ws}', '{ws}', CURRENT_TIMESTAMP)"
                ),
            )
            .await;
        }
        assert_eq!(count(&database, &stale_parked("COUNT(*)")).await, 40);

        let sweeping = [("TOLLGATE__RECONCILE__PARKED_SWEEP_SECS", "1".to_owned())];
        let (first, second) = (start_with(&database, &sweeping), start_with(&database, &sweeping));
        let started = std::time::Instant::now();
        while count(&database, "SELECT COUNT(*) FROM parked_events").await > 0 {
            assert!(started.elapsed() < Duration::from_secs(30), "the sweep did not apply the parked events");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let applied = "SELECT COUNT(*) FROM audit_log WHERE action = 'payment_intent.succeeded'";
        assert_eq!(count(&database, applied).await, 40, "each parked payment applied exactly once");
        assert_eq!(count(&database, "SELECT COUNT(*) FROM inbox_events WHERE status = 'processed'").await, 40);
        // Redelivered after the sweep: recognized, applied no second time.
        deliver(&[&first.base_url, &second.base_url], payments, 8, Arc::default()).await;
        assert_eq!(count(&database, applied).await, 40);
        assert!(first.stop().success() && second.stop().success());
    });
}

/// The entitlement cache of one replica learns of a change made through another through the database: with
/// entries that would live a minute, the plan change is still seen within the default staleness bound (1 s).
#[test]
fn a_plan_change_through_one_replica_is_seen_by_a_check_on_the_other() {
    runtime().block_on(async {
        let database = fresh_database(Backend::Postgres);
        let long_lived = [("TOLLGATE__CACHE__MAX_STALENESS_MS", "60000".to_owned())];
        let (first, second) = (start_with(&database, &long_lived), start_with(&database, &long_lived));
        // The third generated lifecycle starts on hobby and changes to pro.
        let workspace = workspace_ids("replicas", 3).pop().unwrap();
        let events: Vec<Event> = generate("replicas", 3, unix_now() - 20 * 86_400)
            .into_iter()
            .filter(|e| e.id.starts_with(&format!("evt_{workspace}_")))
            .collect();
        create_workspaces(&first.base_url, std::slice::from_ref(&workspace)).await;
        deliver(&[&first.base_url], events[..3].to_vec(), 1, Arc::default()).await;
        let client = reqwest::Client::new();
        let path = format!("/v1/workspaces/{workspace}/entitlements");
        for _ in 0..3 {
            let (status, seen) = get(&client, &second.base_url, &path).await;
            assert_eq!((status, seen["plan"].as_str()), (200, Some("hobby")), "{seen}");
        }
        let changed = deliver(&[&first.base_url], vec![events[3].clone()], 1, Arc::default()).await;
        assert_eq!(changed.acknowledged.len(), 1);
        let acknowledged = std::time::Instant::now();
        loop {
            let (_, seen) = get(&client, &second.base_url, &path).await;
            if seen["plan"] == "pro" {
                break;
            }
            assert!(acknowledged.elapsed() < Duration::from_secs(1), "the other replica still says {seen}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(first.stop().success() && second.stop().success());
    });
}
