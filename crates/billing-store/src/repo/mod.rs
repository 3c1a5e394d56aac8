//! `Repo<C>`: every storage port implemented once over any connection, so the pool (`Store`) and an open
//! transaction (`StoreTx`) share one implementation. One file per port.

mod audit;
mod billing_page;
mod billing_state;
mod clock;
mod coupons;
mod credits;
mod dunning;
mod idempotency;
mod inbox;
mod locks;
mod meter_cursors;
mod outbox;
mod payments;
mod processor_records;
mod subscriptions;
mod usage;
mod workspaces;

use std::sync::Arc;

use billing_domain::error::StoreError;
use billing_domain::ids::WorkspaceId;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseTransaction, SqliteTransactionMode, TransactionOptions,
    TransactionTrait, TryInsert, TryInsertResult,
};

use crate::cache::{BillingCache, Lookup, Ticket};
use crate::changes::{self, Changes};
use crate::errors::map_db_err;

/// What a [`Repo`] runs on: the pool or an open transaction (both begin nested work as a transaction or savepoint).
pub trait Executor:
    ConnectionTrait + TransactionTrait<Transaction = DatabaseTransaction> + Send + Sync + 'static
{
}

impl<T> Executor for T where
    T: ConnectionTrait + TransactionTrait<Transaction = DatabaseTransaction> + Send + Sync + 'static
{
}

/// The storage ports over one connection: a pool ([`crate::Store`]) or a transaction ([`crate::StoreTx`]).
#[derive(Debug, Clone)]
pub struct Repo<C> {
    pub(crate) conn: C,
    /// Where changes of billing state are announced (`changes.rs`).
    pub(crate) changes: Changes,
    /// SQLite only, on the pool: the queue of write transactions (see `UnitOfWork::begin`).
    pub(crate) writers: Option<Arc<tokio::sync::Mutex<()>>>,
}

impl<C> Repo<C> {
    pub(crate) fn new(conn: C, changes: Changes) -> Self {
        Self { conn, changes, writers: None }
    }
}

impl<C: Executor> Repo<C> {
    /// Opens a write transaction, or a savepoint when this repo already runs in one, so multi-statement writes
    /// (credits, parked events) commit together however they are called.
    ///
    /// On SQLite it is `BEGIN IMMEDIATE`: a deferred transaction that reads and then writes must upgrade its lock,
    /// and SQLite fails that upgrade with "database is locked" instead of waiting when another writer got in
    /// first. Taking the write lock up front lets `busy_timeout` queue writers instead. PostgreSQL ignores the mode.
    pub(crate) async fn begin_write(&self) -> Result<DatabaseTransaction, StoreError> {
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        self.conn.begin_with_options(options).await.map_err(map_db_err)
    }

    /// A read through the cache, when reads may use one (only the pool's: a transaction reads the database, which
    /// its own writes change): `lookup`, else `load` and `store` under the ticket the miss gave, so a load that
    /// raced an invalidation is never kept.
    pub(crate) async fn through_cache<T: Clone>(
        &self,
        lookup: impl FnOnce(&BillingCache) -> Lookup<T>,
        load: impl Future<Output = Result<T, StoreError>>,
        store: impl FnOnce(&BillingCache, Ticket, T),
    ) -> Result<T, StoreError> {
        let cache = match self.changes.pending {
            Some(_) => None,
            None => self.changes.cache.as_deref(),
        };
        let Some(cache) = cache else { return load.await };
        let ticket = match lookup(cache) {
            Lookup::Hit(value) => return Ok(value),
            Lookup::Miss(ticket) => ticket,
        };
        let value = load.await?;
        store(cache, ticket, value.clone());
        Ok(value)
    }

    /// Records that `id`'s billing state changed: announced at once on the pool, at commit in a transaction.
    pub(crate) async fn changed(&self, id: &WorkspaceId) -> Result<(), StoreError> {
        match &self.changes.pending {
            Some(pending) => pending.lock().unwrap_or_else(|p| p.into_inner()).record(id, false),
            None => {
                // Committed already: forget it here first, whatever the announcement to others does.
                self.changes.invalidate(id);
                changes::notify(&self.conn, &self.changes, id).await?;
            }
        }
        Ok(())
    }
}

impl<C: Executor> Repo<C> {
    /// Records that only `id`'s usage changed (its state did not): announced like [`Repo::changed`], but only the
    /// usage totals are forgotten, so the workspace's state stays cached under a stream of usage.
    pub(crate) async fn usage_changed(&self, id: &WorkspaceId) -> Result<(), StoreError> {
        match &self.changes.pending {
            Some(pending) => {
                pending.lock().unwrap_or_else(|p| p.into_inner()).usage.insert(id.clone());
            }
            None => {
                self.changes.invalidate_usage(id);
                changes::notify_usage(&self.conn, &self.changes, id).await?;
            }
        }
        Ok(())
    }
}

/// Runs an `INSERT … ON CONFLICT DO NOTHING`; `false` when a unique key already held the row. Never raising the
/// unique violation matters on PostgreSQL, where an error would abort the caller's whole transaction.
pub(crate) async fn insert_or_skip<A, C>(conn: &C, insert: TryInsert<A>) -> Result<bool, StoreError>
where
    A: ActiveModelTrait,
    C: ConnectionTrait,
{
    match insert.exec_without_returning(conn).await.map_err(map_db_err)? {
        TryInsertResult::Inserted(rows) => Ok(rows > 0),
        TryInsertResult::Conflicted | TryInsertResult::Empty => Ok(false),
    }
}

/// Converts a caller's count (`limit`, `attempts`) to the column type; values beyond it are a caller bug.
pub(crate) fn to_i32(value: u32, what: &str) -> Result<i32, StoreError> {
    i32::try_from(value).map_err(|_| StoreError::Other(format!("{what} {value} is out of range")))
}
