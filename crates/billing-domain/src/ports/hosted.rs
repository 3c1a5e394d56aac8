//! A processor whose customer-facing pages Tollgate serves itself (the sandbox). The edge renders the page and,
//! when the customer answers, hands the processor's raw signed deliveries to the same verify-and-ingest step as
//! `POST /webhooks/{processor}`: no loopback HTTP call, and the events still travel the processor's own path.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::Interval;
use crate::error::StoreError;
use crate::ids::{CheckoutSessionId, CustomerId, InvoiceId, PlanId, PriceId, ProcessorId, SubscriptionId, WorkspaceId};
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
    /// Brings the processor's copy up to date before a page is read (a sandbox shared by replicas); best effort.
    async fn refresh(&self) {}
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

/// An invoice as the processor's hosted invoice page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedInvoice {
    pub invoice: crate::ports::Invoice,
    /// What it is for (`Subscription to Pro`, a renewal, a credit pack).
    pub description: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
}

/// Portals whose page Tollgate hosts (the sandbox's).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait HostedPortalOps: Send + Sync {
    /// The processor whose webhook verifier receives the deliveries.
    fn processor_id(&self) -> ProcessorId;
    /// Brings the processor's copy up to date before a page is read; best effort.
    async fn refresh(&self) {}
    /// The portal session `id` as its page shows it, if it exists.
    fn hosted_portal(&self, id: &str) -> Option<HostedPortal>;
    /// Invoice `id` as its hosted page shows it (the invoice's `hosted_url`), if it exists.
    fn hosted_invoice(&self, id: &InvoiceId) -> Option<HostedInvoice>;
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

/// A processor's records as read, with the version they were read at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredRecords {
    pub records: Vec<ProcessorRecord>,
    pub version: u64,
}

/// Durable records of a processor that has no servers of its own (the sandbox), in Tollgate's database, so a
/// restart loses no open checkout, subscription or invoice, and replicas on one database share them: every write
/// moves a version by compare-and-set, so a replica whose copy is stale learns it and reads the records again.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait ProcessorRecords: Send + Sync {
    /// Every record of `processor`, with the version they are at (or a later one's records).
    async fn load_records(&self, processor: &ProcessorId) -> Result<StoredRecords, StoreError>;
    /// The version of `processor`'s records, 0 before the first write.
    async fn records_version(&self, processor: &ProcessorId) -> Result<u64, StoreError>;
    /// Writes `records` (each replacing the one of its kind and id) and moves the version from `expected` to
    /// `expected + 1`, in one transaction; `false`, with nothing written, when another writer moved it first.
    async fn save_records(
        &self,
        processor: &ProcessorId,
        records: &[ProcessorRecord],
        expected: u64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

/// The sandbox's card of one workspace, as its controls show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxCard {
    pub workspace_id: WorkspaceId,
    /// The next charge (a renewal, or paying an open invoice) declines, once.
    pub decline_next_charge: bool,
    /// Invoices whose charge declined and that are not paid yet, oldest first.
    pub open_invoices: Vec<crate::ports::Invoice>,
}

/// What the sandbox's meter received for one workspace (its customer) and one meter, as its controls show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxMeterTally {
    /// The meter's event name (the catalog component's `meter_event`).
    pub meter: String,
    /// Meter events taken, each identifier once.
    pub events: u64,
    /// Their values added up.
    pub value: rust_decimal::Decimal,
    /// Meter events refused as repeats of an identifier already taken.
    pub repeats: u64,
    /// The earliest and latest event timestamp taken.
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
}

/// Why a sandbox control was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxControlError {
    /// The workspace has never been a customer of the sandbox (no checkout, no portal).
    #[error("the sandbox has no customer for this workspace")]
    UnknownCustomer,
    #[error("the workspace has no open invoice")]
    NoOpenInvoice,
    #[error("the sandbox is unavailable: {0}")]
    Unavailable(String),
}

/// The time-driven side of a simulated processor (the sandbox) and its documented controls: it renews its
/// subscriptions at period end and can be told that a workspace's next charge declines. Every method that
/// changes something returns the deliveries it caused, kept by the processor until [`Self::acknowledge`]d.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait SandboxControls: Send + Sync {
    /// The processor whose webhook verifier receives the deliveries.
    fn processor_id(&self) -> ProcessorId;
    /// Renews every subscription whose period ended by the processor's now: a subscription set to cancel at
    /// period end ends; the others get the next period and an invoice, paid, or open and `past_due` when the
    /// card was told to decline. A `past_due` subscription is not renewed again until its invoice is paid.
    async fn renew_due(&self) -> Result<Vec<RawDelivery>, SandboxControlError>;
    /// The workspace's card.
    async fn card(&self, workspace: &WorkspaceId) -> Result<SandboxCard, SandboxControlError>;
    /// Makes the workspace's next charge decline (`true`), or not.
    async fn set_decline_next_charge(
        &self,
        workspace: &WorkspaceId,
        decline: bool,
    ) -> Result<SandboxCard, SandboxControlError>;
    /// Charges the workspace's oldest open invoice again, as a customer fixing their card would: paid (and the
    /// subscription active again) unless the card was told to decline once more.
    async fn pay_open_invoice(&self, workspace: &WorkspaceId) -> Result<Vec<RawDelivery>, SandboxControlError>;
    /// What the workspace's meters received (usage reported to the sandbox), by meter name.
    async fn meter_events(&self, workspace: &WorkspaceId) -> Result<Vec<SandboxMeterTally>, SandboxControlError>;
    /// Notes that these deliveries were ingested, so they are not delivered again.
    async fn acknowledge(&self, event_ids: &[String]) -> Result<(), SandboxControlError>;
    /// Deliveries made before `before` and never acknowledged (their replica died before ingesting them).
    async fn unacknowledged(&self, before: DateTime<Utc>) -> Result<Vec<RawDelivery>, SandboxControlError>;
}
