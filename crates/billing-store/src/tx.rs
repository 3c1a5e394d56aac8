//! `StoreTx`: the ports over one open transaction; dropping it without `commit` rolls everything back.

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::ids::WorkspaceId;
use billing_domain::ports::{
    AuditLog, BillingSubject, DunningRepository, EventInbox, Outbox, PaymentRepository, SubscriptionRepository,
    Transaction, UsageRepository, WorkspaceRepository,
};
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use tokio::sync::OwnedMutexGuard;

use crate::changes::{self, Changes, Pending};
use crate::errors::map_db_err;
use crate::repo::Repo;

/// The one savepoint name: a new `SAVEPOINT` of the same name hides the previous one, which is the port's
/// one-level contract. (sea-orm's nested transactions use their own names.)
const SAVEPOINT: &str = "tollgate_event";

/// An open database transaction, handed out by [`crate::Store`]'s `UnitOfWork::begin`.
#[derive(Debug)]
pub struct StoreTx {
    repo: Repo<DatabaseTransaction>,
    /// SQLite: this transaction's turn as the one writer, given back when it commits or rolls back.
    _turn: Option<OwnedMutexGuard<()>>,
}

impl StoreTx {
    pub(crate) fn new(tx: DatabaseTransaction, changes: Changes, turn: Option<OwnedMutexGuard<()>>) -> Self {
        Self { repo: Repo::new(tx, changes), _turn: turn }
    }
}

#[async_trait]
impl Transaction for StoreTx {
    async fn lock(&self, subject: &BillingSubject) -> Result<(), StoreError> {
        self.repo.lock_subjects(std::slice::from_ref(subject)).await
    }

    async fn lock_all(&self, subjects: &[BillingSubject]) -> Result<(), StoreError> {
        self.repo.lock_subjects(subjects).await
    }

    async fn savepoint(&self) -> Result<(), StoreError> {
        self.repo.conn.execute_unprepared(&format!("SAVEPOINT {SAVEPOINT}")).await.map_err(map_db_err)?;
        Ok(())
    }

    async fn rollback_to_savepoint(&self) -> Result<(), StoreError> {
        self.repo.conn.execute_unprepared(&format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}")).await.map_err(map_db_err)?;
        Ok(())
    }

    fn workspaces(&self) -> &dyn WorkspaceRepository {
        &self.repo
    }

    fn subscriptions(&self) -> &dyn SubscriptionRepository {
        &self.repo
    }

    fn inbox(&self) -> &dyn EventInbox {
        &self.repo
    }

    fn audit(&self) -> &dyn AuditLog {
        &self.repo
    }

    fn outbox(&self) -> &dyn Outbox {
        &self.repo
    }

    fn payments(&self) -> &dyn PaymentRepository {
        &self.repo
    }

    fn dunning(&self) -> &dyn DunningRepository {
        &self.repo
    }

    fn usage(&self) -> &dyn UsageRepository {
        &self.repo
    }

    /// Announces the changed workspaces in the transaction (PostgreSQL delivers that at commit), commits, then
    /// invalidates them in this process's cache before returning.
    #[tracing::instrument(skip_all)]
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let Repo { conn, changes, .. } = self.repo;
        let pending = match &changes.pending {
            Some(pending) => std::mem::take(&mut *pending.lock().unwrap_or_else(|p| p.into_inner())),
            None => Pending::default(),
        };
        let usage_only: Vec<&WorkspaceId> = pending.usage.difference(&pending.changed).collect();
        let payloads = pending.changed.difference(&pending.notified).map(|id| changes.payload(id));
        let payloads = payloads.chain(usage_only.iter().map(|id| changes.usage_payload(id))).collect();
        changes::announce_all(&conn, payloads).await?;
        let committed = conn.commit().await.map_err(map_db_err);
        // Even when COMMIT reports an error it may have committed; forgetting too much only costs a reload.
        for id in &pending.changed {
            changes.invalidate(id);
        }
        for id in usage_only {
            changes.invalidate_usage(id);
        }
        committed
    }
}
