//! Processor-neutral billing events: what every adapter's webhook parser produces and the one apply path consumes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{
    CheckoutSessionId, CustomerId, EventId, InvoiceId, PaymentId, PlanId, PriceId, ProcessorId, SubscriptionId,
    WorkspaceId,
};
use crate::money::Money;
use crate::subscription::SubscriptionStatus;

/// A verified webhook event, translated to the domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessorEvent {
    pub id: EventId,
    pub processor: ProcessorId,
    /// The processor's own type name (`invoice.paid`), kept for the inbox and logs.
    pub event_type: String,
    /// When the processor created the event; orders observations.
    pub occurred_at: DateTime<Utc>,
    pub payload: EventPayload,
}

/// Whether a checkout sold a subscription or a one-time purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckoutMode {
    Subscription,
    Payment,
}

/// A full subscription object as the processor sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionSnapshot {
    pub subscription_id: SubscriptionId,
    pub customer_id: CustomerId,
    pub price_id: PriceId,
    pub status: SubscriptionStatus,
    pub quantity: u32,
    pub cancel_at_period_end: bool,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub trial_end: Option<DateTime<Utc>>,
}

/// What an event says, reduced to what Tollgate acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventPayload {
    /// Checkout finished and was paid: links the customer to the workspace; grants credits for a credits plan.
    CheckoutCompleted {
        session_id: CheckoutSessionId,
        workspace_id: WorkspaceId,
        customer_id: CustomerId,
        mode: CheckoutMode,
        subscription_id: Option<SubscriptionId>,
        plan_id: Option<PlanId>,
    },
    /// The customer's payment at checkout was declined; nothing changes but the attempt is audited.
    CheckoutFailed { session_id: CheckoutSessionId, workspace_id: WorkspaceId, plan_id: Option<PlanId>, reason: String },
    /// `customer.subscription.created|updated|deleted`: the whole object.
    SubscriptionChanged(SubscriptionSnapshot),
    /// An invoice of a subscription was paid.
    InvoicePaid {
        invoice_id: InvoiceId,
        customer_id: CustomerId,
        subscription_id: Option<SubscriptionId>,
        price_id: Option<PriceId>,
        amount: Money,
        period_start: Option<DateTime<Utc>>,
        period_end: Option<DateTime<Utc>>,
        /// The processor's page of the invoice (`hosted_invoice_url`), linked from the receipt.
        #[serde(default)]
        invoice_url: Option<String>,
    },
    /// Paying an invoice failed; the subscription goes past due.
    InvoicePaymentFailed {
        invoice_id: InvoiceId,
        customer_id: CustomerId,
        subscription_id: Option<SubscriptionId>,
        amount: Money,
        attempt_count: u32,
    },
    /// The trial of a subscription ends soon.
    TrialWillEnd { customer_id: CustomerId, subscription_id: SubscriptionId, trial_end: Option<DateTime<Utc>> },
    /// Money moving outside the subscription state machine: an invoice about to be charged, the outcome of a
    /// PaymentIntent, a refunded charge. Audited and announced to the product; no state changes.
    PaymentActivity {
        activity: PaymentActivityKind,
        customer_id: CustomerId,
        /// The processor object it is about (`pi_…`, `ch_…`, or a derived id for an upcoming invoice).
        object_id: String,
        /// What is (or was) charged: the invoice's amount due, the PaymentIntent's amount, the charge's amount.
        amount: Money,
        subscription_id: Option<SubscriptionId>,
        /// A decline code or failure reason, when there is one.
        detail: Option<String>,
        /// The payment the money moved through (`pi_…`), which keys the payments table: the PaymentIntent itself,
        /// or the refunded charge's. `None` for an upcoming invoice and a charge made without one.
        payment_id: Option<PaymentId>,
        /// The credits plan a PaymentIntent Tollgate created sells (its `credits_plan_id` metadata): paying it
        /// grants the plan's credits.
        plan_id: Option<PlanId>,
        /// The plan a checkout's own PaymentIntent paid for (its `plan_id` metadata): recorded, grants nothing (the
        /// checkout grants), and lets a refund of a credit pack take its credits back.
        paid_for: Option<PlanId>,
        /// `charge.refunded`: the total refunded so far.
        refunded: Option<Money>,
    },
    /// Acknowledged and recorded, with no effect.
    Ignored,
}

/// Which money movement a [`EventPayload::PaymentActivity`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentActivityKind {
    /// `invoice.upcoming`: a renewal will be charged soon.
    InvoiceUpcoming,
    /// `payment_intent.succeeded`.
    PaymentSucceeded,
    /// `payment_intent.payment_failed`.
    PaymentFailed,
    /// `charge.refunded`.
    ChargeRefunded,
}

impl PaymentActivityKind {
    /// The audit action and the outbound webhook topic (`billing.` + action).
    pub fn action(self) -> &'static str {
        match self {
            PaymentActivityKind::InvoiceUpcoming => "invoice.upcoming",
            PaymentActivityKind::PaymentSucceeded => "payment_intent.succeeded",
            PaymentActivityKind::PaymentFailed => "payment_intent.failed",
            PaymentActivityKind::ChargeRefunded => "charge.refunded",
        }
    }
}

impl EventPayload {
    /// The customer the event belongs to, when the event is resolved through the customer link.
    pub fn customer_id(&self) -> Option<&CustomerId> {
        match self {
            EventPayload::SubscriptionChanged(s) => Some(&s.customer_id),
            EventPayload::InvoicePaid { customer_id, .. }
            | EventPayload::InvoicePaymentFailed { customer_id, .. }
            | EventPayload::TrialWillEnd { customer_id, .. }
            | EventPayload::PaymentActivity { customer_id, .. } => Some(customer_id),
            EventPayload::CheckoutCompleted { .. } | EventPayload::CheckoutFailed { .. } | EventPayload::Ignored => {
                None
            }
        }
    }

    /// The subscription the event is about, if any.
    pub fn subscription_id(&self) -> Option<&SubscriptionId> {
        match self {
            EventPayload::SubscriptionChanged(s) => Some(&s.subscription_id),
            EventPayload::InvoicePaid { subscription_id, .. }
            | EventPayload::InvoicePaymentFailed { subscription_id, .. } => subscription_id.as_ref(),
            EventPayload::TrialWillEnd { subscription_id, .. } => Some(subscription_id),
            _ => None,
        }
    }
}
