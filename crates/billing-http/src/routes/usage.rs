//! Usage metering: batch ingestion and a period's usage with its cost.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use billing_domain::services::UsageError;
use billing_domain::usage::MAX_BATCH;
use serde_json::json;

use crate::access::{Authorized, Read, UsageWrite, WorkspaceCall};
use crate::dto::{UsageBatch, UsageBatchView, UsageQuery, UsageReportView};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Query, json_body};
use crate::state::AppState;

/// The largest batch body: 1,000 events of up to about 1 kB each.
const BATCH_BODY_LIMIT: usize = 1024 * 1024;

impl From<UsageError> for ApiError {
    fn from(error: UsageError) -> Self {
        match error {
            UsageError::WorkspaceNotFound => ApiError::workspace_not_found(),
            UsageError::NotConsumable(_) => ApiError::field("consume", error.to_string()),
            UsageError::UnknownLimit(_) => ApiError::field("key", error.to_string()),
            UsageError::InvalidPeriod(message) => ApiError::field("period", message),
            UsageError::Overflow(e) => ApiError::internal(e.to_string()),
            UsageError::Store(e) => e.into(),
        }
    }
}

/// `POST /v1/usage {events: [...]}`: up to 1,000 events, each accepted, a duplicate or rejected on its own; the
/// accepted ones are recorded in one transaction (shared with the batches queued beside it) before the answer.
#[utoipa::path(
    post,
    path = "/v1/usage",
    operation_id = "ingestUsage",
    tag = "usage",
    request_body = crate::dto::UsageBatch,
    responses(
        (status = 200, description = "One result per event, in the batch's order.", body = crate::dto::UsageBatchView),
        (status = 413, description = "`batch_too_large` (more than 1,000 events; `limit` says how many) or `payload_too_large`.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["usage:write"]))
)]
#[tracing::instrument(skip_all)]
pub async fn ingest(
    state: web::Data<AppState>,
    _access: Authorized<UsageWrite>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let batch: UsageBatch = json_body(&req, payload.into_inner(), BATCH_BODY_LIMIT).await?;
    if batch.events.len() > MAX_BATCH {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BatchTooLarge,
            "Batch too large",
            format!("a batch holds at most {MAX_BATCH} events; this one has {}", batch.events.len()),
        )
        .with_extra(json!({"limit": MAX_BATCH})));
    }
    let events: Vec<_> = batch.events.into_iter().map(|e| e.0).collect();
    let judged = state.usage.judge(&events).await?;
    let outcomes = state.usage_batches.record(judged).await?;
    Ok(HttpResponse::Ok().json(UsageBatchView::of(&events, &outcomes)))
}

/// `GET /v1/workspaces/{id}/usage`: per metric the quantity, included, billable, unit price and amount.
#[utoipa::path(
    get,
    path = "/v1/workspaces/{id}/usage",
    operation_id = "getUsage",
    tag = "usage",
    params(crate::openapi::params::WorkspacePath, crate::dto::UsageQuery),
    responses(
        (status = 200, description = "Per metric: quantity, included, billable, unit price and amount.", body = crate::dto::UsageReportView),
        (status = 404, description = "`workspace_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["billing:read"]), ("user_token" = []))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %call.workspace_id))]
pub async fn report(
    state: web::Data<AppState>,
    call: WorkspaceCall<Read>,
    query: Query<UsageQuery>,
) -> Result<HttpResponse, ApiError> {
    let period = query.period().map_err(ApiError::validation)?;
    let report = state.usage.report(&call.workspace_id, period).await?;
    Ok(HttpResponse::Ok().json(UsageReportView::from(&report)))
}
