//! `POST /v1/workspaces/{id}/checkout`.

use billing_domain::ports::CheckoutSession;
use serde::{Deserialize, Serialize};
use validator::Validate;

use super::common::{http_url, http_url_schema};
use utoipa::ToSchema;

/// What to buy and where the buyer returns; omitted URLs take the configured defaults.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBody {
    /// A plan of the catalog that can be bought (the document lists this server's).
    #[validate(length(max = 64, message = "must name a plan of the catalog"))]
    #[schema(max_length = 64)]
    pub plan: String,
    #[validate(custom(function = "http_url"))]
    #[schema(schema_with = http_url_schema)]
    pub success_url: Option<String>,
    #[validate(custom(function = "http_url"))]
    #[schema(schema_with = http_url_schema)]
    pub cancel_url: Option<String>,
    /// A coupon code, case-insensitive; redeemed when the checkout starts.
    #[validate(length(min = 1, max = 64, message = "must be a coupon code"))]
    #[schema(min_length = 1, max_length = 64)]
    pub coupon: Option<String>,
}

/// The started checkout: the buyer completes it at `url`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutSessionView<'a> {
    pub session_id: &'a str,
    pub url: &'a str,
}

impl<'a> From<&'a CheckoutSession> for CheckoutSessionView<'a> {
    fn from(session: &'a CheckoutSession) -> Self {
        Self { session_id: session.id.as_str(), url: &session.url }
    }
}
