//! Liveness and readiness.

use actix_web::{HttpResponse, http::StatusCode, web};
use serde_json::json;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database answers; load balancers stop routing here when it does not.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match state.readiness.check().await {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({"status": "ready", "database": "ok"}))),
        Err(cause) => {
            tracing::warn!(error = %cause, "readiness check failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::StorageUnavailable,
                "Not ready",
                "the database is not reachable",
            ))
        }
    }
}
