//! Delivering the outbox after commit: owner emails through the `Notifier`, outbound webhooks through the
//! `WebhookPublisher`, each message claimed by one worker at a time (across replicas), retried on the
//! `RetrySchedule`, then dead for an operator to see and retry.
//!
//! A message a worker claims is leased: no other worker takes it until the lease ends, so the lease MUST outlast
//! a delivery (the adapters' timeouts are shorter). A worker that dies mid-delivery leaves the message to be
//! claimed again when its lease ends: at-least-once, with a stable id (email `Message-ID`, webhook `id`) so a
//! receiver recognises the rare repeat.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::future::join_all;
use serde::Deserialize;

use crate::catalog::Catalog;
use crate::error::StoreError;
use crate::ids::{PlanId, WorkspaceId};
use crate::money::Money;
use crate::ports::{
    Clock, Lease, Notification, NotificationFacts, Notifier, OutboundEvent, Outbox, RetrySchedule, UnitOfWork,
    WebhookPublisher, WorkspaceRepository,
};
use crate::records::{
    NotificationKind, OutboxBacklog, OutboxEntry, OutboxMessage, OutboxStatus, OutboxTarget, PendingMessage,
};

/// How the worker claims.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// Messages claimed (and delivered concurrently) per round.
    pub batch: u32,
    /// How long a claim keeps other workers away; longer than any delivery's timeout.
    pub lease: Duration,
    /// Where an owner manages billing, with `{workspace_id}` replaced: linked from the emails that ask them to act.
    pub manage_url: Option<String>,
}

/// Errors of the operator's view of the outbox.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox message not found")]
    NotFound,
    #[error("outbox message was delivered already")]
    Delivered,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one round delivered.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub claimed: usize,
    pub delivered: usize,
    /// Webhooks addressed to their endpoints (each now a message of its own).
    pub fanned_out: usize,
    /// Failed, to be tried again later.
    pub retrying: usize,
    /// Failed for the last time.
    pub dead: usize,
    /// Each failure: outbox id and why.
    pub failures: Vec<(i64, String)>,
}

enum Outcome {
    Delivered,
    FannedOut,
    Failed { error: String, permanent: bool },
}

/// Delivers and administers the outbox.
pub struct OutboxService {
    outbox: Arc<dyn Outbox>,
    uow: Arc<dyn UnitOfWork>,
    workspaces: Arc<dyn WorkspaceRepository>,
    catalog: Arc<Catalog>,
    notifier: Arc<dyn Notifier>,
    publisher: Arc<dyn WebhookPublisher>,
    retry: Arc<dyn RetrySchedule>,
    clock: Arc<dyn Clock>,
    wall: Arc<dyn Clock>,
    policy: DeliveryPolicy,
}

/// What an [`OutboxService`] works with.
pub struct OutboxPorts {
    pub outbox: Arc<dyn Outbox>,
    pub uow: Arc<dyn UnitOfWork>,
    pub workspaces: Arc<dyn WorkspaceRepository>,
    pub catalog: Arc<Catalog>,
    pub notifier: Arc<dyn Notifier>,
    pub publisher: Arc<dyn WebhookPublisher>,
    pub retry: Arc<dyn RetrySchedule>,
    /// Billing time: when a message is due, when a retry is.
    pub clock: Arc<dyn Clock>,
    /// Real time, even under a test clock: how long a lease lasts.
    pub wall: Arc<dyn Clock>,
}

impl OutboxService {
    pub fn new(ports: OutboxPorts, policy: DeliveryPolicy) -> Self {
        let OutboxPorts { outbox, uow, workspaces, catalog, notifier, publisher, retry, clock, wall } = ports;
        Self { outbox, uow, workspaces, catalog, notifier, publisher, retry, clock, wall, policy }
    }

    /// Claims what is due and delivers it, all at once so a slow endpoint delays no other message by more than
    /// its timeout. Returns once every claimed message is delivered or rescheduled.
    pub async fn deliver_due(&self) -> Result<DeliveryReport, StoreError> {
        let now = self.clock.now();
        let wall = self.wall.now();
        let lease = Lease { now: wall, until: wall + self.policy.lease };
        let claimed = self.outbox.claim_due(now, lease, self.policy.batch).await?;
        let mut report = DeliveryReport { claimed: claimed.len(), ..DeliveryReport::default() };
        let outcomes = join_all(claimed.iter().map(|message| self.deliver(message))).await;
        // Every message of the round is marked, even after a mark fails: one left leased is sent again when its
        // lease ends, so a database blip costs the fewest repeats.
        let mut mark_error = None;
        for (message, outcome) in claimed.iter().zip(outcomes) {
            let marked = match outcome {
                Outcome::Delivered => {
                    report.delivered += 1;
                    self.outbox.mark_delivered(message.id, self.clock.now()).await
                }
                Outcome::FannedOut => {
                    report.fanned_out += 1;
                    Ok(())
                }
                Outcome::Failed { error, permanent } => {
                    let delay = if permanent { None } else { self.retry.next_delay(message.attempts + 1) };
                    let retry_at = delay
                        .and_then(|d| Duration::from_std(d).ok().and_then(|d| self.clock.now().checked_add_signed(d)));
                    if retry_at.is_some() {
                        report.retrying += 1;
                    } else {
                        report.dead += 1;
                    }
                    let marked = self.outbox.mark_failed(message.id, &error, retry_at).await;
                    report.failures.push((message.id, error));
                    marked
                }
            };
            if let Err(error) = marked {
                mark_error.get_or_insert(error);
            }
        }
        if let Some(error) = mark_error {
            return Err(error);
        }
        Ok(report)
    }

    async fn deliver(&self, pending: &PendingMessage) -> Outcome {
        let message = &pending.message;
        let result = match &message.target {
            OutboxTarget::Email { kind } => self.send_email(pending, *kind).await,
            OutboxTarget::Webhook { topic } => return self.fan_out(pending, topic).await,
            OutboxTarget::Endpoint { endpoint, .. } => {
                match serde_json::from_value::<OutboundEvent>(message.payload.clone()) {
                    Ok(event) => self.publisher.publish(endpoint, &event).await.map_err(|e| (e.to_string(), false)),
                    Err(e) => Err((format!("unreadable webhook body: {e}"), true)),
                }
            }
        };
        match result {
            Ok(()) => Outcome::Delivered,
            Err((error, permanent)) => Outcome::Failed { error, permanent },
        }
    }

    async fn send_email(&self, pending: &PendingMessage, kind: NotificationKind) -> Result<(), (String, bool)> {
        let message = &pending.message;
        let workspace = match self.workspaces.get(&message.workspace_id).await {
            Ok(Some(workspace)) => workspace,
            Ok(None) => return Err((format!("workspace {} does not exist", message.workspace_id), true)),
            Err(e) => return Err((e.to_string(), false)),
        };
        let facts = self.facts(&message.workspace_id, &message.payload).map_err(|e| (e, true))?;
        let notification = Notification {
            outbox_id: pending.id,
            kind,
            to: workspace.owner_email,
            workspace_name: workspace.name,
            facts,
        };
        self.notifier.send(&notification).await.map_err(|e| (e.to_string(), false))
    }

    /// What an email's template shows, from the payload its cause wrote.
    fn facts(&self, workspace: &WorkspaceId, payload: &serde_json::Value) -> Result<NotificationFacts, String> {
        #[derive(Deserialize)]
        struct Written {
            amount: Option<Money>,
            plan: Option<PlanId>,
            invoice_url: Option<String>,
            attempt: Option<u32>,
            step: Option<String>,
            #[serde(alias = "ends_at", alias = "trial_end", alias = "next_step_at")]
            date: Option<DateTime<Utc>>,
        }
        let written: Written = serde_json::from_value(payload.clone()).map_err(|e| format!("unreadable email: {e}"))?;
        let plan = written.plan.map(|id| self.catalog.get(&id).map_or_else(|| id.to_string(), |p| p.name.clone()));
        let manage_url =
            self.policy.manage_url.as_ref().map(|template| template.replace("{workspace_id}", workspace.as_str()));
        Ok(NotificationFacts {
            amount: written.amount,
            plan,
            invoice_url: written.invoice_url,
            manage_url,
            date: written.date,
            attempt: written.attempt,
            step: written.step,
        })
    }

    /// Addresses a webhook to every endpoint subscribed to its topic, its `data` naming the workspace: one message
    /// each, enqueued in the same transaction that marks this one delivered, so each endpoint is retried on its
    /// own and a dead one holds up no other.
    async fn fan_out(&self, pending: &PendingMessage, topic: &str) -> Outcome {
        let message = &pending.message;
        // The backend learns which workspace an event is about from the event itself.
        let mut data = message.payload.clone();
        if let Some(fields) = data.as_object_mut() {
            fields.insert("workspace_id".into(), message.workspace_id.as_str().into());
        }
        let event = OutboundEvent {
            id: format!("evt_{}", pending.id),
            topic: topic.to_owned(),
            created: pending.created_at.timestamp(),
            data,
            request_id: message.request_id.clone(),
        };
        let body = match serde_json::to_value(&event) {
            Ok(body) => body,
            Err(e) => return Outcome::Failed { error: format!("unencodable webhook: {e}"), permanent: true },
        };
        let now = self.clock.now();
        let addressed: Vec<_> = self
            .publisher
            .subscribers(topic)
            .into_iter()
            .map(|endpoint| {
                let message = OutboxMessage {
                    dedup_key: format!("{}@{endpoint}", message.dedup_key),
                    workspace_id: message.workspace_id.clone(),
                    target: OutboxTarget::Endpoint { endpoint, topic: topic.to_owned() },
                    payload: body.clone(),
                    request_id: message.request_id.clone(),
                };
                (message, now)
            })
            .collect();
        let written = async {
            let tx = self.uow.begin().await?;
            tx.outbox().enqueue_all(&addressed).await?;
            tx.outbox().mark_delivered(pending.id, now).await?;
            tx.commit().await
        };
        match written.await {
            Ok(()) => Outcome::FannedOut,
            Err(e) => Outcome::Failed { error: e.to_string(), permanent: false },
        }
    }

    /// Messages with `status`, newest first.
    pub async fn list(
        &self,
        status: OutboxStatus,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<OutboxEntry>, OutboxError> {
        Ok(self.outbox.list_messages(status, limit, before).await?)
    }

    /// What waits undelivered (for metrics).
    pub async fn backlog(&self) -> Result<OutboxBacklog, OutboxError> {
        Ok(self.outbox.backlog().await?)
    }

    /// Makes a dead (or waiting) message due now, its attempts starting over.
    pub async fn retry(&self, id: i64) -> Result<OutboxEntry, OutboxError> {
        if !self.outbox.retry(id, self.clock.now()).await? {
            return match self.outbox.get(id).await? {
                Some(_) => Err(OutboxError::Delivered),
                None => Err(OutboxError::NotFound),
            };
        }
        self.outbox.get(id).await?.ok_or(OutboxError::NotFound)
    }
}

#[cfg(test)]
mod tests;
