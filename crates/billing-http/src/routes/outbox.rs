//! The outbox for operators (admin): what is waiting or dead, and a retry of one message.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use billing_domain::services::OutboxError;

use crate::access::{Admin, Authorized};
use crate::dto::{OutboxMessageView, OutboxPage, OutboxQuery};
use crate::error::{ApiError, ErrorCode};
use crate::extract::Query;
use crate::state::AppState;

impl From<OutboxError> for ApiError {
    fn from(error: OutboxError) -> Self {
        match error {
            OutboxError::NotFound => {
                ApiError::not_found(ErrorCode::OutboxMessageNotFound, "no outbox message with this id")
            }
            OutboxError::Delivered => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::OutboxMessageDelivered,
                "Delivered already",
                "this message was delivered already; only a pending or dead message can be retried",
            ),
            OutboxError::Store(e) => e.into(),
        }
    }
}

/// `GET /v1/admin/outbox?status=pending|dead|delivered&limit=&before=`: newest first.
#[utoipa::path(
    get,
    path = "/v1/admin/outbox",
    operation_id = "listOutbox",
    tag = "admin",
    params(crate::dto::OutboxQuery),
    responses(
        (status = 200, description = "Newest first.", body = crate::dto::OutboxPage)
    ),
    security(("api_key" = ["admin"]))
)]
#[tracing::instrument(skip_all)]
pub async fn list(
    state: web::Data<AppState>,
    _: Authorized<Admin>,
    query: Query<OutboxQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(50);
    let entries = state.outbox.list(query.status, limit, query.before).await?;
    Ok(HttpResponse::Ok().json(OutboxPage::new(&entries, limit)))
}

/// `POST /v1/admin/outbox/{id}/retry`: a dead (or waiting) message is due now, its attempts starting over.
#[utoipa::path(
    post,
    path = "/v1/admin/outbox/{id}/retry",
    operation_id = "retryOutboxMessage",
    tag = "admin",
    params(crate::openapi::params::OutboxPath),
    responses(
        (status = 200, description = "Due now, its attempts starting over.", body = crate::dto::OutboxMessageView),
        (status = 404, description = "`outbox_message_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`outbox_message_delivered`.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["admin"]))
)]
#[tracing::instrument(skip_all, fields(outbox_id = *path))]
pub async fn retry(
    state: web::Data<AppState>,
    _: Authorized<Admin>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.outbox.retry(path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(OutboxMessageView::from(&entry)))
}
