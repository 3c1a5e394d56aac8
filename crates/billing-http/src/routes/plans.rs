//! The public plan catalog.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::auth::{Caller, Scope};
use crate::dto::PlanView;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /v1/plans`: every plan with prices, limits and features.
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::BillingRead)?;
    let plans: Vec<PlanView> = state.catalog.plans().iter().map(PlanView::from).collect();
    Ok(HttpResponse::Ok().json(json!({
        "plans": plans,
        "limits": state.catalog.limit_declarations(),
        "features": state.catalog.feature_declarations(),
    })))
}
