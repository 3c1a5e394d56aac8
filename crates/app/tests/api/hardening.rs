//! Response headers a browser acts on: the hosted pages cannot be framed or run script, JSON allows nothing.

use crate::helpers::*;

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers().get(name).unwrap_or_else(|| panic!("{name} missing")).to_str().unwrap()
}

#[tokio::test]
async fn pages_and_api_answers_carry_a_restrictive_policy() {
    let app = spawn_app(Backend::Sqlite).await;
    assert!(app.put_workspace("acme").await.status().is_success());
    let session = app.checkout("acme", "pro").await;
    let page = app.get(&format!("/sandbox/checkout/{}", session["session_id"].as_str().unwrap())).await;
    assert_eq!(page.status(), 200);
    assert!(header(&page, "content-type").starts_with("text/html"));
    let policy = header(&page, "content-security-policy");
    assert!(policy.contains("default-src 'none'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(policy.contains("form-action 'self'") && !policy.contains("script"), "{policy}");
    assert_eq!(header(&page, "x-frame-options"), "DENY");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script"), "the page runs no script");

    for response in [app.get("/v1/plans").await, app.get("/no/such/path").await] {
        assert_eq!(header(&response, "content-security-policy"), "default-src 'none'; frame-ancestors 'none'");
        assert_eq!(header(&response, "referrer-policy"), "no-referrer");
    }
}

#[tokio::test]
async fn a_request_past_its_deadline_is_stopped_with_a_retryable_problem() {
    // Stripe accepts the connection and never answers; the request's deadline comes before Stripe's retries end.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api_base = format!("http://{}", black_hole.local_addr().unwrap());
    let app = spawn_app_with(Backend::Sqlite, move |settings| {
        settings.processor = billing_app::settings::ProcessorChoice::Stripe;
        settings.sandbox.enabled = false;
        settings.stripe.secret_key = STRIPE_SECRET_KEY.to_owned().into();
        settings.stripe.webhook_secrets = vec![STRIPE_WEBHOOK_SECRET.to_owned().into()];
        settings.stripe.api_base = api_base;
        settings.stripe.timeout_ms = 900;
        settings.reconcile.interval_secs = 0;
        settings.server.request_timeout_ms = 1_000;
    })
    .await;
    assert!(app.put_workspace("acme").await.status().is_success());
    let portal = app.client.post(app.url("/v1/workspaces/acme/portal")).bearer_auth(DEV_KEY).send().await.unwrap();
    assert_eq!(portal.status(), 503);
    assert_eq!(header(&portal, "retry-after"), "1");
    assert!(!header(&portal, "x-request-id").is_empty(), "a stopped request keeps its id");
    let body: serde_json::Value = portal.json().await.unwrap();
    assert_eq!(body["code"], "request_timeout", "{body}");
    assert_eq!(app.count("processor_customers").await, 0, "nothing half-done was kept");
    // The server is fine afterwards.
    assert_eq!(app.get("/healthz").await.status(), 200);
    drop(black_hole);
}

#[tokio::test]
async fn each_key_has_its_own_rate_limit_and_webhooks_have_none() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.auth.rate_limit_per_second = 1;
        settings.auth.rate_limit_burst = 3;
    })
    .await;
    let plans = |key: &'static str| {
        let request = app.client.get(app.url("/v1/plans")).bearer_auth(key);
        async move { request.send().await.unwrap() }
    };
    for _ in 0..3 {
        assert_eq!(plans(DEV_KEY).await.status(), 200);
    }
    let limited = plans(DEV_KEY).await;
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = header(&limited, "retry-after").parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&limited, "content-type"), "application/problem+json");
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    assert!(!body.to_string().contains(DEV_KEY), "the key is never echoed");

    assert_eq!(plans(READ_KEY).await.status(), 200, "another key's bucket is untouched");
    for _ in 0..10 {
        let delivery = app.post_webhook("{}", Some("t=1,v1=00")).await;
        assert_eq!(delivery.status(), 400, "a webhook is judged on its signature, never rate-limited");
    }
}
