//! Tolerant views of the API responses the adapter reads beyond what stripe-wire already covers. Every field is
//! optional and unknown fields are ignored, so responses of any API version (and localstripe's) parse.

use std::collections::HashMap;

use billing_domain::error::ProcessorError;
use billing_domain::ids::InvoiceId;
use billing_domain::money::{Currency, Money};
use billing_domain::ports::Invoice;
use chrono::DateTime;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use stripe_wire::views::InvoiceView;

#[derive(Debug, Deserialize)]
pub struct CustomerView {
    pub id: Option<String>,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub struct SessionView {
    pub id: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PaymentIntentView {
    pub id: Option<String>,
    pub client_secret: Option<String>,
    pub status: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RefundView {
    pub id: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub status: Option<String>,
}

/// A refund as the port reports it.
pub fn refund(view: RefundView, what: &str) -> Result<billing_domain::ports::Refund, ProcessorError> {
    Ok(billing_domain::ports::Refund {
        id: field(view.id, what, "id")?,
        amount: Money::new(field(view.amount, what, "amount")?, currency(view.currency, what)?),
        status: view.status.unwrap_or_else(|| "pending".to_owned()),
    })
}

/// Reads a response body as `T`; `what` names the call in the error.
pub fn read<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ProcessorError> {
    serde_json::from_slice(body).map_err(|e| rejected(what, &format!("unreadable response ({})", e.classify_name())))
}

/// A required field of a response.
pub fn field<T>(value: Option<T>, what: &str, name: &str) -> Result<T, ProcessorError> {
    value.ok_or_else(|| rejected(what, &format!("response lacks `{name}`")))
}

pub fn rejected(what: &str, reason: &str) -> ProcessorError {
    ProcessorError::Rejected(format!("stripe {what}: {reason}"))
}

pub fn currency(raw: Option<String>, what: &str) -> Result<Currency, ProcessorError> {
    Currency::parse(&field(raw, what, "currency")?).map_err(|_| rejected(what, "invalid currency"))
}

/// An invoice as listed to the product.
pub fn invoice(view: InvoiceView, what: &str) -> Result<Invoice, ProcessorError> {
    let currency = currency(view.currency, what)?;
    let created = field(view.created, what, "created")?;
    Ok(Invoice {
        id: InvoiceId::new(field(view.id, what, "id")?),
        number: view.number,
        status: view.status.unwrap_or_else(|| "unknown".to_owned()),
        amount_due: Money::new(view.amount_due.unwrap_or(0), currency.clone()),
        amount_paid: Money::new(view.amount_paid.unwrap_or(0), currency),
        created_at: DateTime::from_timestamp(created, 0).ok_or_else(|| rejected(what, "`created` out of range"))?,
        hosted_url: view.hosted_invoice_url,
        pdf_url: view.invoice_pdf,
    })
}

/// serde's error category as a word, never the offending value.
trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Data => "unexpected field type",
            _ => "not JSON",
        }
    }
}

/// An invoice preview (`POST /v1/invoices/create_preview`): its currency and lines, each marked a proration in
/// the line itself (API versions before 2025-03-31) or in its parent's subscription item details (after).
#[derive(Debug, Deserialize)]
pub struct PreviewView {
    pub currency: Option<String>,
    pub lines: Option<PreviewLines>,
}

#[derive(Debug, Deserialize)]
pub struct PreviewLines {
    #[serde(default)]
    pub data: Vec<PreviewLine>,
}

#[derive(Debug, Deserialize)]
pub struct PreviewLine {
    pub amount: Option<i64>,
    #[serde(default)]
    pub proration: bool,
    pub parent: Option<serde_json::Value>,
}

impl PreviewLine {
    fn is_proration(&self) -> bool {
        self.proration
            || self.parent.as_ref().is_some_and(|parent| {
                parent["subscription_item_details"]["proration"] == true
                    || parent["invoice_item_details"]["proration"] == true
            })
    }
}

/// The prorated total of a preview: the sum of its proration lines.
pub fn proration(view: PreviewView, what: &str) -> Result<Money, ProcessorError> {
    let currency = currency(view.currency, what)?;
    let lines = view.lines.map(|lines| lines.data).unwrap_or_default();
    let mut minor: i64 = 0;
    for line in lines.iter().filter(|line| line.is_proration()) {
        let amount = field(line.amount, what, "lines.data.amount")?;
        minor = minor.checked_add(amount).ok_or_else(|| rejected(what, "proration total overflows"))?;
    }
    Ok(Money::new(minor, currency))
}
