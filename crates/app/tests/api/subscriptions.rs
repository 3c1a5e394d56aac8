//! Subscription commands on the sandbox: cancel at period end, resume, change plan, cancel now — each answered
//! with the subscription as it now stands, the same as `GET …/subscription` shows, audited with the caller; and
//! every refusal (bad plan, wrong state, no subscription, bad body) a clear 4xx that changes nothing.

use serde_json::{Value, json};

use crate::helpers::{Backend, DEV_KEY, TestApp, on_both_databases, spawn_app};

async fn pro_workspace(backend: Backend) -> TestApp {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    let session = app.checkout("acme", "pro").await;
    assert_eq!(app.press(session["session_id"].as_str().unwrap(), "pay").await.status(), 200);
    app
}

async fn command(app: &TestApp, what: &str, body: Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(&format!("/v1/workspaces/acme/subscription/{what}")))
        .bearer_auth(DEV_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn cancel_resume_change(backend: Backend) {
    let app = pro_workspace(backend).await;
    let (status, scheduled) = command(&app, "cancel", json!({"at_period_end": true})).await;
    assert_eq!(status, 200, "{scheduled}");
    assert_eq!(
        (scheduled["status"].as_str(), scheduled["cancel_at_period_end"].as_bool()),
        (Some("active"), Some(true))
    );
    assert_eq!(app.json_of("/v1/workspaces/acme/subscription").await, scheduled, "the answer is what GET shows");
    assert_eq!(app.json_of("/v1/workspaces/acme").await["plan"], "pro", "paid until the period ends");

    let (status, again) = command(&app, "cancel", json!({"at_period_end": true})).await;
    assert_eq!(
        (status, again["code"].as_str(), again["subscription_status"].as_str()),
        (409, Some("subscription_state_conflict"), Some("active"))
    );

    let (status, resumed) = command(&app, "resume", json!({})).await;
    assert_eq!((status, resumed["cancel_at_period_end"].as_bool()), (200, Some(false)));
    let (status, again) = command(&app, "resume", json!({})).await;
    assert_eq!((status, again["code"].as_str()), (409, Some("subscription_state_conflict")));
    // Already on the plan is the subscription's state, like any command its state refuses.
    let (status, same) = command(&app, "change", json!({"plan": "pro"})).await;
    assert_eq!((status, same["code"].as_str()), (409, Some("subscription_state_conflict")), "{same}");

    let (status, changed) = command(&app, "change", json!({"plan": "hobby", "proration": "none"})).await;
    assert_eq!((status, changed["plan"].as_str()), (200, Some("hobby")), "{changed}");
    assert_eq!(app.json_of("/v1/workspaces/acme").await["plan"], "hobby");
    assert_eq!(app.json_of("/v1/workspaces/acme/entitlements").await["plan"], "hobby");

    let (status, ended) = command(&app, "cancel", json!({"at_period_end": false})).await;
    assert_eq!((status, ended["status"].as_str()), (200, Some("canceled")));
    assert_eq!(app.json_of("/v1/workspaces/acme").await["plan"], "free");
    let (status, after_end) = command(&app, "resume", json!({})).await;
    assert_eq!((status, after_end["subscription_status"].as_str()), (409, Some("canceled")));

    let actions = app.audit_actions("acme").await;
    for action in [
        "subscription.cancel_scheduled",
        "subscription.resumed",
        "subscription.plan_change_requested",
        "subscription.canceled_now",
    ] {
        let entry = actions.iter().any(|a| a == action);
        assert!(entry, "{action} missing from {actions:?}");
    }
    let audit = app.json_of("/v1/workspaces/acme/audit").await;
    let by_caller =
        audit["entries"].as_array().unwrap().iter().find(|e| e["action"] == "subscription.resumed").unwrap();
    assert_eq!(by_caller["actor"]["type"], "api_key");
    assert!(by_caller["request_id"].is_string());
}
on_both_databases!(cancel_resume_and_change_show_the_change_at_once, cancel_resume_change);

async fn refusals(backend: Backend) {
    let app = pro_workspace(backend).await;
    let before = app.json_of("/v1/workspaces/acme/subscription").await;
    for (body, field) in [
        (json!({"plan": "credits10"}), "plan"),
        (json!({"plan": "free"}), "plan"),
        (json!({"plan": "platinum"}), "plan"),
        (json!({"plan": ""}), "plan"),
        (json!({}), "plan"),
        (json!({"plan": "hobby", "proration": "sometimes"}), "proration"),
        (json!({"plan": "hobby", "coupon": "X"}), "coupon"),
    ] {
        let (status, problem) = command(&app, "change", body.clone()).await;
        assert_eq!(status, 400, "{body} → {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{body} → {problem}");
    }
    // The plan it is on: the subscription's state refuses it, not the request's shape.
    let (status, problem) = command(&app, "change", json!({"plan": "pro"})).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("subscription_state_conflict")), "{problem}");
    let (status, problem) = command(&app, "cancel", json!({"at_period_end": "yes"})).await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (400, Some("at_period_end")));
    assert_eq!(app.json_of("/v1/workspaces/acme/subscription").await, before, "nothing changed");

    app.put_workspace("beta").await;
    let none =
        app.client.post(app.url("/v1/workspaces/beta/subscription/resume")).bearer_auth(DEV_KEY).send().await.unwrap();
    assert_eq!(none.status(), 404);
    assert_eq!(none.json::<Value>().await.unwrap()["code"], "subscription_not_found");
    let ghost =
        app.client.post(app.url("/v1/workspaces/ghost/subscription/resume")).bearer_auth(DEV_KEY).send().await.unwrap();
    assert_eq!(ghost.json::<Value>().await.unwrap()["code"], "workspace_not_found");
}
on_both_databases!(bad_plan_changes_and_bodies_are_refused_and_change_nothing, refusals);
