//! Starting a hosted checkout for a plan.

use std::sync::Arc;

use serde_json::json;

use super::account::{AccountError, ensure_customer};
use super::{Context, WebhookService};
use crate::catalog::UnknownPlan;
use crate::error::{ProcessorError, StoreError};
use crate::ids::WorkspaceId;
use crate::ports::{AuditLog, CheckoutRequest, CheckoutSession, PaymentProcessor};
use crate::records::{Actor, AuditRecord};

/// Errors of starting a checkout.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("workspace not found")]
    WorkspaceNotFound,
    #[error(transparent)]
    UnknownPlan(#[from] UnknownPlan),
    #[error("plan `{plan}` cannot be bought: {reason}")]
    NotPurchasable { plan: String, reason: String },
    #[error("the workspace already has an active `{plan}` subscription")]
    AlreadySubscribed { plan: String },
    #[error(transparent)]
    Processor(#[from] ProcessorError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A checkout request, validated by the edge except for the plan.
#[derive(Debug, Clone)]
pub struct StartCheckout {
    pub workspace_id: WorkspaceId,
    pub plan: String,
    pub success_url: String,
    pub cancel_url: String,
    /// The caller's Idempotency-Key, if any; a retry with the same key returns the same session.
    pub idempotency_key: Option<String>,
    pub actor: Actor,
    pub request_id: Option<String>,
}

/// Checkout use cases for one processor.
pub struct CheckoutService {
    ctx: Context,
    processor: Arc<dyn PaymentProcessor>,
    audit: Arc<dyn AuditLog>,
    ids: Arc<dyn crate::ports::IdGenerator>,
    /// Creates the customer link the way the webhook path does (locked, releasing parked events).
    webhooks: Arc<WebhookService>,
}

impl CheckoutService {
    pub fn new(
        ctx: Context,
        processor: Arc<dyn PaymentProcessor>,
        audit: Arc<dyn AuditLog>,
        ids: Arc<dyn crate::ports::IdGenerator>,
        webhooks: Arc<WebhookService>,
    ) -> Self {
        Self { ctx, processor, audit, ids, webhooks }
    }

    /// Finds or creates the processor customer, then opens a session for the plan. Processor failures change
    /// nothing locally but the customer link (which is correct regardless of the checkout's fate).
    pub async fn start(&self, request: StartCheckout) -> Result<CheckoutSession, CheckoutError> {
        let workspace =
            self.ctx.workspaces.get(&request.workspace_id).await?.ok_or(CheckoutError::WorkspaceNotFound)?;
        let plan = self.ctx.catalog.require(&request.plan)?;
        let processor_id = self.processor.id();
        let not_purchasable =
            |reason: &str| CheckoutError::NotPurchasable { plan: plan.id.to_string(), reason: reason.to_owned() };
        if plan.is_default {
            return Err(not_purchasable("it is the free plan every workspace already has"));
        }
        let price_id = plan
            .price_for(&processor_id)
            .cloned()
            .ok_or_else(|| not_purchasable(&format!("it has no price for processor `{processor_id}`")))?;
        if plan.is_subscription()
            && let Some(current) = self.ctx.subscriptions.current_for_workspace(&workspace.id).await?
            && current.status.grants_plan()
            && current.terms.plan_id == plan.id
        {
            return Err(CheckoutError::AlreadySubscribed { plan: plan.id.to_string() });
        }

        let customer_id = ensure_customer(&self.ctx, self.processor.as_ref(), &self.webhooks, &workspace)
            .await
            .map_err(|e| match e {
                AccountError::WorkspaceNotFound => CheckoutError::WorkspaceNotFound,
                AccountError::Processor(e) => CheckoutError::Processor(e),
                AccountError::Store(e) => CheckoutError::Store(e),
            })?;
        let now = self.ctx.clock.now();
        let client_key = request.idempotency_key.clone().unwrap_or_else(|| self.ids.new_id("req_"));
        let processor_key = format!("checkout:{}:{}:{client_key}", workspace.id, plan.id);
        let session = self
            .processor
            .create_checkout(&CheckoutRequest {
                idempotency_key: processor_key.clone(),
                workspace: workspace.clone(),
                customer_id: customer_id.clone(),
                plan: plan.clone(),
                price_id,
                success_url: request.success_url,
                cancel_url: request.cancel_url,
            })
            .await?;
        let record = AuditRecord {
            workspace_id: workspace.id.clone(),
            action: "checkout.started".into(),
            actor: request.actor,
            before: None,
            // The key is kept with the session so an operator can match it to the processor's request log.
            after: Some(json!({
                "session_id": session.id, "plan": plan.id, "customer_id": customer_id, "idempotency_key": processor_key,
            })),
            request_id: request.request_id,
        };
        self.audit.append(&record, now).await?;
        Ok(session)
    }
}
