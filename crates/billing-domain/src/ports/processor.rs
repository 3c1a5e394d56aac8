//! The payment processor port, split by capability. An adapter implements each part; the blanket impl combines
//! them into [`PaymentProcessor`]. Business outcomes (a declined card) are values; only transport failures are errors.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::Plan;
use crate::coupon::Coupon;
use crate::error::ProcessorError;
use crate::events::{ProcessorEvent, SubscriptionSnapshot};
use crate::ids::{
    CheckoutSessionId, CustomerId, InvoiceId, PaymentId, PlanId, PriceId, ProcessorId, SubscriptionId, WorkspaceId,
};
use crate::money::Money;
use crate::workspace::Workspace;

/// What an adapter can do; the API answers 501 for what it cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Capabilities {
    pub checkout: bool,
    pub portal: bool,
    pub invoices: bool,
    pub subscription_changes: bool,
    pub payments: bool,
    pub refunds: bool,
    pub usage_reporting: bool,
}

/// Which processor this is and what it supports.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait ProcessorInfo: Send + Sync {
    /// The id used in routes (`/webhooks/{id}`), catalog `processor_prices` and stored rows.
    fn id(&self) -> ProcessorId;
    fn capabilities(&self) -> Capabilities;
}

/// Customers at the processor.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait CustomerOps: Send + Sync {
    /// Returns the processor customer of `workspace`: `known` when given, else one found by workspace metadata,
    /// else a new one. MUST NOT create a second customer for a workspace. MUST return `Unavailable` when the
    /// processor cannot be reached, having changed nothing locally.
    async fn ensure_customer(
        &self,
        workspace: &Workspace,
        known: Option<CustomerId>,
    ) -> Result<CustomerId, ProcessorError>;
}

/// A checkout to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    pub workspace: Workspace,
    pub customer_id: CustomerId,
    pub plan: Plan,
    pub price_id: PriceId,
    pub success_url: String,
    pub cancel_url: String,
    /// Derived from our ids so a retried request creates one session.
    pub idempotency_key: String,
    /// A coupon already redeemed for this checkout: the processor applies its discount (Stripe: a coupon of the
    /// same code in the session's `discounts`).
    pub coupon: Option<Coupon>,
}

/// A started checkout the customer completes at `url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutSession {
    pub id: CheckoutSessionId,
    pub url: String,
}

/// Hosted checkout.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait CheckoutOps: Send + Sync {
    /// Creates a session for `request.plan` (subscription or one-time payment by plan kind). MUST be idempotent on
    /// `request.idempotency_key`. MUST return `Unavailable` on transport failure.
    async fn create_checkout(&self, request: &CheckoutRequest) -> Result<CheckoutSession, ProcessorError>;
}

/// The processor's self-service billing portal.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait PortalOps: Send + Sync {
    /// A portal URL for `customer` returning to `return_url`. MUST return `Unsupported` if the processor has none.
    async fn create_portal(&self, customer: &CustomerId, return_url: &str) -> Result<String, ProcessorError>;
}

/// Proration when changing plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Proration {
    CreateProrations,
    AlwaysInvoice,
    None,
}

/// What a plan change would bill for the rest of the current period, as the processor computes it before anything
/// changes (Stripe's invoice preview).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangePreview {
    /// The prorated difference: positive is charged, negative credited (zero where the processor prorates nothing).
    /// Billed at once under `Proration::AlwaysInvoice`, else on the next invoice.
    pub prorated: Money,
}

/// Changes to live subscriptions. Each MUST be idempotent on `idempotency_key` and MUST return the processor's
/// snapshot after the change, which the caller applies like a webhook.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait SubscriptionOps: Send + Sync {
    async fn cancel(
        &self,
        id: &SubscriptionId,
        at_period_end: bool,
        idempotency_key: &str,
    ) -> Result<SubscriptionSnapshot, ProcessorError>;
    async fn resume(&self, id: &SubscriptionId, idempotency_key: &str) -> Result<SubscriptionSnapshot, ProcessorError>;
    async fn change_price(
        &self,
        id: &SubscriptionId,
        price: &PriceId,
        proration: Proration,
        idempotency_key: &str,
    ) -> Result<SubscriptionSnapshot, ProcessorError>;
    /// What `change_price` with these arguments would bill now, as `change_price` would bill it. MUST change
    /// nothing, and MUST return `Rejected` for an unknown id.
    async fn preview_price_change(
        &self,
        id: &SubscriptionId,
        price: &PriceId,
        proration: Proration,
    ) -> Result<ChangePreview, ProcessorError>;
    /// The processor's current view, for reconciliation and same-second tie-breaks. MUST return `Rejected` for an
    /// unknown id.
    async fn fetch(&self, id: &SubscriptionId) -> Result<SubscriptionSnapshot, ProcessorError>;
    /// Every subscription of `customer`, in any status (canceled ones included), every page read. An unknown
    /// customer MUST give an empty list. Reconciliation ingests the ones Tollgate never heard of.
    async fn list_for_customer(&self, customer: &CustomerId) -> Result<Vec<SubscriptionSnapshot>, ProcessorError>;
}

/// An invoice as listed to the product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub id: InvoiceId,
    pub number: Option<String>,
    pub status: String,
    pub amount_due: Money,
    pub amount_paid: Money,
    pub created_at: DateTime<Utc>,
    pub hosted_url: Option<String>,
    pub pdf_url: Option<String>,
}

/// One page of invoices, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoicePage {
    pub invoices: Vec<Invoice>,
    pub has_more: bool,
}

/// Invoices of a customer.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait InvoiceOps: Send + Sync {
    /// At most `limit` invoices after `starting_after`, newest first. An unknown customer MUST give an empty page.
    async fn list_invoices(
        &self,
        customer: &CustomerId,
        limit: u32,
        starting_after: Option<InvoiceId>,
    ) -> Result<InvoicePage, ProcessorError>;
}

/// A one-time payment to create for a custom UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentIntentRequest {
    pub workspace_id: WorkspaceId,
    pub customer_id: CustomerId,
    pub amount: Money,
    /// The credits plan it sells, written to the processor's metadata (`credits_plan_id`) so the paid event grants
    /// the credits whichever replica receives it.
    pub plan_id: Option<PlanId>,
    pub description: Option<String>,
    /// Where a hosted payment page returns to (the sandbox's); a custom UI gives Stripe its own at confirmation.
    pub return_url: String,
    /// Derived from our ids so a retried request creates one payment.
    pub idempotency_key: String,
}

/// A one-time payment a custom UI confirms with `client_secret`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentIntent {
    pub id: PaymentId,
    pub client_secret: String,
    /// The processor's status word (`requires_payment_method`, …).
    pub status: String,
    /// Where a person can confirm it without a card form of their own: the sandbox's payment page. `None` at
    /// processors whose client secret goes to their own JavaScript.
    pub confirm_url: Option<String>,
}

/// A refund of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub id: String,
    pub amount: Money,
    /// The processor's status word (`succeeded`, `pending`, `failed`, …).
    pub status: String,
}

/// Payments and refunds outside checkout.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait PaymentOps: Send + Sync {
    /// MUST be idempotent on `request.idempotency_key` and MUST carry `workspace_id` and `plan_id` to the
    /// payment's events (metadata), so its outcome reaches the right workspace and grants once.
    async fn create_payment_intent(&self, request: &PaymentIntentRequest) -> Result<PaymentIntent, ProcessorError>;
    /// Refunds `amount` of payment `payment` (all that is left when `None`). MUST be idempotent on
    /// `idempotency_key`; a refund the processor refuses (more than is left, not paid) is `Rejected`.
    async fn refund(
        &self,
        payment: &PaymentId,
        amount: Option<Money>,
        idempotency_key: &str,
    ) -> Result<Refund, ProcessorError>;
    /// The processor's refund `id` as it stands now (a pending one settles later). MUST return `Rejected` for an
    /// unknown id.
    async fn fetch_refund(&self, id: &str) -> Result<Refund, ProcessorError>;
}

/// Metered usage reported to the processor.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait UsageReportingOps: Send + Sync {
    /// Reports `quantity` of `metric` for `customer` at `at`. MUST be idempotent on `idempotency_key`.
    async fn report_usage(
        &self,
        customer: &CustomerId,
        metric: &str,
        quantity: rust_decimal::Decimal,
        at: DateTime<Utc>,
        idempotency_key: &str,
    ) -> Result<(), ProcessorError>;
}

/// Request headers a webhook verifier may read, lower-cased names.
pub type WebhookHeaders = Vec<(String, String)>;

/// Why a webhook delivery was refused. Each maps to a 4xx and nothing is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing signature header `{0}`")]
    MissingSignature(&'static str),
    #[error("signature header is malformed")]
    MalformedSignature,
    #[error("no signature matches")]
    BadSignature,
    #[error("timestamp outside the {tolerance_secs}s tolerance")]
    StaleTimestamp { tolerance_secs: i64 },
    #[error("payload is not a valid event: {0}")]
    MalformedPayload(String),
}

/// Verifying and translating the processor's webhooks.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait WebhookOps: Send + Sync {
    /// Verifies the signature of `body` against `headers` at time `now`, then parses it. MUST check the signature
    /// before parsing, in constant time, and MUST NOT touch storage.
    fn verify_and_parse(
        &self,
        headers: &WebhookHeaders,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<ProcessorEvent, WebhookError>;
}

/// A complete processor adapter: every capability part together.
pub trait PaymentProcessor:
    ProcessorInfo
    + CustomerOps
    + CheckoutOps
    + PortalOps
    + SubscriptionOps
    + InvoiceOps
    + PaymentOps
    + UsageReportingOps
    + WebhookOps
{
}

impl<T> PaymentProcessor for T where
    T: ProcessorInfo
        + CustomerOps
        + CheckoutOps
        + PortalOps
        + SubscriptionOps
        + InvoiceOps
        + PaymentOps
        + UsageReportingOps
        + WebhookOps
{
}
