//! The workspace's account at the processor: invoices (empty before the first checkout, the paid first invoice
//! after it, paginated) and the portal (the sandbox's own page; Stripe down: a retryable 503).

use serde_json::{Value, json};

use crate::helpers::{Backend, DEV_KEY, on_both_databases, spawn_app, spawn_stripe_app};

async fn invoices(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    let empty = app.json_of("/v1/workspaces/acme/invoices").await;
    assert_eq!(empty, json!({"invoices": [], "has_more": false}), "no customer yet: an empty page");

    let session = app.checkout("acme", "pro").await;
    assert_eq!(app.press(session["session_id"].as_str().unwrap(), "pay").await.status(), 200);
    let page = app.json_of("/v1/workspaces/acme/invoices?limit=1").await;
    let invoices = page["invoices"].as_array().unwrap();
    assert_eq!(invoices.len(), 1, "{page}");
    let first = &invoices[0];
    assert_eq!(first["status"], "paid");
    assert_eq!(first["amount_paid"], json!({"minor": 4900, "currency": "USD"}));
    assert_eq!(first["currency"], "USD");
    assert!(first["number"].is_string() && first["id"].is_string(), "{first}");
    assert_eq!(page["has_more"], false);
    let after = first["id"].as_str().unwrap();
    let next = app.json_of(&format!("/v1/workspaces/acme/invoices?limit=1&starting_after={after}")).await;
    assert_eq!(next["invoices"], json!([]));

    for (query, field) in [("limit=0", "limit"), ("limit=101", "limit"), ("limit=x", "limit"), ("page=2", "page")] {
        let response = app.get(&format!("/v1/workspaces/acme/invoices?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    }
    assert_eq!(app.get("/v1/workspaces/ghost/invoices").await.status(), 404);
}
on_both_databases!(invoices_are_empty_before_the_first_checkout_and_list_the_paid_one_after, invoices);

/// The sandbox's portal: opened over the API (customer linked, audited), its buttons switch plan, cancel at period
/// end, resume and end the subscription through signed events ingested like webhooks.
async fn sandbox_portal(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    let session = app.checkout("acme", "pro").await;
    assert_eq!(app.press(session["session_id"].as_str().unwrap(), "pay").await.status(), 200);
    let opened =
        app.post_json("/v1/workspaces/acme/portal", json!({"return_url": "https://app.example.com/back"})).await;
    assert_eq!(opened.status(), 200);
    let url = opened.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("{}/sandbox/portal/bps_sbx_", app.address)), "{url}");
    let page = app.client.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Cancel at period end") && page.contains("https://app.example.com/back"), "{page}");
    let subscription = app.json_of("/v1/workspaces/acme/subscription").await["id"].as_str().unwrap().to_owned();
    // Processor events carry whole seconds, and two observations of one second order by a fixed precedence (not
    // by arrival): a person presses one button a second at most, so the test does too.
    let press = |action: &'static str| {
        let url = format!("{url}/subscriptions/{subscription}/{action}");
        let client = app.client.clone();
        async move {
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
            client.post(url).send().await.unwrap()
        }
    };
    assert!(page.contains("Switch to Hobby") && !page.contains("Switch to Pro"), "the other plans only: {page}");
    assert_eq!(press("change/hobby").await.status(), 200);
    let switched = app.json_of("/v1/workspaces/acme").await;
    assert_eq!((switched["plan"].as_str(), switched["subscription_status"].as_str()), (Some("hobby"), Some("active")));
    assert_eq!(app.json_of("/v1/workspaces/acme/subscription").await["plan"], "hobby");
    assert_eq!(press("change/hobby").await.status(), 409, "already on it");
    assert_eq!(press("change/credits10").await.status(), 400, "a credits pack is no plan to switch to");
    assert_eq!(press("cancel").await.status(), 200);
    assert_eq!(app.json_of("/v1/workspaces/acme").await["cancel_at_period_end"], true);
    assert_eq!(press("resume").await.status(), 200);
    assert_eq!(app.json_of("/v1/workspaces/acme").await["cancel_at_period_end"], false);
    assert_eq!(press("end").await.status(), 200);
    let ended = app.json_of("/v1/workspaces/acme").await;
    assert_eq!((ended["plan"].as_str(), ended["subscription_status"].as_str()), (Some("free"), Some("canceled")));
    assert_eq!(press("resume").await.status(), 409, "an ended subscription takes no action");
    assert!(app.audit_actions("acme").await.iter().any(|a| a == "portal.opened"));
    let ghost = app.client.get(format!("{}/sandbox/portal/bps_sbx_nope", app.address)).send().await.unwrap();
    assert_eq!(ghost.status(), 404);
}
on_both_databases!(the_sandbox_portal_cancels_resumes_and_ends_through_signed_events, sandbox_portal);

#[tokio::test]
async fn the_portal_is_refused_clearly_when_stripe_is_down() {
    let stripe = spawn_stripe_app(Backend::Sqlite).await;
    stripe.put_workspace("acme").await;
    // No body at all is the same as `{}`; a bad return_url is named.
    let bare = stripe.client.post(stripe.url("/v1/workspaces/acme/portal")).bearer_auth(DEV_KEY).send().await.unwrap();
    assert_eq!(bare.status(), 503);
    let typed_but_empty = stripe
        .client
        .post(stripe.url("/v1/workspaces/acme/portal"))
        .bearer_auth(DEV_KEY)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(typed_but_empty.status(), 503, "an empty body with a JSON content type is no body, too");
    assert_eq!(bare.json::<Value>().await.unwrap()["code"], "processor_unavailable");
    let bad = stripe.post_json("/v1/workspaces/acme/portal", json!({"return_url": "javascript:alert(1)"})).await;
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["errors"][0]["field"], "return_url");
    assert_eq!(stripe.count("processor_customers").await, 0, "nothing was linked");
}
