//! Liveness and readiness.

use actix_web::{HttpResponse, http::StatusCode, web};

use crate::dto::HealthView;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthView { status: "ok", database: None })
}

/// The database answers; load balancers stop routing here when it does not.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match state.readiness.check().await {
        Ok(()) => Ok(HttpResponse::Ok().json(HealthView { status: "ready", database: Some("ok") })),
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
