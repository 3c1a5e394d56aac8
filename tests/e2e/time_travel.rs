//! The test clock through the binary: a trial's reminder on day 11 (once, at a real SMTP server) and the fall to
//! free at exactly day 14 — on SQLite, and on PostgreSQL with two replicas advancing one shared clock at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tollgate_e2e::mailbox::{messages_to, wait_for};
use tollgate_e2e::{Server, postgres_database};

use crate::KEY;
use crate::outbox::emailing_the_test_server;

fn on_a_test_clock(database: String) -> Vec<(&'static str, String)> {
    let mut env = emailing_the_test_server(database);
    env.push(("TOLLGATE__CLOCK__MODE", "test".into()));
    env
}

pub(crate) async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, url).bearer_auth(KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn clock_now(client: &reqwest::Client, base: &str) -> DateTime<Utc> {
    let (status, clock) = call(client, reqwest::Method::GET, format!("{base}/v1/admin/clock"), None).await;
    assert_eq!((status, clock["mode"].as_str()), (200, Some("test")), "{clock}");
    clock["now"].as_str().unwrap().parse().unwrap()
}

pub(crate) async fn advance_to(client: &reqwest::Client, base: &str, to: DateTime<Utc>) -> Value {
    let (status, report) =
        call(client, reqwest::Method::POST, format!("{base}/v1/admin/clock/advance"), Some(json!({"to": to}))).await;
    assert_eq!(status, 200, "{report}");
    report
}

pub(crate) async fn plan(client: &reqwest::Client, base: &str, id: &str) -> (String, String) {
    let (_, e) = call(client, reqwest::Method::GET, format!("{base}/v1/workspaces/{id}/entitlements"), None).await;
    (e["plan"].as_str().unwrap_or("").to_owned(), e["plan_source"].as_str().unwrap_or("").to_owned())
}

/// Creates a workspace and starts its 14-day trial; returns the owner's address and when the trial ends.
async fn start_trial(client: &reqwest::Client, base: &str, id: &str) -> (String, DateTime<Utc>) {
    let owner = format!("{id}@trials.test");
    let body = json!({"name": format!("Team {id}"), "owner_email": owner});
    let (status, _) = call(client, reqwest::Method::PUT, format!("{base}/v1/workspaces/{id}"), Some(body)).await;
    assert_eq!(status, 201);
    let (status, workspace) =
        call(client, reqwest::Method::POST, format!("{base}/v1/workspaces/{id}/trial"), None).await;
    assert_eq!(status, 201, "{workspace}");
    (owner, workspace["trial_ends_at"].as_str().unwrap().parse().unwrap())
}

fn days(n: i64) -> chrono::Duration {
    chrono::Duration::days(n)
}

#[test]
fn a_trial_is_reminded_on_day_11_and_falls_to_free_on_day_14_on_a_test_clock() {
    let db = std::env::temp_dir().join(format!("tollgate-e2e-{}.db", uuid::Uuid::new_v4().simple()));
    let server = Server::start(&on_a_test_clock(format!("sqlite://{}?mode=rwc", db.display())));
    let base = server.base_url.clone();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let id = format!("trial{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    runtime.block_on(async {
        let (owner, ends_at) = start_trial(&client, &base, &id).await;
        let started = clock_now(&client, &base).await;
        assert_eq!(plan(&client, &base, &id).await, ("pro".into(), "trial".into()));

        let report = advance_to(&client, &base, started + days(10)).await;
        assert!(report["stops"].as_u64().unwrap() >= 40, "a stop every six hours: {report}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(messages_to(&owner).is_empty(), "no reminder before day 11");

        advance_to(&client, &base, started + days(11) + chrono::Duration::minutes(5)).await;
        let reminders = wait_for(&owner, 1);
        assert_eq!(reminders.len(), 1, "the reminder on day 11");
        let subject = reminders[0].parsed().subject().map(str::to_owned);
        assert_eq!(subject.as_deref(), Some(format!("Your trial of Pro for Team {id} ends in 3 days").as_str()));

        advance_to(&client, &base, ends_at - chrono::Duration::minutes(1)).await;
        assert_eq!(plan(&client, &base, &id).await, ("pro".into(), "trial".into()), "a minute before the end");
        advance_to(&client, &base, ends_at + chrono::Duration::seconds(1)).await;
        assert_eq!(plan(&client, &base, &id).await, ("free".into(), "default".into()), "free once it ended");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(messages_to(&owner).len(), 1, "reminded once, through every stop after day 11");

        let now = clock_now(&client, &base).await;
        let (status, problem) = call(
            &client,
            reqwest::Method::POST,
            format!("{base}/v1/admin/clock/advance"),
            Some(json!({"to": now - days(1)})),
        )
        .await;
        assert_eq!((status, problem["code"].as_str()), (409, Some("clock_not_forward")), "{problem}");
        let (status, problem) = call(
            &client,
            reqwest::Method::POST,
            format!("{base}/v1/admin/clock/advance"),
            Some(json!({"days": 1, "hours": 2})),
        )
        .await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["errors"][0]["field"], "to", "{problem}");
    });
    assert!(server.stop().success());
}

#[test]
fn two_replicas_on_postgres_share_one_test_clock_and_remind_once() {
    let env = on_a_test_clock(postgres_database());
    let first = Server::start(&env);
    let second = Server::start(&env);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let id = format!("pair{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    runtime.block_on(async {
        let (owner, ends_at) = start_trial(&client, &first.base_url, &id).await;
        let started = clock_now(&client, &first.base_url).await;
        // Both replicas advance to day 11 at once: each hour is a stop once, the clock never goes back, and the
        // reminder is sent once.
        let to = started + days(11) + chrono::Duration::minutes(5);
        let (a, b) = tokio::join!(advance_to(&client, &first.base_url, to), advance_to(&client, &second.base_url, to));
        assert!(a["now"].is_string() && b["now"].is_string());
        assert_eq!(wait_for(&owner, 1).len(), 1);
        // The other replica follows the shared clock within its sync interval.
        advance_to(&client, &first.base_url, ends_at + chrono::Duration::seconds(1)).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(clock_now(&client, &second.base_url).await >= ends_at);
        assert_eq!(plan(&client, &second.base_url, &id).await, ("free".into(), "default".into()));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(messages_to(&owner).len(), 1, "one reminder though two replicas ran the jobs");
    });
    assert!(first.stop().success());
    assert!(second.stop().success());
}
