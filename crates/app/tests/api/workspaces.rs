//! Workspace and entitlement endpoints, including bad input.

use serde_json::{Value, json};

use crate::helpers::{Backend, DEV_KEY, on_both_databases, spawn_app};

async fn create_update_read(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.put_workspace("team_1:eu").await.status(), 201);
    let updated = app
        .client
        .put(app.url("/v1/workspaces/team_1:eu"))
        .bearer_auth(DEV_KEY)
        .json(&json!({"name": "Renamed", "owner_email": "new@acme.test",
                      "billing_details": {"tax_ids": [{"type": "eu_vat", "value": "DE123456789"}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    let workspace = app.json_of("/v1/workspaces/team_1:eu").await;
    assert_eq!(workspace["name"], "Renamed");
    assert_eq!(workspace["billing_details"]["tax_ids"][0]["type"], "eu_vat");
    assert_eq!(workspace["plan"], "free");
    assert_eq!(workspace["credit_balance"], 0);
}
on_both_databases!(workspaces_are_created_then_updated, create_update_read);

#[tokio::test]
async fn entitlement_checks_answer_limits_and_features() {
    let app = spawn_app(Backend::Sqlite).await;
    app.put_workspace("acme").await;
    let check = |body: Value| app.post_json("/v1/workspaces/acme/entitlements/check", body);
    let members: Value = check(json!({"key": "workspace_members", "current": 1})).await.json().await.unwrap();
    assert_eq!(members["allowed"], false, "free allows one member: {members}");
    assert!(members["reason"].as_str().unwrap().contains("workspace_members"));
    let alerts: Value = check(json!({"key": "alerts_per_month"})).await.json().await.unwrap();
    assert_eq!(alerts["allowed"], true);
    assert_eq!(alerts["used"], 0);
    let feature: Value = check(json!({"key": "sla_tracking"})).await.json().await.unwrap();
    assert_eq!(feature, json!({"allowed": false, "reason": "feature `sla_tracking` is not included in plan `free`"}));
    let unknown = check(json!({"key": "teleport"})).await;
    assert_eq!(unknown.status(), 400);
    let problem: Value = unknown.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "key");
}

#[tokio::test]
async fn plans_list_the_shipped_catalog() {
    let app = spawn_app(Backend::Sqlite).await;
    let plans = app.json_of("/v1/plans").await;
    let ids: Vec<&str> = plans["plans"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["free", "hobby", "pro", "credits10"]);
}
