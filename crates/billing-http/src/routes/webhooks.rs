//! `POST /webhooks/{processor}`: verify, record, apply; 2xx only after commit (SPEC §5).

use std::sync::Arc;

use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, http::StatusCode, web};
use billing_domain::error::StoreError;
use billing_domain::ports::{WebhookError, WebhookHeaders, WebhookOps};
use billing_domain::services::{IngestError, IngestOutcome};
use tracing_actix_web::RequestId;

use crate::dto::WebhookReceived;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{declared_length, read_limited};
use crate::state::AppState;

/// Processors' events are small; anything larger is refused before it is read whole.
pub const MAX_WEBHOOK_BYTES: usize = 1024 * 1024;

impl From<WebhookError> for ApiError {
    fn from(error: WebhookError) -> Self {
        let code = match &error {
            WebhookError::MissingSignature(_) => ErrorCode::WebhookSignatureMissing,
            WebhookError::MalformedSignature => ErrorCode::WebhookSignatureMalformed,
            WebhookError::BadSignature => ErrorCode::WebhookSignatureInvalid,
            WebhookError::StaleTimestamp { .. } => ErrorCode::WebhookTimestampStale,
            WebhookError::MalformedPayload(_) => ErrorCode::WebhookPayloadInvalid,
        };
        ApiError::new(StatusCode::BAD_REQUEST, code, "Webhook rejected", error.to_string())
    }
}

/// Receives one delivery of a processor's webhook.
#[utoipa::path(
    post,
    path = "/webhooks/{processor}",
    operation_id = "receiveWebhook",
    tag = "webhooks",
    params(crate::openapi::params::ProcessorPath),
    request_body(content = serde_json::Value, description = "The processor's event, verbatim: the signature covers these bytes.", content_type = "application/json"),
    responses(
        (status = 200, description = "Durable: answered after the commit.", body = crate::dto::WebhookReceived),
        (status = 400, description = "`webhook_signature_missing`, `webhook_signature_malformed`, `webhook_signature_invalid`, `webhook_timestamp_stale` or `webhook_payload_invalid`: nothing was stored.", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "`processor_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large` (over 1 MiB).", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
)]
#[tracing::instrument(skip_all, fields(processor = %path, event_id, event_type))]
pub async fn receive(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Looked up before the body is read, so an unknown processor costs nothing.
    verifier(&state, &path)?;
    // The signature covers the bytes as sent, so they are read undecoded.
    let body = read_limited(payload, declared_length(&req), MAX_WEBHOOK_BYTES).await?;
    let headers: WebhookHeaders = req
        .headers()
        .iter()
        .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str().to_ascii_lowercase(), v.to_owned())))
        .collect();
    let request_id = req.extensions().get::<RequestId>().map(ToString::to_string);
    let received = verify_and_ingest(&state, &path, &headers, &body, request_id).await?;
    Ok(HttpResponse::Ok().json(WebhookReceived {
        received: true,
        event_id: &received.event_id,
        outcome: received.outcome,
    }))
}

/// What became of one verified delivery.
pub struct Received {
    pub event_id: String,
    /// `applied`, `duplicate`, `parked`, `ignored` or `failed`.
    pub outcome: &'static str,
}

fn verifier<'a>(state: &'a AppState, processor: &str) -> Result<&'a Arc<dyn WebhookOps>, ApiError> {
    state.webhook_verifiers.get(processor).ok_or_else(|| {
        ApiError::not_found(ErrorCode::ProcessorNotFound, format!("no processor `{processor}` is configured"))
    })
}

/// Verifies one delivery with `processor`'s verifier and ingests it; the step every delivery takes, whether it came
/// over HTTP or from a page Tollgate hosts for the processor. Answers after the commit that made it durable.
/// `request_id` is the delivering request's, carried into the audit entries and outbox messages the event causes.
pub async fn verify_and_ingest(
    state: &AppState,
    processor: &str,
    headers: &WebhookHeaders,
    body: &[u8],
    request_id: Option<String>,
) -> Result<Received, ApiError> {
    let event = verifier(state, processor)?.verify_and_parse(headers, body, state.clock.now()).inspect_err(|_| {
        crate::telemetry::webhook_received(processor, "unverified", "rejected");
    })?;
    let event_type = event.event_type.clone();
    let span = tracing::Span::current();
    span.record("event_id", event.id.as_str());
    span.record("event_type", event.event_type.as_str());
    // The signature covered these exact bytes, which the parser already accepted as JSON text.
    let raw = String::from_utf8_lossy(body).into_owned();
    let event_id = event.id.as_str().to_owned();
    let outcome = state.webhooks.ingest(event, raw, request_id).await.map_err(|e| match e {
        // Still conflicting after the retries: the processor must deliver again, so a 5xx, never a 409.
        IngestError::Store(StoreError::Conflict(cause)) => {
            tracing::warn!(error = %cause, "webhook still conflicting; asking the processor to retry");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::StorageUnavailable,
                "Service unavailable",
                "concurrent deliveries kept conflicting; retry later",
            )
        }
        IngestError::Store(store) => ApiError::from(store),
    });
    let outcome = outcome.inspect_err(|_| crate::telemetry::webhook_received(processor, &event_type, "error"))?;
    let outcome = match &outcome {
        IngestOutcome::Applied => "applied",
        IngestOutcome::Duplicate => "duplicate",
        IngestOutcome::Parked => "parked",
        IngestOutcome::Ignored => "ignored",
        IngestOutcome::Failed { reason } => {
            tracing::error!(%reason, "webhook recorded as failed");
            "failed"
        }
    };
    tracing::info!(outcome, "webhook received");
    crate::telemetry::webhook_received(processor, &event_type, outcome);
    Ok(Received { event_id, outcome })
}
