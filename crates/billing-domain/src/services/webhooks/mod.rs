//! The one inbox/apply path every processor's webhooks go through (SPEC §5 points 1–5 and 8): record the event,
//! lock its billing subject, decide, and write state, audit and outbox rows in one transaction; park what cannot
//! apply yet; apply parked events when their link appears, when they are redelivered, or when the sweep finds them.

mod batch;
pub(super) mod dunning;
mod scope;

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::catalog::Catalog;
use crate::error::StoreError;
use crate::events::{EventPayload, ProcessorEvent};
use crate::ids::{CustomerId, ProcessorId, WorkspaceId};
use crate::lifecycle::{Changes, CreditChange, Decision, DecisionError, Known, credits_changed, customer_link, decide};
use crate::ports::{BillingSubject, Clock, InboxEvent, InboxStatus, Recorded, Transaction, UnitOfWork};
use crate::records::Actor;
pub use batch::{BatchAnswers, Delivery};
use scope::Scope;

/// What happened to a delivered event. Every variant means it is durably recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Its effect was applied now (possibly none, for a stale observation).
    Applied,
    /// Seen before: nothing applied again.
    Duplicate,
    /// Waits for a link; applied when the link appears.
    Parked,
    /// A type Tollgate does not act on.
    Ignored,
    /// Recorded as failed for an operator (e.g. a price missing from the catalog); retrying will not help.
    Failed { reason: String },
}

impl IngestOutcome {
    /// The inbox status an event ends with after this outcome.
    fn inbox_status(&self) -> InboxStatus {
        match self {
            IngestOutcome::Parked => InboxStatus::Parked,
            IngestOutcome::Ignored => InboxStatus::Ignored,
            IngestOutcome::Failed { .. } => InboxStatus::Failed,
            IngestOutcome::Applied | IngestOutcome::Duplicate => InboxStatus::Processed,
        }
    }
}

/// Ingestion could not record the event; the processor must retry (5xx).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why applying stopped: a permanent decision error, or a store error (conflicts are retried).
enum ApplyError {
    Decision(String),
    Store(StoreError),
}

impl From<StoreError> for ApplyError {
    fn from(error: StoreError) -> Self {
        ApplyError::Store(error)
    }
}

impl From<DecisionError> for ApplyError {
    fn from(error: DecisionError) -> Self {
        ApplyError::Decision(error.to_string())
    }
}

/// Webhook ingestion.
pub struct WebhookService {
    uow: Arc<dyn UnitOfWork>,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
}

/// Parked events one sweep applies at most; the next sweep takes the rest.
pub const PARKED_SWEEP_BATCH: u32 = 500;

/// How often a compare-and-set conflict with a concurrent event is retried before answering 5xx.
const CONFLICT_RETRIES: usize = 5;

impl WebhookService {
    pub fn new(uow: Arc<dyn UnitOfWork>, catalog: Arc<Catalog>, clock: Arc<dyn Clock>) -> Self {
        Self { uow, catalog, clock }
    }

    /// Records `event` (its raw body `raw`) in the inbox and applies it exactly once. Returns only after commit.
    /// A redelivery of a parked event tries again: its link may exist by now.
    pub async fn ingest(&self, event: &ProcessorEvent, raw: &str) -> Result<IngestOutcome, IngestError> {
        self.ingest_delivered(event, raw, None).await
    }

    /// [`Self::ingest`] of a delivery made by request `request_id`: the audit entries and outbox messages it
    /// causes carry that id.
    pub async fn ingest_delivered(
        &self,
        event: &ProcessorEvent,
        raw: &str,
        request_id: Option<&str>,
    ) -> Result<IngestOutcome, IngestError> {
        let delivery = InboxEvent {
            processor: event.processor.clone(),
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            payload: raw.to_owned(),
            received_at: self.clock.now(),
        };
        Ok(self.settle(event, Some(&delivery), request_id).await?)
    }

    /// Applies up to `limit` parked events whose link exists by now (parked by a transaction that raced the one
    /// creating the link, before that race was closed). Each is claimed and applied under its subject's lock in
    /// its own transaction, exactly like a redelivery, so nothing is applied twice and replicas may sweep at once.
    /// The caller logs the report.
    pub async fn sweep_parked(&self, limit: u32) -> Result<SweepReport, IngestError> {
        let ready = {
            let tx = self.uow.begin().await?;
            tx.inbox().parked_ready(limit).await?
        };
        let mut report =
            SweepReport { ready: u32::try_from(ready.len()).unwrap_or(u32::MAX), ..SweepReport::default() };
        for event in &ready {
            match self.settle(event, None, None).await {
                Ok(IngestOutcome::Applied | IngestOutcome::Ignored) => report.applied += 1,
                Ok(IngestOutcome::Failed { .. }) => report.failed += 1,
                Ok(IngestOutcome::Parked) => report.still_parked += 1,
                // Applied by a concurrent delivery or sweep between the listing and the claim.
                Ok(IngestOutcome::Duplicate) => {}
                // Still parked; the next sweep tries again. One event must not hold up the others.
                Err(StoreError::Conflict(_)) => report.still_parked += 1,
                Err(error) => return Err(error.into()),
            }
        }
        Ok(report)
    }

    /// One event to a final inbox status, retrying conflicts: a delivery (recorded first), or a parked event being
    /// retried (`delivery` = None, by the sweep).
    async fn settle(
        &self,
        event: &ProcessorEvent,
        delivery: Option<&InboxEvent>,
        cause: Option<&str>,
    ) -> Result<IngestOutcome, StoreError> {
        let mut last_conflict = None;
        let mut attempt = Attempt::Parked;
        for _ in 0..CONFLICT_RETRIES {
            let tx = self.uow.begin().await?;
            // The subject's lock comes before the inbox row: a group commit reads the inbox under the same lock and
            // writes its new rows at the end, so recording first could leave each waiting for the other.
            let mut scope = Scope::single();
            scope.set_cause(cause);
            lock_subject(tx.as_ref(), &mut scope, event).await?;
            if let Some(delivery) = delivery {
                attempt = match tx.inbox().record(delivery).await? {
                    Recorded::New => Attempt::First,
                    Recorded::Seen { status: InboxStatus::Failed, attempts } => {
                        if !tx.inbox().claim_retry(&event.processor, &event.id, attempts).await? {
                            return Ok(IngestOutcome::Duplicate);
                        }
                        Attempt::First
                    }
                    Recorded::Seen { status: InboxStatus::Parked, .. } => Attempt::Parked,
                    Recorded::Seen { .. } => return Ok(IngestOutcome::Duplicate),
                };
            }
            match self.apply_in(tx.as_ref(), &mut scope, event, attempt).await {
                Ok(outcome) => {
                    if outcome != IngestOutcome::Duplicate {
                        tx.inbox()
                            .set_status(&event.processor, &event.id, outcome.inbox_status(), None, self.clock.now())
                            .await?;
                    }
                    tx.commit().await?;
                    return Ok(outcome);
                }
                Err(ApplyError::Store(StoreError::Conflict(what) | StoreError::Duplicate(what))) => {
                    // A concurrent transaction changed the same rows; this one rolls back on drop. Go again.
                    last_conflict = Some(what);
                }
                Err(ApplyError::Decision(reason)) => {
                    drop(tx);
                    self.record_failure(event, delivery, attempt, &reason).await?;
                    return Ok(IngestOutcome::Failed { reason });
                }
                Err(ApplyError::Store(error)) => {
                    drop(tx);
                    // Best effort: keep the raw event as failed so nothing is lost; the 5xx makes the processor
                    // retry. A parked event stays parked instead: its parked row is what gets it applied later.
                    if let (Some(delivery), Attempt::First) = (delivery, attempt) {
                        let _ = self.record_failure(event, Some(delivery), attempt, &error.to_string()).await;
                    }
                    return Err(error);
                }
            }
        }
        let reason =
            format!("still conflicting after {CONFLICT_RETRIES} attempts: {}", last_conflict.unwrap_or_default());
        if let (Some(delivery), Attempt::First) = (delivery, attempt) {
            let _ = self.record_failure(event, Some(delivery), attempt, &reason).await;
        }
        Err(StoreError::Conflict(reason))
    }

    /// Records a permanent failure for an operator. A parked event is unparked in the same transaction, so it is
    /// either failed (and retried by a redelivery) or parked, never both — both would apply it twice.
    async fn record_failure(
        &self,
        event: &ProcessorEvent,
        delivery: Option<&InboxEvent>,
        attempt: Attempt,
        reason: &str,
    ) -> Result<(), StoreError> {
        let tx = self.uow.begin().await?;
        // Under the subject's lock like every other write of the event's inbox row (a group commit relies on it).
        lock_subject(tx.as_ref(), &mut Scope::single(), event).await?;
        if attempt == Attempt::Parked && !tx.inbox().unpark(&event.processor, &event.id).await? {
            return Ok(()); // another transaction applied it meanwhile
        }
        match delivery {
            Some(delivery) => tx.inbox().record_failure(delivery, reason).await?,
            None => {
                tx.inbox()
                    .set_status(&event.processor, &event.id, InboxStatus::Failed, Some(reason.into()), self.clock.now())
                    .await?
            }
        }
        tx.commit().await
    }

    /// Applies `event` in `tx` under its subject's lock, then every parked event whose link this created. For a
    /// parked event, the claim on its parked rows comes first: `Duplicate` when another transaction applied it.
    async fn apply_in(
        &self,
        tx: &dyn Transaction,
        scope: &mut Scope,
        event: &ProcessorEvent,
        attempt: Attempt,
    ) -> Result<IngestOutcome, ApplyError> {
        lock_subject(tx, scope, event).await?;
        if attempt == Attempt::Parked && !tx.inbox().unpark(&event.processor, &event.id).await? {
            return Ok(IngestOutcome::Duplicate);
        }
        let now = self.clock.now();
        let (outcome, links) = self.apply_one(tx, scope, event, now).await?;
        self.release_parked(tx, scope, &event.processor, subject_customer(&event.payload), links, now).await?;
        Ok(outcome)
    }

    /// Applies, in `tx`, every event parked under `links` (links just created), and under the links those create.
    /// `locked` is the customer whose lock `tx` holds: every link created here is that customer's or one of its
    /// subscriptions'. A parked event naming another customer is recorded as failed rather than locking that
    /// customer after a workspace (which would break the lock order and could deadlock).
    async fn release_parked(
        &self,
        tx: &dyn Transaction,
        scope: &mut Scope,
        processor: &ProcessorId,
        locked: Option<&CustomerId>,
        links: Vec<String>,
        now: DateTime<Utc>,
    ) -> Result<(), ApplyError> {
        let mut queue: VecDeque<String> = links.into();
        while let Some(link) = queue.pop_front() {
            for parked in scope.take_parked(tx, processor, &link).await? {
                let named = subject_customer(&parked.payload);
                if named != locked {
                    let reason = format!(
                        "parked under {link} but names customer {}, not {}",
                        named.map_or("none", CustomerId::as_str),
                        locked.map_or("none", CustomerId::as_str)
                    );
                    scope.status(tx, &parked.processor, &parked.id, InboxStatus::Failed, Some(reason), now).await?;
                    continue;
                }
                let status = match self.apply_one(tx, scope, &parked, now).await {
                    Ok((parked_outcome, new_links)) => {
                        queue.extend(new_links);
                        (parked_outcome.inbox_status(), None)
                    }
                    // It fails alone (decisions write nothing before they fail); the event that created its link
                    // still applies.
                    Err(ApplyError::Decision(reason)) => (InboxStatus::Failed, Some(reason)),
                    Err(store) => return Err(store),
                };
                scope.status(tx, &parked.processor, &parked.id, status.0, status.1, now).await?;
            }
        }
        Ok(())
    }

    /// Links a processor customer to a workspace outside a webhook (a checkout finding or creating the customer),
    /// under the customer's and then the workspace's lock, and applies the events parked under the new link in the
    /// same transaction — an event of the customer that arrived just before the link must not wait for the sweep.
    /// `Ok(false)` when the pair was linked already; `Duplicate` when either side is linked to another.
    pub async fn link_customer(
        &self,
        processor: &ProcessorId,
        customer: &CustomerId,
        workspace: &WorkspaceId,
    ) -> Result<bool, IngestError> {
        let mut last_conflict = None;
        for _ in 0..CONFLICT_RETRIES {
            let tx = self.uow.begin().await?;
            let now = self.clock.now();
            let linked = async {
                tx.lock(&BillingSubject::Customer { processor: processor.clone(), customer: customer.clone() }).await?;
                tx.lock(&BillingSubject::Workspace(workspace.clone())).await?;
                tx.workspaces().link_customer(processor, customer, workspace, now).await
            };
            match linked.await {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(StoreError::Conflict(what)) => {
                    last_conflict = Some(what);
                    continue;
                }
                Err(other) => return Err(other.into()),
            }
            let mut scope = Scope::single();
            let links = vec![customer_link(customer)];
            let released = self.release_parked(tx.as_ref(), &mut scope, processor, Some(customer), links, now).await;
            match released {
                Ok(()) => {
                    tx.commit().await?;
                    return Ok(true);
                }
                Err(ApplyError::Store(StoreError::Conflict(what) | StoreError::Duplicate(what))) => {
                    last_conflict = Some(what);
                }
                Err(ApplyError::Store(error)) => return Err(error.into()),
                // Parked events that cannot apply are marked failed inside `release_parked`; none reaches here.
                Err(ApplyError::Decision(reason)) => return Err(StoreError::Other(reason).into()),
            }
        }
        Err(StoreError::Conflict(last_conflict.unwrap_or_default()).into())
    }

    /// Decides one event against the state in `tx` and writes the decision. Returns the links it created.
    async fn apply_one(
        &self,
        tx: &dyn Transaction,
        scope: &mut Scope,
        event: &ProcessorEvent,
        now: DateTime<Utc>,
    ) -> Result<(IngestOutcome, Vec<String>), ApplyError> {
        let workspace = match event.payload.customer_id() {
            Some(customer) => scope.workspace_of_customer(tx, &event.processor, customer).await?,
            None => None,
        };
        // The workspace's own lock, after its customer's: API writes of the workspace take only this one.
        if let Some(workspace) = workspace.as_ref().or(named_workspace(&event.payload)) {
            scope.lock(tx, &BillingSubject::Workspace(workspace.clone())).await?;
        }
        let subscription = match event.payload.subscription_id() {
            Some(id) => scope.subscription(tx, &event.processor, id).await?,
            None => None,
        };
        if let EventPayload::CheckoutCompleted { workspace_id, .. } | EventPayload::CheckoutFailed { workspace_id, .. } =
            &event.payload
            && tx.workspaces().get(workspace_id).await?.is_none()
        {
            return Err(ApplyError::Decision(format!("workspace `{workspace_id}` does not exist")));
        }
        let known =
            Known { catalog: &self.catalog, workspace: workspace.as_ref(), subscription: subscription.as_ref() };
        match decide(event, known)? {
            Decision::Ignore => Ok((IngestOutcome::Ignored, Vec::new())),
            Decision::Park { link } => {
                scope.park(tx, event, &link, now).await?;
                Ok((IngestOutcome::Parked, Vec::new()))
            }
            Decision::Apply(changes) => {
                let links = changes.links_created();
                let actor = Actor::Webhook { processor: event.processor.clone(), event_id: event.id.clone() };
                write(tx, scope, &event.processor, &changes, &actor, now).await?;
                Ok((IngestOutcome::Applied, links))
            }
        }
    }
}

/// Whether an event is delivered for the first time (or retried after a failure) or was parked before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    First,
    Parked,
}

/// What one sweep of parked events did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Parked events whose link existed.
    pub ready: u32,
    /// Those applied now.
    pub applied: u32,
    /// Those that cannot apply as sent, now recorded as failed for an operator.
    pub failed: u32,
    /// Those that could not apply yet (they stay parked).
    pub still_parked: u32,
}

/// The subject an event serializes on, before anything is read: its customer — the link every other event of
/// that customer, and the checkout creating the link, read or write — or, for a checkout outcome without a
/// customer, its workspace.
async fn lock_subject(tx: &dyn Transaction, scope: &mut Scope, event: &ProcessorEvent) -> Result<(), StoreError> {
    match subject_of(event) {
        Some(subject) => scope.lock(tx, &subject).await,
        None => Ok(()),
    }
}

/// The subject an event serializes on first (see [`lock_subject`]); `None` for an event that touches no billing
/// state. A group commit routes events with one subject to one lane, so they share a transaction instead of
/// waiting for each other's.
pub fn subject_of(event: &ProcessorEvent) -> Option<BillingSubject> {
    if let Some(customer) = subject_customer(&event.payload) {
        return Some(BillingSubject::Customer { processor: event.processor.clone(), customer: customer.clone() });
    }
    named_workspace(&event.payload).map(|workspace| BillingSubject::Workspace(workspace.clone()))
}

/// The customer an event serializes on: the one it names, or, for a checkout, the one it links — the link must
/// meet every event of its customer.
fn subject_customer(payload: &EventPayload) -> Option<&CustomerId> {
    match payload {
        EventPayload::CheckoutCompleted { customer_id, .. } => Some(customer_id),
        payload => payload.customer_id(),
    }
}

/// The workspace a checkout outcome names in its own payload.
fn named_workspace(payload: &EventPayload) -> Option<&WorkspaceId> {
    match payload {
        EventPayload::CheckoutCompleted { workspace_id, .. } | EventPayload::CheckoutFailed { workspace_id, .. } => {
            Some(workspace_id)
        }
        _ => None,
    }
}

/// Writes a decision's changes. Conflicts surface as `StoreError::Conflict`/`Duplicate` for the caller to retry.
async fn write(
    tx: &dyn Transaction,
    scope: &mut Scope,
    processor: &ProcessorId,
    changes: &Changes,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), ApplyError> {
    if let Some((customer, workspace)) = &changes.link_customer {
        scope.forget_link(processor, customer);
        match tx.workspaces().link_customer(processor, customer, workspace, now).await {
            Ok(_) => {}
            Err(StoreError::Duplicate(what)) => {
                return Err(ApplyError::Decision(format!("customer {customer} is linked elsewhere: {what}")));
            }
            Err(other) => return Err(other.into()),
        }
    }
    if let Some(change) = &changes.subscription {
        scope.forget_subscription(processor, &change.after.id);
        match &change.before {
            None => tx.subscriptions().insert(&change.after, now).await?,
            Some(before) => tx.subscriptions().update(&change.after, before.version, now).await?,
        }
    }
    if let Some(grant) = &changes.credit_grant
        && tx.workspaces().grant_credits(&grant.workspace_id, grant.amount, &grant.key, now).await?
    {
        let balance = tx.workspaces().get(&grant.workspace_id).await?.map_or(grant.amount, |w| w.credit_balance);
        let announced =
            credits_changed(&grant.workspace_id, &grant.key, grant.amount, balance, CreditChange::Purchased);
        scope.outbox(tx, &announced, now).await?;
    }
    if let Some(payment) = &changes.payment {
        tx.payments().observe(payment, now).await?;
    }
    if let Some(signal) = &changes.dunning {
        dunning::apply(tx, scope, processor, signal, actor, now).await?;
    }
    for record in &changes.audit {
        scope.audit(tx, record, now).await?;
    }
    for message in &changes.outbox {
        scope.outbox(tx, message, now).await?;
    }
    Ok(())
}
