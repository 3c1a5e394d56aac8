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
