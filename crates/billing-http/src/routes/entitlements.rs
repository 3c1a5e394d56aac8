//! Entitlements: the product's hot path.

use actix_web::{HttpResponse, web};
use billing_domain::services::{CheckAndConsume, EntitlementError};

use crate::access::{Read, WorkspaceCall};
use crate::auth::Scope;
use crate::dto::{CheckBody, CheckView, ConsumeCheckView, EntitlementsResponse};
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;

impl From<EntitlementError> for ApiError {
    fn from(error: EntitlementError) -> Self {
        match error {
            EntitlementError::WorkspaceNotFound => ApiError::workspace_not_found(),
            EntitlementError::Unknown(unknown) => ApiError::field("key", unknown.to_string()),
            EntitlementError::Store(e) => e.into(),
        }
    }
}

/// `GET /v1/workspaces/{id}/entitlements`.
#[utoipa::path(
    get,
    path = "/v1/workspaces/{id}/entitlements",
    operation_id = "listEntitlements",
    tag = "entitlements",
    params(crate::openapi::params::WorkspacePath),
    responses(
        (status = 200, description = "Every limit and feature of the effective plan.", body = crate::dto::EntitlementsResponse),
        (status = 404, description = "`workspace_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["billing:read"]), ("user_token" = []))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %call.workspace_id))]
pub async fn all(state: web::Data<AppState>, call: WorkspaceCall<Read>) -> Result<HttpResponse, ApiError> {
    let view = state.entitlements.all(&call.workspace_id).await?;
    Ok(HttpResponse::Ok().json(EntitlementsResponse::from(&view)))
}

/// `POST /v1/workspaces/{id}/entitlements/check`. The hot path: its span is at debug level, so at the default
/// level a check costs no span beyond the request's own (a quarter of the throughput, measured).
#[utoipa::path(
    post,
    path = "/v1/workspaces/{id}/entitlements/check",
    operation_id = "checkEntitlement",
    tag = "entitlements",
    params(crate::openapi::params::WorkspacePath),
    request_body = crate::dto::CheckBody,
    responses(
        (status = 200, description = "A limit's or a feature's answer; with `consume`, whether it was taken.", body = crate::dto::CheckAnswer),
        (status = 404, description = "`workspace_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["billing:read"]), ("user_token" = []))
)]
#[tracing::instrument(level = "debug", skip_all, fields(workspace_id = %call.workspace_id))]
pub async fn check(
    state: web::Data<AppState>,
    call: WorkspaceCall<Read>,
    body: Json<CheckBody>,
) -> Result<HttpResponse, ApiError> {
    if let Some(amount) = body.consume {
        return consume(&state, &call, body.into_inner(), amount).await;
    }
    let result =
        state.entitlements.check(&call.workspace_id, &body.key, body.requested.unwrap_or(1), body.current).await?;
    Ok(HttpResponse::Ok().json(CheckView::from(&result)))
}

/// A check with `consume`: the limit checked and the usage recorded in one step (`UsageService`).
async fn consume(
    state: &AppState,
    call: &WorkspaceCall<Read>,
    body: CheckBody,
    amount: u64,
) -> Result<HttpResponse, ApiError> {
    call.access.caller.require_on(&call.workspace_id, Scope::UsageWrite)?;
    let idempotency_key =
        body.idempotency_key.ok_or_else(|| ApiError::field("idempotency_key", "is required with `consume`"))?;
    let request = CheckAndConsume { workspace_id: call.workspace_id.clone(), key: body.key, amount, idempotency_key };
    let result = state.usage.check_and_consume(&request).await?;
    Ok(HttpResponse::Ok().json(ConsumeCheckView::from(&result)))
}
