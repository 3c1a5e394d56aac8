//! The public plan catalog.

use actix_web::{HttpResponse, web};

use crate::access::{Authorized, Catalog};
use crate::dto::PlansResponse;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /v1/plans`: every plan with prices, limits and features.
#[utoipa::path(
    get,
    path = "/v1/plans",
    operation_id = "listPlans",
    tag = "plans",
    responses(
        (status = 200, description = "The catalog.", body = crate::dto::PlansResponse)
    ),
    security(("api_key" = ["billing:read"]), ("user_token" = []))
)]
pub async fn list(state: web::Data<AppState>, _: Authorized<Catalog>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(PlansResponse::from(state.catalog.as_ref())))
}
