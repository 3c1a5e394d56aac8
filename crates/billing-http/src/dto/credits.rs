//! `POST /v1/workspaces/{id}/credits/consume`.

use billing_domain::ports::ConsumeOutcome;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

/// `{amount, idempotency_key}`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumeBody {
    #[validate(range(min = 1, max = 1_000_000_000, message = "must be a positive integer"))]
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub amount: i64,
    /// The same key consumes once, however often it is sent.
    #[validate(length(min = 1, max = 128, message = "must be 1-128 characters"))]
    #[schema(min_length = 1, max_length = 128)]
    pub idempotency_key: String,
}

/// `consumed` or `already_consumed` (this key was consumed before: nothing taken again), with the balance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsumeView {
    pub outcome: &'static str,
    pub balance: i64,
}

impl ConsumeView {
    /// The answer for an outcome that took (or had taken) the credits, or the balance that was too small.
    pub fn of(outcome: ConsumeOutcome) -> Result<Self, i64> {
        match outcome {
            ConsumeOutcome::Consumed { balance } => Ok(Self { outcome: "consumed", balance }),
            ConsumeOutcome::AlreadyConsumed { balance } => Ok(Self { outcome: "already_consumed", balance }),
            ConsumeOutcome::Insufficient { balance } => Err(balance),
        }
    }
}
