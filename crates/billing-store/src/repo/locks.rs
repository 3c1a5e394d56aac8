//! The per-subject serialization point of every billing state change (SPEC §5.8).
//!
//! PostgreSQL: a transaction-scoped advisory lock on a 64-bit hash of the subject's key. It is held until commit
//! or rollback, shared by every connection and process on the database, and costs no row write. Two subjects
//! whose hashes collide merely queue behind each other. SQLite: nothing to do — every write transaction is
//! `BEGIN IMMEDIATE` (`Repo::begin_write`), which already serializes all writers of the database file.

use billing_domain::error::StoreError;
use billing_domain::ports::BillingSubject;
use sea_orm::{DbBackend, Statement};

use super::{Executor, Repo};
use crate::errors::map_db_err;

impl<C: Executor> Repo<C> {
    #[tracing::instrument(skip_all, fields(subject = %subject.key()))]
    pub(crate) async fn lock_subject(&self, subject: &BillingSubject) -> Result<(), StoreError> {
        if self.conn.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let statement = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [subject.key().into()],
        );
        self.conn.execute_raw(statement).await.map_err(map_db_err)?;
        Ok(())
    }
}
