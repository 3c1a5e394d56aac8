//! Test doubles shared by the service tests: a transaction made of mockall port mocks, and fixtures.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};

use super::{BillingPolicy, Context};
use crate::error::StoreError;
use crate::ids::WorkspaceId;
use crate::ports::{
    AuditLog, BillingState, BillingStateReader, BillingSubject, DunningRepository, EventInbox, MockAuditLog, MockClock,
    MockDunningRepository, MockEventInbox, MockOutbox, MockPaymentRepository, MockSubscriptionRepository,
    MockUsageRepository, MockWorkspaceRepository, Outbox, PaymentRepository, SubscriptionRepository, Transaction,
    UsageRepository, WorkspaceRepository,
};
use crate::testing::test_catalog;
use crate::workspace::{BillingDetails, Workspace};

/// A transaction whose repositories are mocks; `committed` tells whether the service committed, `locks` which
/// subjects it locked, in order.
#[derive(Default)]
pub struct MockTx {
    pub workspaces: MockWorkspaceRepository,
    pub subscriptions: MockSubscriptionRepository,
    pub inbox: MockEventInbox,
    pub audit: MockAuditLog,
    pub outbox: MockOutbox,
    pub payments: MockPaymentRepository,
    pub dunning: MockDunningRepository,
    pub usage: MockUsageRepository,
    pub committed: Arc<AtomicBool>,
    pub locks: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl Transaction for MockTx {
    async fn lock(&self, subject: &BillingSubject) -> Result<(), StoreError> {
        self.locks.lock().unwrap().push(subject.key());
        Ok(())
    }
    async fn savepoint(&self) -> Result<(), StoreError> {
        Ok(())
    }
    async fn rollback_to_savepoint(&self) -> Result<(), StoreError> {
        Err(StoreError::Other("the service tests never roll back to a savepoint".into()))
    }
    fn workspaces(&self) -> &dyn WorkspaceRepository {
        &self.workspaces
    }
    fn subscriptions(&self) -> &dyn SubscriptionRepository {
        &self.subscriptions
    }
    fn inbox(&self) -> &dyn EventInbox {
        &self.inbox
    }
    fn audit(&self) -> &dyn AuditLog {
        &self.audit
    }
    fn outbox(&self) -> &dyn Outbox {
        &self.outbox
    }
    fn payments(&self) -> &dyn PaymentRepository {
        &self.payments
    }
    fn dunning(&self) -> &dyn DunningRepository {
        &self.dunning
    }
    fn usage(&self) -> &dyn UsageRepository {
        &self.usage
    }
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.committed.store(true, Ordering::SeqCst);
        Ok(())
    }
}

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

pub fn clock() -> Arc<MockClock> {
    let mut clock = MockClock::new();
    clock.expect_now().return_const(now());
    Arc::new(clock)
}

pub fn workspace(id: &str) -> Workspace {
    crate::testing::workspace_with(id, BillingDetails::default(), now())
}

/// A context over the given read-side mocks with the shared test catalog; billing state is read through them.
pub fn context(workspaces: MockWorkspaceRepository, subscriptions: MockSubscriptionRepository) -> Context {
    let workspaces: Arc<dyn WorkspaceRepository> = Arc::new(workspaces);
    let subscriptions: Arc<dyn SubscriptionRepository> = Arc::new(subscriptions);
    Context {
        catalog: Arc::new(test_catalog()),
        policy: BillingPolicy::default(),
        clock: clock(),
        state: Arc::new(SplitReader { workspaces: workspaces.clone(), subscriptions: subscriptions.clone() }),
        workspaces,
        subscriptions,
    }
}

/// Billing state read through the two repositories, uncached.
struct SplitReader {
    workspaces: Arc<dyn WorkspaceRepository>,
    subscriptions: Arc<dyn SubscriptionRepository>,
}

#[async_trait]
impl BillingStateReader for SplitReader {
    async fn billing_state(&self, id: &WorkspaceId) -> Result<Option<BillingState>, StoreError> {
        let Some(workspace) = self.workspaces.get(id).await? else { return Ok(None) };
        let subscription = self.subscriptions.current_for_workspace(id).await?;
        Ok(Some(BillingState { workspace, subscription }))
    }
}
