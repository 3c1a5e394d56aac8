//! The sandbox's records and the pure rules that change them. They live in memory behind one mutex; each change
//! notes what it touched, and `records.rs` writes those records to Tollgate's database before the change is
//! answered, so a restart loses no open checkout, subscription or invoice.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use billing_domain::catalog::{Interval, Plan, PlanKind};
use billing_domain::error::ProcessorError;
use billing_domain::events::SubscriptionSnapshot;
use billing_domain::ids::{CheckoutSessionId, CustomerId, InvoiceId, PlanId, PriceId, SubscriptionId, WorkspaceId};
use billing_domain::money::Money;
use billing_domain::ports::{HostedCheckoutStatus, Invoice, InvoicePage};
use billing_domain::subscription::SubscriptionStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a checkout sells: the parts of the catalog plan the sandbox shows and charges.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SoldPlan {
    pub id: PlanId,
    pub name: String,
    pub kind: PlanKind,
    pub price: Money,
}

impl SoldPlan {
    pub fn is_subscription(&self) -> bool {
        matches!(self.kind, PlanKind::Subscription { .. })
    }
}

impl From<&Plan> for SoldPlan {
    fn from(plan: &Plan) -> Self {
        Self { id: plan.id.clone(), name: plan.name.clone(), kind: plan.kind.clone(), price: plan.price.clone() }
    }
}

/// A checkout session as created, plus its outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    pub id: CheckoutSessionId,
    pub workspace_id: WorkspaceId,
    pub customer_id: CustomerId,
    pub plan: SoldPlan,
    pub price_id: PriceId,
    pub success_url: String,
    pub cancel_url: String,
    pub status: HostedCheckoutStatus,
    pub created: DateTime<Utc>,
    /// What the checkout charges: the plan's price less the coupon's discount.
    pub amount: Money,
    pub coupon: Option<String>,
}

/// A subscription with what the Stripe-shaped payloads need beyond the domain snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SubscriptionRecord {
    pub snapshot: SubscriptionSnapshot,
    pub workspace_id: WorkspaceId,
    pub plan_id: PlanId,
    /// Price and interval of the plan bought at checkout, for the item's `price` object.
    pub amount: Money,
    pub interval: Interval,
    pub created: DateTime<Utc>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub latest_invoice: Option<InvoiceId>,
    /// Where its periods are counted from: its start, or the end of the period in which its interval changed.
    #[serde(default)]
    pub cycle_anchor: Option<DateTime<Utc>>,
}

/// An invoice: paid, or open after its charge declined until it is paid.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InvoiceRecord {
    pub id: InvoiceId,
    pub number: String,
    pub customer_id: CustomerId,
    pub subscription_id: Option<SubscriptionId>,
    pub price_id: Option<PriceId>,
    pub description: String,
    pub amount: Money,
    pub created: DateTime<Utc>,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// Records written before renewals existed are all paid first invoices.
    #[serde(default)]
    pub paid: PaidState,
    #[serde(default = "one")]
    pub attempt_count: u32,
    /// `subscription_create` or `subscription_cycle`, as Stripe names why an invoice was made.
    #[serde(default = "subscription_create")]
    pub billing_reason: String,
}

impl PendingDelivery {
    /// What an acknowledged delivery's record keeps: that it was delivered.
    pub fn acknowledged() -> Self {
        Self { event_type: String::new(), body: String::new(), created: DateTime::UNIX_EPOCH, delivered: true }
    }
}

/// Whether an invoice's charge went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PaidState {
    #[default]
    Paid,
    Open,
}

fn one() -> u32 {
    1
}

fn subscription_create() -> String {
    "subscription_create".to_owned()
}

impl InvoiceRecord {
    pub fn is_paid(&self) -> bool {
        self.paid == PaidState::Paid
    }

    /// What has been paid of it: all or nothing.
    pub fn amount_paid(&self) -> Money {
        match self.paid {
            PaidState::Paid => self.amount.clone(),
            PaidState::Open => Money { minor: 0, currency: self.amount.currency.clone() },
        }
    }

    /// The invoice as listed to the product, its page under the sandbox's `base_url`.
    pub fn to_domain(&self, base_url: &str) -> Invoice {
        Invoice {
            id: self.id.clone(),
            number: Some(self.number.clone()),
            status: if self.is_paid() { "paid" } else { "open" }.to_owned(),
            amount_due: self.amount.clone(),
            amount_paid: self.amount_paid(),
            created_at: self.created,
            // Tollgate serves the sandbox's invoice page (`GET /sandbox/invoices/{id}`); it renders no PDF, and an
            // honest `None` beats a dead link.
            hosted_url: Some(format!("{base_url}/sandbox/invoices/{}", self.id)),
            pdf_url: None,
        }
    }
}

/// A requested change to a subscription; also the fingerprint an idempotency key is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum SubscriptionChange {
    Cancel { at_period_end: bool },
    Resume,
    ChangePrice(PriceId),
}

impl SubscriptionRecord {
    /// Bills `plan` from the next period on; a new interval starts its cycle at the end of this period.
    pub fn switch_plan(&mut self, id: &PlanId, amount: &Money, interval: Interval) {
        if interval != self.interval {
            self.cycle_anchor = self.snapshot.current_period_end;
        }
        self.plan_id = id.clone();
        self.amount = amount.clone();
        self.interval = interval;
    }

    /// Applies `change` at `now`. A canceled subscription is terminal, as at Stripe: every change is refused.
    pub fn apply(&mut self, change: &SubscriptionChange, now: DateTime<Utc>) -> Result<(), ProcessorError> {
        if self.snapshot.status == SubscriptionStatus::Canceled {
            return Err(ProcessorError::Rejected(format!(
                "subscription `{}` is canceled",
                self.snapshot.subscription_id
            )));
        }
        match change {
            SubscriptionChange::Cancel { at_period_end: true } => self.snapshot.cancel_at_period_end = true,
            SubscriptionChange::Cancel { at_period_end: false } => {
                self.snapshot.status = SubscriptionStatus::Canceled;
                self.snapshot.cancel_at_period_end = false;
                self.canceled_at = Some(now);
            }
            SubscriptionChange::Resume => self.snapshot.cancel_at_period_end = false,
            SubscriptionChange::ChangePrice(price) => self.snapshot.price_id = price.clone(),
        }
        Ok(())
    }
}

/// Everything the sandbox remembers, behind one mutex.
#[derive(Debug, Default, Clone)]
pub(crate) struct State {
    pub customers: HashMap<WorkspaceId, CustomerId>,
    pub sessions: HashMap<CheckoutSessionId, SessionRecord>,
    pub sessions_by_key: HashMap<String, CheckoutSessionId>,
    pub subscriptions: HashMap<SubscriptionId, SubscriptionRecord>,
    /// In creation order, so the newest is last whatever the clock says.
    pub invoices: Vec<InvoiceRecord>,
    pub subscription_changes: HashMap<String, (SubscriptionId, SubscriptionChange, SubscriptionSnapshot)>,
    /// Portal sessions by id.
    pub portals: HashMap<String, crate::portal::PortalRecord>,
    /// Payment intents and the charges of paid checkouts, by id.
    pub payments: HashMap<billing_domain::ids::PaymentId, crate::payments::PaymentRecord>,
    pub payments_by_key: HashMap<String, billing_domain::ids::PaymentId>,
    pub refunds_by_key: HashMap<String, crate::payments::RefundRecord>,
    /// What changed since the last write to the database (`records.rs`).
    pub touched: BTreeSet<(Kind, String)>,
    /// The version of the stored records this state was read at or written as (`records.rs`).
    pub version: u64,
    /// Workspaces whose next charge declines (a sandbox control), cleared by that charge.
    pub decline_next: BTreeSet<WorkspaceId>,
    /// Signed deliveries not yet acknowledged as ingested, by event id: written with the change that made them,
    /// so a crash between that write and their ingestion loses none (`renewals.rs` delivers them again).
    pub pending: BTreeMap<String, PendingDelivery>,
    /// What the meters received, by customer and meter (`meters.rs`).
    pub meters: HashMap<String, crate::meters::MeterTally>,
}

/// A delivery kept until Tollgate acknowledges having ingested it; signed when it is handed out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingDelivery {
    pub event_type: String,
    pub body: String,
    pub created: DateTime<Utc>,
    /// Acknowledged: kept as a record (records are never deleted) but no longer in memory.
    #[serde(default)]
    pub delivered: bool,
}

/// The kinds of record the sandbox keeps, one map of [`State`] each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Customer,
    Session,
    SessionKey,
    Subscription,
    Invoice,
    SubscriptionChange,
    Portal,
    Payment,
    PaymentKey,
    RefundKey,
    CardDecline,
    Delivery,
    Meter,
}

/// Stripe's own bounds on a list `limit`.
const MAX_PAGE: usize = 100;

impl State {
    /// Notes that record `id` of `kind` changed and must be written.
    pub fn touch(&mut self, kind: Kind, id: &str) {
        self.touched.insert((kind, id.to_owned()));
    }

    /// The next human-readable invoice number.
    pub fn next_invoice_number(&self) -> String {
        format!("SBX-{:06}", self.invoices.len() + 1)
    }

    /// Applies `change` once per idempotency key: a repeat returns the first result, a reuse for another request is
    /// refused (as Stripe does).
    pub fn change_subscription(
        &mut self,
        id: &SubscriptionId,
        change: SubscriptionChange,
        idempotency_key: &str,
        now: DateTime<Utc>,
    ) -> Result<SubscriptionSnapshot, ProcessorError> {
        if let Some((seen_id, seen_change, snapshot)) = self.subscription_changes.get(idempotency_key) {
            return if seen_id == id && *seen_change == change {
                Ok(snapshot.clone())
            } else {
                Err(ProcessorError::Rejected("idempotency key was already used for a different request".to_owned()))
            };
        }
        let record = self.subscription_mut(id)?;
        record.apply(&change, now)?;
        let snapshot = record.snapshot.clone();
        self.subscription_changes.insert(idempotency_key.to_owned(), (id.clone(), change, snapshot.clone()));
        self.touch(Kind::Subscription, id.as_str());
        self.touch(Kind::SubscriptionChange, idempotency_key);
        Ok(snapshot)
    }

    /// The subscription `id`, or `Rejected` as the port requires for an unknown id.
    pub fn subscription_mut(&mut self, id: &SubscriptionId) -> Result<&mut SubscriptionRecord, ProcessorError> {
        self.subscriptions.get_mut(id).ok_or_else(|| ProcessorError::Rejected(format!("no subscription `{id}`")))
    }

    /// At most `limit` (1–100) invoices of `customer` after `starting_after`, newest first.
    pub fn invoice_page(
        &self,
        customer: &CustomerId,
        limit: u32,
        starting_after: Option<&InvoiceId>,
        base_url: &str,
    ) -> Result<InvoicePage, ProcessorError> {
        let newest_first: Vec<&InvoiceRecord> =
            self.invoices.iter().rev().filter(|invoice| &invoice.customer_id == customer).collect();
        let start = match starting_after {
            None => 0,
            Some(_) if newest_first.is_empty() => 0,
            Some(cursor) => {
                let at = newest_first
                    .iter()
                    .position(|invoice| &invoice.id == cursor)
                    .ok_or_else(|| ProcessorError::Rejected(format!("no invoice `{cursor}` for this customer")))?;
                at + 1
            }
        };
        let limit = usize::try_from(limit).unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
        let rest = newest_first.get(start..).unwrap_or_default();
        Ok(InvoicePage {
            invoices: rest.iter().take(limit).map(|invoice| invoice.to_domain(base_url)).collect(),
            has_more: rest.len() > limit,
        })
    }
}
