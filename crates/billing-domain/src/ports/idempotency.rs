//! API idempotency keys (SPEC §9): a state-changing request sent again with the same `Idempotency-Key` gets the
//! first response, byte for byte, and has no second effect.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;

/// A response kept under a key, replayed to the key's retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// A request claiming a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyClaim {
    /// Who sent it (an API key's name): keys of different callers never meet.
    pub owner: String,
    pub key: String,
    /// The claiming request's own id: only it completes or releases the key (a fencing token).
    pub token: String,
    /// A digest of what the request asks (method, path, body): the same key with another request is refused.
    pub fingerprint: String,
    pub now: DateTime<Utc>,
    /// When the key may be forgotten.
    pub expires_at: DateTime<Utc>,
    /// A claim still in progress since before this is taken to be abandoned (its process died) and taken over.
    pub abandoned_before: DateTime<Utc>,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The key is this request's: run it, then [`IdempotencyKeys::complete`] or [`IdempotencyKeys::release`].
    Started,
    /// A request with the same fingerprint finished: answer with its response.
    Replay(StoredResponse),
    /// A request with the same fingerprint is running now.
    InProgress,
    /// The key was used for a different request.
    Reused,
}

/// The store of idempotency keys.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait IdempotencyKeys: Send + Sync {
    /// Claims `claim.key` for `claim.owner`. MUST be atomic: of concurrent claims of one key exactly one gets
    /// `Started`. An expired key, or one left in progress since before `abandoned_before`, is claimed afresh.
    async fn claim(&self, claim: &KeyClaim) -> Result<Claimed, StoreError>;
    /// Stores the response of the `Started` claim `claim` made; nothing when another claim took the key over.
    async fn complete(&self, claim: &KeyClaim, response: &StoredResponse) -> Result<(), StoreError>;
    /// Forgets the `Started` claim `claim` made, whose request changed nothing (a 5xx): a retry runs it again.
    /// Nothing when another claim took the key over.
    async fn release(&self, claim: &KeyClaim) -> Result<(), StoreError>;
    /// Deletes the keys expired at `now`; returns how many.
    async fn prune(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}
