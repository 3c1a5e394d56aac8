//! SPEC §5: each event applied exactly once under concurrent duplicates; bad deliveries get 4xx and store nothing.

use serde_json::Value;

use crate::helpers::{Backend, now, on_both_databases, sign, spawn_app, subscription_event, subscription_update};

async fn concurrent_duplicates(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    app.checkout("acme", "pro").await;
    let customer = app.customer_of("acme").await;
    let body = subscription_event("evt_dup_1", &customer, "sub_dup_1", now());
    let signature = sign(&body, now());
    let audit_before = app.count("audit_log").await;

    let deliveries = (0..10).map(|_| app.post_webhook(&body, Some(&signature)));
    let responses = futures::future::join_all(deliveries).await;
    let mut outcomes = Vec::new();
    for response in responses {
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        outcomes.push(body["outcome"].as_str().unwrap().to_owned());
    }
    assert_eq!(outcomes.iter().filter(|o| *o == "applied").count(), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| *o == "duplicate").count(), 9, "{outcomes:?}");
    assert_eq!(app.count("inbox_events").await, 1);
    assert_eq!(app.count("subscriptions").await, 1);
    assert_eq!(app.count("audit_log").await, audit_before + 1, "one state change, one audit entry");
    assert_eq!(app.json_of("/v1/workspaces/acme").await["plan"], "pro");
}
on_both_databases!(ten_concurrent_deliveries_change_state_once, concurrent_duplicates);

async fn rejected_deliveries(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    let body = subscription_event("evt_bad_1", "cus_x", "sub_x", now());
    let cases: Vec<(&str, Option<String>, String)> = vec![
        ("no signature", None, body.clone()),
        ("bad signature", Some(sign(&body, now()).replace("v1=", "v1=00")), body.clone()),
        ("other body", Some(sign(&body, now())), body.replace("active", "past_due")),
        ("stale timestamp", Some(sign(&body, now() - 301)), body.clone()),
        ("malformed json", Some(sign("{not json", now())), "{not json".to_owned()),
    ];
    for (case, signature, payload) in cases {
        let response = app.post_webhook(&payload, signature.as_deref()).await;
        assert_eq!(response.status(), 400, "{case}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{case}");
        let problem: Value = response.json().await.unwrap();
        assert!(problem["code"].as_str().unwrap().starts_with("webhook_"), "{case}: {problem}");
    }
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(1024 * 1024));
    let response = app.post_webhook(&huge, Some(&sign(&huge, now()))).await;
    assert_eq!(response.status(), 413);
    assert_eq!(app.count("inbox_events").await, 0);
    assert_eq!(app.count("parked_events").await, 0);
}
on_both_databases!(bad_deliveries_get_4xx_and_store_nothing, rejected_deliveries);

async fn early_events_park(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    // An event for a customer Tollgate does not know yet is recorded and parked, not dropped.
    let body = subscription_event("evt_early_1", "cus_unknown", "sub_early", now());
    let response = app.post_webhook(&body, Some(&sign(&body, now()))).await;
    assert_eq!(response.status(), 200);
    let outcome: Value = response.json().await.unwrap();
    assert_eq!(outcome["outcome"], "parked");
    assert_eq!(app.count("parked_events").await, 1);
}
on_both_databases!(an_event_before_its_customer_is_parked, early_events_park);

async fn concurrent_different_events(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    app.checkout("acme", "pro").await;
    let customer = app.customer_of("acme").await;
    let t0 = now() - 100;
    // Eight snapshots of one subscription, delivered all at once: compare-and-set conflicts must be retried, not
    // lost, and the newest snapshot (past_due at t0 + 7) must win whatever the commit order.
    let statuses = ["active", "past_due", "active", "past_due", "active", "active", "active", "past_due"];
    let bodies: Vec<String> = statuses
        .iter()
        .enumerate()
        .map(|(i, status)| {
            let kind = if i == 0 { "customer.subscription.created" } else { "customer.subscription.updated" };
            subscription_update(&format!("evt_race_{i}"), kind, &customer, "sub_race", t0 + i as i64, status)
        })
        .collect();
    let signature_time = now();
    let signatures: Vec<String> = bodies.iter().map(|body| sign(body, signature_time)).collect();
    let deliveries: Vec<_> =
        bodies.iter().zip(&signatures).map(|(body, signature)| app.post_webhook(body, Some(signature))).collect();
    for response in futures::future::join_all(deliveries).await {
        assert_eq!(response.status(), 200);
        let outcome: Value = response.json().await.unwrap();
        assert_eq!(outcome["outcome"], "applied", "{outcome}");
    }
    assert_eq!(app.count("inbox_events").await, statuses.len() as i64);
    let subscription = app.json_of("/v1/workspaces/acme/subscription").await;
    assert_eq!(subscription["status"], "past_due");
    assert_eq!(subscription["id"], "sub_race");
}
on_both_databases!(concurrent_events_for_one_subscription_converge, concurrent_different_events);

/// Concurrent deliveries, each with its own request id (group commit batches them on PostgreSQL): what each event
/// causes — its audit entry and its outbox message — carries the id of the request that delivered it.
async fn request_ids_follow_their_events(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut deliveries = Vec::new();
    for i in 0..6 {
        let workspace = format!("rid-{i}");
        app.put_workspace(&workspace).await;
        app.checkout(&workspace, "pro").await;
        let customer = app.customer_of(&workspace).await;
        deliveries.push((
            format!("evt_rid_{i}"),
            subscription_event(&format!("evt_rid_{i}"), &customer, &format!("sub_rid_{i}"), now()),
        ));
    }
    let signatures: Vec<String> = deliveries.iter().map(|(_, body)| sign(body, now())).collect();
    let sent = deliveries.iter().zip(&signatures).map(|((_, body), signature)| app.post_webhook(body, Some(signature)));
    let responses = futures::future::join_all(sent).await;
    for ((event_id, _), response) in deliveries.iter().zip(responses) {
        assert_eq!(response.status(), 200);
        let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        let outbox = app
            .texts(&format!("SELECT COALESCE(request_id, '') FROM outbox WHERE dedup_key LIKE '%:{event_id}'"))
            .await;
        assert!(!outbox.is_empty(), "{event_id} caused no outbox message");
        assert!(outbox.iter().all(|id| *id == request_id), "{event_id}: {outbox:?} vs {request_id}");
        let audit = app
            .texts(&format!(
                "SELECT COALESCE(request_id, '') FROM audit_log WHERE action = 'subscription.created' \
                 AND actor LIKE '%{event_id}%'"
            ))
            .await;
        assert_eq!(audit, vec![request_id.clone()], "{event_id}");
    }
}
on_both_databases!(the_delivering_request_id_reaches_audit_and_outbox, request_ids_follow_their_events);

/// The sandbox's hosted page delivers its events itself: what they cause carries the page request's id.
#[tokio::test]
async fn a_hosted_payment_stamps_its_request_id_on_what_it_causes() {
    let app = spawn_app(Backend::Sqlite).await;
    app.put_workspace("acme").await;
    let session = app.checkout("acme", "pro").await;
    let paid = app.press(session["session_id"].as_str().unwrap(), "pay").await;
    assert_eq!(paid.status(), 200);
    let request_id = paid.headers()["x-request-id"].to_str().unwrap().to_owned();
    let caused = app.texts("SELECT COALESCE(request_id, '') FROM outbox WHERE dedup_key LIKE 'webhook:%'").await;
    assert!(!caused.is_empty());
    assert!(caused.iter().all(|id| *id == request_id), "{caused:?} vs {request_id}");
}
