//! Usage metering over HTTP: a batch answered event by event, duplicates across batches, a period's usage with
//! its cost, usage-backed limits, and the atomic check-and-consume — 50 concurrent consumers of the last 10 units
//! get exactly 10.

use chrono::{Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::helpers::{Backend, READ_KEY, TestApp, on_both_databases, spawn_app};

fn ago(minutes: i64) -> String {
    (Utc::now() - Duration::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn event(id: &str, workspace: &str, metric: &str, quantity: Value) -> Value {
    json!({"id": id, "workspace_id": workspace, "metric": metric, "quantity": quantity, "timestamp": ago(1)})
}

async fn send(app: &TestApp, events: Vec<Value>) -> (u16, Value) {
    let response = app.post_json("/v1/usage", json!({"events": events})).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

fn statuses(answer: &Value) -> Vec<(String, Option<String>, Option<String>)> {
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().map(str::to_owned);
            (r["status"].as_str().unwrap().to_owned(), text("code"), text("field"))
        })
        .collect()
}

fn ok(status: &str) -> (String, Option<String>, Option<String>) {
    (status.to_owned(), None, None)
}

fn rejected(code: &str, field: &str) -> (String, Option<String>, Option<String>) {
    ("rejected".to_owned(), Some(code.to_owned()), Some(field.to_owned()))
}

async fn each_event_is_answered_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    let batch = vec![
        event("e1", "acme", "compute_hours", json!("1.5")),
        event("e1", "acme", "compute_hours", json!("9")),
        event("e2", "acme", "teleports", json!(1)),
        event("e3", "ghost", "compute_hours", json!(1)),
        event("e4", "acme", "compute_hours", json!(-1)),
        event("e5", "acme", "compute_hours", json!("lots")),
        json!({"id": "e6", "workspace_id": "acme", "metric": "alerts", "quantity": 1, "timestamp": ago(8 * 24 * 60)}),
        json!({"id": "e7", "workspace_id": "acme", "metric": "alerts", "quantity": 1, "timestamp": ago(-60)}),
        json!({"id": "e8", "workspace_id": "acme", "metric": "alerts", "quantity": 1}),
        json!("not an event"),
        json!({"id": "e9", "workspace_id": "acme", "metric": "alerts", "quantity": 2.5, "timestamp": ago(2), "x": 1}),
        json!({"id": "e10", "workspace_id": "acme", "metric": "alerts", "quantity": 2.5, "timestamp": ago(2)}),
    ];
    let (status, answer) = send(&app, batch.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        statuses(&answer),
        vec![
            ok("accepted"),
            ok("duplicate"),
            rejected("unknown_metric", "metric"),
            rejected("unknown_workspace", "workspace_id"),
            rejected("negative_quantity", "quantity"),
            rejected("invalid_quantity", "quantity"),
            rejected("timestamp_too_old", "timestamp"),
            rejected("timestamp_in_future", "timestamp"),
            rejected("missing_field", "timestamp"),
            rejected("invalid_event", ""),
            rejected("unknown_field", "x"),
            ok("accepted"),
        ]
    );
    assert_eq!(
        (answer["accepted"].as_u64(), answer["duplicates"].as_u64(), answer["rejected"].as_u64()),
        (Some(2), Some(1), Some(9))
    );
    assert_eq!(answer["results"][3]["id"], "e3");
    assert!(answer["results"][2]["message"].as_str().unwrap().contains("compute_hours"), "names the valid metrics");
    // The same batch again: both events accepted are duplicates now (and e1 twice), what was rejected still is.
    let (_, again) = send(&app, batch).await;
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64(), again["rejected"].as_u64()),
        (Some(0), Some(3), Some(9))
    );
    assert_eq!(app.count("usage_events").await, 2);
    let usage = app.json_of("/v1/workspaces/acme/usage").await;
    let line = |m: &str| usage["metrics"].as_array().unwrap().iter().find(|l| l["metric"] == m).unwrap().clone();
    assert_eq!(
        (line("compute_hours")["quantity"].as_str(), line("alerts")["quantity"].as_str()),
        (Some("1.5"), Some("2.5"))
    );
}
on_both_databases!(
    a_batch_is_answered_event_by_event_and_duplicates_are_found_across_batches,
    each_event_is_answered_in_order
);

async fn batches_are_bounded_and_need_their_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    let too_many = (0..1001).map(|i| event(&format!("e{i}"), "acme", "alerts", json!(1))).collect();
    let (status, problem) = send(&app, too_many).await;
    assert_eq!(
        (status, problem["code"].as_str(), problem["limit"].as_u64()),
        (413, Some("batch_too_large"), Some(1000))
    );
    let full = (0..1000).map(|i| event(&format!("e{i}"), "acme", "alerts", json!(1))).collect();
    let (status, answer) = send(&app, full).await;
    assert_eq!((status, answer["accepted"].as_u64()), (200, Some(1000)), "a batch of exactly 1,000 is taken");
    let (status, problem) = send_raw(&app, json!({"event": []})).await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (400, Some("event")), "{problem}");
    let (status, problem) = send_raw(&app, json!({})).await;
    assert_eq!((status, problem["code"].as_str()), (400, Some("validation_failed")), "{problem}");
    let reader =
        app.client.post(app.url("/v1/usage")).bearer_auth(READ_KEY).json(&json!({"events": []})).send().await.unwrap();
    assert_eq!(reader.status(), 403, "billing:read may not write usage");
    assert_eq!(app.count("usage_events").await, 1000);
}
on_both_databases!(a_batch_holds_at_most_1000_events_and_needs_usage_write, batches_are_bounded_and_need_their_scope);

/// Eight batches sent at once, each overlapping the next by half its ids: they queue together and share
/// transactions (group commit), and still every id is accepted by exactly one batch and counted once.
async fn concurrent_overlapping_batches_count_each_event_once(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    let batch = |b: usize| -> Vec<Value> {
        (b * 250..b * 250 + 500).map(|i| event(&format!("o{i}"), "acme", "compute_hours", json!("0.5"))).collect()
    };
    let answers = futures::future::join_all((0..8).map(|b| send(&app, batch(b)))).await;
    let mut accepted = std::collections::BTreeMap::<String, usize>::new();
    for (b, (status, answer)) in answers.iter().enumerate() {
        assert_eq!(status, &200, "{answer}");
        let results = answer["results"].as_array().unwrap();
        assert_eq!(results.len(), 500, "batch {b}: one answer per event");
        for result in results {
            match result["status"].as_str() {
                Some("accepted") => *accepted.entry(result["id"].as_str().unwrap().to_owned()).or_default() += 1,
                Some("duplicate") => {}
                other => panic!("batch {b}: {other:?} in {result}"),
            }
        }
    }
    // Ids o0 … o2249: each accepted by exactly one batch.
    assert_eq!(accepted.len(), 2250);
    assert!(accepted.values().all(|n| *n == 1), "an id accepted twice");
    assert_eq!(app.count("usage_events").await, 2250);
    let usage = app.json_of("/v1/workspaces/acme/usage").await;
    let line = usage["metrics"].as_array().unwrap().iter().find(|l| l["metric"] == "compute_hours").unwrap().clone();
    assert_eq!(line["quantity"], "1125", "{usage}");
}
on_both_databases!(
    concurrent_batches_sharing_ids_are_recorded_together_and_each_event_counts_once,
    concurrent_overlapping_batches_count_each_event_once
);

async fn send_raw(app: &TestApp, body: Value) -> (u16, Value) {
    let response = app.post_json("/v1/usage", body).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn a_periods_usage_costs_what_the_plan_says(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    assert_eq!(app.post_json("/v1/workspaces/acme/trial", json!({})).await.status(), 201, "the trial plan is pro");
    let (_, answer) = send(
        &app,
        vec![
            event("c1", "acme", "compute_hours", json!("1000.5")),
            event("c2", "acme", "compute_hours", json!(500)),
            event("s1", "acme", "storage_gb", json!(50)),
            event("s2", "acme", "storage_gb", json!("120")),
            event("s3", "acme", "storage_gb", json!(80.25)),
        ],
    )
    .await;
    assert_eq!(answer["accepted"], 5, "{answer}");
    let usage = app.json_of("/v1/workspaces/acme/usage?period=current").await;
    assert_eq!(usage["plan"], "pro");
    let line = |m: &str| usage["metrics"].as_array().unwrap().iter().find(|l| l["metric"] == m).unwrap().clone();
    // Pro: 1,000 compute hours included at $0.01 beyond → 500.5 × 0.01 = 5.005 → 500 cents (half to even).
    let compute = line("compute_hours");
    assert_eq!(
        (
            compute["quantity"].as_str(),
            compute["billable"].as_str(),
            compute["amount"].as_str(),
            compute["amount_minor"].as_i64()
        ),
        (Some("1500.5"), Some("500.5"), Some("5.005"), Some(500))
    );
    // Storage bills its peak: 120 GB, 100 included, 20 × 0.023 = 0.46.
    let storage = line("storage_gb");
    assert_eq!(
        (storage["quantity"].as_str(), storage["aggregation"].as_str(), storage["amount_minor"].as_i64()),
        (Some("120"), Some("max"), Some(46))
    );
    assert_eq!(line("alerts")["included"], Value::Null, "pro does not meter alerts");
    assert_eq!(usage["total_minor"], 546);
    assert_eq!(usage["currency"], "USD");

    // Without a subscription the period is the calendar month: asked for by name, or as a range, it is the same.
    let month = Utc::now().format("%Y-%m").to_string();
    let by_month = app.json_of(&format!("/v1/workspaces/acme/usage?period={month}")).await;
    assert_eq!(by_month["metrics"], usage["metrics"]);
    let (from, to) = (usage["period_start"].as_str().unwrap(), usage["period_end"].as_str().unwrap());
    let by_range = app.json_of(&format!("/v1/workspaces/acme/usage?from={from}&to={to}")).await;
    assert_eq!(by_range["metrics"], usage["metrics"]);
    let empty = app.json_of("/v1/workspaces/acme/usage?period=2020-01").await;
    assert_eq!(empty["total_minor"], 0);

    for (query, field) in [
        ("period=2026-13", "period"),
        ("period=soon", "period"),
        (&format!("from={from}") as &str, "to"),
        ("period=current&from=x", "from"),
    ] {
        let response = app.get(&format!("/v1/workspaces/acme/usage?{query}")).await;
        let status = response.status();
        let problem: Value = response.json().await.unwrap();
        assert_eq!(status, 400, "{query}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    }
    assert_eq!(app.get("/v1/workspaces/ghost/usage").await.status(), 404);
}
on_both_databases!(a_periods_usage_is_priced_half_even_on_the_plan_in_effect, a_periods_usage_costs_what_the_plan_says);

async fn check(app: &TestApp, body: Value) -> (u16, Value) {
    let response = app.post_json("/v1/workspaces/acme/entitlements/check", body).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn the_last_ten_units_go_to_ten_consumers(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    // Free: 500 alerts a month. 490 used.
    let (_, answer) = send(&app, vec![event("bulk", "acme", "alerts", json!(490))]).await;
    assert_eq!(answer["accepted"], 1);
    let (_, before) = check(&app, json!({"key": "alerts_per_month"})).await;
    assert_eq!(
        (before["used"].as_u64(), before["remaining"].as_u64()),
        (Some(490), Some(10)),
        "a usage limit reads the period's total"
    );

    let racers = (0..50).map(|i| {
        let app = &app;
        async move {
            check(app, json!({"key": "alerts_per_month", "consume": 1, "idempotency_key": format!("alert-{i}")})).await
        }
    });
    let answers = futures::future::join_all(racers).await;
    assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
    let allowed = answers.iter().filter(|(_, a)| a["allowed"] == true && a["consumed"] == true).count();
    let refused =
        answers.iter().filter(|(_, a)| a["allowed"] == false && a["remaining"] == 0 && a["consumed"] == false).count();
    assert_eq!((allowed, refused), (10, 40), "{answers:?}");
    let (_, after) = check(&app, json!({"key": "alerts_per_month"})).await;
    assert_eq!(
        (after["used"].as_u64(), after["remaining"].as_u64(), after["allowed"].as_bool()),
        (Some(500), Some(0), Some(false))
    );

    // A retry of an allowed consumption takes nothing more.
    let winner = answers.iter().position(|(_, a)| a["consumed"] == true).unwrap();
    let (_, replay) =
        check(&app, json!({"key": "alerts_per_month", "consume": 1, "idempotency_key": format!("alert-{winner}")}))
            .await;
    assert_eq!(
        (replay["allowed"].as_bool(), replay["consumed"].as_bool(), replay["replayed"].as_bool()),
        (Some(true), Some(false), Some(true))
    );
    let usage = app.json_of("/v1/workspaces/acme/usage").await;
    let alerts = usage["metrics"].as_array().unwrap().iter().find(|l| l["metric"] == "alerts").unwrap().clone();
    assert_eq!((alerts["quantity"].as_str(), alerts["events"].as_u64()), (Some("500"), Some(11)));
}
on_both_databases!(
    fifty_concurrent_consumers_of_the_last_ten_units_get_exactly_ten,
    the_last_ten_units_go_to_ten_consumers
);

async fn only_summed_usage_limits_are_consumed(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    for (body, field) in [
        (json!({"key": "storage_gb", "consume": 1, "idempotency_key": "k"}), "consume"),
        (json!({"key": "workspace_members", "consume": 1, "idempotency_key": "k"}), "consume"),
        (json!({"key": "alerts_per_month", "consume": 1}), "idempotency_key"),
        (json!({"key": "alerts_per_month", "consume": 0, "idempotency_key": "k"}), "consume"),
        (json!({"key": "custom_branding", "consume": 1, "idempotency_key": "k"}), "consume"),
    ] {
        let (status, problem) = check(&app, body.clone()).await;
        assert_eq!(status, 400, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    let reader = app
        .client
        .post(app.url("/v1/workspaces/acme/entitlements/check"))
        .bearer_auth(READ_KEY)
        .json(&json!({"key": "alerts_per_month", "consume": 1, "idempotency_key": "k"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reader.status(), 403, "consuming needs usage:write");
    assert_eq!(app.count("usage_events").await, 0);
}
on_both_databases!(only_a_summed_usage_limit_can_be_consumed, only_summed_usage_limits_are_consumed);
