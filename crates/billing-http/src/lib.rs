//! Tollgate's HTTP edge (actix-web): routes, DTOs, API-key auth and problem+json errors. Handlers are thin calls
//! into billing-domain services. The binary wires state into an [`Edge`] and hands it to [`server::serve`].

pub mod access;
pub mod auth;
pub mod billing_page;
mod dto;
pub mod error;
mod extract;
pub mod group_commit;
pub mod idempotency;
pub mod limits;
mod objects_only;
pub mod openapi;
pub mod rate_limit;
pub mod request_span;
mod routes;
pub mod security_headers;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod usage_commit;
pub mod user_tokens;

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::web;

pub use state::{AppState, CheckoutDefaults, Readiness};

/// Everything one worker needs; cheap to clone into each worker's `App`.
#[derive(Clone)]
pub struct Edge {
    state: web::Data<AppState>,
    keys: web::Data<auth::ApiKeys>,
    /// `None`: end-user tokens are off, and a bearer value is only ever an API key.
    user_tokens: Option<web::Data<user_tokens::TokenVerifier>>,
    openapi: web::Data<openapi::Served>,
    max_json_bytes: usize,
}

impl Edge {
    pub fn new(state: AppState, keys: auth::ApiKeys, max_json_bytes: usize) -> Self {
        let openapi = web::Data::new(openapi::Served::new(&state.catalog));
        Self { state: web::Data::new(state), keys: web::Data::new(keys), user_tokens: None, openapi, max_json_bytes }
    }

    /// Accepts end users' tokens beside the API keys.
    pub fn with_user_tokens(self, verifier: Arc<user_tokens::TokenVerifier>) -> Self {
        Self { user_tokens: Some(web::Data::from(verifier)), ..self }
    }

    /// Registers app data, the path extractor's error handler and every route.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.state.clone())
            .app_data(self.keys.clone())
            .app_data(self.openapi.clone())
            .app_data(extract::JsonLimit(self.max_json_bytes))
            .app_data(web::PathConfig::default().error_handler(extract::path_error));
        if let Some(verifier) = &self.user_tokens {
            cfg.app_data(verifier.clone());
        }
        routes::routes(cfg);
        cfg.default_service(web::to(routes::not_found));
    }
}

/// Every route's path pattern (`/v1/workspaces/{id}`) with the methods it answers; any other method answers 405.
pub fn route_table() -> Vec<(&'static str, Vec<Method>)> {
    routes::table()
}
