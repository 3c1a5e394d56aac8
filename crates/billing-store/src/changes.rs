//! Who learns of a change to a workspace's billing state, and when.
//!
//! Every write of billing state (a workspace row, its credits, a subscription, usage) calls `Repo::changed`. On the
//! pool a write is committed when its statement returns, so the change is announced at once; inside a transaction
//! it is remembered and announced by `StoreTx::commit`: `NOTIFY` in the transaction (PostgreSQL delivers it to
//! every listening process only if and when the transaction commits), then, after the commit, this process's own
//! cache is invalidated — before the write's caller can answer anyone. [`listen`] turns other processes'
//! notifications into invalidations here.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use billing_domain::error::StoreError;
use billing_domain::ids::WorkspaceId;
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::cache::BillingCache;
use crate::errors::map_db_err;

/// The PostgreSQL channel carrying the ids of changed workspaces.
pub(crate) const CHANNEL: &str = "tollgate_billing_changes";
/// A payload's last word when only the workspace's usage changed (its state is still good).
const USAGE_ONLY: &str = "usage";

/// What a `Repo` does with a change: announce it now (the pool), or at commit (a transaction).
#[derive(Debug, Clone)]
pub(crate) struct Changes {
    /// This process's (pool's) mark on its announcements, so its listener skips what it invalidated already.
    pub origin: u64,
    pub cache: Option<Arc<BillingCache>>,
    /// The task listening for other processes' changes; stopped when the pool closes.
    pub listener: Option<tokio::task::AbortHandle>,
    /// Whether that task is subscribed now (its start, and each reconnect, drops the whole cache).
    pub listening: Arc<AtomicBool>,
    /// Inside a transaction: the workspaces changed so far, and those already announced in it.
    pub pending: Option<Arc<Mutex<Pending>>>,
}

#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub changed: BTreeSet<WorkspaceId>,
    pub notified: BTreeSet<WorkspaceId>,
    /// Workspaces whose usage alone changed: only their usage totals are forgotten.
    pub usage: BTreeSet<WorkspaceId>,
}

impl Pending {
    /// `id` changed in this transaction; `announced` when a statement of it already ran `pg_notify` for `id`.
    pub fn record(&mut self, id: &WorkspaceId, announced: bool) {
        self.changed.insert(id.clone());
        if announced {
            self.notified.insert(id.clone());
        }
    }
}

impl Changes {
    /// The changes of a new pool: a fresh origin, no cache yet.
    pub fn new() -> Self {
        use std::hash::{BuildHasher, RandomState};
        Self {
            origin: RandomState::new().hash_one(std::process::id()),
            cache: None,
            listener: None,
            listening: Arc::new(AtomicBool::new(false)),
            pending: None,
        }
    }

    /// The changes of a transaction begun from a repo with these changes.
    pub fn for_transaction(&self) -> Self {
        Self {
            origin: self.origin,
            cache: self.cache.clone(),
            listener: None,
            listening: self.listening.clone(),
            pending: Some(Arc::default()),
        }
    }

    /// The payload announcing `id`: `<origin> <workspace id>` (workspace ids hold no spaces).
    pub fn payload(&self, id: &WorkspaceId) -> String {
        format!("{:016x} {id}", self.origin)
    }

    /// The payload announcing that only `id`'s usage changed: `<origin> <workspace id> usage`.
    pub fn usage_payload(&self, id: &WorkspaceId) -> String {
        format!("{:016x} {id} {USAGE_ONLY}", self.origin)
    }

    pub fn invalidate_usage(&self, id: &WorkspaceId) {
        if let Some(cache) = &self.cache {
            cache.invalidate_usage(id);
        }
    }

    pub fn invalidate(&self, id: &WorkspaceId) {
        if let Some(cache) = &self.cache {
            cache.invalidate(id);
        }
    }
}

/// Announces a change to other processes (PostgreSQL only): `pg_notify` is delivered at commit, and dropped on
/// rollback, when run inside a transaction.
pub(crate) async fn notify<C: ConnectionTrait>(
    conn: &C,
    changes: &Changes,
    id: &WorkspaceId,
) -> Result<(), StoreError> {
    announce(conn, changes.payload(id)).await
}

/// [`notify`] for a change of `id`'s usage alone.
pub(crate) async fn notify_usage<C: ConnectionTrait>(
    conn: &C,
    changes: &Changes,
    id: &WorkspaceId,
) -> Result<(), StoreError> {
    announce(conn, changes.usage_payload(id)).await
}

async fn announce<C: ConnectionTrait>(conn: &C, payload: String) -> Result<(), StoreError> {
    announce_all(conn, vec![payload]).await
}

/// Announces several changes in one statement (one round trip, however many workspaces a usage batch touched).
pub(crate) async fn announce_all<C: ConnectionTrait>(conn: &C, payloads: Vec<String>) -> Result<(), StoreError> {
    if conn.get_database_backend() == DbBackend::Postgres && !payloads.is_empty() {
        let statement = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(pg_notify($1, p)) FROM UNNEST($2::text[]) AS t(p)",
            [CHANNEL.into(), payloads.into()],
        );
        conn.execute_raw(statement).await.map_err(map_db_err)?;
    }
    Ok(())
}

/// Invalidates `cache` on every change another process announces, until the pool closes. A lost connection may
/// have lost notifications, so the whole cache is dropped when it comes back; meanwhile entries still age out.
/// Nothing to listen to on SQLite (single node: this process makes every change it must see at once).
pub(crate) fn listen(
    conn: &DatabaseConnection,
    origin: u64,
    cache: Arc<BillingCache>,
    listening: Arc<AtomicBool>,
) -> Option<tokio::task::JoinHandle<()>> {
    if conn.get_database_backend() != DbBackend::Postgres {
        return None;
    }
    let pool = conn.get_postgres_connection_pool().clone();
    Some(tokio::spawn(async move {
        loop {
            if pool.is_closed() {
                return;
            }
            let mut listener = match PgListener::connect_with(&pool).await {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for billing changes; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(error) = listener.listen(CHANNEL).await {
                tracing::warn!(%error, "cannot listen for billing changes; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            // Whatever changed before this point is unknown: start clean.
            cache.invalidate_all();
            listening.store(true, Ordering::SeqCst);
            // Ends when the connection drops (notifications may be lost) or fails: reconnect and start clean.
            while let Ok(Some(notification)) = listener.try_recv().await {
                match parse_payload(notification.payload()) {
                    // Our own: invalidated when it committed.
                    Some((from, _, _)) if from == origin => {}
                    Some((_, id, true)) => cache.invalidate_usage(&id),
                    Some((_, id, false)) => cache.invalidate(&id),
                    None => cache.invalidate_all(),
                }
            }
            listening.store(false, Ordering::SeqCst);
        }
    }))
}

/// Origin, workspace, and whether only its usage changed.
fn parse_payload(payload: &str) -> Option<(u64, WorkspaceId, bool)> {
    let (origin, rest) = payload.split_once(' ')?;
    let (id, usage_only) = match rest.split_once(' ') {
        Some((id, USAGE_ONLY)) => (id, true),
        Some(_) => return None,
        None => (rest, false),
    };
    Some((u64::from_str_radix(origin, 16).ok()?, WorkspaceId::parse(id).ok()?, usage_only))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_their_origin_and_workspace() {
        let changes = Changes::new();
        let id = WorkspaceId::parse("team.1:eu-2").unwrap();
        assert_eq!(parse_payload(&changes.payload(&id)), Some((changes.origin, id.clone(), false)));
        assert_eq!(parse_payload(&changes.usage_payload(&id)), Some((changes.origin, id, true)));
        assert_eq!(parse_payload("garbage"), None);
        assert_eq!(parse_payload("00000000000000ff a b"), None);
        assert_ne!(Changes::new().origin, Changes::new().origin, "each pool its own origin");
    }
}
