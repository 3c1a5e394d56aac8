//! The one inbox/apply path every processor's webhooks go through (SPEC §5 points 1–5): record the event, decide,
//! and write state, audit and outbox rows in one transaction; park what cannot apply yet; apply parked events when
//! their link appears.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::catalog::Catalog;
use crate::error::StoreError;
use crate::events::{EventPayload, ProcessorEvent};
use crate::ids::ProcessorId;
use crate::lifecycle::{Changes, Decision, DecisionError, Known, decide};
use crate::ports::{Clock, InboxEvent, InboxStatus, Recorded, Transaction, UnitOfWork};

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

/// How often a compare-and-set conflict with a concurrent event is retried before answering 5xx.
const CONFLICT_RETRIES: usize = 5;

impl WebhookService {
    pub fn new(uow: Arc<dyn UnitOfWork>, catalog: Arc<Catalog>, clock: Arc<dyn Clock>) -> Self {
        Self { uow, catalog, clock }
    }

    /// Records `event` (its raw body `raw`) in the inbox and applies it exactly once. Returns only after commit.
    pub async fn ingest(&self, event: &ProcessorEvent, raw: &str) -> Result<IngestOutcome, IngestError> {
        let inbox_event = InboxEvent {
            processor: event.processor.clone(),
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            payload: raw.to_owned(),
            received_at: self.clock.now(),
        };
        let mut last_conflict = None;
        for _ in 0..CONFLICT_RETRIES {
            let tx = self.uow.begin().await?;
            match tx.inbox().record(&inbox_event).await? {
                Recorded::New => {}
                Recorded::Seen { status: InboxStatus::Failed, attempts } => {
                    if !tx.inbox().claim_retry(&event.processor, &event.id, attempts).await? {
                        return Ok(IngestOutcome::Duplicate);
                    }
                }
                Recorded::Seen { .. } => return Ok(IngestOutcome::Duplicate),
            }
            match self.apply_with_parked(tx.as_ref(), event).await {
                Ok(outcome) => {
                    tx.inbox().set_status(&event.processor, &event.id, outcome.inbox_status(), None).await?;
                    tx.commit().await?;
                    return Ok(outcome);
                }
                Err(ApplyError::Store(StoreError::Conflict(what) | StoreError::Duplicate(what))) => {
                    // A concurrent event changed the same rows; the transaction rolls back on drop. Go again.
                    last_conflict = Some(what);
                }
                Err(ApplyError::Decision(reason)) => {
                    drop(tx);
                    self.record_failure(&inbox_event, &reason).await?;
                    return Ok(IngestOutcome::Failed { reason });
                }
                Err(ApplyError::Store(error)) => {
                    drop(tx);
                    // Best effort: keep the raw event as failed so nothing is lost; the 5xx makes the processor retry.
                    let _ = self.record_failure(&inbox_event, &error.to_string()).await;
                    return Err(error.into());
                }
            }
        }
        let reason =
            format!("still conflicting after {CONFLICT_RETRIES} attempts: {}", last_conflict.unwrap_or_default());
        let _ = self.record_failure(&inbox_event, &reason).await;
        Err(StoreError::Conflict(reason).into())
    }

    async fn record_failure(&self, event: &InboxEvent, reason: &str) -> Result<(), StoreError> {
        let tx = self.uow.begin().await?;
        tx.inbox().record_failure(event, reason).await?;
        tx.commit().await
    }

    /// Applies `event`, then every parked event whose link this created, all in `tx`.
    async fn apply_with_parked(
        &self,
        tx: &dyn Transaction,
        event: &ProcessorEvent,
    ) -> Result<IngestOutcome, ApplyError> {
        let now = self.clock.now();
        let (outcome, mut links) = self.apply_one(tx, event, now).await?;
        let mut queue: VecDeque<String> = links.drain(..).collect();
        while let Some(link) = queue.pop_front() {
            for parked in tx.inbox().take_parked(&event.processor, &link).await? {
                let (parked_outcome, new_links) = self.apply_one(tx, &parked, now).await?;
                tx.inbox().set_status(&parked.processor, &parked.id, parked_outcome.inbox_status(), None).await?;
                queue.extend(new_links);
            }
        }
        Ok(outcome)
    }

    /// Decides one event against the state in `tx` and writes the decision. Returns the links it created.
    async fn apply_one(
        &self,
        tx: &dyn Transaction,
        event: &ProcessorEvent,
        now: DateTime<Utc>,
    ) -> Result<(IngestOutcome, Vec<String>), ApplyError> {
        let workspace = match event.payload.customer_id() {
            Some(customer) => tx.workspaces().workspace_of_customer(&event.processor, customer).await?,
            None => None,
        };
        let subscription = match event.payload.subscription_id() {
            Some(id) => tx.subscriptions().get(&event.processor, id).await?,
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
                tx.inbox().park(event, &link, now).await?;
                Ok((IngestOutcome::Parked, Vec::new()))
            }
            Decision::Apply(changes) => {
                let links = changes.links_created();
                write(tx, &event.processor, &changes, now).await?;
                Ok((IngestOutcome::Applied, links))
            }
        }
    }
}

/// Writes a decision's changes. Conflicts surface as `StoreError::Conflict`/`Duplicate` for the caller to retry.
async fn write(
    tx: &dyn Transaction,
    processor: &ProcessorId,
    changes: &Changes,
    now: DateTime<Utc>,
) -> Result<(), ApplyError> {
    if let Some((customer, workspace)) = &changes.link_customer {
        match tx.workspaces().link_customer(processor, customer, workspace, now).await {
            Ok(_) => {}
            Err(StoreError::Duplicate(what)) => {
                return Err(ApplyError::Decision(format!("customer {customer} is linked elsewhere: {what}")));
            }
            Err(other) => return Err(other.into()),
        }
    }
    if let Some(change) = &changes.subscription {
        match &change.before {
            None => tx.subscriptions().insert(&change.after).await?,
            Some(before) => tx.subscriptions().update(&change.after, before.version).await?,
        }
    }
    if let Some(grant) = &changes.credit_grant {
        tx.workspaces().grant_credits(&grant.workspace_id, grant.amount, &grant.key, now).await?;
    }
    for record in &changes.audit {
        tx.audit().append(record, now).await?;
    }
    for message in &changes.outbox {
        tx.outbox().enqueue(message, now).await?;
    }
    Ok(())
}
