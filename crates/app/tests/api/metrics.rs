//! `GET /metrics`: the series operators alert on appear, and move with what the app did. Every app of this test
//! binary shares the process's recorder, so each check compares a scrape before with one after its own requests
//! and asks for at least its own share.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

/// The sum of every sample of `name` whose labels include all of `labels` (`key="value"` pairs).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn metrics_follow_requests_webhooks_processor_calls_jobs_and_the_outbox() {
    let app = spawn_stripe_app(Backend::Sqlite).await;
    let before = scrape(&app).await;
    let requests = |text: &str, status: &str| {
        let labels = [("method", "PUT"), ("route", "/v1/workspaces/{id}"), ("status", status)];
        sample(text, "tollgate_http_request_duration_seconds_count", &labels)
    };

    assert!(app.put_workspace("acme").await.status().is_success());
    assert!(app.put_workspace("globex").await.status().is_success());
    let refused = app.client.put(app.url("/v1/workspaces/acme")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let unknown = app.get("/no/such/path").await;
    assert_eq!(unknown.status(), 404);

    // One delivery with a good signature, one with a bad one.
    let body = subscription_event("evt_metrics_1", "cus_metrics_unknown", "sub_metrics_1", now());
    let signed = app.post_stripe_webhook(&body, Some(&sign_with(STRIPE_WEBHOOK_SECRET, &body, now()))).await;
    assert_eq!(signed.status(), 200);
    let forged = app.post_stripe_webhook(&body, Some("t=1,v1=00")).await;
    assert_eq!(forged.status(), 400);

    // Stripe is down: the portal's customer lookup fails at the transport.
    let portal = app.client.post(app.url("/v1/workspaces/acme/portal")).bearer_auth(DEV_KEY).send().await.unwrap();
    assert_eq!(portal.status(), 503);

    // The outbox delivery job polls every half second; its runs are counted.
    let job_runs =
        |text: &str| sample(text, "tollgate_job_runs_total", &[("job", "outbox_delivery"), ("outcome", "ok")]);
    let mut after = scrape(&app).await;
    for _ in 0..40 {
        if job_runs(&after) > job_runs(&before) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = scrape(&app).await;
    }

    assert!(requests(&after, "201") - requests(&before, "201") >= 2.0, "{after}");
    assert!(requests(&after, "401") - requests(&before, "401") >= 1.0);
    let unmatched =
        |text: &str| sample(text, "tollgate_http_request_duration_seconds_count", &[("route", "unmatched")]);
    assert!(unmatched(&after) - unmatched(&before) >= 1.0, "unknown paths share one series");
    assert!(!after.contains("/no/such/path"), "a path never becomes a label");
    assert!(after.contains("tollgate_http_request_duration_seconds_bucket{"), "durations are histograms");

    let webhooks = |text: &str, kind: &str| {
        sample(text, "tollgate_webhook_events_total", &[("processor", "stripe"), ("type", kind)])
    };
    assert!(
        webhooks(&after, "customer.subscription.created") - webhooks(&before, "customer.subscription.created") >= 1.0
    );
    let rejected =
        |text: &str| sample(text, "tollgate_webhook_events_total", &[("type", "unverified"), ("outcome", "rejected")]);
    assert!(rejected(&after) - rejected(&before) >= 1.0);

    let call_errors = |text: &str| {
        let labels = [("processor", "stripe"), ("operation", "GET /customers"), ("kind", "transport")];
        sample(text, "tollgate_processor_call_errors_total", &labels)
    };
    assert!(call_errors(&after) - call_errors(&before) >= 1.0, "{after}");
    let calls = |text: &str| {
        let labels = [("operation", "GET /customers"), ("outcome", "error")];
        sample(text, "tollgate_processor_call_duration_seconds_count", &labels)
    };
    assert!(calls(&after) - calls(&before) >= 1.0);

    assert!(job_runs(&after) > job_runs(&before), "the outbox job's runs are counted");
    for gauge in [
        "tollgate_outbox_pending_messages",
        "tollgate_outbox_dead_messages",
        "tollgate_outbox_oldest_pending_age_seconds",
        "tollgate_billing_cache_hits_total",
        "tollgate_billing_cache_misses_total",
    ] {
        assert!(after.lines().any(|line| line.starts_with(&format!("{gauge} "))), "{gauge} missing:\n{after}");
    }
    assert!(!after.contains(STRIPE_SECRET_KEY) && !after.contains(STRIPE_WEBHOOK_SECRET));
}

#[tokio::test]
async fn the_outbox_backlog_is_read_at_scrape_time() {
    // No delivery job: what the outbox holds stays there.
    let app = spawn_app_with(Backend::Postgres, |settings| settings.outbox.poll_ms = 0).await;
    let pending = |text: &str| sample(text, "tollgate_outbox_pending_messages", &[]);
    assert_eq!(pending(&scrape(&app).await), 0.0);
    // A paid checkout on the sandbox: its webhooks enqueue the owner's emails.
    assert!(app.put_workspace("acme").await.status().is_success());
    let session = app.checkout("acme", "pro").await;
    assert!(app.press(session["session_id"].as_str().unwrap(), "pay").await.status().is_success());
    let stored = app.count("outbox").await;
    assert!(stored > 0, "the subscription enqueued messages");
    let text = scrape(&app).await;
    assert_eq!(pending(&text), stored as f64, "{text}");
    assert!(sample(&text, "tollgate_outbox_oldest_pending_age_seconds", &[]) >= 0.0);
}

#[tokio::test]
async fn a_metrics_token_is_required_when_set_and_metrics_can_be_off() {
    const TOKEN: &str = "scrape-token-for-tests-only";
    let guarded = spawn_app_with(Backend::Sqlite, |settings| {
        settings.telemetry.metrics_token = Some(TOKEN.to_owned().into());
    })
    .await;
    let anonymous = guarded.get("/metrics").await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["content-type"], "application/problem+json");
    let wrong = guarded.client.get(guarded.url("/metrics")).bearer_auth("scrape-token-for-tests-onlx").send().await;
    assert_eq!(wrong.unwrap().status(), 401);
    let right = guarded.client.get(guarded.url("/metrics")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(right.status(), 200);
    assert!(right.text().await.unwrap().contains("tollgate_http_request_duration_seconds"));

    let off = spawn_app_with(Backend::Sqlite, |settings| settings.telemetry.metrics = false).await;
    let response = off.get("/metrics").await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "route_not_found");
}
