//! Route table. Handlers are thin: authenticate, convert the DTO, call one service, render.

mod checkout;
mod entitlements;
mod health;
mod plans;
mod sandbox;
mod webhooks;
mod workspaces;

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use billing_domain::ids::WorkspaceId;

use crate::error::ApiError;

/// Registers every route under `cfg`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/v1/plans", web::get().to(plans::list))
        .service(
            web::resource("/v1/workspaces/{id}")
                .route(web::put().to(workspaces::put))
                .route(web::get().to(workspaces::get)),
        )
        .route("/v1/workspaces/{id}/subscription", web::get().to(workspaces::subscription))
        .route("/v1/workspaces/{id}/trial", web::post().to(workspaces::start_trial))
        .route("/v1/workspaces/{id}/audit", web::get().to(workspaces::audit))
        .route("/v1/workspaces/{id}/checkout", web::post().to(checkout::start))
        .route("/v1/workspaces/{id}/entitlements", web::get().to(entitlements::all))
        .route("/v1/workspaces/{id}/entitlements/check", web::post().to(entitlements::check))
        .route("/webhooks/{processor}", web::post().to(webhooks::receive))
        .route("/sandbox/checkout/{id}", web::get().to(sandbox::page))
        .route("/sandbox/checkout/{id}/pay", web::post().to(sandbox::pay))
        .route("/sandbox/checkout/{id}/decline", web::post().to(sandbox::decline));
}

/// Unknown routes and methods answer problem+json too.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        "Not found",
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

/// Parses the `{id}` path segment, naming the field when it is invalid.
fn workspace_id(raw: &str) -> Result<WorkspaceId, ApiError> {
    WorkspaceId::parse(raw).map_err(|e| ApiError::validation(e.into()))
}
