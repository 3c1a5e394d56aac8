//! The workspace's account at the processor: invoices (empty before the first checkout, the paid first invoice
//! after it, paginated) and the portal (the sandbox has none yet: a clear 501; Stripe down: a retryable 503).

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

#[tokio::test]
async fn the_portal_is_refused_clearly_where_the_processor_has_none_or_is_down() {
    let sandbox = spawn_app(Backend::Sqlite).await;
    sandbox.put_workspace("acme").await;
    let response = sandbox.post_json("/v1/workspaces/acme/portal", json!({})).await;
    assert_eq!(response.status(), 501);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "not_supported_by_processor");

    let stripe = spawn_stripe_app(Backend::Sqlite).await;
    stripe.put_workspace("acme").await;
    // No body at all is the same as `{}`; a bad return_url is named.
    let bare = stripe.client.post(stripe.url("/v1/workspaces/acme/portal")).bearer_auth(DEV_KEY).send().await.unwrap();
    assert_eq!(bare.status(), 503);
    assert_eq!(bare.json::<Value>().await.unwrap()["code"], "processor_unavailable");
    let bad = stripe.post_json("/v1/workspaces/acme/portal", json!({"return_url": "javascript:alert(1)"})).await;
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["errors"][0]["field"], "return_url");
    assert_eq!(stripe.count("processor_customers").await, 0, "nothing was linked");
}
