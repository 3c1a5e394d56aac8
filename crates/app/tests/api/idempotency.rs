//! `Idempotency-Key` on state-changing POSTs (SPEC §9): a retry gets the first answer byte for byte and causes no
//! second effect; the same key with another body is refused; concurrent duplicates make one effect; a 5xx is not
//! kept.

use serde_json::{Value, json};

use crate::helpers::{Backend, DEV_KEY, TestApp, on_both_databases, spawn_app, spawn_stripe_app};

async fn post_keyed(app: &TestApp, path: &str, key: &str, body: Value) -> reqwest::Response {
    app.client.post(app.url(path)).bearer_auth(DEV_KEY).header("Idempotency-Key", key).json(&body).send().await.unwrap()
}

fn replayed(response: &reqwest::Response) -> bool {
    response.headers().get("idempotent-replayed").is_some_and(|v| v == "true")
}

async fn checkout_is_replayed_byte_for_byte(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    let first = post_keyed(&app, "/v1/workspaces/acme/checkout", "order-42", json!({"plan": "pro"})).await;
    assert_eq!(first.status(), 201);
    assert!(!replayed(&first));
    let first_type = first.headers()["content-type"].clone();
    let first_body = first.bytes().await.unwrap();

    let again = post_keyed(&app, "/v1/workspaces/acme/checkout", "order-42", json!({"plan": "pro"})).await;
    assert_eq!(again.status(), 201);
    assert!(replayed(&again));
    assert_eq!(again.headers()["content-type"], first_type);
    assert_eq!(again.bytes().await.unwrap(), first_body, "the replay is the first answer, byte for byte");
    let started = app.audit_actions("acme").await.iter().filter(|a| *a == "checkout.started").count();
    assert_eq!(started, 1, "the retry had no effect of its own");

    let other = post_keyed(&app, "/v1/workspaces/acme/checkout", "order-42", json!({"plan": "pro_yearly"})).await;
    assert_eq!(other.status(), 422);
    let problem: Value = other.json().await.unwrap();
    assert_eq!(problem["code"], "idempotency_key_reused");
    // Without a key each request is its own.
    let unkeyed = app.checkout("acme", "pro").await;
    assert!(unkeyed["session_id"].is_string());
}
on_both_databases!(
    a_retried_checkout_gets_the_first_answer_and_another_body_is_refused,
    checkout_is_replayed_byte_for_byte
);

async fn errors_are_kept_too(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    let first = post_keyed(&app, "/v1/workspaces/acme/trial", "trial-1", json!({})).await;
    assert_eq!(first.status(), 201);
    let first_body = first.bytes().await.unwrap();
    // The retry is told what the first request was told, not that the trial was used (that is a new key's 409).
    let again = post_keyed(&app, "/v1/workspaces/acme/trial", "trial-1", json!({})).await;
    assert_eq!((again.status().as_u16(), replayed(&again)), (201, true));
    assert_eq!(again.bytes().await.unwrap(), first_body);
    let fresh = post_keyed(&app, "/v1/workspaces/acme/trial", "trial-2", json!({})).await;
    assert_eq!(fresh.status(), 409);
    let fresh_body = fresh.bytes().await.unwrap();
    let replay = post_keyed(&app, "/v1/workspaces/acme/trial", "trial-2", json!({})).await;
    assert_eq!((replay.status().as_u16(), replayed(&replay)), (409, true));
    assert_eq!(replay.bytes().await.unwrap(), fresh_body);
}
on_both_databases!(a_client_error_is_replayed_like_a_success, errors_are_kept_too);

#[tokio::test]
async fn a_bad_key_is_named_and_an_unauthenticated_request_keeps_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    app.put_workspace("acme").await;
    for bad in ["", "has space", &"k".repeat(256)] {
        let response = post_keyed(&app, "/v1/workspaces/acme/checkout", bad, json!({"plan": "pro"})).await;
        assert_eq!(response.status(), 400, "{bad:?}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");
    }
    let anonymous = app
        .client
        .post(app.url("/v1/workspaces/acme/checkout"))
        .header("Idempotency-Key", "order-7")
        .json(&json!({"plan": "pro"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let real = post_keyed(&app, "/v1/workspaces/acme/checkout", "order-7", json!({"plan": "pro"})).await;
    assert_eq!((real.status().as_u16(), replayed(&real)), (201, false), "the 401 was not kept under the key");
    assert_eq!(app.count("api_idempotency_keys").await, 1);

    // A 404 is not kept either: once the workspace exists, the same key runs.
    let early = post_keyed(&app, "/v1/workspaces/later/checkout", "order-8", json!({"plan": "pro"})).await;
    assert_eq!(early.status(), 404);
    app.put_workspace("later").await;
    let retried = post_keyed(&app, "/v1/workspaces/later/checkout", "order-8", json!({"plan": "pro"})).await;
    assert_eq!((retried.status().as_u16(), replayed(&retried)), (201, false));
}

/// Ten concurrent requests with one key on PostgreSQL: one runs, the others wait for its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_make_one_checkout_and_get_identical_answers() {
    let app = spawn_app(Backend::Postgres).await;
    app.put_workspace("acme").await;
    let requests = (0..10).map(|_| post_keyed(&app, "/v1/workspaces/acme/checkout", "burst", json!({"plan": "pro"})));
    let responses = futures::future::join_all(requests).await;
    let mut bodies = Vec::new();
    let mut replays = 0;
    for response in responses {
        assert_eq!(response.status(), 201);
        replays += usize::from(replayed(&response));
        bodies.push(response.bytes().await.unwrap());
    }
    assert_eq!(replays, 9, "one request ran; nine were answered from it");
    assert!(bodies.windows(2).all(|pair| pair[0] == pair[1]), "every answer is the same bytes");
    let started = app.audit_actions("acme").await.iter().filter(|a| *a == "checkout.started").count();
    assert_eq!(started, 1);
}

/// The processor is down: the 503 changed nothing, so it is not kept and a retry with the key runs again.
#[tokio::test]
async fn a_server_error_is_not_kept() {
    let app = spawn_stripe_app(Backend::Sqlite).await;
    app.put_workspace("acme").await;
    for _ in 0..2 {
        let response = post_keyed(&app, "/v1/workspaces/acme/checkout", "order-9", json!({"plan": "pro"})).await;
        assert_eq!(response.status(), 503);
        assert!(!replayed(&response), "a 5xx is never replayed");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "processor_unavailable");
    }
    assert_eq!(app.count("api_idempotency_keys").await, 0);
}
