//! `POST /v1/workspaces/{id}/payment-intents`, `GET /v1/workspaces/{id}/payments`, `GET /v1/payments/{id}` and
//! `POST /v1/payments/{id}/refund`.

use billing_domain::error::{ValidationError, ValidationErrors};
use billing_domain::money::{Currency, Money};
use billing_domain::payment::{Payment, RefundReason, RefundRecord};
use billing_domain::ports::PaymentIntent;
use billing_domain::services::Charge;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use validator::Validate;

use super::common::{AmountBody, MoneyView, http_url, http_url_schema};
use utoipa::{IntoParams, ToSchema};

/// A one-time payment: exactly one of `amount` (`{minor, currency}`) and `plan` (a credits plan, at its price).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentIntentBody {
    pub amount: Option<AmountBody>,
    /// A credits plan of the catalog (the document lists this server's).
    #[validate(length(min = 1, max = 64, message = "must be a plan id"))]
    #[schema(min_length = 1, max_length = 64)]
    pub plan: Option<String>,
    #[validate(length(min = 1, max = 500, message = "must be 1-500 characters"))]
    #[schema(min_length = 1, max_length = 500)]
    pub description: Option<String>,
    /// Where the sandbox's payment page returns to; the configured checkout success URL when absent.
    #[validate(custom(function = "http_url"))]
    #[schema(schema_with = http_url_schema)]
    pub return_url: Option<String>,
}

impl PaymentIntentBody {
    /// What to charge, once exactly one of `amount` and `plan` is given.
    pub fn charge(&self) -> Result<Charge, ValidationErrors> {
        match (&self.amount, &self.plan) {
            (Some(amount), None) => {
                let currency = Currency::parse(&amount.currency)
                    .map_err(|e| ValidationError::new("amount.currency", e.message))?;
                Ok(Charge::Amount(Money::new(amount.minor, currency)))
            }
            (None, Some(plan)) => Ok(Charge::Plan(plan.clone())),
            _ => Err(ValidationError::new("amount", "give exactly one of amount and plan").into()),
        }
    }
}

/// The created payment: hand `client_secret` to the processor's JavaScript (or open `confirm_url` on the sandbox).
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentIntentView<'a> {
    pub payment_id: &'a str,
    pub client_secret: &'a str,
    pub processor_status: &'a str,
    pub confirm_url: Option<&'a str>,
    pub payment: PaymentView<'a>,
}

impl<'a> PaymentIntentView<'a> {
    pub fn new(payment: &'a Payment, intent: &'a PaymentIntent) -> Self {
        Self {
            payment_id: intent.id.as_str(),
            client_secret: &intent.client_secret,
            processor_status: &intent.status,
            confirm_url: intent.confirm_url.as_deref(),
            payment: PaymentView::from(payment),
        }
    }
}

/// A payment: what was charged, its status, and what of it was refunded.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView<'a> {
    pub id: &'a str,
    pub workspace_id: &'a str,
    pub processor: &'a str,
    pub status: &'static str,
    pub amount: MoneyView<'a>,
    pub refunded: MoneyView<'a>,
    pub refundable: MoneyView<'a>,
    pub plan: Option<&'a str>,
    pub description: Option<&'a str>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl<'a> From<&'a Payment> for PaymentView<'a> {
    fn from(p: &'a Payment) -> Self {
        let currency = p.amount.currency.as_str();
        Self {
            id: p.id.as_str(),
            workspace_id: p.workspace_id.as_str(),
            processor: p.processor.as_str(),
            status: p.status.as_str(),
            amount: MoneyView::from(&p.amount),
            refunded: MoneyView { minor: p.refunded, currency },
            refundable: MoneyView { minor: p.refundable(), currency },
            plan: p.plan_id.as_ref().map(|id| id.as_str()),
            description: p.description.as_deref(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// `?limit=&starting_after=`.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PaymentsQuery {
    /// Default 20.
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The id of the last payment of the previous page.
    #[validate(length(min = 1, max = 255, message = "must be a payment id"))]
    #[param(min_length = 1, max_length = 255)]
    pub starting_after: Option<String>,
}

/// One page of payments, newest first; `has_more` when another page follows.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentPage<'a> {
    pub payments: Vec<PaymentView<'a>>,
    pub has_more: bool,
}

/// `{amount?, reason?}`: minor units, all that is left when absent.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// Minor units; all that is left when absent.
    #[schema(minimum = 1, maximum = 99_999_999)]
    pub amount: Option<i64>,
    #[validate(custom(function = "refund_reason"))]
    #[schema(value_type = Option<RefundReasonName>)]
    pub reason: Option<String>,
}

/// Why a refund is made, as the processors name it.
#[derive(ToSchema)]
#[schema(as = RefundReason)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum RefundReasonName {
    Duplicate,
    Fraudulent,
    RequestedByCustomer,
}

fn refund_reason(value: &str) -> Result<(), validator::ValidationError> {
    match RefundReason::parse(value) {
        Some(_) => Ok(()),
        None => Err(validator::ValidationError::new("invalid")
            .with_message("must be duplicate, fraudulent or requested_by_customer".into())),
    }
}

/// A refund and the payment as it now stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundView<'a> {
    pub id: &'a str,
    pub payment_id: &'a str,
    pub amount: MoneyView<'a>,
    pub status: &'static str,
    pub reason: Option<&'static str>,
    pub processor_refund_id: Option<&'a str>,
    pub created_at: DateTime<Utc>,
}

impl<'a> From<&'a RefundRecord> for RefundView<'a> {
    fn from(r: &'a RefundRecord) -> Self {
        Self {
            id: r.id.as_str(),
            payment_id: r.payment_id.as_str(),
            amount: MoneyView::from(&r.amount),
            status: r.status.as_str(),
            reason: r.reason.map(RefundReason::as_str),
            processor_refund_id: r.processor_refund_id.as_deref(),
            created_at: r.created_at,
        }
    }
}

/// `POST /v1/payments/{id}/refund`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundedView<'a> {
    pub refund: RefundView<'a>,
    pub payment: PaymentView<'a>,
    /// Credits of a refunded credit pack this refund took back (never more than the balance).
    pub credits_revoked: i64,
}

/// `GET /v1/payments/{id}`: the payment and the refunds Tollgate asked for.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentDetail<'a> {
    pub payment: PaymentView<'a>,
    pub refunds: Vec<RefundView<'a>>,
}
