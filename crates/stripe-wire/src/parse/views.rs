//! Tolerant serde views of Stripe objects: only the fields Tollgate reads, every one optional so that absence is
//! reported by the translator with a clear reason, and unknown fields ignored so new API versions keep parsing.

use serde::Deserialize;
use serde_json::Value;

/// The `event` envelope.
#[derive(Debug, Deserialize)]
pub struct EnvelopeView {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub created: Option<i64>,
    pub data: Option<DataView>,
}

/// `data` of an event; the object is read later, by the view its type calls for.
#[derive(Debug, Deserialize)]
pub struct DataView {
    pub object: Option<Value>,
}

/// A reference Stripe sends either as an id or, when expanded, as the object itself.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum IdRef {
    Id(String),
    Object { id: String },
}

impl IdRef {
    pub fn into_id(self) -> String {
        match self {
            Self::Id(id) | Self::Object { id } => id,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Self::Id(id) | Self::Object { id } => id,
        }
    }
}

/// A Stripe list (`{object: "list", data: [...]}`).
#[derive(Debug, Deserialize)]
pub struct ListView<T> {
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
}

/// The metadata keys Tollgate writes at checkout and on the payment intents it creates.
#[derive(Debug, Default, Deserialize)]
pub struct MetadataView {
    pub workspace_id: Option<String>,
    pub plan_id: Option<String>,
    /// The credits plan a payment intent Tollgate created sells. A key of its own, so the payment intent a
    /// credits checkout makes (whose metadata carries `plan_id`) never grants a second time.
    pub credits_plan_id: Option<String>,
}

/// A `checkout.session`.
#[derive(Debug, Deserialize)]
pub struct CheckoutView {
    pub id: Option<String>,
    pub mode: Option<String>,
    pub payment_status: Option<String>,
    pub customer: Option<IdRef>,
    pub subscription: Option<IdRef>,
    pub client_reference_id: Option<String>,
    pub metadata: Option<MetadataView>,
    pub last_payment_error: Option<PaymentErrorView>,
}

/// Why a payment failed.
#[derive(Debug, Deserialize)]
pub struct PaymentErrorView {
    pub code: Option<String>,
    pub decline_code: Option<String>,
}

/// A `subscription`. The period lives here in older API versions and on the items in newer ones.
#[derive(Debug, Deserialize)]
pub struct SubscriptionView {
    pub id: Option<String>,
    pub customer: Option<IdRef>,
    pub status: Option<String>,
    pub cancel_at_period_end: Option<bool>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub trial_end: Option<i64>,
    pub quantity: Option<u64>,
    pub items: Option<ListView<SubscriptionItemView>>,
    /// The legacy single-plan field of very old API versions.
    pub plan: Option<IdRef>,
}

/// A `subscription_item`.
#[derive(Debug, Deserialize)]
pub struct SubscriptionItemView {
    pub id: Option<String>,
    pub price: Option<IdRef>,
    pub plan: Option<IdRef>,
    pub quantity: Option<u64>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
}

/// An `invoice`. Newer API versions moved `subscription` under `parent.subscription_details`.
#[derive(Debug, Deserialize)]
pub struct InvoiceView {
    pub id: Option<String>,
    pub customer: Option<IdRef>,
    pub subscription: Option<IdRef>,
    pub parent: Option<InvoiceParentView>,
    pub amount_due: Option<i64>,
    pub amount_paid: Option<i64>,
    pub currency: Option<String>,
    pub attempt_count: Option<u64>,
    pub lines: Option<ListView<InvoiceLineView>>,
    // Read only when listing invoices to the product.
    pub number: Option<String>,
    pub status: Option<String>,
    pub created: Option<i64>,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    /// When an upcoming invoice will be charged.
    pub next_payment_attempt: Option<i64>,
    pub period_end: Option<i64>,
}

/// A `payment_intent`.
#[derive(Debug, Deserialize)]
pub struct PaymentIntentView {
    pub id: Option<String>,
    pub customer: Option<IdRef>,
    pub amount: Option<i64>,
    pub amount_received: Option<i64>,
    pub currency: Option<String>,
    pub last_payment_error: Option<PaymentErrorView>,
    pub metadata: Option<MetadataView>,
    // Read only in API responses.
    pub client_secret: Option<String>,
    pub status: Option<String>,
}

/// A `charge`.
#[derive(Debug, Deserialize)]
pub struct ChargeView {
    pub id: Option<String>,
    pub customer: Option<IdRef>,
    pub amount: Option<i64>,
    pub amount_refunded: Option<i64>,
    pub currency: Option<String>,
    pub payment_intent: Option<IdRef>,
}

/// `invoice.parent` of newer API versions.
#[derive(Debug, Deserialize)]
pub struct InvoiceParentView {
    pub subscription_details: Option<SubscriptionDetailsView>,
}

/// `…parent.subscription_details` / `…parent.subscription_item_details`.
#[derive(Debug, Deserialize)]
pub struct SubscriptionDetailsView {
    pub subscription: Option<IdRef>,
    pub proration: Option<bool>,
}

/// A `line_item` of an invoice. The price is `price` in older versions and `pricing.price_details.price` in newer ones.
#[derive(Debug, Deserialize)]
pub struct InvoiceLineView {
    pub price: Option<IdRef>,
    pub plan: Option<IdRef>,
    pub pricing: Option<PricingView>,
    pub period: Option<PeriodView>,
    pub proration: Option<bool>,
    pub subscription: Option<IdRef>,
    pub parent: Option<LineParentView>,
}

/// `line_item.parent` of newer API versions.
#[derive(Debug, Deserialize)]
pub struct LineParentView {
    pub subscription_item_details: Option<SubscriptionDetailsView>,
}

/// `line_item.pricing` of newer API versions.
#[derive(Debug, Deserialize)]
pub struct PricingView {
    pub price_details: Option<PriceDetailsView>,
}

/// `pricing.price_details`.
#[derive(Debug, Deserialize)]
pub struct PriceDetailsView {
    pub price: Option<IdRef>,
}

/// A `{start, end}` period.
#[derive(Debug, Deserialize)]
pub struct PeriodView {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

impl InvoiceLineView {
    /// The price of the line under either API shape.
    pub fn price_id(&self) -> Option<&str> {
        let from_pricing = self.pricing.as_ref().and_then(|p| p.price_details.as_ref()).and_then(|d| d.price.as_ref());
        self.price.as_ref().or(from_pricing).or(self.plan.as_ref()).map(IdRef::id)
    }

    /// The subscription the line bills, under either API shape.
    pub fn subscription_id(&self) -> Option<&str> {
        let nested = self
            .parent
            .as_ref()
            .and_then(|p| p.subscription_item_details.as_ref())
            .and_then(|d| d.subscription.as_ref());
        self.subscription.as_ref().or(nested).map(IdRef::id)
    }

    /// Whether the line is a proration adjustment rather than the period's own charge.
    pub fn is_proration(&self) -> bool {
        self.proration.unwrap_or(false)
            || self
                .parent
                .as_ref()
                .and_then(|p| p.subscription_item_details.as_ref())
                .and_then(|d| d.proration)
                .unwrap_or(false)
    }
}
