//! Auth and SPEC §9: every error is problem+json naming what was wrong, 4xx for the caller's mistakes.

use serde_json::{Value, json};

use crate::helpers::{Backend, DEV_KEY, READ_KEY, spawn_app};

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: Value = response.json().await.unwrap();
    for member in ["type", "title", "status", "detail", "code"] {
        assert!(body.get(member).is_some(), "problem without {member}: {body}");
    }
    assert_eq!(body["status"], status);
    body
}

#[tokio::test]
async fn requests_without_a_valid_key_get_401() {
    let app = spawn_app(Backend::Sqlite).await;
    let url = app.url("/v1/plans");
    let missing = problem(app.client.get(&url).send().await.unwrap(), 401).await;
    assert_eq!(missing["code"], "unauthorized");
    let wrong = problem(app.client.get(&url).bearer_auth("tg_wrong").send().await.unwrap(), 401).await;
    assert!(wrong["detail"].as_str().unwrap().contains("not valid"));
    let basic = app.client.get(&url).header("authorization", "Basic abc").send().await.unwrap();
    problem(basic, 401).await;
    for path in ["/v1/workspaces/acme", "/v1/workspaces/acme/entitlements", "/v1/workspaces/acme/audit"] {
        assert_eq!(app.client.get(app.url(path)).send().await.unwrap().status(), 401, "{path}");
    }
}

#[tokio::test]
async fn a_read_only_key_cannot_write() {
    let app = spawn_app(Backend::Sqlite).await;
    let body = json!({"name": "Acme", "owner_email": "a@acme.test"});
    let response =
        app.client.put(app.url("/v1/workspaces/acme")).bearer_auth(READ_KEY).json(&body).send().await.unwrap();
    let body = problem(response, 403).await;
    assert_eq!(body["code"], "insufficient_scope");
    assert_eq!(app.client.get(app.url("/v1/plans")).bearer_auth(READ_KEY).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn bad_input_is_named_and_changes_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let put = |id: &str, body: String, content_type: &str| {
        app.client
            .put(app.url(&format!("/v1/workspaces/{id}")))
            .bearer_auth(DEV_KEY)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let invalid = problem(
        put("acme", json!({"name": "", "owner_email": "nope"}).to_string(), "application/json").await.unwrap(),
        400,
    )
    .await;
    let fields: Vec<&str> =
        invalid["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "owner_email"]);
    let unknown = problem(
        put("acme", json!({"name": "A", "owner_email": "a@b.co", "plan": "pro"}).to_string(), "application/json")
            .await
            .unwrap(),
        400,
    )
    .await;
    assert_eq!(unknown["errors"][0]["field"], "plan");
    let bad_id = problem(
        put("a%2Fb", json!({"name": "A", "owner_email": "a@b.co"}).to_string(), "application/json").await.unwrap(),
        400,
    )
    .await;
    assert_eq!(bad_id["errors"][0]["field"], "id");
    problem(put("acme", "{\"name\":".into(), "application/json").await.unwrap(), 400).await;
    problem(put("acme", "name=A".into(), "application/x-www-form-urlencoded").await.unwrap(), 415).await;
    let big = json!({"name": "x".repeat(70_000), "owner_email": "a@b.co"}).to_string();
    problem(put("acme", big, "application/json").await.unwrap(), 413).await;
    assert_eq!(app.count("workspaces").await, 0, "nothing was stored");

    let missing = problem(app.get("/v1/workspaces/ghost").await, 404).await;
    assert_eq!(missing["code"], "workspace_not_found");
    problem(app.get("/v1/nothing-here").await, 404).await;
    let delete = app.client.delete(app.url("/v1/workspaces/acme")).bearer_auth(DEV_KEY).send().await.unwrap();
    assert_eq!(delete.headers()["allow"], "PUT, GET");
    let not_allowed = problem(delete, 405).await;
    assert_eq!(not_allowed["code"], "method_not_allowed");

    app.put_workspace("acme").await;
    let unknown_plan = problem(app.post_json("/v1/workspaces/acme/checkout", json!({"plan": "gold"})).await, 400).await;
    assert_eq!(unknown_plan["valid_plans"], json!(["free", "hobby", "pro", "credits10"]));
    assert_eq!(unknown_plan["errors"][0]["field"], "plan");
    let bad_url = problem(
        app.post_json("/v1/workspaces/acme/checkout", json!({"plan": "pro", "success_url": "javascript:alert(1)"}))
            .await,
        400,
    )
    .await;
    assert_eq!(bad_url["errors"][0]["field"], "success_url");
    let free = problem(app.post_json("/v1/workspaces/acme/checkout", json!({"plan": "free"})).await, 400).await;
    assert_eq!(free["errors"][0]["field"], "plan");
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_checkout() {
    let app = spawn_app(Backend::Sqlite).await;
    app.put_workspace("acme").await;
    let start = || {
        app.client
            .post(app.url("/v1/workspaces/acme/checkout"))
            .bearer_auth(DEV_KEY)
            .header("Idempotency-Key", "order-42")
            .json(&json!({"plan": "pro"}))
            .send()
    };
    let first: Value = start().await.unwrap().json().await.unwrap();
    let second: Value = start().await.unwrap().json().await.unwrap();
    assert_eq!(first["session_id"], second["session_id"]);
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app(Backend::Sqlite).await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"));
    let ready: Value = app.client.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["database"], "ok");
}
