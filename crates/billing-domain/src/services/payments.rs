//! One-time payments for custom UIs and refunds of what was paid.
//!
//! A payment intent is created at the processor, then recorded as pending; its outcome arrives as a webhook and is
//! merged into the same row (granting a credits plan's credits once). A refund first reserves its amount in the
//! payments table by a conditional update, so concurrent refunds never together exceed what was paid, then asks
//! the processor; a refusal or an unreachable processor gives the reservation back.

use std::sync::Arc;

use serde_json::json;

use super::account::{AccountError, ensure_customer};
use super::{Context, WebhookService, client_key, scoped_key};
use crate::catalog::{PlanKind, UnknownPlan};
use crate::error::{ProcessorError, StoreError, ValidationError};
use crate::ids::{PaymentId, PlanId, RefundId, WorkspaceId};
use crate::lifecycle::{CreditChange, credits_changed};
use crate::money::Money;
use crate::payment::{
    Payment, PaymentObservation, PaymentStatus, RefundReason, RefundRecord, RefundStatus, validate_amount,
};
use crate::ports::{
    AuditLog, ConsumeOutcome, IdGenerator, Outbox, PaymentIntent, PaymentIntentRequest, PaymentProcessor,
    PaymentRepository, RefundReservation, RefundSettlement,
};
use crate::records::{Actor, AuditRecord};

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("workspace not found")]
    WorkspaceNotFound,
    #[error("payment not found")]
    PaymentNotFound,
    #[error(transparent)]
    UnknownPlan(#[from] UnknownPlan),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Only a paid payment can be refunded.
    #[error("payment is {}, not succeeded", .0.as_str())]
    NotRefundable(PaymentStatus),
    /// More than is left to refund.
    #[error("the refund exceeds what is left to refund ({refundable} minor units)")]
    RefundExceedsPayment { refundable: i64 },
    /// The processor refused the refund; its reservation was given back. The reason is for logs, not callers.
    #[error("the payment processor refused the refund: {0}")]
    RefundRefused(String),
    /// The payment was made through a processor that is not the active one.
    #[error("payment was made through `{0}`, not the active processor")]
    ManagedElsewhere(String),
    #[error(transparent)]
    Processor(#[from] ProcessorError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AccountError> for PaymentError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::WorkspaceNotFound => Self::WorkspaceNotFound,
            AccountError::Processor(e) => Self::Processor(e),
            AccountError::Store(e) => Self::Store(e),
        }
    }
}

/// What a payment intent charges: an amount, or a credits plan at its price.
#[derive(Debug, Clone)]
pub enum Charge {
    Amount(Money),
    Plan(String),
}

/// A payment intent asked for over the API.
#[derive(Debug, Clone)]
pub struct CreatePayment {
    pub workspace_id: WorkspaceId,
    pub charge: Charge,
    pub description: Option<String>,
    /// Where a hosted payment page (the sandbox's) returns to.
    pub return_url: String,
    /// The caller's Idempotency-Key, if any: a retry with it returns the same payment.
    pub idempotency_key: Option<String>,
    pub actor: Actor,
    pub request_id: Option<String>,
}

/// A refund asked for over the API.
#[derive(Debug, Clone)]
pub struct RefundPayment {
    pub payment_id: PaymentId,
    /// Minor units; all that is left when `None`.
    pub amount: Option<i64>,
    pub reason: Option<RefundReason>,
    /// The caller's Idempotency-Key, if any: a retry with it is the same refund, also after a timeout.
    pub idempotency_key: Option<String>,
    pub actor: Actor,
    pub request_id: Option<String>,
}

/// A refund's outcome and the payment as it now stands.
#[derive(Debug, Clone)]
pub struct Refunded {
    pub refund: RefundRecord,
    pub payment: Payment,
    /// Credits of a refunded credit pack taken back by this refund (its share, never below a zero balance).
    pub credits_revoked: i64,
}

/// Payment and refund use cases for one processor.
pub struct PaymentService {
    ctx: Context,
    processor: Arc<dyn PaymentProcessor>,
    webhooks: Arc<WebhookService>,
    payments: Arc<dyn PaymentRepository>,
    audit: Arc<dyn AuditLog>,
    /// Where `billing.credits.changed` is announced when a refund takes credits back.
    outbox: Arc<dyn Outbox>,
    ids: Arc<dyn IdGenerator>,
}

impl PaymentService {
    pub fn new(
        ctx: Context,
        processor: Arc<dyn PaymentProcessor>,
        webhooks: Arc<WebhookService>,
        payments: Arc<dyn PaymentRepository>,
        audit: Arc<dyn AuditLog>,
        outbox: Arc<dyn Outbox>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self { ctx, processor, webhooks, payments, audit, outbox, ids }
    }

    /// Creates a payment intent at the processor and records it as pending.
    pub async fn create(&self, request: CreatePayment) -> Result<(Payment, PaymentIntent), PaymentError> {
        if !self.processor.capabilities().payments {
            return Err(ProcessorError::Unsupported("payments outside checkout").into());
        }
        let (amount, plan_id) = self.charge(&request.charge)?;
        let workspace = self.ctx.workspaces.get(&request.workspace_id).await?.ok_or(PaymentError::WorkspaceNotFound)?;
        let customer = ensure_customer(&self.ctx, self.processor.as_ref(), &self.webhooks, &workspace).await?;
        let client_key = client_key(&request.actor, request.idempotency_key.as_deref(), self.ids.as_ref());
        let processor_key = format!("payment:{}:{client_key}", workspace.id);
        let intent = self
            .processor
            .create_payment_intent(&PaymentIntentRequest {
                workspace_id: workspace.id.clone(),
                customer_id: customer.clone(),
                amount: amount.clone(),
                plan_id: plan_id.clone(),
                description: request.description.clone(),
                return_url: request.return_url.clone(),
                idempotency_key: processor_key.clone(),
            })
            .await?;
        let now = self.ctx.clock.now();
        let observation = PaymentObservation {
            id: intent.id.clone(),
            processor: self.processor.id(),
            workspace_id: workspace.id.clone(),
            customer_id: customer,
            amount,
            status: PaymentStatus::Pending,
            refunded: None,
            plan_id,
            description: request.description,
        };
        // A webhook that beat this write is merged with it, not overwritten: the status only moves forward.
        let payment = self.payments.observe(&observation, now).await?;
        let record = AuditRecord {
            workspace_id: workspace.id.clone(),
            action: "payment.created".into(),
            actor: request.actor,
            before: None,
            after: Some(json!({
                "payment_id": payment.id, "amount": payment.amount, "plan": payment.plan_id,
                "idempotency_key": processor_key,
            })),
            request_id: request.request_id,
        };
        self.audit.append(&record, now).await?;
        Ok((payment, intent))
    }

    /// The amount to charge and the credits plan it sells.
    fn charge(&self, charge: &Charge) -> Result<(Money, Option<PlanId>), PaymentError> {
        match charge {
            Charge::Amount(amount) => {
                validate_amount("amount", amount.minor)?;
                Ok((amount.clone(), None))
            }
            Charge::Plan(plan) => {
                let plan = self.ctx.catalog.require(plan)?;
                if !matches!(plan.kind, PlanKind::Credits { .. }) {
                    let message = "must be a credits plan; subscriptions are bought through checkout";
                    return Err(ValidationError::new("plan", message).into());
                }
                Ok((plan.price.clone(), Some(plan.id.clone())))
            }
        }
    }

    /// Refunds `amount` of a paid payment (all that is left by default): reserved first, then asked of the
    /// processor. A refusal gives the reservation back. An unreachable processor may still have made the refund
    /// (a timeout): with an `Idempotency-Key` the reservation stays pending and a retry with the key asks the
    /// processor again under the same processor key, so it is made once; without one it is given back, and the
    /// processor's `charge.refunded` restores its total should the refund have been made.
    pub async fn refund(&self, request: RefundPayment) -> Result<Refunded, PaymentError> {
        if !self.processor.capabilities().refunds {
            return Err(ProcessorError::Unsupported("refunds").into());
        }
        if let Some(amount) = request.amount {
            validate_amount("amount", amount)?;
        }
        let payment = self.payments.get(&request.payment_id).await?.ok_or(PaymentError::PaymentNotFound)?;
        if payment.processor != self.processor.id() {
            return Err(PaymentError::ManagedElsewhere(payment.processor.to_string()));
        }
        let request_key = request.idempotency_key.as_deref().map(|key| scoped_key(&request.actor, key));
        if let Some(key) = &request_key {
            let earlier = self.payments.refunds_of(&payment.id).await?;
            if let Some(earlier) = earlier.into_iter().find(|r| r.request_key.as_deref() == Some(key.as_str())) {
                return self.retried(earlier, payment, request).await;
            }
        }
        let amount = match request.amount {
            Some(amount) => amount,
            None if payment.status != PaymentStatus::Succeeded => {
                return Err(PaymentError::NotRefundable(payment.status));
            }
            None if payment.refundable() == 0 => return Err(PaymentError::RefundExceedsPayment { refundable: 0 }),
            None => payment.refundable(),
        };
        let now = self.ctx.clock.now();
        let refund = RefundRecord {
            id: RefundId::new(self.ids.new_id("rf_")),
            payment_id: payment.id.clone(),
            amount: Money::new(amount, payment.amount.currency.clone()),
            status: RefundStatus::Pending,
            reason: request.reason,
            processor_refund_id: None,
            request_key,
            created_at: now,
        };
        match self.payments.reserve_refund(&refund, now).await? {
            RefundReservation::Reserved(_) => {}
            RefundReservation::Existing(earlier) => return self.retried(*earlier, payment, request).await,
            RefundReservation::NotFound => return Err(PaymentError::PaymentNotFound),
            RefundReservation::NotRefundable(status) => return Err(PaymentError::NotRefundable(status)),
            RefundReservation::Exceeds { refundable } => return Err(PaymentError::RefundExceedsPayment { refundable }),
        }
        self.ask_processor(refund, request).await
    }

    /// A retry of a refund recorded before under the same key: its answer if it has one, else the processor is
    /// asked again under the same processor key.
    async fn retried(
        &self,
        earlier: RefundRecord,
        payment: Payment,
        request: RefundPayment,
    ) -> Result<Refunded, PaymentError> {
        match earlier.status {
            RefundStatus::Pending => self.ask_processor(earlier, request).await,
            RefundStatus::Succeeded => Ok(Refunded { refund: earlier, payment, credits_revoked: 0 }),
            RefundStatus::Failed => Err(PaymentError::RefundRefused(format!("refund {} was refused", earlier.id))),
        }
    }

    /// Asks the processor for a reserved refund and records its answer.
    async fn ask_processor(&self, mut refund: RefundRecord, request: RefundPayment) -> Result<Refunded, PaymentError> {
        let key = format!("refund:{}", refund.id);
        let answer = self.processor.refund(&refund.payment_id, Some(refund.amount.clone()), &key).await;
        let settlement = match &answer {
            Ok(done) => RefundSettlement {
                status: RefundStatus::from_processor(&done.status),
                processor_refund_id: Some(done.id.clone()),
            },
            // It may have been made: a retry with the same key finds out.
            Err(ProcessorError::Unavailable(_)) if refund.request_key.is_some() => {
                return Err(answer.unwrap_err().into());
            }
            Err(_) => RefundSettlement { status: RefundStatus::Failed, processor_refund_id: None },
        };
        let now = self.ctx.clock.now();
        let settled = self.payments.settle_refund(&refund.id, &settlement, now).await;
        match answer {
            // The processor refused it (already refunded there, a disputed charge, …): nothing was refunded.
            Err(ProcessorError::Rejected(reason)) => return Err(PaymentError::RefundRefused(reason)),
            // The reservation is given back (or, should that write fail too, stays pending for an operator).
            Err(error) => return Err(error.into()),
            Ok(_) => {}
        }
        let payment = settled?;
        refund.status = settlement.status;
        refund.processor_refund_id = settlement.processor_refund_id;
        let credits_revoked = match refund.status {
            RefundStatus::Succeeded => {
                self.revoke_credits(&payment, &refund, request.request_id.as_deref(), now).await?
            }
            _ => 0,
        };
        let record = AuditRecord {
            workspace_id: payment.workspace_id.clone(),
            action: "payment.refunded".into(),
            actor: request.actor,
            before: None,
            after: Some(json!({
                "payment_id": payment.id, "refund_id": refund.id, "amount": refund.amount,
                "status": refund.status, "processor_refund_id": refund.processor_refund_id,
                "reason": refund.reason, "refunded_total": payment.refunded, "credits_revoked": credits_revoked,
            })),
            request_id: request.request_id,
        };
        self.audit.append(&record, now).await?;
        Ok(Refunded { refund, payment, credits_revoked })
    }

    /// A refund of a credit pack takes back its share of the pack's credits: what the refunded total now covers
    /// less what it covered before this refund (rounded down, so partial refunds add up to the whole pack), and
    /// never more than the balance — credits already used stay used. Once per refund (its ledger key).
    async fn revoke_credits(
        &self,
        payment: &Payment,
        refund: &RefundRecord,
        request_id: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<i64, PaymentError> {
        let Some(PlanKind::Credits { credits }) =
            payment.plan_id.as_ref().and_then(|id| self.ctx.catalog.get(id)).map(|plan| plan.kind.clone())
        else {
            return Ok(0);
        };
        if payment.amount.minor <= 0 {
            return Ok(0);
        }
        let covered =
            |refunded: i64| i64::from(credits) * refunded.clamp(0, payment.amount.minor) / payment.amount.minor;
        let share = covered(payment.refunded) - covered(payment.refunded - refund.amount.minor);
        let key = format!("revoke:refund:{}", refund.id);
        let mut take = share;
        // A few rounds: each one that finds fewer credits than asked takes the balance it found.
        for _ in 0..4 {
            if take <= 0 {
                return Ok(0);
            }
            match self.ctx.workspaces.consume_credits(&payment.workspace_id, take, &key, now).await? {
                ConsumeOutcome::Consumed { balance } | ConsumeOutcome::AlreadyConsumed { balance } => {
                    // Keyed by the ledger entry, so it is announced once. Not in the ledger's transaction (the
                    // refund spans a processor call): a process dying right after the ledger write loses the
                    // announcement, never the revocation.
                    let mut announced =
                        credits_changed(&payment.workspace_id, &key, -take, balance, CreditChange::Revoked);
                    announced.request_id = request_id.map(str::to_owned);
                    self.outbox.enqueue(&announced, now).await?;
                    return Ok(take);
                }
                ConsumeOutcome::Insufficient { balance } => take = take.min(balance),
            }
        }
        Ok(0)
    }

    /// A page of the workspace's payments, newest first.
    pub async fn list(
        &self,
        workspace_id: &WorkspaceId,
        limit: u32,
        starting_after: Option<PaymentId>,
    ) -> Result<Vec<Payment>, PaymentError> {
        self.ctx.workspaces.get(workspace_id).await?.ok_or(PaymentError::WorkspaceNotFound)?;
        if let Some(cursor) = &starting_after {
            let known = self.payments.get(cursor).await?;
            if known.is_none_or(|p| &p.workspace_id != workspace_id) {
                return Err(ValidationError::new("starting_after", "is not a payment of this workspace").into());
            }
        }
        Ok(self.payments.list_for_workspace(workspace_id, limit, starting_after).await?)
    }

    /// A payment with the refunds Tollgate asked for.
    pub async fn get(&self, id: &PaymentId) -> Result<(Payment, Vec<RefundRecord>), PaymentError> {
        let payment = self.payments.get(id).await?.ok_or(PaymentError::PaymentNotFound)?;
        let refunds = self.payments.refunds_of(id).await?;
        Ok((payment, refunds))
    }
}
