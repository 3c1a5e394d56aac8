//! Coupons: created and listed by admins, checked by anyone who may read billing.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use billing_domain::services::CouponServiceError;

use crate::access::{Admin, Authorized, Read};
use crate::dto::{CouponCheckQuery, CouponCheckView, CouponList, CouponListQuery, CouponView, CreateCouponBody};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Json, Query};
use crate::state::AppState;

impl From<CouponServiceError> for ApiError {
    fn from(error: CouponServiceError) -> Self {
        match error {
            CouponServiceError::Invalid(errors) => ApiError::validation(errors),
            CouponServiceError::Exists(code) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::CouponExists,
                "Coupon exists",
                format!("a coupon with code `{code}` exists; codes compare case-insensitively"),
            ),
            CouponServiceError::NotFound(_) => {
                ApiError::not_found(ErrorCode::CouponNotFound, "no coupon with this code")
            }
            CouponServiceError::Store(e) => e.into(),
        }
    }
}

/// `POST /v1/coupons` (admin).
#[utoipa::path(
    post,
    path = "/v1/coupons",
    operation_id = "createCoupon",
    tag = "coupons",
    request_body = crate::dto::CreateCouponBody,
    responses(
        (status = 201, description = "Created.", body = crate::dto::CouponView),
        (status = 409, description = "`coupon_exists`: codes compare case-insensitively.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["admin"]))
)]
#[tracing::instrument(skip_all)]
pub async fn create(
    state: web::Data<AppState>,
    _: Authorized<Admin>,
    body: Json<CreateCouponBody>,
) -> Result<HttpResponse, ApiError> {
    let new = body.into_inner().try_into_domain().map_err(ApiError::validation)?;
    let coupon = state.coupons.create(new).await?;
    Ok(HttpResponse::Created().json(CouponView::from(&coupon)))
}

/// `GET /v1/coupons?limit=` (admin), by code.
#[utoipa::path(
    get,
    path = "/v1/coupons",
    operation_id = "listCoupons",
    tag = "coupons",
    params(crate::dto::CouponListQuery),
    responses(
        (status = 200, description = "By code.", body = crate::dto::CouponList)
    ),
    security(("api_key" = ["admin"]))
)]
#[tracing::instrument(skip_all)]
pub async fn list(
    state: web::Data<AppState>,
    _: Authorized<Admin>,
    query: Query<CouponListQuery>,
) -> Result<HttpResponse, ApiError> {
    let coupons = state.coupons.list(query.limit.unwrap_or(100)).await?;
    Ok(HttpResponse::Ok().json(CouponList { coupons: coupons.iter().map(CouponView::from).collect() }))
}

/// `GET /v1/coupons/{code}?plan=`: the coupon and whether it applies now.
#[utoipa::path(
    get,
    path = "/v1/coupons/{code}",
    operation_id = "checkCoupon",
    tag = "coupons",
    params(crate::openapi::params::CouponPath, crate::dto::CouponCheckQuery),
    responses(
        (status = 200, description = "The coupon; `valid` says whether it applies now.", body = crate::dto::CouponCheckView),
        (status = 404, description = "`coupon_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["billing:read"]))
)]
#[tracing::instrument(skip_all)]
pub async fn check(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    path: web::Path<String>,
    query: Query<CouponCheckQuery>,
) -> Result<HttpResponse, ApiError> {
    let check = state.coupons.check(&path, query.plan.as_deref()).await?;
    Ok(HttpResponse::Ok().json(CouponCheckView::from(&check)))
}
