//! `POST /webhooks/{processor}`: verify, record, apply; 2xx only after commit (SPEC §5).

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use billing_domain::ports::{WebhookError, WebhookHeaders};
use billing_domain::services::{IngestError, IngestOutcome};
use futures::StreamExt;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// Processors' events are small; anything larger is refused before it is read whole.
pub const MAX_WEBHOOK_BYTES: usize = 1024 * 1024;

impl From<WebhookError> for ApiError {
    fn from(error: WebhookError) -> Self {
        let code = match &error {
            WebhookError::MissingSignature(_) => "webhook_signature_missing",
            WebhookError::MalformedSignature => "webhook_signature_malformed",
            WebhookError::BadSignature => "webhook_signature_invalid",
            WebhookError::StaleTimestamp { .. } => "webhook_timestamp_stale",
            WebhookError::MalformedPayload(_) => "webhook_payload_invalid",
        };
        ApiError::new(StatusCode::BAD_REQUEST, code, "Webhook rejected", error.to_string())
    }
}

/// Receives one delivery of a processor's webhook.
#[tracing::instrument(skip_all, fields(processor = %path, event_id, event_type))]
pub async fn receive(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let verifier = state
        .webhook_verifiers
        .get(path.as_str())
        .ok_or_else(|| ApiError::not_found("processor_not_found", format!("no processor `{path}` is configured")))?;
    let body = read_limited(&req, payload).await?;
    let headers: WebhookHeaders = req
        .headers()
        .iter()
        .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str().to_ascii_lowercase(), v.to_owned())))
        .collect();
    let event = verifier.verify_and_parse(&headers, &body, state.clock.now())?;
    let span = tracing::Span::current();
    span.record("event_id", event.id.as_str());
    span.record("event_type", event.event_type.as_str());
    // The signature covered these exact bytes, which the parser already accepted as JSON text.
    let raw = String::from_utf8_lossy(&body);
    let outcome = state.webhooks.ingest(&event, &raw).await.map_err(|e| match e {
        IngestError::Store(store) => ApiError::from(store),
    })?;
    let outcome_name = match &outcome {
        IngestOutcome::Applied => "applied",
        IngestOutcome::Duplicate => "duplicate",
        IngestOutcome::Parked => "parked",
        IngestOutcome::Ignored => "ignored",
        IngestOutcome::Failed { reason } => {
            tracing::error!(%reason, "webhook recorded as failed");
            "failed"
        }
    };
    tracing::info!(outcome = outcome_name, "webhook received");
    Ok(HttpResponse::Ok().json(json!({"received": true, "event_id": event.id, "outcome": outcome_name})))
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "Payload too large",
        format!("webhook bodies are limited to {MAX_WEBHOOK_BYTES} bytes"),
    )
}

/// Reads the body, refusing it as soon as it exceeds the limit (by header or by bytes read).
async fn read_limited(req: &HttpRequest, mut payload: web::Payload) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_WEBHOOK_BYTES) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(4096).min(MAX_WEBHOOK_BYTES));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", "Invalid body", e.to_string()))?;
        if body.len() + chunk.len() > MAX_WEBHOOK_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
