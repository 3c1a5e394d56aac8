//! Entitlements: the product's hot path.

use actix_web::{HttpResponse, web};
use billing_domain::services::EntitlementError;

use crate::access::{Read, WorkspaceCall};
use crate::dto::{CheckBody, CheckView, EntitlementsResponse};
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
#[tracing::instrument(skip_all, fields(workspace_id = %call.workspace_id))]
pub async fn all(state: web::Data<AppState>, call: WorkspaceCall<Read>) -> Result<HttpResponse, ApiError> {
    let view = state.entitlements.all(&call.workspace_id).await?;
    Ok(HttpResponse::Ok().json(EntitlementsResponse::from(&view)))
}

/// `POST /v1/workspaces/{id}/entitlements/check`. The hot path: its span is at debug level, so at the default
/// level a check costs no span beyond the request's own (a quarter of the throughput, measured).
#[tracing::instrument(level = "debug", skip_all, fields(workspace_id = %call.workspace_id))]
pub async fn check(
    state: web::Data<AppState>,
    call: WorkspaceCall<Read>,
    body: Json<CheckBody>,
) -> Result<HttpResponse, ApiError> {
    let result =
        state.entitlements.check(&call.workspace_id, &body.key, body.requested.unwrap_or(1), body.current).await?;
    Ok(HttpResponse::Ok().json(CheckView::from(&result)))
}
