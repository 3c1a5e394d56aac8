//! The per-subject serialization point of every billing state change (SPEC §5.8).
//!
//! PostgreSQL: a transaction-scoped advisory lock on a 64-bit hash of the subject's key. It is held until commit
//! or rollback, shared by every connection and process on the database, and costs no row write. Two subjects
//! whose hashes collide merely queue behind each other. SQLite: nothing to do — every write transaction is
//! `BEGIN IMMEDIATE` (`Repo::begin_write`), which already serializes all writers of the database file.

use billing_domain::error::StoreError;
use billing_domain::ids::WorkspaceId;
use billing_domain::ports::BillingSubject;
use sea_orm::{DbBackend, Statement};

use super::{Executor, Repo};
use crate::changes;
use crate::errors::map_db_err;

impl<C: Executor> Repo<C> {
    /// Locks `subjects` in the order given, in one statement per run of customers or of workspaces (a VALUES list
    /// is scanned in order, and the aggregate takes each lock before the next row). Locking a workspace means
    /// changing it: the same statement announces the change, which PostgreSQL delivers to other processes only if
    /// this transaction commits, and the commit invalidates it here.
    #[tracing::instrument(skip_all, fields(subjects = subjects.len()))]
    pub(crate) async fn lock_subjects(&self, subjects: &[BillingSubject]) -> Result<(), StoreError> {
        let postgres = self.conn.get_database_backend() == DbBackend::Postgres;
        let is_workspace = |s: &BillingSubject| matches!(s, BillingSubject::Workspace(_));
        for run in subjects.chunk_by(|a, b| is_workspace(a) == is_workspace(b)) {
            if let Some(pending) = &self.changes.pending {
                let mut pending = pending.lock().unwrap_or_else(|p| p.into_inner());
                for subject in run {
                    if let BillingSubject::Workspace(id) = subject {
                        pending.record(id, postgres);
                    }
                }
            }
            if !postgres || run.is_empty() {
                continue;
            }
            if !is_workspace(&run[0]) {
                self.lock_keys(run.iter().map(BillingSubject::key).collect()).await?;
                continue;
            }
            let mut values: Vec<sea_orm::Value> = vec![changes::CHANNEL.into()];
            let mut rows = Vec::with_capacity(run.len());
            for subject in run {
                if let BillingSubject::Workspace(id) = subject {
                    values.push(subject.key().into());
                    values.push(self.changes.payload(id).into());
                    rows.push(format!("(${}, ${})", values.len() - 1, values.len()));
                }
            }
            let sql = format!(
                "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))), count(pg_notify($1, p)) \
                 FROM (VALUES {}) AS t(k, p)",
                rows.join(", ")
            );
            let statement = Statement::from_sql_and_values(DbBackend::Postgres, sql, values);
            self.conn.execute_raw(statement).await.map_err(map_db_err)?;
        }
        Ok(())
    }

    /// Locks workspaces whose usage alone will change, in the order given, announcing nothing: the writer
    /// announces the usage change itself ([`Repo::usage_changed`]), which keeps their cached state.
    pub(crate) async fn lock_for_usage(&self, workspaces: &[&WorkspaceId]) -> Result<(), StoreError> {
        if self.conn.get_database_backend() != DbBackend::Postgres || workspaces.is_empty() {
            return Ok(());
        }
        self.lock_keys(workspaces.iter().map(|w| BillingSubject::Workspace((*w).clone()).key()).collect()).await
    }

    /// PostgreSQL: the advisory locks of `keys`, in order, in one statement.
    async fn lock_keys(&self, keys: Vec<String>) -> Result<(), StoreError> {
        let rows: Vec<String> = (1..=keys.len()).map(|i| format!("(${i})")).collect();
        let sql = format!(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) FROM (VALUES {}) AS t(k)",
            rows.join(", ")
        );
        let values: Vec<sea_orm::Value> = keys.into_iter().map(Into::into).collect();
        let statement = Statement::from_sql_and_values(DbBackend::Postgres, sql, values);
        self.conn.execute_raw(statement).await.map_err(map_db_err)?;
        Ok(())
    }
}
