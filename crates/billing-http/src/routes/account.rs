//! The workspace's account at the processor: the portal and the invoices.

use actix_web::{HttpResponse, web};
use billing_domain::ids::InvoiceId;
use billing_domain::services::AccountError;

use crate::access::{Read, WorkspaceCall, Write};
use crate::dto::{InvoicePageView, InvoicesQuery, PortalBody, PortalView};
use crate::error::ApiError;
use crate::extract::{JsonOrEmpty, Query};
use crate::state::AppState;

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::WorkspaceNotFound => ApiError::workspace_not_found(),
            AccountError::Processor(e) => e.into(),
            AccountError::Store(e) => e.into(),
        }
    }
}

/// `POST /v1/workspaces/{id}/portal {return_url?}` → `{url}`.
#[utoipa::path(
    post,
    path = "/v1/workspaces/{id}/portal",
    operation_id = "openPortal",
    tag = "account",
    params(crate::openapi::params::WorkspacePath),
    request_body(content = Option<crate::dto::PortalBody>, description = "Optional: an empty body takes the defaults.", content_type = "application/json"),
    responses(
        (status = 200, description = "Send the customer to `url`.", body = crate::dto::PortalView),
        (status = 404, description = "`workspace_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::ProcessorProblems
    ),
    security(("api_key" = ["billing:write"]), ("user_token" = ["owner", "admin"]))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %call.workspace_id))]
pub async fn portal(
    state: web::Data<AppState>,
    call: WorkspaceCall<Write>,
    body: JsonOrEmpty<PortalBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let return_url = body.return_url.unwrap_or_else(|| state.checkout_defaults.success_url.clone());
    let url = state.account.open_portal(&call.workspace_id, &return_url, call.actor(), call.request_id()).await?;
    Ok(HttpResponse::Ok().json(PortalView { url: &url }))
}

/// `GET /v1/workspaces/{id}/invoices?limit=&starting_after=`: newest first; empty while there is no customer.
#[utoipa::path(
    get,
    path = "/v1/workspaces/{id}/invoices",
    operation_id = "listInvoices",
    tag = "account",
    params(crate::openapi::params::WorkspacePath, crate::dto::InvoicesQuery),
    responses(
        (status = 200, description = "Newest first.", body = crate::dto::InvoicePageView),
        (status = 404, description = "`workspace_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::ProcessorProblems
    ),
    security(("api_key" = ["billing:read"]), ("user_token" = []))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %call.workspace_id))]
pub async fn invoices(
    state: web::Data<AppState>,
    call: WorkspaceCall<Read>,
    query: Query<InvoicesQuery>,
) -> Result<HttpResponse, ApiError> {
    let after = query.starting_after.clone().map(InvoiceId::new);
    let page = state.account.invoices(&call.workspace_id, query.limit.unwrap_or(10), after).await?;
    Ok(HttpResponse::Ok().json(InvoicePageView::from(&page)))
}
