//! One-time payments for custom UIs and refunds (admin).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use billing_domain::ids::PaymentId;
use billing_domain::payment::RefundReason;
use billing_domain::services::{CreatePayment, PaymentError, RefundPayment};
use serde_json::json;

use crate::access::{Admin, Authorized, Read, WorkspaceCall, Write};
use crate::dto::{
    PaymentDetail, PaymentIntentBody, PaymentIntentView, PaymentPage, PaymentView, PaymentsQuery, RefundBody,
    RefundView, RefundedView,
};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Json, JsonOrEmpty, Query};
use crate::idempotency::key_of;
use crate::state::AppState;

impl From<PaymentError> for ApiError {
    fn from(error: PaymentError) -> Self {
        match error {
            PaymentError::WorkspaceNotFound => ApiError::workspace_not_found(),
            PaymentError::PaymentNotFound => ApiError::not_found(ErrorCode::PaymentNotFound, "no payment with this id"),
            PaymentError::UnknownPlan(unknown) => unknown.into(),
            PaymentError::Invalid(problem) => ApiError::validation(problem.into()),
            PaymentError::NotRefundable(status) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::PaymentNotRefundable,
                "Payment not refundable",
                format!("the payment is {}; only a succeeded payment can be refunded", status.as_str()),
            )
            .with_extra(json!({"payment_status": status.as_str()})),
            PaymentError::RefundExceedsPayment { refundable } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::RefundExceedsPayment,
                "Refund exceeds payment",
                format!("only {refundable} (minor units) is left to refund; nothing was refunded"),
            )
            .with_extra(json!({"refundable": refundable})),
            PaymentError::RefundRefused(reason) => {
                tracing::warn!(%reason, "the processor refused a refund");
                ApiError::new(
                    StatusCode::CONFLICT,
                    ErrorCode::RefundRefused,
                    "Refund refused",
                    "the payment processor refused this refund; nothing was refunded",
                )
            }
            PaymentError::ManagedElsewhere(processor) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::PaymentManagedElsewhere,
                "Payment managed elsewhere",
                format!("the payment was made through `{processor}`, which is not the active processor"),
            )
            .with_extra(json!({"processor": processor})),
            PaymentError::Processor(e) => e.into(),
            PaymentError::Store(e) => e.into(),
        }
    }
}

/// `POST /v1/workspaces/{id}/payment-intents {amount | plan, description?, return_url?}` → client secret.
#[utoipa::path(
    post,
    path = "/v1/workspaces/{id}/payment-intents",
    operation_id = "createPaymentIntent",
    tag = "payments",
    params(crate::openapi::params::WorkspacePath),
    request_body = crate::dto::PaymentIntentBody,
    responses(
        (status = 201, description = "Hand `client_secret` to the processor's JavaScript.", body = crate::dto::PaymentIntentView),
        (status = 404, description = "`workspace_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::ProcessorProblems
    ),
    security(("api_key" = ["billing:write"]), ("user_token" = ["owner", "admin"]))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %call.workspace_id))]
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    call: WorkspaceCall<Write>,
    body: Json<PaymentIntentBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let charge = body.charge().map_err(ApiError::validation)?;
    let (payment, intent) = state
        .payments
        .create(CreatePayment {
            workspace_id: call.workspace_id.clone(),
            charge,
            description: body.description,
            return_url: body.return_url.unwrap_or_else(|| state.checkout_defaults.success_url.clone()),
            // Also passed to the processor, so a retry that outlives the stored answer creates one payment.
            idempotency_key: key_of(&req)?,
            actor: call.actor(),
            request_id: call.request_id(),
        })
        .await?;
    Ok(HttpResponse::Created().json(PaymentIntentView::new(&payment, &intent)))
}

/// `GET /v1/workspaces/{id}/payments?limit=&starting_after=`: newest first.
#[utoipa::path(
    get,
    path = "/v1/workspaces/{id}/payments",
    operation_id = "listPayments",
    tag = "payments",
    params(crate::openapi::params::WorkspacePath, crate::dto::PaymentsQuery),
    responses(
        (status = 200, description = "Newest first.", body = crate::dto::PaymentPage),
        (status = 404, description = "`workspace_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["billing:read"]), ("user_token" = []))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %call.workspace_id))]
pub async fn list(
    state: web::Data<AppState>,
    call: WorkspaceCall<Read>,
    query: Query<PaymentsQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(20);
    let after = query.starting_after.clone().map(PaymentId::new);
    // One more than asked tells whether another page follows.
    let mut payments = state.payments.list(&call.workspace_id, limit + 1, after).await?;
    let has_more = payments.len() > limit as usize;
    payments.truncate(limit as usize);
    Ok(HttpResponse::Ok().json(PaymentPage { payments: payments.iter().map(PaymentView::from).collect(), has_more }))
}

/// `GET /v1/payments/{id}` (admin): the payment and its refunds.
#[utoipa::path(
    get,
    path = "/v1/payments/{id}",
    operation_id = "getPayment",
    tag = "payments",
    params(crate::openapi::params::PaymentPath),
    responses(
        (status = 200, description = "The payment and its refunds.", body = crate::dto::PaymentDetail),
        (status = 404, description = "`payment_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["admin"]))
)]
#[tracing::instrument(skip_all)]
pub async fn get(
    state: web::Data<AppState>,
    _: Authorized<Admin>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (payment, refunds) = state.payments.get(&payment_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(PaymentDetail {
        payment: PaymentView::from(&payment),
        refunds: refunds.iter().map(RefundView::from).collect(),
    }))
}

/// `POST /v1/payments/{id}/refund {amount?, reason?}` (admin): full or partial; more than is left → 409.
#[utoipa::path(
    post,
    path = "/v1/payments/{id}/refund",
    operation_id = "refundPayment",
    tag = "payments",
    params(crate::openapi::params::PaymentPath),
    request_body(content = Option<crate::dto::RefundBody>, description = "Optional: an empty body takes the defaults.", content_type = "application/json"),
    responses(
        (status = 201, description = "Refunded.", body = crate::dto::RefundedView),
        (status = 404, description = "`payment_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`payment_not_refundable`, `refund_exceeds_payment` (`refundable` says what is left), `refund_refused`, `payment_managed_elsewhere`, or an `Idempotency-Key` in use.", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::ProcessorProblems
    ),
    security(("api_key" = ["admin"]))
)]
#[tracing::instrument(skip_all)]
pub async fn refund(
    state: web::Data<AppState>,
    req: HttpRequest,
    access: Authorized<Admin>,
    path: web::Path<String>,
    body: JsonOrEmpty<RefundBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let refunded = state
        .payments
        .refund(RefundPayment {
            payment_id: payment_id(&path)?,
            amount: body.amount,
            reason: body.reason.as_deref().and_then(RefundReason::parse),
            // Also the refund's own key, so a retry after a timeout is the same refund at the processor.
            idempotency_key: key_of(&req)?,
            actor: access.actor(),
            request_id: access.request_id(),
        })
        .await?;
    Ok(HttpResponse::Created().json(RefundedView {
        refund: RefundView::from(&refunded.refund),
        payment: PaymentView::from(&refunded.payment),
        credits_revoked: refunded.credits_revoked,
    }))
}

/// A payment id from the path: the processor's, so only its length and characters are checked.
fn payment_id(raw: &str) -> Result<PaymentId, ApiError> {
    let valid = !raw.is_empty() && raw.len() <= 255 && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid { Ok(PaymentId::new(raw)) } else { Err(ApiError::field("id", "must be a payment id (`pi_…`)")) }
}
