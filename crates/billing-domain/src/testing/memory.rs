//! An in-memory store with real transaction semantics (work on a copy, publish on commit) so property tests can
//! drive the real services through thousands of event orders quickly. It implements the ports a webhook touches;
//! the others answer an error naming what is not kept here.
//!
//! What it cannot show: interleavings. The property test runs one transaction at a time, so every order it tries
//! is a *delivery* order, never two transactions overlapping (and two overlapping copies here would simply lose
//! one commit). Concurrent transactions — the per-subject lock of `Transaction::lock`, a link read racing the
//! checkout that creates it — are covered by the race harness (`tests/e2e/race`), which delivers to the real
//! binary on PostgreSQL and SQLite with many concurrent senders.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use crate::coupon::Coupon;
use crate::dunning::{CaseStatus, CloseReason, DunningCase, NewCase};
use crate::error::StoreError;
use crate::events::ProcessorEvent;
use crate::ids::{
    CustomerId, EventId, InvoiceId, PaymentId, PlanId, ProcessorId, RefundId, SubscriptionId, WorkspaceId,
};
use crate::payment::{Payment, PaymentObservation, RefundRecord};
use crate::ports::*;
use crate::records::{
    AuditEntry, AuditRecord, OutboxBacklog, OutboxEntry, OutboxMessage, OutboxStatus, PendingMessage,
};
use crate::subscription::Subscription;
use crate::usage::{UsageRange, UsageTotals};
use crate::workspace::Workspace;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Everything the store holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub workspaces: BTreeMap<WorkspaceId, Workspace>,
    pub customers: BTreeMap<(ProcessorId, CustomerId), WorkspaceId>,
    pub ledger: BTreeSet<(WorkspaceId, String)>,
    pub subscriptions: BTreeMap<(ProcessorId, SubscriptionId), Subscription>,
    pub inbox: BTreeMap<(ProcessorId, EventId), (InboxStatus, u32)>,
    pub parked: Vec<(String, ProcessorEvent)>,
    pub audit: Vec<AuditRecord>,
    pub outbox: BTreeSet<String>,
    pub payments: BTreeMap<PaymentId, Payment>,
    /// Dunning cases by id.
    pub dunning: BTreeMap<i64, DunningCase>,
}

/// The shared, committed state.
#[derive(Clone, Default)]
pub struct MemoryStore {
    pub committed: Arc<Mutex<State>>,
    /// Faults to inject: writes of these subscriptions fail with `Conflict` this many more times.
    pub failing_writes: Arc<Mutex<BTreeMap<SubscriptionId, u32>>>,
}

impl MemoryStore {
    /// `Conflict` when a fault is due for a write of subscription `id`.
    fn fault(&self, id: &SubscriptionId) -> Result<(), StoreError> {
        let mut failing = self.failing_writes.lock().unwrap();
        match failing.get_mut(id) {
            Some(left) if *left > 0 => {
                *left -= 1;
                Err(StoreError::Conflict(format!("injected fault writing {id}")))
            }
            _ => Ok(()),
        }
    }
}

/// A transaction: a private copy published on commit, discarded on drop.
pub struct MemoryTx {
    store: MemoryStore,
    state: Mutex<State>,
    /// The copy as it was at the last savepoint.
    savepoint: Mutex<Option<State>>,
}

#[async_trait]
impl UnitOfWork for MemoryStore {
    async fn begin(&self) -> Result<Box<dyn Transaction>, StoreError> {
        let copy = self.committed.lock().unwrap().clone();
        Ok(Box::new(MemoryTx { store: self.clone(), state: Mutex::new(copy), savepoint: Mutex::new(None) }))
    }
}

#[async_trait]
impl Transaction for MemoryTx {
    /// Nothing to lock: transactions here never overlap (see the module doc).
    async fn lock(&self, _: &BillingSubject) -> Result<(), StoreError> {
        Ok(())
    }
    async fn savepoint(&self) -> Result<(), StoreError> {
        *self.savepoint.lock().unwrap() = Some(self.state.lock().unwrap().clone());
        Ok(())
    }
    async fn rollback_to_savepoint(&self) -> Result<(), StoreError> {
        let saved = self.savepoint.lock().unwrap().clone().ok_or_else(|| StoreError::Other("no savepoint".into()))?;
        *self.state.lock().unwrap() = saved;
        Ok(())
    }
    fn workspaces(&self) -> &dyn WorkspaceRepository {
        self
    }
    fn subscriptions(&self) -> &dyn SubscriptionRepository {
        self
    }
    fn inbox(&self) -> &dyn EventInbox {
        self
    }
    fn audit(&self) -> &dyn AuditLog {
        self
    }
    fn outbox(&self) -> &dyn Outbox {
        self
    }
    fn payments(&self) -> &dyn PaymentRepository {
        self
    }
    fn dunning(&self) -> &dyn DunningRepository {
        self
    }
    fn usage(&self) -> &dyn UsageRepository {
        self
    }
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        *self.store.committed.lock().unwrap() = self.state.into_inner().unwrap();
        Ok(())
    }
}

fn unused<T>(what: &str) -> Result<T, StoreError> {
    Err(StoreError::Other(format!("{what} is not used by these tests")))
}

/// Usage is not modelled here: the store's tests cover it on SQLite and PostgreSQL.
#[async_trait]
impl UsageRepository for MemoryTx {
    async fn record(&self, _: &[PlacedEvent], _: DateTime<Utc>) -> Result<Vec<bool>, StoreError> {
        unused("usage")
    }
    async fn totals(&self, _: &WorkspaceId, _: UsageRange) -> Result<UsageTotals, StoreError> {
        unused("usage")
    }
    async fn contains(&self, _: &WorkspaceId, _: &str) -> Result<bool, StoreError> {
        unused("usage")
    }
}

#[async_trait]
impl WorkspaceRepository for MemoryTx {
    async fn get(&self, id: &WorkspaceId) -> Result<Option<Workspace>, StoreError> {
        Ok(self.state.lock().unwrap().workspaces.get(id).cloned())
    }
    async fn insert(&self, workspace: &Workspace) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        if state.workspaces.contains_key(&workspace.id) {
            return Err(StoreError::Duplicate(workspace.id.to_string()));
        }
        state.workspaces.insert(workspace.id.clone(), workspace.clone());
        Ok(())
    }
    async fn update_profile(&self, _: &Workspace) -> Result<(), StoreError> {
        unused("update_profile")
    }
    async fn start_trial(
        &self,
        _: &WorkspaceId,
        _: &PlanId,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        unused("start_trial")
    }
    async fn set_restricted(
        &self,
        id: &WorkspaceId,
        restricted: bool,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        let workspace = state.workspaces.get_mut(id).ok_or_else(|| StoreError::Other(format!("no workspace {id}")))?;
        workspace.restricted = restricted;
        workspace.restricted_reason = reason;
        workspace.updated_at = now;
        Ok(())
    }
    async fn trials_ending(&self, _: DateTime<Utc>, _: DateTime<Utc>, _: u32) -> Result<Vec<Workspace>, StoreError> {
        unused("trials_ending")
    }
    async fn workspace_of_customer(&self, p: &ProcessorId, c: &CustomerId) -> Result<Option<WorkspaceId>, StoreError> {
        Ok(self.state.lock().unwrap().customers.get(&(p.clone(), c.clone())).cloned())
    }
    async fn customer_of_workspace(&self, _: &ProcessorId, _: &WorkspaceId) -> Result<Option<CustomerId>, StoreError> {
        unused("customer_of_workspace")
    }
    async fn linked_customers(
        &self,
        _: &ProcessorId,
        _: Option<CustomerId>,
        _: u32,
    ) -> Result<Vec<(CustomerId, WorkspaceId)>, StoreError> {
        unused("linked_customers")
    }
    async fn link_customer(
        &self,
        p: &ProcessorId,
        c: &CustomerId,
        w: &WorkspaceId,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state.lock().unwrap();
        match state.customers.get(&(p.clone(), c.clone())) {
            Some(existing) if existing == w => Ok(false),
            Some(_) => Err(StoreError::Duplicate(c.to_string())),
            None => {
                state.customers.insert((p.clone(), c.clone()), w.clone());
                Ok(true)
            }
        }
    }
    async fn grant_credits(
        &self,
        id: &WorkspaceId,
        amount: i64,
        key: &str,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state.lock().unwrap();
        if !state.ledger.insert((id.clone(), key.to_owned())) {
            return Ok(false);
        }
        let workspace = state.workspaces.get_mut(id).ok_or_else(|| StoreError::Other("no workspace".into()))?;
        workspace.credit_balance += amount;
        Ok(true)
    }
    async fn consume_credits(
        &self,
        _: &WorkspaceId,
        _: i64,
        _: &str,
        _: DateTime<Utc>,
    ) -> Result<ConsumeOutcome, StoreError> {
        unused("consume_credits")
    }
}

#[async_trait]
impl SubscriptionRepository for MemoryTx {
    async fn get(&self, p: &ProcessorId, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        Ok(self.state.lock().unwrap().subscriptions.get(&(p.clone(), id.clone())).cloned())
    }
    async fn current_for_workspace(&self, w: &WorkspaceId) -> Result<Option<Subscription>, StoreError> {
        let state = self.state.lock().unwrap();
        Ok(state
            .subscriptions
            .values()
            .filter(|s| &s.workspace_id == w)
            .max_by_key(|s| (!s.status.is_terminal(), s.status_at, s.id.clone()))
            .cloned())
    }
    async fn list_live(
        &self,
        p: &ProcessorId,
        after: Option<SubscriptionId>,
        limit: u32,
    ) -> Result<Vec<Subscription>, StoreError> {
        let state = self.state.lock().unwrap();
        let mut live: Vec<Subscription> = state
            .subscriptions
            .values()
            .filter(|s| &s.processor == p && !s.status.is_terminal())
            .filter(|s| after.as_ref().is_none_or(|a| s.id.as_str() > a.as_str()))
            .cloned()
            .collect();
        live.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        live.truncate(limit as usize);
        Ok(live)
    }
    async fn insert(&self, s: &Subscription, _: DateTime<Utc>) -> Result<(), StoreError> {
        self.store.fault(&s.id)?;
        let mut state = self.state.lock().unwrap();
        let key = (s.processor.clone(), s.id.clone());
        if state.subscriptions.contains_key(&key) {
            return Err(StoreError::Duplicate(s.id.to_string()));
        }
        state.subscriptions.insert(key, s.clone());
        Ok(())
    }
    async fn update(&self, s: &Subscription, expected_version: i64, _: DateTime<Utc>) -> Result<(), StoreError> {
        self.store.fault(&s.id)?;
        let mut state = self.state.lock().unwrap();
        match state.subscriptions.get_mut(&(s.processor.clone(), s.id.clone())) {
            Some(current) if current.version == expected_version => {
                *current = s.clone();
                Ok(())
            }
            _ => Err(StoreError::Conflict(s.id.to_string())),
        }
    }
}

#[async_trait]
impl EventInbox for MemoryTx {
    async fn record(&self, event: &InboxEvent) -> Result<Recorded, StoreError> {
        let mut state = self.state.lock().unwrap();
        let key = (event.processor.clone(), event.event_id.clone());
        if let Some((status, attempts)) = state.inbox.get(&key) {
            return Ok(Recorded::Seen { status: *status, attempts: *attempts });
        }
        state.inbox.insert(key, (InboxStatus::Received, 1));
        Ok(Recorded::New)
    }
    async fn seen_many(
        &self,
        events: &[(ProcessorId, EventId)],
    ) -> Result<BTreeMap<(ProcessorId, EventId), Seen>, StoreError> {
        let state = self.state.lock().unwrap();
        Ok(events
            .iter()
            .filter_map(|key| state.inbox.get(key).map(|&(status, attempts)| (key.clone(), Seen { status, attempts })))
            .collect())
    }
    async fn claim_retry(&self, p: &ProcessorId, id: &EventId, attempts: u32) -> Result<bool, StoreError> {
        let mut state = self.state.lock().unwrap();
        match state.inbox.get_mut(&(p.clone(), id.clone())) {
            Some(entry) if *entry == (InboxStatus::Failed, attempts) => {
                *entry = (InboxStatus::Received, attempts + 1);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn set_status(
        &self,
        p: &ProcessorId,
        id: &EventId,
        status: InboxStatus,
        _: Option<String>,
        _: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        let entry =
            state.inbox.get_mut(&(p.clone(), id.clone())).ok_or_else(|| StoreError::Other("no event".into()))?;
        entry.0 = status;
        Ok(())
    }
    async fn record_failure(&self, event: &InboxEvent, error: &str) -> Result<(), StoreError> {
        Err(StoreError::Other(format!("unexpected failure of {}: {error}", event.event_id)))
    }
    async fn park(&self, event: &ProcessorEvent, link: &str, _: DateTime<Utc>) -> Result<(), StoreError> {
        self.state.lock().unwrap().parked.push((link.to_owned(), event.clone()));
        Ok(())
    }
    async fn unpark(&self, processor: &ProcessorId, event_id: &EventId) -> Result<bool, StoreError> {
        let mut state = self.state.lock().unwrap();
        let before = state.parked.len();
        state.parked.retain(|(_, e)| !(&e.processor == processor && &e.id == event_id));
        Ok(state.parked.len() < before)
    }
    async fn parked_ready(&self, limit: u32) -> Result<Vec<ProcessorEvent>, StoreError> {
        let state = self.state.lock().unwrap();
        let ready = state.parked.iter().filter(|(link, e)| {
            let linked = |id: &str| state.customers.contains_key(&(e.processor.clone(), CustomerId::new(id)));
            let recorded = |id: &str| state.subscriptions.contains_key(&(e.processor.clone(), SubscriptionId::new(id)));
            link.strip_prefix("customer:").is_some_and(linked)
                || link.strip_prefix("subscription:").is_some_and(recorded)
        });
        Ok(ready.take(limit as usize).map(|(_, e)| e.clone()).collect())
    }
    async fn take_parked(&self, _: &ProcessorId, link: &str) -> Result<Vec<ProcessorEvent>, StoreError> {
        let mut state = self.state.lock().unwrap();
        let (taken, kept): (Vec<_>, Vec<_>) = state.parked.drain(..).partition(|(l, _)| l == link);
        state.parked = kept;
        Ok(taken.into_iter().map(|(_, e)| e).collect())
    }
    async fn count_by_status(&self, status: InboxStatus) -> Result<u64, StoreError> {
        Ok(self.state.lock().unwrap().inbox.values().filter(|(s, _)| *s == status).count() as u64)
    }
}

#[async_trait]
impl AuditLog for MemoryTx {
    async fn append(&self, record: &AuditRecord, _: DateTime<Utc>) -> Result<(), StoreError> {
        self.state.lock().unwrap().audit.push(record.clone());
        Ok(())
    }
    async fn list(&self, _: &WorkspaceId, _: u32, _: Option<i64>) -> Result<Vec<AuditEntry>, StoreError> {
        unused("audit list")
    }
}

#[async_trait]
impl Outbox for MemoryTx {
    async fn enqueue(&self, message: &OutboxMessage, _: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(self.state.lock().unwrap().outbox.insert(message.dedup_key.clone()))
    }
    async fn claim_due(&self, _: DateTime<Utc>, _: Lease, _: u32) -> Result<Vec<PendingMessage>, StoreError> {
        unused("claim_due")
    }
    async fn mark_delivered(&self, _: i64, _: DateTime<Utc>) -> Result<(), StoreError> {
        unused("mark_delivered")
    }
    async fn mark_failed(&self, _: i64, _: &str, _: Option<DateTime<Utc>>) -> Result<(), StoreError> {
        unused("mark_failed")
    }
    async fn list_messages(&self, _: OutboxStatus, _: u32, _: Option<i64>) -> Result<Vec<OutboxEntry>, StoreError> {
        unused("outbox list")
    }
    async fn get(&self, _: i64) -> Result<Option<OutboxEntry>, StoreError> {
        unused("outbox get")
    }
    async fn backlog(&self) -> Result<OutboxBacklog, StoreError> {
        unused("outbox backlog")
    }
    async fn retry(&self, _: i64, _: DateTime<Utc>) -> Result<bool, StoreError> {
        unused("outbox retry")
    }
}

/// Dunning cases as the webhook path and the dunning job write them.
#[async_trait]
impl DunningRepository for MemoryTx {
    async fn get_case(&self, id: i64) -> Result<Option<DunningCase>, StoreError> {
        Ok(self.state.lock().unwrap().dunning.get(&id).cloned())
    }
    async fn open_case(&self, workspace: &WorkspaceId) -> Result<Option<DunningCase>, StoreError> {
        let state = self.state.lock().unwrap();
        // Ids grow with insertion: the first open one is the oldest.
        Ok(state.dunning.values().find(|c| &c.workspace_id == workspace && c.status == CaseStatus::Open).cloned())
    }
    async fn latest_case(&self, workspace: &WorkspaceId) -> Result<Option<DunningCase>, StoreError> {
        let state = self.state.lock().unwrap();
        Ok(state.dunning.values().rev().find(|c| &c.workspace_id == workspace).cloned())
    }
    async fn case_for_invoice(&self, w: &WorkspaceId, i: &InvoiceId) -> Result<Option<DunningCase>, StoreError> {
        let state = self.state.lock().unwrap();
        Ok(state.dunning.values().find(|c| &c.workspace_id == w && &c.invoice_id == i).cloned())
    }
    async fn open(&self, case: &NewCase) -> Result<DunningCase, StoreError> {
        self.insert_case(case, CaseStatus::Open, None)
    }
    async fn insert_closed(&self, case: &NewCase, reason: CloseReason) -> Result<(), StoreError> {
        match self.insert_case(case, CaseStatus::Closed, Some(reason)) {
            Ok(_) | Err(StoreError::Duplicate(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }
    async fn close(&self, id: i64, reason: CloseReason, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut state = self.state.lock().unwrap();
        match state.dunning.get_mut(&id) {
            Some(case) if case.status == CaseStatus::Open => {
                case.status = CaseStatus::Closed;
                case.closed_reason = Some(reason);
                case.closed_at = Some(now);
                case.next_step_at = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn advance(&self, id: i64, from: u32, next_at: Option<DateTime<Utc>>) -> Result<bool, StoreError> {
        let mut state = self.state.lock().unwrap();
        match state.dunning.get_mut(&id) {
            Some(case) if case.status == CaseStatus::Open && case.next_step == from => {
                case.next_step = from + 1;
                case.next_step_at = next_at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn reschedule(&self, id: i64, step: u32, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut state = self.state.lock().unwrap();
        match state.dunning.get_mut(&id) {
            Some(case) if case.status == CaseStatus::Open && case.next_step == step => {
                case.next_step_at = Some(at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn adopt(
        &self,
        id: i64,
        next_step: u32,
        next_step_at: Option<DateTime<Utc>>,
        opened_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        let case = state.dunning.get_mut(&id).ok_or_else(|| StoreError::Other(format!("no dunning case {id}")))?;
        case.next_step = next_step;
        case.next_step_at = next_step_at;
        case.opened_at = opened_at;
        Ok(())
    }
    async fn due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<DunningCase>, StoreError> {
        let state = self.state.lock().unwrap();
        let mut due: Vec<DunningCase> = state
            .dunning
            .values()
            .filter(|c| c.status == CaseStatus::Open && c.next_step_at.is_some_and(|at| at <= now))
            .cloned()
            .collect();
        due.sort_by_key(|c| (c.next_step_at, c.id));
        due.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(due)
    }
}

impl MemoryTx {
    fn insert_case(
        &self,
        case: &NewCase,
        status: CaseStatus,
        reason: Option<CloseReason>,
    ) -> Result<DunningCase, StoreError> {
        let mut state = self.state.lock().unwrap();
        if state.dunning.values().any(|c| c.workspace_id == case.workspace_id && c.invoice_id == case.invoice_id) {
            return Err(StoreError::Duplicate(format!("a dunning case for invoice {}", case.invoice_id)));
        }
        let id = state.dunning.keys().next_back().map_or(1, |last| last + 1);
        let open = status == CaseStatus::Open;
        let stored = DunningCase {
            id,
            workspace_id: case.workspace_id.clone(),
            processor: case.processor.clone(),
            invoice_id: case.invoice_id.clone(),
            subscription_id: case.subscription_id.clone(),
            amount: case.amount.clone(),
            status,
            next_step: 0,
            next_step_at: case.first_step_at.filter(|_| open),
            opened_at: case.opened_at,
            closed_at: (!open).then_some(case.opened_at),
            closed_reason: reason,
        };
        state.dunning.insert(id, stored.clone());
        Ok(stored)
    }
}

/// Coupons are not part of the webhook path; this only proves the port is object-safe for adapters.
#[allow(dead_code)]
fn coupon_port_is_object_safe(_: &dyn CouponRepository, _: Coupon) {}

/// Only what a webhook writes: the observation merge.
#[async_trait]
impl PaymentRepository for MemoryTx {
    async fn get(&self, id: &PaymentId) -> Result<Option<Payment>, StoreError> {
        Ok(self.state.lock().unwrap().payments.get(id).cloned())
    }
    async fn observe(&self, observation: &PaymentObservation, now: DateTime<Utc>) -> Result<Payment, StoreError> {
        let mut state = self.state.lock().unwrap();
        let next = match state.payments.get(&observation.id) {
            Some(known) => known.merged(observation, now),
            None => Payment::from_observation(observation, now),
        };
        state.payments.insert(next.id.clone(), next.clone());
        Ok(next)
    }
    async fn list_for_workspace(
        &self,
        _: &WorkspaceId,
        _: u32,
        _: Option<PaymentId>,
    ) -> Result<Vec<Payment>, StoreError> {
        unused("list_for_workspace")
    }
    async fn reserve_refund(&self, _: &RefundRecord, _: DateTime<Utc>) -> Result<RefundReservation, StoreError> {
        unused("reserve_refund")
    }
    async fn settle_refund(&self, _: &RefundId, _: &RefundSettlement, _: DateTime<Utc>) -> Result<Payment, StoreError> {
        unused("settle_refund")
    }
    async fn refunds_of(&self, _: &PaymentId) -> Result<Vec<RefundRecord>, StoreError> {
        unused("refunds_of")
    }
    async fn pending_refunds(&self, _: DateTime<Utc>, _: u32) -> Result<Vec<RefundRecord>, StoreError> {
        unused("pending_refunds")
    }
}
