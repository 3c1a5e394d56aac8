//! Credits: consuming them.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use billing_domain::services::{Consume, CreditError};
use serde_json::json;

use crate::access::{WorkspaceCall, Write};
use crate::dto::{ConsumeBody, ConsumeView};
use crate::error::{ApiError, ErrorCode};
use crate::extract::Json;
use crate::state::AppState;

impl From<CreditError> for ApiError {
    fn from(error: CreditError) -> Self {
        match error {
            CreditError::WorkspaceNotFound => ApiError::workspace_not_found(),
            CreditError::Invalid(problem) => ApiError::validation(problem.into()),
            CreditError::Store(e) => e.into(),
        }
    }
}

/// `POST /v1/workspaces/{id}/credits/consume {amount, idempotency_key}`: never below zero (409 with the balance).
#[utoipa::path(
    post,
    path = "/v1/workspaces/{id}/credits/consume",
    operation_id = "consumeCredits",
    tag = "credits",
    params(crate::openapi::params::WorkspacePath),
    request_body = crate::dto::ConsumeBody,
    responses(
        (status = 200, description = "Consumed, or consumed before under this key.", body = crate::dto::ConsumeView),
        (status = 404, description = "`workspace_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`insufficient_credits` (`balance` says how many there are; nothing was consumed), or an `Idempotency-Key` in use.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["billing:write"]), ("user_token" = ["owner", "admin"]))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %call.workspace_id))]
pub async fn consume(
    state: web::Data<AppState>,
    call: WorkspaceCall<Write>,
    body: Json<ConsumeBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let outcome = state
        .credits
        .consume(Consume {
            workspace_id: call.workspace_id.clone(),
            amount: body.amount,
            idempotency_key: body.idempotency_key,
            actor: call.actor(),
            request_id: call.request_id(),
        })
        .await?;
    let view = ConsumeView::of(outcome).map_err(|balance| {
        ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::InsufficientCredits,
            "Insufficient credits",
            format!("the workspace has {balance} credits, fewer than asked; nothing was consumed"),
        )
        .with_extra(json!({"balance": balance}))
    })?;
    Ok(HttpResponse::Ok().json(view))
}
