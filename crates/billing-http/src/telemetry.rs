//! Prometheus metrics: the process-wide recorder (the `metrics` facade, so the Stripe adapter and the jobs record
//! without a registry passed around), the middleware timing every request by route template and status, and
//! `GET /metrics`, which also reads what only exists at scrape time: the outbox backlog and the cache counts.
//!
//! Names and labels are kept few and bounded: a route label is the template (`/v1/workspaces/{id}`), never the
//! path, and an unknown path is `unmatched`, so no caller can grow the series.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// Seconds, from half a millisecond (a cached entitlement check) to ten (a slow processor call).
const SECONDS_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The billing-state cache's hit and miss counts since start, when there is a cache.
pub type CacheCounts = Arc<dyn Fn() -> Option<(u64, u64)> + Send + Sync>;

/// What `GET /metrics` serves.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    /// When set, a scrape must send `Authorization: Bearer <token>`.
    token: Option<SecretString>,
    cache: CacheCounts,
}

impl Metrics {
    /// The process's recorder (installed on first use: one per process, shared by every server it runs).
    pub fn new(token: Option<SecretString>, cache: CacheCounts) -> Self {
        Self { handle: recorder(), token, cache }
    }
}

fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .expect("the buckets are not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder installed first (a test harness's): ours still renders what reaches it, nothing.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was installed already; /metrics shows only its own series");
            }
            handle
        })
        .clone()
}

/// Middleware: `tollgate_http_request_duration_seconds{method, route, status}` for every request, including the
/// ones answered by an error.
pub async fn record_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let response = next.call(req).await;
    let status = match &response {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    metrics::histogram!(
        "tollgate_http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => status.as_str().to_owned(),
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: the Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "scrapeMetrics",
    tag = "operations",
    responses(
        (status = 200, description = "The Prometheus text format.", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 401, description = "`unauthorized`: `telemetry.metrics_token` is set and was not sent.", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "`route_not_found`: `telemetry.metrics` is off.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security((), ("metrics_token" = []))
)]
pub async fn scrape(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let Some(metrics) = &state.metrics else {
        return Err(ApiError::route_not_found(req.method(), req.path()));
    };
    if let Some(token) = &metrics.token {
        let sent = req.headers().get(header::AUTHORIZATION).and_then(crate::auth::bearer_token).unwrap_or_default();
        if !bool::from(sent.as_bytes().ct_eq(token.expose_secret().as_bytes())) {
            return Err(ApiError::unauthorized("send the metrics token as `Authorization: Bearer <token>`"));
        }
    }
    // The backlog is read at scrape time: a gauge kept by the delivery job would go stale when the job stops.
    match state.outbox.backlog().await {
        Ok(backlog) => {
            metrics::gauge!("tollgate_outbox_pending_messages").set(backlog.pending as f64);
            metrics::gauge!("tollgate_outbox_dead_messages").set(backlog.dead as f64);
            let age = backlog.oldest_pending.map(|at| (state.clock.now() - at).num_milliseconds().max(0));
            metrics::gauge!("tollgate_outbox_oldest_pending_age_seconds").set(age.map_or(0.0, |ms| ms as f64 / 1000.0));
        }
        Err(error) => tracing::warn!(%error, "reading the outbox backlog for /metrics failed"),
    }
    if let Some((hits, misses)) = (metrics.cache)() {
        metrics::counter!("tollgate_billing_cache_hits_total").absolute(hits);
        metrics::counter!("tollgate_billing_cache_misses_total").absolute(misses);
    }
    metrics.handle.run_upkeep();
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8")))
        .body(metrics.handle.render()))
}

/// `tollgate_webhook_events_total{processor, type, outcome}`: one per delivery, verified or not (`type` is
/// `unverified` when the signature or the payload was refused, so no caller can invent a series).
pub fn webhook_received(processor: &str, event_type: &str, outcome: &'static str) {
    metrics::counter!(
        "tollgate_webhook_events_total",
        "processor" => processor.to_owned(),
        "type" => event_type.to_owned(),
        "outcome" => outcome,
    )
    .increment(1);
}
