//! The payments table: what was paid through the processor and what of it was refunded.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::ids::{PaymentId, RefundId, WorkspaceId};
use crate::payment::{Payment, PaymentObservation, PaymentStatus, RefundRecord, RefundStatus};

/// Result of [`PaymentRepository::reserve_refund`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundReservation {
    /// Reserved and recorded as pending; the payment as it now stands.
    Reserved(Box<Payment>),
    NotFound,
    /// Only a paid payment can be refunded.
    NotRefundable(PaymentStatus),
    /// More than is left; `refundable` is what is.
    Exceeds {
        refundable: i64,
    },
    /// A refund with the same request key exists (a retry): it, as it stands; nothing reserved again.
    Existing(Box<RefundRecord>),
}

/// The processor's answer to a reserved refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundSettlement {
    pub status: RefundStatus,
    /// The processor's refund id, when it made one.
    pub processor_refund_id: Option<String>,
}

/// Payments and refunds.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait PaymentRepository: Send + Sync {
    async fn get(&self, id: &PaymentId) -> Result<Option<Payment>, StoreError>;
    /// Records what the processor said about a payment: a new row, else [`Payment::merged`] into the row by a
    /// compare-and-set on its version (retried on a lost race). Idempotent; observations converge in any order.
    async fn observe(&self, observation: &PaymentObservation, now: DateTime<Utc>) -> Result<Payment, StoreError>;
    /// Up to `limit` payments of `workspace` after `starting_after`, newest first.
    async fn list_for_workspace(
        &self,
        workspace: &WorkspaceId,
        limit: u32,
        starting_after: Option<PaymentId>,
    ) -> Result<Vec<Payment>, StoreError>;
    /// Takes `refund.amount` from what the payment has left to refund and records `refund` as pending, in one
    /// transaction: a conditional update (`refunded + amount <= amount`), so concurrent refunds never together
    /// exceed what was paid. A refund of the same payment and `request_key` already recorded is `Existing`.
    async fn reserve_refund(&self, refund: &RefundRecord, now: DateTime<Utc>) -> Result<RefundReservation, StoreError>;
    /// Records the processor's answer to a pending refund; a `Failed` one gives its reservation back (never below
    /// what the processor reported refunded). A refund already settled is left as it is. Returns the payment.
    async fn settle_refund(
        &self,
        refund: &RefundId,
        settlement: &RefundSettlement,
        now: DateTime<Utc>,
    ) -> Result<Payment, StoreError>;
    /// The refunds Tollgate asked for on `payment`, oldest first.
    async fn refunds_of(&self, payment: &PaymentId) -> Result<Vec<RefundRecord>, StoreError>;
    /// Up to `limit` refunds still pending that were asked for before `before`, oldest first: what
    /// reconciliation settles with the processor.
    async fn pending_refunds(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<RefundRecord>, StoreError>;
}
