//! Consuming credits: never below zero (409 with the balance), each key once, bad input named; 20 concurrent
//! consumers of the last 5 credits → exactly 5 succeed; the balance always equals the sum of the ledger.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, on_both_databases, spawn_app};

async fn with_ten_credits(backend: Backend) -> TestApp {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    let session = app.checkout("acme", "credits10").await;
    assert_eq!(app.press(session["session_id"].as_str().unwrap(), "pay").await.status(), 200);
    assert_eq!(app.json_of("/v1/workspaces/acme").await["credit_balance"], 10);
    app
}

async fn consume(app: &TestApp, amount: Value, key: &str) -> (u16, Value) {
    let body = json!({"amount": amount, "idempotency_key": key});
    let response = app.post_json("/v1/workspaces/acme/credits/consume", body).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The ledger's sum, read directly: what the balance must equal.
async fn ledger_sum(app: &TestApp) -> i64 {
    let sum =
        app.texts("SELECT CAST(COALESCE(SUM(amount), 0) AS TEXT) FROM credit_ledger WHERE workspace_id = 'acme'").await;
    sum[0].parse().unwrap()
}

async fn consumes_once_and_never_below_zero(backend: Backend) {
    let app = with_ten_credits(backend).await;
    assert_eq!(consume(&app, json!(3), "order-1").await, (200, json!({"outcome": "consumed", "balance": 7})));
    assert_eq!(consume(&app, json!(3), "order-1").await, (200, json!({"outcome": "already_consumed", "balance": 7})));
    let (status, problem) = consume(&app, json!(8), "order-2").await;
    assert_eq!(
        (status, problem["code"].as_str(), problem["balance"].as_i64()),
        (409, Some("insufficient_credits"), Some(7))
    );
    assert_eq!(app.json_of("/v1/workspaces/acme").await["credit_balance"], 7);
    assert_eq!(ledger_sum(&app).await, 7);

    for (amount, key, field) in [
        (json!(0), "k", "amount"),
        (json!(-4), "k", "amount"),
        (json!("3"), "k", "amount"),
        (json!(1.5), "k", "amount"),
        (json!(1), "", "idempotency_key"),
        (json!(1), &"k".repeat(129) as &str, "idempotency_key"),
    ] {
        let (status, problem) = consume(&app, amount.clone(), key).await;
        assert_eq!(status, 400, "{amount} {key:?}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{amount} {key:?}: {problem}");
    }
    assert_eq!(app.json_of("/v1/workspaces/acme").await["credit_balance"], 7, "nothing changed");
    let audit = app.audit_actions("acme").await;
    assert_eq!(audit.iter().filter(|a| *a == "credits.consumed").count(), 1);
    let ghost =
        app.post_json("/v1/workspaces/ghost/credits/consume", json!({"amount": 1, "idempotency_key": "k"})).await;
    assert_eq!(ghost.status(), 404);
}
on_both_databases!(credits_are_consumed_once_per_key_and_never_below_zero, consumes_once_and_never_below_zero);

async fn race_for_the_last_five(backend: Backend) {
    let app = with_ten_credits(backend).await;
    assert_eq!(consume(&app, json!(5), "setup").await.0, 200);
    let racers = (0..20).map(|i| {
        let app = &app;
        async move { consume(app, json!(1), &format!("racer-{i}")).await }
    });
    let answers = futures::future::join_all(racers).await;
    let consumed = answers.iter().filter(|(status, _)| *status == 200).count();
    let refused =
        answers.iter().filter(|(status, body)| *status == 409 && body["code"] == "insufficient_credits").count();
    assert_eq!((consumed, refused), (5, 15), "{answers:?}");
    assert_eq!(app.json_of("/v1/workspaces/acme").await["credit_balance"], 0);
    assert_eq!(ledger_sum(&app).await, 0, "the balance is the sum of the ledger");
}
on_both_databases!(twenty_concurrent_consumers_of_the_last_five_credits_get_exactly_five, race_for_the_last_five);

#[tokio::test]
async fn a_consumption_announces_itself_with_the_request_that_made_it() {
    let app = with_ten_credits(Backend::Sqlite).await;
    let body = json!({"amount": 2, "idempotency_key": "order-rid"});
    let response = app.post_json("/v1/workspaces/acme/credits/consume", body).await;
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let announced = app
        .texts("SELECT COALESCE(request_id, '') FROM outbox WHERE dedup_key = 'webhook:credits:consume:order-rid'")
        .await;
    assert_eq!(announced, vec![request_id.clone()]);
    let audited = app.texts("SELECT COALESCE(request_id, '') FROM audit_log WHERE action = 'credits.consumed'").await;
    assert_eq!(audited, vec![request_id]);
}
