//! Starting a checkout.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use billing_domain::error::ValidationErrors;
use billing_domain::services::{CheckoutError, StartCheckout};
use serde_json::json;
use tracing_actix_web::RequestId;

use super::workspace_id;
use crate::auth::{Caller, Scope};
use crate::dto::{CheckoutBody, redirect_url};
use crate::error::{ApiError, ErrorCode};
use crate::extract::Json;
use crate::state::AppState;

impl From<CheckoutError> for ApiError {
    fn from(error: CheckoutError) -> Self {
        match error {
            CheckoutError::WorkspaceNotFound => ApiError::workspace_not_found(),
            CheckoutError::UnknownPlan(unknown) => {
                let valid = unknown.valid.clone();
                ApiError::field("plan", unknown.to_string()).with_extra(json!({"valid_plans": valid}))
            }
            CheckoutError::NotPurchasable { plan, reason } => {
                ApiError::field("plan", format!("plan `{plan}` cannot be bought: {reason}"))
            }
            CheckoutError::AlreadySubscribed { plan } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::AlreadySubscribed,
                "Already subscribed",
                format!("the workspace already has an active `{plan}` subscription"),
            ),
            CheckoutError::Processor(e) => e.into(),
            CheckoutError::Store(e) => e.into(),
        }
    }
}

/// `POST /v1/workspaces/{id}/checkout` → `{session_id, url}`. An `Idempotency-Key` header makes retries return the
/// same session.
#[tracing::instrument(skip_all, fields(workspace_id = %path))]
pub async fn start(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    req: HttpRequest,
    path: web::Path<String>,
    body: Json<CheckoutBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::BillingWrite)?;
    let id = workspace_id(&path)?;
    let body = body.into_inner();
    let mut errors = ValidationErrors::default();
    let defaults = &state.checkout_defaults;
    let success_url =
        errors.check(redirect_url("success_url", body.success_url.as_deref().unwrap_or(&defaults.success_url)));
    let cancel_url =
        errors.check(redirect_url("cancel_url", body.cancel_url.as_deref().unwrap_or(&defaults.cancel_url)));
    let idempotency_key = match req.headers().get("idempotency-key") {
        None => None,
        Some(value) => errors.check(
            value.to_str().ok().filter(|k| !k.is_empty() && k.len() <= 255).map(str::to_owned).ok_or_else(|| {
                billing_domain::error::ValidationError::new("Idempotency-Key", "must be 1-255 visible ASCII characters")
            }),
        ),
    };
    let (Some(success_url), Some(cancel_url)) = (success_url, cancel_url) else {
        return Err(ApiError::validation(errors));
    };
    if !errors.0.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let session = state
        .checkout
        .start(StartCheckout {
            workspace_id: id,
            plan: body.plan,
            success_url,
            cancel_url,
            idempotency_key,
            actor: caller.actor(),
            request_id: Some(request_id.to_string()),
        })
        .await?;
    Ok(HttpResponse::Created().json(json!({"session_id": session.id, "url": session.url})))
}
