//! The sandbox's documented controls (admin only; 404 `sandbox_disabled` when the sandbox is off): a workspace's
//! card, which can be told to decline the next charge; paying its open invoice, as a customer fixing their card
//! would; renewing what is due now; and what its meters received. What they cause at the sandbox is ingested like
//! any of its deliveries.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use billing_domain::ids::WorkspaceId;
use billing_domain::ports::SandboxControlError;
use billing_domain::services::RenewalService;
use tracing_actix_web::RequestId;

use crate::access::{Admin, Authorized};
use crate::dto::{
    SandboxCardBody, SandboxCardView, SandboxDeliveriesView, SandboxDeliveryView, SandboxMeterView, SandboxMetersView,
    SandboxRenewView,
};
use crate::error::{ApiError, ErrorCode};
use crate::extract::Json;
use crate::routes::sandbox::deliver_all;
use crate::state::AppState;

impl From<SandboxControlError> for ApiError {
    fn from(error: SandboxControlError) -> Self {
        match error {
            SandboxControlError::UnknownCustomer => ApiError::not_found(
                ErrorCode::SandboxCustomerNotFound,
                "the sandbox has no customer for this workspace; it becomes one at its first checkout",
            ),
            SandboxControlError::NoOpenInvoice => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::NoOpenInvoice,
                "No open invoice",
                "this workspace has no unpaid invoice at the sandbox",
            ),
            SandboxControlError::Unavailable(cause) => ApiError::internal(cause),
        }
    }
}

fn sandbox(state: &AppState) -> Result<&Arc<RenewalService>, ApiError> {
    state
        .sandbox
        .as_ref()
        .ok_or_else(|| ApiError::not_found(ErrorCode::SandboxDisabled, "the sandbox processor is not enabled"))
}

fn workspace(path: &str) -> Result<WorkspaceId, ApiError> {
    WorkspaceId::parse(path).map_err(|e| ApiError::validation(e.into()))
}

/// `GET /v1/admin/sandbox/workspaces/{id}/card`.
#[utoipa::path(
    get,
    path = "/v1/admin/sandbox/workspaces/{id}/card",
    operation_id = "getSandboxCard",
    tag = "sandbox",
    params(crate::openapi::params::WorkspacePath),
    responses(
        (status = 200, description = "The card.", body = crate::dto::SandboxCardView),
        (status = 404, description = "`sandbox_disabled` or `sandbox_customer_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["admin"]))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %path))]
pub async fn card(
    state: web::Data<AppState>,
    _: Authorized<Admin>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let card = sandbox(&state)?.controls().card(&workspace(&path)?).await?;
    Ok(HttpResponse::Ok().json(SandboxCardView::from(&card)))
}

/// `PUT /v1/admin/sandbox/workspaces/{id}/card {"decline_next_charge": true}`: the next charge (the renewal, or
/// paying the open invoice) declines, once.
#[utoipa::path(
    put,
    path = "/v1/admin/sandbox/workspaces/{id}/card",
    operation_id = "setSandboxCard",
    tag = "sandbox",
    params(crate::openapi::params::WorkspacePath),
    request_body = crate::dto::SandboxCardBody,
    responses(
        (status = 200, description = "The card.", body = crate::dto::SandboxCardView),
        (status = 404, description = "`sandbox_disabled` or `sandbox_customer_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["admin"]))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %path))]
pub async fn set_card(
    state: web::Data<AppState>,
    _: Authorized<Admin>,
    path: web::Path<String>,
    body: Json<SandboxCardBody>,
) -> Result<HttpResponse, ApiError> {
    let id = workspace(&path)?;
    let card = sandbox(&state)?.controls().set_decline_next_charge(&id, body.decline_next_charge).await?;
    tracing::info!(decline_next_charge = card.decline_next_charge, "sandbox card set");
    Ok(HttpResponse::Ok().json(SandboxCardView::from(&card)))
}

/// `GET /v1/admin/sandbox/workspaces/{id}/meter-events`: what the usage reporter sent the sandbox's meters.
#[utoipa::path(
    get,
    path = "/v1/admin/sandbox/workspaces/{id}/meter-events",
    operation_id = "getSandboxMeterEvents",
    tag = "sandbox",
    params(crate::openapi::params::WorkspacePath),
    responses(
        (status = 200, description = "Per meter.", body = crate::dto::SandboxMetersView),
        (status = 404, description = "`sandbox_disabled`.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["admin"]))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %path))]
pub async fn meter_events(
    state: web::Data<AppState>,
    _: Authorized<Admin>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = workspace(&path)?;
    let tallies = sandbox(&state)?.controls().meter_events(&id).await?;
    let meters = tallies.iter().map(SandboxMeterView::from).collect();
    Ok(HttpResponse::Ok().json(SandboxMetersView { workspace_id: id.as_str(), meters }))
}

/// `POST /v1/admin/sandbox/workspaces/{id}/pay-open-invoice`: charges the oldest open invoice again.
#[utoipa::path(
    post,
    path = "/v1/admin/sandbox/workspaces/{id}/pay-open-invoice",
    operation_id = "paySandboxOpenInvoice",
    tag = "sandbox",
    params(crate::openapi::params::WorkspacePath),
    responses(
        (status = 200, description = "The deliveries it caused, as Tollgate took them.", body = crate::dto::SandboxDeliveriesView),
        (status = 404, description = "`sandbox_disabled` or `sandbox_customer_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`no_open_invoice`.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["admin"]))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %path))]
pub async fn pay_open_invoice(
    state: web::Data<AppState>,
    _: Authorized<Admin>,
    path: web::Path<String>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let renewals = sandbox(&state)?;
    let deliveries = renewals.controls().pay_open_invoice(&workspace(&path)?).await?;
    let processor = renewals.controls().processor_id();
    let outcomes = deliver_all(&state, processor.as_str(), &deliveries, request_id).await;
    let views = deliveries
        .iter()
        .zip(outcomes)
        .map(|(delivery, outcome)| SandboxDeliveryView {
            event_id: delivery.event_id.clone(),
            event_type: delivery.event_type.clone(),
            outcome: outcome.unwrap_or_else(|code| code),
        })
        .collect();
    Ok(HttpResponse::Ok().json(SandboxDeliveriesView { deliveries: views }))
}

/// `POST /v1/admin/sandbox/renew`: renews every subscription whose period has ended, now (the job does it every
/// `sandbox.renewal_interval_secs`; the test clock at every stop of an advance).
#[utoipa::path(
    post,
    path = "/v1/admin/sandbox/renew",
    operation_id = "renewSandbox",
    tag = "sandbox",
    responses(
        (status = 200, description = "What renewing did.", body = crate::dto::SandboxRenewView),
        (status = 404, description = "`sandbox_disabled`.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["admin"]))
)]
#[tracing::instrument(skip_all)]
pub async fn renew(state: web::Data<AppState>, _: Authorized<Admin>) -> Result<HttpResponse, ApiError> {
    let report = sandbox(&state)?.run().await?;
    let view = SandboxRenewView {
        renewal_deliveries: report.renewal_deliveries,
        redelivered: report.redelivered,
        problems: report.problems,
    };
    Ok(HttpResponse::Ok().json(view))
}
