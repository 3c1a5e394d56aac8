//! `Store`: the storage ports over the connection pool, plus migration, readiness and the transaction boundary.

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::ports::{Transaction, UnitOfWork};
use migration::{Migrator, MigratorTrait};
use sea_orm::{DatabaseConnection, DbBackend};

use crate::errors::map_db_err;
use crate::repo::Repo;
use crate::tx::StoreTx;

/// Every storage port over the connection pool. Cheap to clone; hold it as `Arc<dyn Port>` or clone it per port.
pub type Store = Repo<DatabaseConnection>;

impl Repo<DatabaseConnection> {
    /// Applies every pending migration (idempotent).
    #[tracing::instrument(skip_all, fields(backend = self.backend()))]
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(&self.conn, None).await.map_err(map_db_err)
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

    /// Closes the pool and waits for its connections to finish (graceful shutdown).
    pub async fn close(&self) -> Result<(), StoreError> {
        self.conn.close_by_ref().await.map_err(map_db_err)
    }
}

#[async_trait]
impl UnitOfWork for Repo<DatabaseConnection> {
    #[tracing::instrument(skip_all)]
    async fn begin(&self) -> Result<Box<dyn Transaction>, StoreError> {
        let tx = self.begin_write().await?;
        Ok(Box::new(StoreTx::new(tx)))
    }
}
