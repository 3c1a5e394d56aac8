//! The sandbox's payments: payment intents a custom UI would confirm (here on Tollgate's own payment page, which is
//! the checkout page showing a `pi_sbx_…` id) and refunds of any payment it took, checkout charges included.

use async_trait::async_trait;
use billing_domain::error::ProcessorError;
use billing_domain::ids::{CheckoutSessionId, CustomerId, PaymentId, PlanId, WorkspaceId};
use billing_domain::money::Money;
use billing_domain::ports::{
    HostedCheckout, HostedCheckoutError, HostedCheckoutStatus, PaymentIntent, PaymentIntentRequest, PaymentOps,
    RawDelivery, Refund,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::payloads;
use crate::processor::SandboxProcessor;
use crate::state::{Kind, State};

/// The prefix of the sandbox's payment ids; the hosted page tells payments from checkout sessions by it.
pub(crate) const PAYMENT_PREFIX: &str = "pi_sbx_";

/// A payment: a payment intent created over the API, or the charge of a paid checkout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PaymentRecord {
    pub id: PaymentId,
    pub workspace_id: WorkspaceId,
    pub customer_id: CustomerId,
    pub amount: Money,
    /// `credits_plan_id` metadata: the credits plan an API payment intent sells.
    pub credits_plan: Option<PlanId>,
    /// `plan_id` metadata: the plan a checkout's charge paid for (the checkout grants, not this).
    pub checkout_plan: Option<PlanId>,
    pub description: Option<String>,
    pub return_url: String,
    pub status: HostedCheckoutStatus,
    pub refunded: i64,
    pub created: DateTime<Utc>,
}

impl PaymentRecord {
    pub fn client_secret(&self) -> String {
        format!("{}_secret_sandbox", self.id)
    }

    fn status_word(&self) -> &'static str {
        match self.status {
            HostedCheckoutStatus::Open => "requires_payment_method",
            HostedCheckoutStatus::Paid => "succeeded",
            HostedCheckoutStatus::Declined => "requires_payment_method",
        }
    }
}

/// A refund the sandbox made, kept with what was asked so a reused key can be told from a retry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RefundRecord {
    pub payment: PaymentId,
    pub asked: Option<i64>,
    pub refund: Refund,
}

#[async_trait]
impl PaymentOps for SandboxProcessor {
    #[tracing::instrument(skip_all, fields(workspace_id = %request.workspace_id))]
    async fn create_payment_intent(&self, request: &PaymentIntentRequest) -> Result<PaymentIntent, ProcessorError> {
        self.transact(|state| Ok(self.record_payment_intent(state, request)), ProcessorError::Unavailable).await
    }

    /// Refunds a paid payment within what is left of it, once per idempotency key.
    #[tracing::instrument(skip_all, fields(payment_id = %payment))]
    async fn refund(&self, payment: &PaymentId, amount: Option<Money>, key: &str) -> Result<Refund, ProcessorError> {
        self.transact(|state| self.record_refund(state, payment, amount.clone(), key), ProcessorError::Unavailable)
            .await
    }

    async fn fetch_refund(&self, id: &str) -> Result<Refund, ProcessorError> {
        let state = self.fresh().await?;
        let found = state.refunds_by_key.values().find(|seen| seen.refund.id == id);
        found.map(|seen| seen.refund.clone()).ok_or_else(|| ProcessorError::Rejected(format!("no refund `{id}`")))
    }
}

impl SandboxProcessor {
    fn record_payment_intent(&self, state: &mut State, request: &PaymentIntentRequest) -> PaymentIntent {
        let now = self.clock.now();
        let id = match state.payments_by_key.get(&request.idempotency_key) {
            Some(id) => id.clone(),
            None => {
                let id = PaymentId::new(self.ids.new_id(PAYMENT_PREFIX));
                let record = PaymentRecord {
                    id: id.clone(),
                    workspace_id: request.workspace_id.clone(),
                    customer_id: request.customer_id.clone(),
                    amount: request.amount.clone(),
                    credits_plan: request.plan_id.clone(),
                    checkout_plan: None,
                    description: request.description.clone(),
                    return_url: request.return_url.clone(),
                    status: HostedCheckoutStatus::Open,
                    refunded: 0,
                    created: now,
                };
                state.payments.insert(id.clone(), record);
                state.payments_by_key.insert(request.idempotency_key.clone(), id.clone());
                state.touch(Kind::Payment, id.as_str());
                state.touch(Kind::PaymentKey, &request.idempotency_key);
                id
            }
        };
        let record = &state.payments[&id];
        PaymentIntent {
            id: id.clone(),
            client_secret: record.client_secret(),
            status: record.status_word().to_owned(),
            confirm_url: Some(format!("{}/sandbox/checkout/{id}", self.config.base_url())),
        }
    }

    fn record_refund(
        &self,
        state: &mut State,
        payment: &PaymentId,
        amount: Option<Money>,
        key: &str,
    ) -> Result<Refund, ProcessorError> {
        let asked = amount.as_ref().map(|a| a.minor);
        if let Some(seen) = state.refunds_by_key.get(key) {
            return if &seen.payment == payment && seen.asked == asked {
                Ok(seen.refund.clone())
            } else {
                Err(ProcessorError::Rejected("idempotency key was already used for a different request".to_owned()))
            };
        }
        let record = state
            .payments
            .get_mut(payment)
            .ok_or_else(|| ProcessorError::Rejected(format!("no payment `{payment}`")))?;
        if record.status != HostedCheckoutStatus::Paid {
            return Err(ProcessorError::Rejected(format!("payment `{payment}` has not been paid")));
        }
        let left = record.amount.minor - record.refunded;
        if let Some(amount) = &amount
            && amount.currency != record.amount.currency
        {
            return Err(ProcessorError::Rejected("the refund's currency is not the payment's".to_owned()));
        }
        let minor = asked.unwrap_or(left);
        if minor <= 0 || minor > left {
            return Err(ProcessorError::Rejected(format!("refund of {minor} exceeds the {left} left to refund")));
        }
        record.refunded += minor;
        let refund = Refund {
            id: self.ids.new_id("re_sbx_"),
            amount: Money::new(minor, record.amount.currency.clone()),
            status: "succeeded".to_owned(),
        };
        let seen = RefundRecord { payment: payment.clone(), asked, refund: refund.clone() };
        state.refunds_by_key.insert(key.to_owned(), seen);
        state.touch(Kind::Payment, payment.as_str());
        state.touch(Kind::RefundKey, key);
        Ok(refund)
    }

    /// The payment page of `id`, shaped like a checkout page.
    pub(crate) fn payment_page(&self, id: &str) -> Option<HostedCheckout> {
        let state = self.lock();
        let record = state.payments.get(&PaymentId::new(id))?;
        let what = match &record.credits_plan {
            Some(plan) => format!("One-time payment for plan {plan}"),
            None => "One-time payment".to_owned(),
        };
        Some(HostedCheckout {
            id: CheckoutSessionId::new(id),
            workspace_id: record.workspace_id.clone(),
            plan_name: record.description.clone().unwrap_or_else(|| what.clone()),
            price: record.amount.clone(),
            plan_kind: what,
            status: record.status,
            success_url: record.return_url.clone(),
            cancel_url: record.return_url.clone(),
        })
    }

    /// Pays or declines an open payment intent: `payment_intent.succeeded` or `.payment_failed`. A declined
    /// payment intent stays payable, as at Stripe, so a second try can succeed.
    pub(crate) async fn answer_payment(&self, id: &str, pay: bool) -> Result<Vec<RawDelivery>, HostedCheckoutError> {
        self.transact(|state| self.answer_payment_in(state, id, pay), HostedCheckoutError::Unavailable).await
    }

    fn answer_payment_in(
        &self,
        state: &mut State,
        id: &str,
        pay: bool,
    ) -> Result<Vec<RawDelivery>, HostedCheckoutError> {
        let now = self.clock.now();
        let secret = self.signing_secret().map_err(HostedCheckoutError::Unavailable)?;
        let record = state.payments.get_mut(&PaymentId::new(id)).ok_or(HostedCheckoutError::UnknownSession)?;
        if record.status == HostedCheckoutStatus::Paid {
            return Err(HostedCheckoutError::NotOpen(record.status));
        }
        let event_type = if pay {
            record.status = HostedCheckoutStatus::Paid;
            "payment_intent.succeeded"
        } else {
            record.status = HostedCheckoutStatus::Declined;
            "payment_intent.payment_failed"
        };
        let object = payloads::payment_intent(record);
        state.touched.insert((Kind::Payment, id.to_owned()));
        tracing::info!(event_type, "sandbox payment answered");
        Ok(self.sign_all(state, secret, now, vec![(event_type, object)]))
    }
}
