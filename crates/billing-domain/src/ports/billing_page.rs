//! What the hosted billing page needs stored beyond the API's reads: which of its single-use links were opened,
//! a workspace's recent credit ledger, and its usage day by day.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::error::StoreError;
use crate::ids::WorkspaceId;
use crate::usage::{UsageRange, UsageTotals};

/// The billing page's links already opened, by the nonce each link carries.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait PageLinks: Send + Sync {
    /// Records the link `nonce` of `workspace` as opened at `now`; `true` the first time, `false` when it was
    /// opened before. MUST be atomic: of concurrent redemptions of one nonce, on any replica, exactly one gets
    /// `true`.
    async fn redeem(
        &self,
        nonce: &str,
        workspace: &WorkspaceId,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Forgets links that expired before `now` (their signature refuses them anyway); returns how many.
    async fn prune(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// One credit grant (positive) or consumption (negative), as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// What caused it: `grant:…`, `consume:…`, `revoke:refund:…`.
    pub key: String,
    pub amount: i64,
    pub balance_after: i64,
    pub at: DateTime<Utc>,
}

/// Reading a workspace's credit ledger.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait CreditHistory: Send + Sync {
    /// The workspace's `limit` latest ledger entries, newest first.
    async fn recent_ledger(&self, workspace: &WorkspaceId, limit: u32) -> Result<Vec<LedgerEntry>, StoreError>;
}

/// Reading a workspace's usage day by day (the page's charts).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait UsageHistory: Send + Sync {
    /// The totals of each UTC day of `range` that holds events, by metric. It reads every event of the range: a
    /// page view's query, never a hot path's.
    async fn daily_totals(
        &self,
        workspace: &WorkspaceId,
        range: UsageRange,
    ) -> Result<BTreeMap<NaiveDate, UsageTotals>, StoreError>;
}
