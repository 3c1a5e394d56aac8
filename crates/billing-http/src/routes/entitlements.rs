//! Entitlements: the product's hot path.

use actix_web::{HttpResponse, web};
use billing_domain::services::EntitlementError;

use super::workspace_id;
use crate::auth::{Caller, Scope};
use crate::dto::CheckBody;
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
#[tracing::instrument(skip_all, fields(workspace_id = %path))]
pub async fn all(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::BillingRead)?;
    let id = workspace_id(&path)?;
    Ok(HttpResponse::Ok().json(state.entitlements.all(&id).await?))
}

/// `POST /v1/workspaces/{id}/entitlements/check`. The hot path: its span is at debug level, so at the default
/// level a check costs no span beyond the request's own (a quarter of the throughput, measured).
#[tracing::instrument(level = "debug", skip_all, fields(workspace_id = %path))]
pub async fn check(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<CheckBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::BillingRead)?;
    let id = workspace_id(&path)?;
    let body = body.into_inner();
    if body.key.trim().is_empty() {
        return Err(ApiError::field("key", "must name a limit or feature of the catalog"));
    }
    let result = state.entitlements.check(&id, &body.key, body.requested.unwrap_or(1), body.current).await?;
    Ok(HttpResponse::Ok().json(result))
}
