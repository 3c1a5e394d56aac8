//! Liveness and readiness.

use actix_web::{HttpResponse, http::StatusCode, web};

use crate::dto::HealthView;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "operations",
    responses(
        (status = 200, description = "Up.", body = crate::dto::HealthView)
    ),
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthView { status: "ok", database: None })
}

/// The database answers; load balancers stop routing here when it does not.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The database answers.", body = crate::dto::HealthView)
    ),
)]
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
