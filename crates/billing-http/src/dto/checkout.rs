//! `POST /v1/workspaces/{id}/checkout`.

use billing_domain::ports::CheckoutSession;
use serde::{Deserialize, Serialize};
use validator::Validate;

use super::common::http_url;

/// What to buy and where the buyer returns; omitted URLs take the configured defaults.
#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBody {
    #[validate(length(max = 64, message = "must name a plan of the catalog"))]
    pub plan: String,
    #[validate(custom(function = "http_url"))]
    pub success_url: Option<String>,
    #[validate(custom(function = "http_url"))]
    pub cancel_url: Option<String>,
    /// A coupon code, case-insensitive; redeemed when the checkout starts.
    #[validate(length(min = 1, max = 64, message = "must be a coupon code"))]
    pub coupon: Option<String>,
}

/// The started checkout: the buyer completes it at `url`.
#[derive(Debug, Serialize)]
pub struct CheckoutSessionView<'a> {
    pub session_id: &'a str,
    pub url: &'a str,
}

impl<'a> From<&'a CheckoutSession> for CheckoutSessionView<'a> {
    fn from(session: &'a CheckoutSession) -> Self {
        Self { session_id: session.id.as_str(), url: &session.url }
    }
}
