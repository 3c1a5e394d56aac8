//! The workspace's account at the processor: its customer (created once, linked under the customer's lock), the
//! processor's self-service portal, and its invoices.

use std::sync::Arc;

use serde_json::json;

use super::{Context, IngestError, WebhookService};
use crate::error::{ProcessorError, StoreError};
use crate::ids::{CustomerId, InvoiceId, WorkspaceId};
use crate::ports::{AuditLog, InvoicePage, PaymentProcessor};
use crate::records::{Actor, AuditRecord};
use crate::workspace::Workspace;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("workspace not found")]
    WorkspaceNotFound,
    #[error(transparent)]
    Processor(#[from] ProcessorError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The processor customer of a workspace: the linked one, else one the processor finds or creates, linked now.
/// A link another request made meanwhile wins (`Duplicate`), and the processor never makes a second customer.
pub(super) async fn ensure_customer(
    ctx: &Context,
    processor: &dyn PaymentProcessor,
    webhooks: &WebhookService,
    workspace: &Workspace,
) -> Result<CustomerId, AccountError> {
    let processor_id = processor.id();
    let known = ctx.workspaces.customer_of_workspace(&processor_id, &workspace.id).await?;
    let customer = processor.ensure_customer(workspace, known.clone()).await?;
    if known.is_none() {
        match webhooks.link_customer(&processor_id, &customer, &workspace.id).await {
            Ok(_) | Err(IngestError::Store(StoreError::Duplicate(_))) => {}
            Err(IngestError::Store(other)) => return Err(other.into()),
        }
    }
    Ok(customer)
}

/// Portal and invoices.
pub struct AccountService {
    ctx: Context,
    processor: Arc<dyn PaymentProcessor>,
    webhooks: Arc<WebhookService>,
    audit: Arc<dyn AuditLog>,
}

impl AccountService {
    pub fn new(
        ctx: Context,
        processor: Arc<dyn PaymentProcessor>,
        webhooks: Arc<WebhookService>,
        audit: Arc<dyn AuditLog>,
    ) -> Self {
        Self { ctx, processor, webhooks, audit }
    }

    /// A portal session for the workspace's customer (made now if it has none), returning to `return_url`.
    pub async fn open_portal(
        &self,
        workspace_id: &WorkspaceId,
        return_url: &str,
        actor: Actor,
        request_id: Option<String>,
    ) -> Result<String, AccountError> {
        if !self.processor.capabilities().portal {
            return Err(ProcessorError::Unsupported("a billing portal").into());
        }
        let workspace = self.ctx.workspaces.get(workspace_id).await?.ok_or(AccountError::WorkspaceNotFound)?;
        let customer = ensure_customer(&self.ctx, self.processor.as_ref(), &self.webhooks, &workspace).await?;
        let url = self.processor.create_portal(&customer, return_url).await?;
        let record = AuditRecord {
            workspace_id: workspace.id.clone(),
            action: "portal.opened".into(),
            actor,
            before: None,
            after: Some(json!({"customer_id": customer, "return_url": return_url})),
            request_id,
        };
        self.audit.append(&record, self.ctx.clock.now()).await?;
        Ok(url)
    }

    /// A page of the workspace's invoices, newest first; empty while it has no customer.
    pub async fn invoices(
        &self,
        workspace_id: &WorkspaceId,
        limit: u32,
        starting_after: Option<InvoiceId>,
    ) -> Result<InvoicePage, AccountError> {
        self.ctx.workspaces.get(workspace_id).await?.ok_or(AccountError::WorkspaceNotFound)?;
        let processor = self.processor.id();
        let Some(customer) = self.ctx.workspaces.customer_of_workspace(&processor, workspace_id).await? else {
            return Ok(InvoicePage { invoices: Vec::new(), has_more: false });
        };
        Ok(self.processor.list_invoices(&customer, limit, starting_after).await?)
    }
}
