//! What the hosted billing page needs stored beyond the API's reads: which of its single-use links were opened,
//! and a workspace's recent credit ledger.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::ids::WorkspaceId;

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
