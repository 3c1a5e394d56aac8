//! Group commit (SPEC §11): several concurrent deliveries in one transaction, so they share its statements and
//! its commit. One durable transaction per event spends most of its time on round trips (about twelve statements
//! for one subscription update); a batch takes every lock it needs with two statements (customers, then
//! workspaces: the lock order of a single event), reads the links, subscriptions and inbox rows of all its events
//! with three more, and writes audit, outbox and inbox rows with one statement each — a new event's inbox row once,
//! with the status it settled on, instead of inserted and then updated. What is left per event is its savepoint
//! and its own state writes.
//!
//! Each event runs behind a savepoint: if one fails, only its writes are rolled back and its neighbours commit.
//! An event that failed for a reason that may pass (a conflict, a storage error) is recorded `failed` in the batch —
//! so a crash before it is retried leaves it retriable by the processor's redelivery — and then retried on its
//! own, exactly as a single delivery, after the batch commits. If the batch itself cannot commit (or another
//! transaction recorded one of its new events first), every event is retried on its own. Either way an answer
//! leaves only after the commit that made its event durable.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::StoreError;
use crate::events::ProcessorEvent;
use crate::ids::{CustomerId, EventId, ProcessorId, SubscriptionId};
use crate::ports::{BillingSubject, InboxEvent, InboxStatus, Seen, Transaction};

use super::scope::Scope;
use super::{ApplyError, Attempt, IngestError, IngestOutcome, WebhookService, named_workspace, subject_customer};

/// One verified delivery: the parsed event, its raw body, and the request that delivered it (`X-Request-Id`,
/// stamped on the audit entries and outbox messages it causes).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event: ProcessorEvent,
    pub raw: String,
    pub request_id: Option<String>,
}

/// What [`WebhookService::ingest_batch`] answers.
#[derive(Debug)]
pub struct BatchAnswers {
    /// One answer per delivery, in their order.
    pub answers: Vec<Result<IngestOutcome, IngestError>>,
    /// Why the shared transaction did not commit, when it did not (every delivery was then ingested on its own):
    /// worth a log line, as batches that keep failing cost one transaction per event.
    pub fell_back: Option<StoreError>,
}

/// How a delivery of the batch is settled: by the batch, or on its own after it.
enum Settled {
    Done(IngestOutcome),
    Alone,
}

impl WebhookService {
    /// Ingests `deliveries` together, answering each as [`WebhookService::ingest`] would, in their order. Every
    /// answer is given after the commit that made its event durable.
    pub async fn ingest_batch(&self, deliveries: &[Delivery]) -> BatchAnswers {
        let (settled, fell_back) = match deliveries.len() {
            0 | 1 => (None, None),
            _ => match self.try_batch(deliveries).await {
                Ok(settled) => (Some(settled), None),
                Err(error) => (None, Some(error)),
            },
        };
        let settled = settled.unwrap_or_else(|| deliveries.iter().map(|_| Settled::Alone).collect());
        let mut answers = Vec::with_capacity(deliveries.len());
        for (delivery, settled) in deliveries.iter().zip(settled) {
            answers.push(match settled {
                Settled::Done(outcome) => Ok(outcome),
                Settled::Alone => {
                    self.ingest_delivered(&delivery.event, &delivery.raw, delivery.request_id.as_deref()).await
                }
            });
        }
        BatchAnswers { answers, fell_back }
    }

    /// The shared transaction. `Err` when it did not commit (nothing of it is durable, or the commit's outcome is
    /// unknown — the individual retries then find what it did).
    async fn try_batch(&self, deliveries: &[Delivery]) -> Result<Vec<Settled>, StoreError> {
        let tx = self.uow.begin().await?;
        let settled = self.settle_in_batch(tx.as_ref(), deliveries).await?;
        tx.commit().await?;
        Ok(settled)
    }

    /// Locks, reads the inbox and what the events need, applies each event behind its savepoint, and writes the
    /// deferred rows — the inbox rows of new events once, with the status they settled on.
    async fn settle_in_batch(&self, tx: &dyn Transaction, deliveries: &[Delivery]) -> Result<Vec<Settled>, StoreError> {
        let mut settled: Vec<Settled> = deliveries.iter().map(|_| Settled::Alone).collect();
        // Only the first copy of an event joins; a second copy is answered on its own afterwards, from what the
        // first one left (so it is never told "duplicate" about a copy that did not apply).
        let mut firsts: BTreeMap<(ProcessorId, EventId), usize> = BTreeMap::new();
        for (i, delivery) in deliveries.iter().enumerate() {
            firsts.entry((delivery.event.processor.clone(), delivery.event.id.clone())).or_insert(i);
        }
        let mut arrivals: Vec<usize> = firsts.values().copied().collect();
        arrivals.sort_unstable();

        // Locks before the inbox is read: every transaction that records an event of a subject holds its lock, so
        // none can record one of these meanwhile.
        let mut scope = Scope::batch();
        lock_customers(tx, &mut scope, arrivals.iter().map(|&i| &deliveries[i].event)).await?;
        let keys: Vec<(ProcessorId, EventId)> = firsts.keys().cloned().collect();
        let seen = tx.inbox().seen_many(&keys).await?;
        let received_at = self.clock.now();
        let mut attempts: Vec<Option<Attempt>> = vec![None; deliveries.len()];
        for &i in &arrivals {
            let (event, raw) = (&deliveries[i].event, &deliveries[i].raw);
            attempts[i] = match seen.get(&(event.processor.clone(), event.id.clone())) {
                None => {
                    scope.record_new(InboxEvent {
                        processor: event.processor.clone(),
                        event_id: event.id.clone(),
                        event_type: event.event_type.clone(),
                        payload: raw.clone(),
                        received_at,
                    });
                    Some(Attempt::First)
                }
                Some(Seen { status: InboxStatus::Failed, attempts }) => {
                    if tx.inbox().claim_retry(&event.processor, &event.id, *attempts).await? {
                        Some(Attempt::First)
                    } else {
                        settled[i] = Settled::Done(IngestOutcome::Duplicate);
                        None
                    }
                }
                Some(Seen { status: InboxStatus::Parked, .. }) => Some(Attempt::Parked),
                Some(_) => {
                    settled[i] = Settled::Done(IngestOutcome::Duplicate);
                    None
                }
            };
        }
        let applying: Vec<usize> = (0..deliveries.len()).filter(|&i| attempts[i].is_some()).collect();
        lock_workspaces(tx, &mut scope, applying.iter().map(|&i| &deliveries[i].event)).await?;

        for &i in &applying {
            let (event, attempt) = (&deliveries[i].event, attempts[i].unwrap_or(Attempt::First));
            tx.savepoint().await?;
            let mark = scope.mark();
            scope.set_cause(deliveries[i].request_id.as_deref());
            match self.apply_in(tx, &mut scope, event, attempt).await {
                Ok(outcome) => {
                    if outcome != IngestOutcome::Duplicate {
                        scope
                            .status(tx, &event.processor, &event.id, outcome.inbox_status(), None, self.clock.now())
                            .await?;
                    }
                    settled[i] = Settled::Done(outcome);
                }
                Err(error) => {
                    tx.rollback_to_savepoint().await?;
                    scope.restore(mark);
                    settled[i] = match (error, attempt) {
                        (ApplyError::Decision(reason), Attempt::First) => {
                            let failed = Some(reason.clone());
                            scope
                                .status(tx, &event.processor, &event.id, InboxStatus::Failed, failed, self.clock.now())
                                .await?;
                            Settled::Done(IngestOutcome::Failed { reason })
                        }
                        (ApplyError::Store(error), Attempt::First) => {
                            let failed = Some(format!("retried on its own after: {error}"));
                            scope
                                .status(tx, &event.processor, &event.id, InboxStatus::Failed, failed, self.clock.now())
                                .await?;
                            Settled::Alone
                        }
                        // Its parked row is back in place; on its own it is claimed, applied or failed as usual.
                        (_, Attempt::Parked) => Settled::Alone,
                    };
                }
            }
        }
        scope.flush(tx, self.clock.now()).await?;
        Ok(settled)
    }
}

/// Takes the customers' locks of the batch's events (one statement), then reads their links and subscriptions
/// under them. With [`lock_workspaces`] after it, the same order as a single event's — customers before
/// workspaces, each set sorted — so batches, single events and API writes never wait on each other in a cycle.
async fn lock_customers<'a>(
    tx: &dyn Transaction,
    scope: &mut Scope,
    events: impl Iterator<Item = &'a ProcessorEvent> + Clone,
) -> Result<(), StoreError> {
    let customers: BTreeSet<(&ProcessorId, &CustomerId)> =
        events.clone().filter_map(|e| subject_customer(&e.payload).map(|c| (&e.processor, c))).collect();
    let subjects = customers
        .iter()
        .map(|(processor, customer)| BillingSubject::Customer {
            processor: (*processor).clone(),
            customer: (*customer).clone(),
        })
        .collect();
    scope.lock_all(tx, subjects).await?;

    // What to read ahead, per processor: the customers' links and the subscriptions the events name.
    let mut wanted: BTreeMap<&ProcessorId, (BTreeSet<CustomerId>, BTreeSet<SubscriptionId>)> = BTreeMap::new();
    for event in events.clone() {
        let (customers, subscriptions) = wanted.entry(&event.processor).or_default();
        customers.extend(event.payload.customer_id().cloned());
        subscriptions.extend(event.payload.subscription_id().cloned());
    }
    for (processor, (customers, subscriptions)) in wanted {
        let (customers, subscriptions): (Vec<_>, Vec<_>) =
            (customers.into_iter().collect(), subscriptions.into_iter().collect());
        scope.read_ahead(tx, processor, &customers, &subscriptions).await?;
    }
    Ok(())
}

/// Takes the workspaces' locks of the events about to apply (duplicates change nothing, so they lock nothing —
/// a lock also announces a change), from the links read ahead, in one statement. A workspace only known later (a
/// link created in the batch) is locked by its event as usual.
async fn lock_workspaces<'a>(
    tx: &dyn Transaction,
    scope: &mut Scope,
    events: impl Iterator<Item = &'a ProcessorEvent>,
) -> Result<(), StoreError> {
    let mut workspaces = Vec::new();
    for event in events {
        if let Some(customer) = event.payload.customer_id()
            && let Some(workspace) = scope.workspace_of_customer(tx, &event.processor, customer).await?
        {
            workspaces.push(BillingSubject::Workspace(workspace));
        }
        if let Some(workspace) = named_workspace(&event.payload) {
            workspaces.push(BillingSubject::Workspace(workspace.clone()));
        }
    }
    scope.lock_all(tx, workspaces).await
}
