//! `Store`: the storage ports over the connection pool, plus migration, readiness and the transaction boundary.

use std::sync::Arc;

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::ports::{Transaction, UnitOfWork};
use migration::{Migrator, MigratorTrait};
use sea_orm::{DatabaseConnection, DbBackend};

use crate::cache::{BillingCache, CacheSettings, CacheStats};
use crate::changes;
use crate::errors::map_db_err;
use crate::repo::Repo;
use crate::tx::StoreTx;

/// Every storage port over the connection pool. Cheap to clone; hold it as `Arc<dyn Port>` or clone it per port.
pub type Store = Repo<DatabaseConnection>;

impl Repo<DatabaseConnection> {
    /// Applies every pending migration (idempotent).
    ///
    /// On SQLite all of them run in one `BEGIN IMMEDIATE` transaction on one connection. sea-orm-migration would
    /// otherwise run each DDL statement in autocommit on whichever pooled connection it acquires, and each
    /// connection keeps the schema it last saw: one that ran `CREATE TABLE` before another connection added the
    /// table's unique index compiles `INSERT … ON CONFLICT (…)` against a schema without that index, and SQLite
    /// reports "ON CONFLICT clause does not match any PRIMARY KEY or UNIQUE constraint" without re-reading the
    /// schema. Committed together, the schema changes are seen all at once or not at all; the write lock also
    /// makes a second process that migrates the same file wait and then find nothing pending. PostgreSQL keeps
    /// sea-orm-migration's transaction per migration.
    #[tracing::instrument(skip_all, fields(backend = self.backend()))]
    pub async fn migrate(&self) -> Result<(), StoreError> {
        if self.conn.get_database_backend() != DbBackend::Sqlite {
            return Migrator::up(&self.conn, None).await.map_err(map_db_err);
        }
        let tx = self.begin_write().await?;
        Migrator::up(&tx, None).await.map_err(map_db_err)?;
        tx.commit().await.map_err(map_db_err)
    }

    /// Checks that the database answers (`/readyz`); `Unavailable` when it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.conn.ping().await.map_err(map_db_err)
    }

    /// `"sqlite"` or `"postgres"`, for logs and metrics.
    pub fn backend(&self) -> &'static str {
        match self.conn.get_database_backend() {
            DbBackend::Sqlite => "sqlite",
            DbBackend::Postgres => "postgres",
            _ => "other",
        }
    }

    /// This store with the hot path's cache of billing state (`cache.rs`): `BillingStateReader` and usage totals
    /// answer from memory; on PostgreSQL a listener invalidates what other processes change. Needs a Tokio runtime.
    pub fn with_cache(mut self, settings: CacheSettings) -> Self {
        let cache = Arc::new(BillingCache::new(settings));
        let listening = self.changes.listening.clone();
        self.changes.listener =
            changes::listen(&self.conn, self.changes.origin, cache.clone(), listening).map(|task| task.abort_handle());
        self.changes.cache = Some(cache);
        self
    }

    /// Waits up to `within` for the cache's listener to be subscribed (PostgreSQL; at once elsewhere): until then
    /// other processes' changes are not heard, and subscribing drops the whole cache. `false` when it is not.
    pub async fn listening(&self, within: std::time::Duration) -> bool {
        if self.changes.listener.is_none() {
            return true;
        }
        let deadline = tokio::time::Instant::now() + within;
        while !self.changes.listening.load(std::sync::atomic::Ordering::SeqCst) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        true
    }

    /// Hit and miss counts of the cache, when there is one.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.changes.cache.as_ref().map(|cache| cache.stats())
    }

    /// Closes the pool and waits for its connections to finish (graceful shutdown).
    pub async fn close(&self) -> Result<(), StoreError> {
        // The listener holds a connection until it stops.
        if let Some(listener) = &self.changes.listener {
            listener.abort();
        }
        self.conn.close_by_ref().await.map_err(map_db_err)
    }
}

#[async_trait]
impl UnitOfWork for Repo<DatabaseConnection> {
    #[tracing::instrument(skip_all)]
    /// On SQLite, write transactions queue here first, in arrival order: SQLite has one writer, and a transaction
    /// that waits in its busy handler instead sleeps and polls, which put webhook p99 above a second under load.
    async fn begin(&self) -> Result<Box<dyn Transaction>, StoreError> {
        let turn = match &self.writers {
            Some(writers) => Some(writers.clone().lock_owned().await),
            None => None,
        };
        let tx = self.begin_write().await?;
        Ok(Box::new(StoreTx::new(tx, self.changes.for_transaction(), turn)))
    }
}
