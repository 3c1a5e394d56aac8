//! Starting a hosted checkout for a plan.

use std::sync::Arc;

use serde_json::json;

use super::account::{AccountError, ensure_customer};
use super::{Context, WebhookService, client_key};
use crate::catalog::UnknownPlan;
use crate::coupon::{Coupon, CouponError};
use crate::error::ValidationError;
use crate::error::{ProcessorError, StoreError};
use crate::ids::WorkspaceId;
use crate::ports::{AuditLog, CheckoutRequest, CheckoutSession, CouponRepository, PaymentProcessor, Redemption};
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
    #[error("no coupon `{0}`")]
    UnknownCoupon(String),
    /// Expired, not for this plan, or in another currency.
    #[error(transparent)]
    CouponNotApplicable(#[from] CouponError),
    #[error("coupon `{0}` has no uses left")]
    CouponExhausted(String),
    #[error("this workspace has already redeemed coupon `{0}`")]
    CouponAlreadyRedeemed(String),
    #[error(transparent)]
    InvalidCoupon(#[from] ValidationError),
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
    /// A coupon code (case-insensitive), redeemed atomically when the checkout starts.
    pub coupon: Option<String>,
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
    coupons: Arc<dyn CouponRepository>,
}

impl CheckoutService {
    pub fn new(
        ctx: Context,
        processor: Arc<dyn PaymentProcessor>,
        audit: Arc<dyn AuditLog>,
        ids: Arc<dyn crate::ports::IdGenerator>,
        webhooks: Arc<WebhookService>,
        coupons: Arc<dyn CouponRepository>,
    ) -> Self {
        Self { ctx, processor, audit, ids, webhooks, coupons }
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
        let coupon = match &request.coupon {
            Some(code) => Some(self.applicable_coupon(code, plan, now).await?),
            None => None,
        };
        // Whether this checkout took the use (and gives it back should the checkout not start).
        let mut took_use = false;
        if let Some(coupon) = &coupon {
            match self.coupons.redeem(&coupon.code, &workspace.id, now).await? {
                Redemption::Redeemed => took_use = true,
                // Once per workspace: a second checkout with it (or a concurrent double submit) is refused, so
                // the one redemption belongs to exactly one checkout — the one that may give it back.
                Redemption::AlreadyRedeemed => return Err(CheckoutError::CouponAlreadyRedeemed(coupon.code.clone())),
                Redemption::Exhausted => return Err(CheckoutError::CouponExhausted(coupon.code.clone())),
                Redemption::NotFound => return Err(CheckoutError::UnknownCoupon(coupon.code.clone())),
            }
        }
        let client_key = client_key(&request.actor, request.idempotency_key.as_deref(), self.ids.as_ref());
        let processor_key = format!("checkout:{}:{}:{client_key}", workspace.id, plan.id);
        let created = self
            .processor
            .create_checkout(&CheckoutRequest {
                idempotency_key: processor_key.clone(),
                workspace: workspace.clone(),
                customer_id: customer_id.clone(),
                plan: plan.clone(),
                price_id,
                success_url: request.success_url,
                cancel_url: request.cancel_url,
                coupon: coupon.clone(),
            })
            .await;
        let session = match created {
            Ok(session) => session,
            Err(error) => {
                // No checkout, so no use of the coupon: give it back. Should that fail too, the use stays taken
                // and this workspace's next checkout is refused the coupon; the caller sees the processor error.
                if let Some(coupon) = coupon.as_ref().filter(|_| took_use) {
                    let _ = self.coupons.unredeem(&coupon.code, &workspace.id).await;
                }
                return Err(error.into());
            }
        };
        let record = AuditRecord {
            workspace_id: workspace.id.clone(),
            action: "checkout.started".into(),
            actor: request.actor,
            before: None,
            // The key is kept with the session so an operator can match it to the processor's request log.
            after: Some(json!({
                "session_id": session.id, "plan": plan.id, "customer_id": customer_id, "idempotency_key": processor_key,
                "coupon": coupon.as_ref().map(|c| &c.code),
            })),
            request_id: request.request_id,
        };
        self.audit.append(&record, now).await?;
        Ok(session)
    }

    /// The coupon `code` if it may be used for `plan` now (its last use is still taken atomically by `redeem`).
    async fn applicable_coupon(
        &self,
        code: &str,
        plan: &crate::catalog::Plan,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Coupon, CheckoutError> {
        let code = Coupon::normalize_code(code).map_err(|e| ValidationError::new("coupon", e.message))?;
        let coupon = self.coupons.get(&code).await?.ok_or_else(|| CheckoutError::UnknownCoupon(code.clone()))?;
        match coupon.applies_to(plan, now) {
            Err(CouponError::Exhausted) => Err(CheckoutError::CouponExhausted(code)),
            other => other.map(|()| coupon).map_err(Into::into),
        }
    }
}
