//! A processor whose customer-facing pages Tollgate serves itself (the sandbox). The edge renders the page and,
//! when the customer answers, hands the processor's raw signed deliveries to the same verify-and-ingest step as
//! `POST /webhooks/{processor}`: no loopback HTTP call, and the events still travel the processor's own path.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::Interval;
use crate::error::StoreError;
use crate::ids::{CheckoutSessionId, CustomerId, PlanId, PriceId, ProcessorId, SubscriptionId, WorkspaceId};
use crate::money::Money;
use crate::ports::WebhookHeaders;
use crate::subscription::SubscriptionStatus;

/// Where a hosted checkout stands; only an `open` one can be paid or declined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostedCheckoutStatus {
    Open,
    Paid,
    Declined,
}

impl HostedCheckoutStatus {
    /// The lower-case word shown on the checkout page.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Paid => "paid",
            Self::Declined => "declined",
        }
    }
}

impl std::fmt::Display for HostedCheckoutStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the hosted checkout page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostedCheckout {
    pub id: CheckoutSessionId,
    pub workspace_id: WorkspaceId,
    pub plan_name: String,
    pub price: Money,
    /// `Monthly subscription`, `Yearly subscription` or `One-time purchase of N credits`.
    pub plan_kind: String,
    pub status: HostedCheckoutStatus,
    pub success_url: String,
    pub cancel_url: String,
}

/// The customer's answer on the hosted page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutAnswer {
    Pay,
    Decline,
}

/// One webhook delivery exactly as the processor would send it: the headers and the raw bytes they sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDelivery {
    pub event_id: String,
    pub event_type: String,
    /// Lower-cased names, as [`WebhookOps::verify_and_parse`](crate::ports::WebhookOps) reads them.
    pub headers: WebhookHeaders,
    pub body: String,
}

/// Why an answer (or a portal action) was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostedCheckoutError {
    #[error("no such session")]
    UnknownSession,
    /// The portal's customer has no such subscription, or it cannot take this action in its state.
    #[error("{0}")]
    NotAllowed(String),
    #[error("checkout session is already {0}")]
    NotOpen(HostedCheckoutStatus),
    /// The processor cannot produce deliveries (e.g. no signing secret); nothing changed.
    #[error("{0}")]
    Unavailable(String),
}

/// Checkouts whose page Tollgate hosts.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait HostedCheckoutOps: Send + Sync {
    /// The processor whose webhook verifier receives the deliveries (`/webhooks/{id}`).
    fn processor_id(&self) -> ProcessorId;
    /// The session as its page shows it, if it exists.
    fn hosted_checkout(&self, id: &CheckoutSessionId) -> Option<HostedCheckout>;
    /// Takes the customer's answer on an open session and returns the deliveries it causes, in the order the
    /// processor would send them. MUST change nothing when it returns an error.
    async fn answer(
        &self,
        id: &CheckoutSessionId,
        answer: CheckoutAnswer,
    ) -> Result<Vec<RawDelivery>, HostedCheckoutError>;
}

/// A subscription as the hosted portal lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortalSubscription {
    pub id: SubscriptionId,
    /// The price it is on, so the page can offer the other plans.
    pub price_id: PriceId,
    pub plan_name: String,
    pub status: SubscriptionStatus,
    pub cancel_at_period_end: bool,
    pub current_period_end: Option<DateTime<Utc>>,
}

/// What the hosted portal page shows: the customer's subscriptions and where to return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostedPortal {
    pub id: String,
    pub customer_id: CustomerId,
    pub return_url: String,
    pub subscriptions: Vec<PortalSubscription>,
}

/// A plan the portal offers to switch to, as the processor's own catalog knows it (Stripe's portal is configured
/// with products and prices the same way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalPlan {
    pub id: PlanId,
    pub name: String,
    pub price: PriceId,
    pub amount: Money,
    pub interval: Interval,
}

/// What the customer does in the hosted portal; each causes the webhooks the processor would send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortalAction {
    /// Cancel at the end of the paid period.
    CancelAtPeriodEnd,
    /// Undo a scheduled cancellation.
    Resume,
    /// End it now.
    CancelNow,
    /// Move to another plan from the next invoice on (the sandbox prorates nothing).
    ChangePlan(PortalPlan),
}

/// Portals whose page Tollgate hosts (the sandbox's).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait HostedPortalOps: Send + Sync {
    /// The processor whose webhook verifier receives the deliveries.
    fn processor_id(&self) -> ProcessorId;
    /// The portal session `id` as its page shows it, if it exists.
    fn hosted_portal(&self, id: &str) -> Option<HostedPortal>;
    /// Carries out `action` on the portal customer's `subscription` and returns the deliveries it causes. MUST
    /// change nothing when it returns an error.
    async fn portal_action(
        &self,
        id: &str,
        subscription: &SubscriptionId,
        action: PortalAction,
    ) -> Result<Vec<RawDelivery>, HostedCheckoutError>;
}

/// One record of a processor whose records Tollgate keeps for it: an opaque JSON document by kind and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessorRecord {
    pub kind: String,
    pub id: String,
    pub body: String,
}

/// Durable records of a processor that has no servers of its own (the sandbox), in Tollgate's database, so a
/// restart loses no open checkout, subscription or invoice.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait ProcessorRecords: Send + Sync {
    /// Every record of `processor`.
    async fn load_records(&self, processor: &ProcessorId) -> Result<Vec<ProcessorRecord>, StoreError>;
    /// Writes `records` (each replacing the one of its kind and id) in one transaction.
    async fn save_records(
        &self,
        processor: &ProcessorId,
        records: &[ProcessorRecord],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}
