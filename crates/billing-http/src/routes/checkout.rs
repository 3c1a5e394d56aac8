//! Starting a checkout.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use billing_domain::services::{CheckoutError, StartCheckout};

use crate::access::{WorkspaceCall, Write};
use crate::dto::{CheckoutBody, CheckoutSessionView};
use crate::error::{ApiError, ErrorCode};
use crate::extract::Json;
use crate::state::AppState;

impl From<CheckoutError> for ApiError {
    fn from(error: CheckoutError) -> Self {
        match error {
            CheckoutError::WorkspaceNotFound => ApiError::workspace_not_found(),
            CheckoutError::UnknownPlan(unknown) => unknown.into(),
            CheckoutError::NotPurchasable { plan, reason } => {
                ApiError::field("plan", format!("plan `{plan}` cannot be bought: {reason}"))
            }
            CheckoutError::AlreadySubscribed { plan } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::AlreadySubscribed,
                "Already subscribed",
                format!("the workspace already has an active `{plan}` subscription"),
            ),
            CheckoutError::UnknownCoupon(code) => ApiError::field("coupon", format!("no coupon `{code}`")),
            CheckoutError::CouponNotApplicable(reason) => ApiError::field("coupon", reason.to_string()),
            CheckoutError::InvalidCoupon(problem) => ApiError::validation(problem.into()),
            CheckoutError::CouponExhausted(code) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::CouponExhausted,
                "Coupon used up",
                format!("coupon `{code}` has no uses left"),
            ),
            CheckoutError::CouponAlreadyRedeemed(code) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::CouponAlreadyRedeemed,
                "Coupon already redeemed",
                format!("this workspace has already redeemed coupon `{code}`; a coupon applies once per workspace"),
            ),
            CheckoutError::Processor(e) => e.into(),
            CheckoutError::Store(e) => e.into(),
        }
    }
}

/// `POST /v1/workspaces/{id}/checkout` → `{session_id, url}`. An `Idempotency-Key` header makes retries return the
/// same session.
#[utoipa::path(
    post,
    path = "/v1/workspaces/{id}/checkout",
    operation_id = "startCheckout",
    tag = "checkout",
    params(crate::openapi::params::WorkspacePath),
    request_body = crate::dto::CheckoutBody,
    responses(
        (status = 201, description = "Send the buyer to `url`.", body = crate::dto::CheckoutSessionView),
        (status = 404, description = "`workspace_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already_subscribed`, `coupon_exhausted`, `coupon_already_redeemed`, or an `Idempotency-Key` in use.", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::ProcessorProblems
    ),
    security(("api_key" = ["billing:write"]), ("user_token" = ["owner", "admin"]))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %call.workspace_id))]
pub async fn start(
    state: web::Data<AppState>,
    call: WorkspaceCall<Write>,
    req: HttpRequest,
    body: Json<CheckoutBody>,
) -> Result<HttpResponse, ApiError> {
    // Also passed to the processor, so even a retry that outlives the stored answer creates one session.
    let idempotency_key = crate::idempotency::key_of(&req)?;
    let body = body.into_inner();
    let defaults = &state.checkout_defaults;
    let session = state
        .checkout
        .start(StartCheckout {
            workspace_id: call.workspace_id.clone(),
            plan: body.plan,
            success_url: body.success_url.unwrap_or_else(|| defaults.success_url.clone()),
            cancel_url: body.cancel_url.unwrap_or_else(|| defaults.cancel_url.clone()),
            idempotency_key,
            coupon: body.coupon,
            actor: call.actor(),
            request_id: call.request_id(),
        })
        .await?;
    Ok(HttpResponse::Created().json(CheckoutSessionView::from(&session)))
}
