//! `StoreTx`: the ports over one open transaction; dropping it without `commit` rolls everything back.

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::ports::{
    AuditLog, BillingSubject, EventInbox, Outbox, SubscriptionRepository, Transaction, WorkspaceRepository,
};
use sea_orm::DatabaseTransaction;

use crate::errors::map_db_err;
use crate::repo::Repo;

/// An open database transaction, handed out by [`crate::Store`]'s `UnitOfWork::begin`.
#[derive(Debug)]
pub struct StoreTx {
    repo: Repo<DatabaseTransaction>,
}

impl StoreTx {
    pub(crate) fn new(tx: DatabaseTransaction) -> Self {
        Self { repo: Repo::new(tx) }
    }
}

#[async_trait]
impl Transaction for StoreTx {
    async fn lock(&self, subject: &BillingSubject) -> Result<(), StoreError> {
        self.repo.lock_subject(subject).await
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

    #[tracing::instrument(skip_all)]
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.repo.conn.commit().await.map_err(map_db_err)
    }
}
