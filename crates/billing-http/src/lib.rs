//! Tollgate's HTTP edge (actix-web): routes, DTOs, API-key auth and problem+json errors. Handlers are thin calls
//! into billing-domain services; the binary wires state and starts the server.

pub mod auth;
mod dto;
pub mod error;
mod extract;
pub mod group_commit;
pub mod limits;
pub mod request_span;
mod routes;
pub mod state;

use actix_web::http::Method;
use actix_web::web;

pub use state::{AppState, CheckoutDefaults, Readiness, SandboxPages, WebhookDelivery};

/// Everything one worker needs; cheap to clone into each worker's `App`.
#[derive(Clone)]
pub struct Edge {
    pub state: web::Data<AppState>,
    pub keys: web::Data<auth::ApiKeys>,
    pub sandbox: Option<web::Data<SandboxPages>>,
    pub max_json_bytes: usize,
}

impl Edge {
    /// Registers app data, the path extractor's error handler and every route.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.state.clone())
            .app_data(self.keys.clone())
            .app_data(extract::JsonLimit(self.max_json_bytes))
            .app_data(web::PathConfig::default().error_handler(extract::path_error));
        if let Some(sandbox) = &self.sandbox {
            cfg.app_data(sandbox.clone());
        }
        routes::routes(cfg);
        cfg.default_service(web::to(routes::not_found));
    }
}

/// Every route's path pattern (`/v1/workspaces/{id}`) with the methods it answers; any other method answers 405.
pub fn route_table() -> Vec<(&'static str, Vec<Method>)> {
    routes::table()
}
