//! `Idempotency-Key` on state-changing POSTs (SPEC §9): the first response is stored with a fingerprint of the
//! request and replayed byte for byte to every retry with the same key and body; the same key with another body
//! is refused; a duplicate arriving while the first still runs waits for its answer (or gets 409). Keys belong to
//! the caller that sent them. A 5xx is not kept — nothing changed, so a retry runs again.
//!
//! A middleware around the routes marked idempotent (`routes/mod.rs`), so a new route gets it by being marked.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody, to_bytes};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, web};
use billing_domain::error::ValidationError;
use billing_domain::ports::{Claimed, KeyClaim, StoredResponse};
use sha2::{Digest, Sha256};
use tracing_actix_web::RequestId;

use crate::access::path_workspace;
use crate::auth::{Caller, Scope, authenticate};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{declared_length, json_limit, read_limited};
use crate::state::AppState;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Set on a replayed response.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How often a waiting duplicate looks again.
const POLL: std::time::Duration = std::time::Duration::from_millis(25);

/// How keys are kept.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyPolicy {
    /// How long a key is remembered.
    pub ttl: chrono::Duration,
    /// How long a duplicate waits for the first request's answer before a 409.
    pub wait: std::time::Duration,
    /// An unfinished key older than this was left by a request that died; the next one runs afresh.
    pub abandoned_after: chrono::Duration,
}

/// The middleware: passes through anything that is not a keyed POST of an authenticated caller.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.method() != Method::POST || !req.headers().contains_key(HEADER) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    // Refused here as the extractor would refuse it (401, or 429 over the limit): nothing is kept, and the handler
    // never runs outside the guard.
    let caller = match authenticate(req.request()).and_then(|caller| may_replay(&req, caller)) {
        Ok(caller) => caller,
        Err(error) => return Ok(req.error_response(error).map_into_boxed_body()),
    };
    let mut req = req;
    let claim = match prepare(&mut req, &caller.owner()).await {
        Ok(claim) => claim,
        Err(error) => return Ok(req.error_response(error).map_into_boxed_body()),
    };
    match wait_for_claim(&req, &claim).await {
        Ok(None) => {}
        Ok(Some(replay)) => return Ok(req.into_response(replay).map_into_boxed_body()),
        Err(error) => return Ok(req.error_response(error).map_into_boxed_body()),
    }
    let response = next.call(req).await?;
    keep(response, &claim).await
}

/// An end user's access to the path's workspace, checked before anything is replayed: a user removed from a
/// workspace, or made a member, since the first request gets no stored answer back. (Every idempotent workspace
/// route writes but minting a billing-page link, which members may do; a service key's scopes do not change while
/// it is in use.)
fn may_replay(req: &ServiceRequest, caller: Caller) -> Result<Caller, ApiError> {
    if caller.is_end_user() && req.path().starts_with("/v1/workspaces/") {
        let scope =
            if req.path().ends_with("/billing-page-sessions") { Scope::BillingRead } else { Scope::BillingWrite };
        caller.require_on(&path_workspace(req.request())?, scope)?;
    }
    Ok(caller)
}

/// Reads the key and the body (put back for the handler), and fingerprints the request.
async fn prepare(req: &mut ServiceRequest, owner: &str) -> Result<KeyClaim, ApiError> {
    let key = key_of(req.request())?.ok_or_else(|| ApiError::internal("guard called without a key"))?;
    let (limit, declared) = (json_limit(req.request()), declared_length(req.request()));
    let body = read_limited(req.take_payload(), declared, limit).await?;
    let mut digest = Sha256::new();
    for part in [req.method().as_str(), req.path(), req.query_string()] {
        digest.update(part.as_bytes());
        digest.update([0]);
    }
    digest.update(&body);
    req.set_payload(Payload::from(body));
    let state = app_state(req.request())?;
    let now = state.clock.now();
    let policy = state.idempotency_policy;
    // The request id (a UUIDv7) is unique per request: the claim's fencing token.
    let token = req
        .extensions()
        .get::<RequestId>()
        .map(ToString::to_string)
        .ok_or_else(|| ApiError::internal("a request without a request id"))?;
    Ok(KeyClaim {
        owner: owner.to_owned(),
        key,
        token,
        fingerprint: hex::encode(digest.finalize()),
        now,
        expires_at: now + policy.ttl,
        abandoned_before: now - policy.abandoned_after,
    })
}

/// The request's `Idempotency-Key`, if it sent one; 400 naming the header when it is not 1-255 visible ASCII
/// characters.
pub fn key_of(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(HEADER) else { return Ok(None) };
    let visible = |key: &&str| !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic());
    let key = value.to_str().ok().filter(visible);
    match key {
        Some(key) => Ok(Some(key.to_owned())),
        None => Err(ApiError::validation(
            ValidationError::new("Idempotency-Key", "must be 1-255 visible ASCII characters").into(),
        )),
    }
}

/// Claims the key: `None` when this request runs, else the answer to send instead.
async fn wait_for_claim(req: &ServiceRequest, claim: &KeyClaim) -> Result<Option<HttpResponse>, ApiError> {
    let state = app_state(req.request())?;
    let deadline = Instant::now() + state.idempotency_policy.wait;
    loop {
        match state.idempotency.claim(claim).await? {
            Claimed::Started => return Ok(None),
            Claimed::Replay(stored) => return Ok(Some(replay(stored))),
            Claimed::Reused => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::IdempotencyKeyReused,
                    "Idempotency key reused",
                    "this Idempotency-Key was sent with a different request; use a new key for a new request",
                ));
            }
            Claimed::InProgress if Instant::now() < deadline => tokio::time::sleep(POLL).await,
            Claimed::InProgress => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    ErrorCode::IdempotencyInProgress,
                    "Request in progress",
                    "a request with this Idempotency-Key is still running; retry later for its answer",
                ));
            }
        }
    }
}

/// Stores the handler's answer under the key (or forgets the key after a 5xx) and sends it on.
async fn keep(
    response: ServiceResponse<impl MessageBody + 'static>,
    claim: &KeyClaim,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let (request, response) = response.into_parts();
    let status = response.status();
    let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (response, body) = response.into_parts();
    let body =
        to_bytes(body).await.map_err(|e| ApiError::internal(format!("reading a response body: {}", e.into())))?;
    let state = app_state(&request)?;
    let stored = if kept(status) {
        let stored = StoredResponse { status: status.as_u16(), content_type, body: body.to_vec() };
        state.idempotency.complete(claim, &stored).await
    } else {
        state.idempotency.release(claim).await
    };
    if let Err(error) = stored {
        // The answer stands; the key stays in progress until it counts as abandoned, then a retry runs afresh.
        tracing::error!(%error, "could not keep the response of an idempotent request");
    }
    Ok(ServiceResponse::new(request, response.set_body(body).map_into_boxed_body()))
}

/// Whether an answer is kept for the key's retries: successes and the domain's refusals (409, 422). Not a 5xx (nothing
/// changed), and not what a corrected retry should get past: a bad request, missing credentials or scope, an unknown
/// workspace, a rate limit (like Stripe, which keeps no result for a request that never began executing).
fn kept(status: StatusCode) -> bool {
    status.is_success() || matches!(status.as_u16(), 409 | 422)
}

fn replay(stored: StoredResponse) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    if let Some(value) = stored.content_type.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.insert_header((CONTENT_TYPE, value));
    }
    response.insert_header((HeaderName::from_static(REPLAYED_HEADER), HeaderValue::from_static("true")));
    // A stored answer is one request's (a billing-page link among them): no cache keeps a copy.
    response.insert_header((actix_web::http::header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    response.body(stored.body)
}

fn app_state(req: &HttpRequest) -> Result<&web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>().ok_or_else(|| ApiError::internal("AppState missing from app data"))
}
