//! The README walkthrough: free → checkout → Pay on the sandbox page → webhooks → active pro; Decline stays free.

use serde_json::Value;

use crate::helpers::{Backend, on_both_databases, spawn_app};

async fn pay_for_pro(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.put_workspace("acme").await.status(), 201);
    let before = app.json_of("/v1/workspaces/acme").await;
    assert_eq!(before["plan"], "free");
    let free_members =
        app.json_of("/v1/workspaces/acme/entitlements").await["limits"]["workspace_members"]["limit"].clone();

    let session = app.checkout("acme", "pro").await;
    let url = session["url"].as_str().unwrap();
    let session_id = session["session_id"].as_str().unwrap();
    assert!(url.starts_with(&app.address) && url.ends_with(&format!("/sandbox/checkout/{session_id}")), "{url}");

    let page = app.client.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("/pay") && html.contains("Decline"), "{html}");

    let paid = app.press(session_id, "pay").await;
    assert_eq!(paid.status(), 200, "{}", paid.text().await.unwrap());

    let subscription = app.json_of("/v1/workspaces/acme/subscription").await;
    assert_eq!(subscription["status"], "active");
    assert_eq!(subscription["plan"], "pro");
    let workspace = app.json_of("/v1/workspaces/acme").await;
    assert_eq!(workspace["plan"], "pro");
    assert_eq!(workspace["subscription_status"], "active");

    let entitlements = app.json_of("/v1/workspaces/acme/entitlements").await;
    assert_eq!(entitlements["plan"], "pro");
    assert_ne!(entitlements["limits"]["workspace_members"]["limit"], free_members);
    assert_eq!(entitlements["features"]["sla_tracking"], Value::Bool(true));

    let actions = app.audit_actions("acme").await;
    for expected in ["workspace.created", "checkout.started", "checkout.completed", "subscription.created"] {
        assert!(actions.iter().any(|a| a == expected), "{expected} missing from {actions:?}");
    }
    // Paying the same session again is refused and changes nothing.
    assert_eq!(app.press(session_id, "pay").await.status(), 409);
    assert_eq!(app.count("subscriptions").await, 1);
}
on_both_databases!(paying_on_the_sandbox_page_turns_free_into_pro, pay_for_pro);

async fn decline(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    let session = app.checkout("acme", "pro").await;
    let declined = app.press(session["session_id"].as_str().unwrap(), "decline").await;
    assert_eq!(declined.status(), 200);
    assert_eq!(app.json_of("/v1/workspaces/acme").await["plan"], "free");
    assert_eq!(app.get("/v1/workspaces/acme/subscription").await.status(), 404);
    let audit = app.json_of("/v1/workspaces/acme/audit").await;
    let failed = audit["entries"].as_array().unwrap().iter().find(|e| e["action"] == "checkout.payment_failed");
    let failed = failed.expect("the declined attempt is audited");
    assert_eq!(failed["after"]["plan"], "pro");
    assert_eq!(failed["actor"]["type"], "webhook");
}
on_both_databases!(declining_leaves_the_workspace_free_and_audits_the_attempt, decline);

async fn credits(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    let session = app.checkout("acme", "credits10").await;
    assert_eq!(app.press(session["session_id"].as_str().unwrap(), "pay").await.status(), 200);
    let workspace = app.json_of("/v1/workspaces/acme").await;
    assert_eq!(workspace["credit_balance"], 10);
    assert_eq!(workspace["plan"], "free");
}
on_both_databases!(buying_the_credit_pack_grants_ten_credits, credits);

#[tokio::test]
async fn the_trial_grants_pro_once() {
    let app = spawn_app(Backend::Sqlite).await;
    app.put_workspace("acme").await;
    let started = app.post_json("/v1/workspaces/acme/trial", serde_json::json!({})).await;
    assert_eq!(started.status(), 201);
    let workspace: Value = started.json().await.unwrap();
    assert_eq!(workspace["plan"], "pro");
    assert_eq!(workspace["plan_source"], "trial");
    assert_eq!(workspace["trial_days_remaining"], 14);
    let again = app.post_json("/v1/workspaces/acme/trial", serde_json::json!({})).await;
    assert_eq!(again.status(), 409);
    let problem: Value = again.json().await.unwrap();
    assert_eq!(problem["code"], "trial_already_used");
}
