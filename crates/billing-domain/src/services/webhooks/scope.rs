//! `Scope`: what one transaction of webhook work carries from event to event — the subjects it holds locks on,
//! rows read ahead under those locks, and, in a group commit, the append-only writes that wait for one multi-row
//! statement each at the end. A transaction of one event uses it too (locks held are not taken twice); it then
//! writes at once and reads nothing ahead.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::events::ProcessorEvent;
use crate::ids::{CustomerId, EventId, ProcessorId, SubscriptionId, WorkspaceId};
use crate::ports::{BillingSubject, InboxEvent, InboxStatus, SettledEvent, StatusUpdate, Transaction};
use crate::records::{AuditRecord, OutboxMessage};
use crate::subscription::Subscription;

#[derive(Debug, Default)]
pub(super) struct Scope {
    /// Keys of the subjects this transaction has locked.
    held: BTreeSet<String>,
    /// Customer links and subscriptions read ahead, `None` when absent. Valid because they were read after the
    /// locks every writer of them takes; a write here forgets its entry, so the next read sees the database.
    links: BTreeMap<(ProcessorId, CustomerId), Option<WorkspaceId>>,
    subscriptions: BTreeMap<(ProcessorId, SubscriptionId), Option<Subscription>>,
    /// `Some` in a group commit: rows written by `flush`, in one statement per table.
    deferred: Option<Deferred>,
    /// The request delivering the event being applied (`X-Request-Id`): stamped on the audit entries and outbox
    /// messages it causes, so a delivered webhook or email traces back to the delivery behind it.
    cause: Option<String>,
}

#[derive(Debug, Default)]
struct Deferred {
    /// Events seen for the first time, written once with the status they settle on.
    new: Vec<SettledEvent>,
    new_index: BTreeMap<(ProcessorId, EventId), usize>,
    /// Events parked in this batch, inserted by `flush` unless a link created later in the batch took them, and
    /// the order they were taken in (so a rollback to a savepoint can put them back).
    parked: Vec<Parked>,
    taken: Vec<usize>,
    audit: Vec<(AuditRecord, DateTime<Utc>)>,
    outbox: Vec<(OutboxMessage, DateTime<Utc>)>,
    /// Status changes of events recorded before this transaction.
    statuses: Vec<StatusUpdate>,
}

/// What [`Scope::restore`] returns to when an event's savepoint is rolled back.
#[derive(Debug)]
struct Parked {
    event: ProcessorEvent,
    link: String,
    at: DateTime<Utc>,
    taken: bool,
}

/// Rows read ahead need no mark: events only forget them, and a forgotten row is merely read again.
pub(super) struct Mark {
    held: BTreeSet<String>,
    deferred: (usize, usize, usize),
    parked: (usize, usize),
    new_statuses: Vec<(InboxStatus, Option<String>)>,
}

impl Scope {
    /// A transaction of one event: every write goes out at once.
    pub fn single() -> Self {
        Self::default()
    }

    /// A group commit's shared transaction: append-only rows wait for [`Scope::flush`].
    pub fn batch() -> Self {
        Self { deferred: Some(Deferred::default()), ..Self::default() }
    }

    /// Locks `subject` unless this transaction holds it already.
    pub async fn lock(&mut self, tx: &dyn Transaction, subject: &BillingSubject) -> Result<(), StoreError> {
        if self.held.insert(subject.key()) {
            tx.lock(subject).await?;
        }
        Ok(())
    }

    /// Locks the subjects not held yet, in one call, ordered by key.
    pub async fn lock_all(&mut self, tx: &dyn Transaction, subjects: Vec<BillingSubject>) -> Result<(), StoreError> {
        let mut fresh: Vec<(String, BillingSubject)> =
            subjects.into_iter().map(|s| (s.key(), s)).filter(|(key, _)| !self.held.contains(key)).collect();
        fresh.sort_by(|a, b| a.0.cmp(&b.0));
        fresh.dedup_by(|a, b| a.0 == b.0);
        if fresh.is_empty() {
            return Ok(());
        }
        let subjects: Vec<BillingSubject> = fresh.iter().map(|(_, s)| s.clone()).collect();
        tx.lock_all(&subjects).await?;
        self.held.extend(fresh.into_iter().map(|(key, _)| key));
        Ok(())
    }

    /// Reads the links of `customers` and the `subscriptions` of `processor` in two statements. Call it only
    /// after locking those customers: every writer of these rows holds that lock.
    pub async fn read_ahead(
        &mut self,
        tx: &dyn Transaction,
        processor: &ProcessorId,
        customers: &[CustomerId],
        subscriptions: &[SubscriptionId],
    ) -> Result<(), StoreError> {
        if !customers.is_empty() {
            let linked = tx.workspaces().workspaces_of_customers(processor, customers).await?;
            for customer in customers {
                self.links.insert((processor.clone(), customer.clone()), linked.get(customer).cloned());
            }
        }
        if !subscriptions.is_empty() {
            let mut found = tx.subscriptions().get_many(processor, subscriptions).await?;
            for id in subscriptions {
                self.subscriptions.insert((processor.clone(), id.clone()), found.remove(id));
            }
        }
        Ok(())
    }

    pub async fn workspace_of_customer(
        &self,
        tx: &dyn Transaction,
        processor: &ProcessorId,
        customer: &CustomerId,
    ) -> Result<Option<WorkspaceId>, StoreError> {
        match self.links.get(&(processor.clone(), customer.clone())) {
            Some(known) => Ok(known.clone()),
            None => tx.workspaces().workspace_of_customer(processor, customer).await,
        }
    }

    pub async fn subscription(
        &self,
        tx: &dyn Transaction,
        processor: &ProcessorId,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError> {
        match self.subscriptions.get(&(processor.clone(), id.clone())) {
            Some(known) => Ok(known.clone()),
            None => tx.subscriptions().get(processor, id).await,
        }
    }

    /// A customer's link is being written: later reads go to the database.
    pub fn forget_link(&mut self, processor: &ProcessorId, customer: &CustomerId) {
        self.links.remove(&(processor.clone(), customer.clone()));
    }

    /// A subscription is being written: later reads go to the database (which holds what was stored, e.g. its
    /// timestamps at the column's precision, rather than what was sent).
    pub fn forget_subscription(&mut self, processor: &ProcessorId, id: &SubscriptionId) {
        self.subscriptions.remove(&(processor.clone(), id.clone()));
    }

    /// Parks `event` under `link`: at once in a single event's transaction, at `flush` in a batch.
    pub async fn park(
        &mut self,
        tx: &dyn Transaction,
        event: &ProcessorEvent,
        link: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match &mut self.deferred {
            Some(deferred) => {
                deferred.parked.push(Parked { event: event.clone(), link: link.to_owned(), at: now, taken: false })
            }
            None => tx.inbox().park(event, link, now).await?,
        }
        Ok(())
    }

    /// Takes the events parked under `link`, oldest first: those committed before (from the database), then those
    /// parked earlier in this batch.
    pub async fn take_parked(
        &mut self,
        tx: &dyn Transaction,
        processor: &ProcessorId,
        link: &str,
    ) -> Result<Vec<ProcessorEvent>, StoreError> {
        let mut taken = tx.inbox().take_parked(processor, link).await?;
        if let Some(deferred) = &mut self.deferred {
            for (i, parked) in deferred.parked.iter_mut().enumerate() {
                if !parked.taken && &parked.event.processor == processor && parked.link == link {
                    parked.taken = true;
                    deferred.taken.push(i);
                    taken.push(parked.event.clone());
                }
            }
        }
        Ok(taken)
    }

    /// The request whose event is applied next (`None`: a sweep, not a delivery).
    pub fn set_cause(&mut self, request_id: Option<&str>) {
        self.cause = request_id.map(str::to_owned);
    }

    pub async fn audit(
        &mut self,
        tx: &dyn Transaction,
        record: &AuditRecord,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut record = record.clone();
        record.request_id = record.request_id.or_else(|| self.cause.clone());
        match &mut self.deferred {
            Some(deferred) => deferred.audit.push((record, at)),
            None => tx.audit().append(&record, at).await?,
        }
        Ok(())
    }

    pub async fn outbox(
        &mut self,
        tx: &dyn Transaction,
        message: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut message = message.clone();
        message.request_id = message.request_id.or_else(|| self.cause.clone());
        match &mut self.deferred {
            Some(deferred) => deferred.outbox.push((message, now)),
            None => {
                tx.outbox().enqueue(&message, now).await?;
            }
        }
        Ok(())
    }

    /// A group commit's event seen for the first time: its inbox row is written by `flush`, with the status
    /// the event settles on.
    pub fn record_new(&mut self, event: InboxEvent) {
        if let Some(deferred) = &mut self.deferred {
            let key = (event.processor.clone(), event.event_id.clone());
            deferred.new_index.insert(key, deferred.new.len());
            deferred.new.push(SettledEvent { event, status: InboxStatus::Received, error: None });
        }
    }

    pub async fn status(
        &mut self,
        tx: &dyn Transaction,
        processor: &ProcessorId,
        event_id: &EventId,
        status: InboxStatus,
        error: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let pending = self.deferred.as_mut().and_then(|d| {
            let i = *d.new_index.get(&(processor.clone(), event_id.clone()))?;
            d.new.get_mut(i)
        });
        if let Some(new) = pending {
            new.status = status;
            new.error = error;
            return Ok(());
        }
        match &mut self.deferred {
            Some(deferred) => deferred.statuses.push(StatusUpdate {
                processor: processor.clone(),
                event_id: event_id.clone(),
                status,
                error,
            }),
            None => tx.inbox().set_status(processor, event_id, status, error, now).await?,
        }
        Ok(())
    }

    /// Writes what waited, one statement per kind of row. A no-op for a single event's transaction. `Conflict`
    /// when another transaction recorded one of the new events first (what was applied for it must not commit).
    pub async fn flush(&mut self, tx: &dyn Transaction, now: DateTime<Utc>) -> Result<(), StoreError> {
        let Some(deferred) = &mut self.deferred else { return Ok(()) };
        if let Some(unsettled) = deferred.new.iter().find(|n| n.status == InboxStatus::Received) {
            // Committed as `received`, a redelivery would take it for one being applied and drop it.
            return Err(StoreError::Other(format!("event {} did not settle", unsettled.event.event_id)));
        }
        if !deferred.new.is_empty() {
            // In key order, so two batches recording overlapping events (ones no lock orders: those without a
            // subject) wait for each other in one direction only.
            let mut new = std::mem::take(&mut deferred.new);
            deferred.new_index.clear();
            new.sort_by(|a, b| (&a.event.processor, &a.event.event_id).cmp(&(&b.event.processor, &b.event.event_id)));
            let inserted = tx.inbox().record_settled(&new, now).await?;
            if let Some((lost, _)) = new.iter().zip(inserted).find(|(_, inserted)| !inserted) {
                return Err(StoreError::Conflict(format!("event {} was recorded meanwhile", lost.event.event_id)));
            }
        }
        let parked: Vec<_> = std::mem::take(&mut deferred.parked)
            .into_iter()
            .filter(|p| !p.taken)
            .map(|p| (p.event, p.link, p.at))
            .collect();
        deferred.taken.clear();
        if !parked.is_empty() {
            tx.inbox().park_all(&parked).await?;
        }
        if !deferred.audit.is_empty() {
            tx.audit().append_all(&std::mem::take(&mut deferred.audit)).await?;
        }
        if !deferred.outbox.is_empty() {
            tx.outbox().enqueue_all(&std::mem::take(&mut deferred.outbox)).await?;
        }
        if !deferred.statuses.is_empty() {
            tx.inbox().set_statuses(&std::mem::take(&mut deferred.statuses), now).await?;
        }
        Ok(())
    }

    /// Where this scope stands, to return to if the event about to run is rolled back to its savepoint.
    pub fn mark(&self) -> Mark {
        let (lengths, parked, new_statuses) = match &self.deferred {
            Some(d) => (
                (d.audit.len(), d.outbox.len(), d.statuses.len()),
                (d.parked.len(), d.taken.len()),
                d.new.iter().map(|n| (n.status, n.error.clone())).collect(),
            ),
            None => ((0, 0, 0), (0, 0), Vec::new()),
        };
        Mark { held: self.held.clone(), deferred: lengths, parked, new_statuses }
    }

    /// Forgets what happened since `mark`: the locks taken (a rolled-back savepoint may have released them; taking
    /// one again is harmless) and the writes waiting for the flush.
    pub fn restore(&mut self, mark: Mark) {
        self.held = mark.held;
        if let Some(deferred) = &mut self.deferred {
            for (new, (status, error)) in deferred.new.iter_mut().zip(mark.new_statuses) {
                (new.status, new.error) = (status, error);
            }
            for i in deferred.taken.drain(mark.parked.1..) {
                deferred.parked[i].taken = false;
            }
            deferred.parked.truncate(mark.parked.0);
            deferred.audit.truncate(mark.deferred.0);
            deferred.outbox.truncate(mark.deferred.1);
            deferred.statuses.truncate(mark.deferred.2);
        }
    }
}
