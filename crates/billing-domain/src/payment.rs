//! Payments and refunds: what was paid through the processor, what of it was refunded, and the rules that keep
//! the two consistent whatever order the processor's events and Tollgate's own refund calls arrive in.
//!
//! A payment's `refunded` counts every refund Tollgate reserved or the processor reported; `processor_refunded` is
//! the largest total the processor itself reported. Both only grow, except that a reservation the processor then
//! refused is given back, never below what the processor reported.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::ids::{CustomerId, PaymentId, PlanId, ProcessorId, RefundId, WorkspaceId};
use crate::money::Money;

/// Where a payment stands at the processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Created; the customer has not paid yet.
    Pending,
    Succeeded,
    /// The last attempt failed; the customer may still pay it.
    Failed,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Pending, Self::Succeeded, Self::Failed].into_iter().find(|s| s.as_str() == raw)
    }

    /// How far along it is: a status never moves back (a failed attempt may still be paid; a paid one stays paid).
    fn rank(self) -> u8 {
        match self {
            Self::Pending => 0,
            Self::Failed => 1,
            Self::Succeeded => 2,
        }
    }
}

/// A payment as Tollgate records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: PaymentId,
    pub processor: ProcessorId,
    pub workspace_id: WorkspaceId,
    pub customer_id: CustomerId,
    pub amount: Money,
    pub status: PaymentStatus,
    /// Refunded or reserved for a refund in flight, in minor units of `amount`.
    pub refunded: i64,
    /// The largest refunded total the processor reported.
    pub processor_refunded: i64,
    /// The credits plan it buys, when Tollgate created it for one; paying it grants the plan's credits once.
    pub plan_id: Option<PlanId>,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every write; writes compare-and-set on it.
    pub version: i64,
}

impl Payment {
    /// What may still be refunded: nothing unless it was paid.
    pub fn refundable(&self) -> i64 {
        match self.status {
            PaymentStatus::Succeeded => (self.amount.minor - self.refunded).max(0),
            _ => 0,
        }
    }

    /// A new record from what the processor (or Tollgate's own call) said about it.
    pub fn from_observation(observation: &PaymentObservation, now: DateTime<Utc>) -> Self {
        let reported = observation.refunded.unwrap_or(0).max(0);
        Self {
            id: observation.id.clone(),
            processor: observation.processor.clone(),
            workspace_id: observation.workspace_id.clone(),
            customer_id: observation.customer_id.clone(),
            amount: observation.amount.clone(),
            status: observation.status,
            refunded: reported,
            processor_refunded: reported,
            plan_id: observation.plan_id.clone(),
            description: observation.description.clone(),
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }

    /// This record with `observation` merged in: the status moves forward only, refunded totals only grow, the
    /// first plan and description stay. The same observations in any order give the same record (but `version`).
    pub fn merged(&self, observation: &PaymentObservation, now: DateTime<Utc>) -> Self {
        let mut next = self.clone();
        if observation.status.rank() > self.status.rank() {
            next.status = observation.status;
        }
        if let Some(reported) = observation.refunded {
            next.processor_refunded = self.processor_refunded.max(reported);
            next.refunded = self.refunded.max(reported);
        }
        next.plan_id = self.plan_id.clone().or_else(|| observation.plan_id.clone());
        next.description = self.description.clone().or_else(|| observation.description.clone());
        next.updated_at = now;
        next
    }

    /// This record after giving back a reservation of `amount` the processor refused.
    pub fn released(&self, amount: i64, now: DateTime<Utc>) -> Self {
        let mut next = self.clone();
        next.refunded = (self.refunded - amount).max(self.processor_refunded).max(0);
        next.updated_at = now;
        next
    }
}

/// What one processor event or API call says about a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentObservation {
    pub id: PaymentId,
    pub processor: ProcessorId,
    pub workspace_id: WorkspaceId,
    pub customer_id: CustomerId,
    pub amount: Money,
    pub status: PaymentStatus,
    /// The processor's refunded total, when the observation carries one (`charge.refunded`).
    pub refunded: Option<i64>,
    pub plan_id: Option<PlanId>,
    pub description: Option<String>,
}

/// Where a refund Tollgate asked for stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Reserved; the processor has not answered (or answered `pending`).
    Pending,
    Succeeded,
    /// The processor refused or could not be reached; the reservation was given back.
    Failed,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Pending, Self::Succeeded, Self::Failed].into_iter().find(|s| s.as_str() == raw)
    }

    /// The status a processor's refund status word means for the reservation.
    pub fn from_processor(word: &str) -> Self {
        match word {
            "succeeded" => Self::Succeeded,
            "failed" | "canceled" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// Why a refund is asked for, as Stripe names the reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    Duplicate,
    Fraudulent,
    RequestedByCustomer,
}

impl RefundReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Duplicate => "duplicate",
            Self::Fraudulent => "fraudulent",
            Self::RequestedByCustomer => "requested_by_customer",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Duplicate, Self::Fraudulent, Self::RequestedByCustomer].into_iter().find(|r| r.as_str() == raw)
    }
}

/// A refund Tollgate asked the processor for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRecord {
    pub id: RefundId,
    pub payment_id: PaymentId,
    pub amount: Money,
    pub status: RefundStatus,
    pub reason: Option<RefundReason>,
    /// The processor's id of the refund (`re_…`), once it answered.
    pub processor_refund_id: Option<String>,
    /// The caller's Idempotency-Key, scoped to the caller: a retry with it finds this refund instead of making
    /// another.
    pub request_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The largest amount one payment may be, in minor units (Stripe's own limit for most currencies).
pub const MAX_PAYMENT_MINOR: i64 = 99_999_999;

/// Checks an amount asked for in a payment or refund: positive and within [`MAX_PAYMENT_MINOR`].
pub fn validate_amount(field: &str, minor: i64) -> Result<(), ValidationError> {
    if minor <= 0 {
        return Err(ValidationError::new(field, "must be a positive amount in minor units"));
    }
    if minor > MAX_PAYMENT_MINOR {
        return Err(ValidationError::new(field, format!("must be at most {MAX_PAYMENT_MINOR}")));
    }
    Ok(())
}

/// The credit-ledger key of the grant a paid payment makes: one payment grants once, however often announced.
pub fn grant_key(payment: &PaymentId) -> String {
    format!("grant:payment:{payment}")
}

#[cfg(test)]
mod tests;
