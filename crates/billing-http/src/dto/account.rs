//! `POST /v1/workspaces/{id}/portal` and `GET /v1/workspaces/{id}/invoices`.

use billing_domain::ports::{Invoice, InvoicePage};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use validator::Validate;

use super::common::{MoneyView, http_url, http_url_schema};
use utoipa::{IntoParams, ToSchema};

/// `{return_url?}`: where the portal sends the customer back; the configured checkout success URL when absent.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalBody {
    #[validate(custom(function = "http_url"))]
    #[schema(schema_with = http_url_schema)]
    pub return_url: Option<String>,
}

/// The portal session: send the customer to `url`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortalView<'a> {
    pub url: &'a str,
}

/// `?limit=&starting_after=`.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InvoicesQuery {
    /// Default 10.
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The id of the last invoice of the previous page.
    #[validate(length(min = 1, max = 255, message = "must be an invoice id"))]
    #[param(min_length = 1, max_length = 255)]
    pub starting_after: Option<String>,
}

/// One page of invoices, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoicePageView<'a> {
    pub invoices: Vec<InvoiceView<'a>>,
    pub has_more: bool,
}

impl<'a> From<&'a InvoicePage> for InvoicePageView<'a> {
    fn from(page: &'a InvoicePage) -> Self {
        Self { invoices: page.invoices.iter().map(InvoiceView::from).collect(), has_more: page.has_more }
    }
}

/// An invoice: its number, status, amounts and where the customer sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceView<'a> {
    pub id: &'a str,
    pub number: Option<&'a str>,
    pub status: &'a str,
    pub amount_due: MoneyView<'a>,
    pub amount_paid: MoneyView<'a>,
    pub currency: &'a str,
    pub created_at: DateTime<Utc>,
    pub hosted_url: Option<&'a str>,
    pub pdf_url: Option<&'a str>,
}

impl<'a> From<&'a Invoice> for InvoiceView<'a> {
    fn from(i: &'a Invoice) -> Self {
        Self {
            id: i.id.as_str(),
            number: i.number.as_deref(),
            status: &i.status,
            amount_due: MoneyView::from(&i.amount_due),
            amount_paid: MoneyView::from(&i.amount_paid),
            currency: i.amount_due.currency.as_str(),
            created_at: i.created_at,
            hosted_url: i.hosted_url.as_deref(),
            pdf_url: i.pdf_url.as_deref(),
        }
    }
}
