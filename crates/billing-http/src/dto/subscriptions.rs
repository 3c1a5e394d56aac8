//! `POST /v1/workspaces/{id}/subscription/{cancel,resume,change}`; the answer is the subscription as it now
//! stands (`SubscriptionView`).

use billing_domain::ports::Proration;
use serde::Deserialize;
use utoipa::ToSchema;
use validator::Validate;

/// `{at_period_end}`: at the end of the paid period (the customer keeps the plan until then), or now.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    pub at_period_end: bool,
}

/// `{plan, proration?}`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    /// A subscription plan of the catalog (the document lists this server's).
    #[validate(length(min = 1, max = 64, message = "must name a subscription plan of the catalog"))]
    #[schema(min_length = 1, max_length = 64)]
    pub plan: String,
    /// How the processor bills the change; the configured default when absent.
    pub proration: Option<ProrationDto>,
}

/// `create_prorations` (credit and charge the difference on the next invoice), `always_invoice` (invoice the
/// difference now) or `none`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = Proration)]
pub enum ProrationDto {
    CreateProrations,
    AlwaysInvoice,
    None,
}

impl From<ProrationDto> for Proration {
    fn from(p: ProrationDto) -> Self {
        match p {
            ProrationDto::CreateProrations => Proration::CreateProrations,
            ProrationDto::AlwaysInvoice => Proration::AlwaysInvoice,
            ProrationDto::None => Proration::None,
        }
    }
}
