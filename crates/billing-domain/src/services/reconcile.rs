//! Reconciliation: re-fetch live subscriptions from the processor and repair drift left by missed webhooks; list
//! each linked customer's subscriptions to find the ones Tollgate never heard of; apply parked events whose link
//! exists; settle refunds left pending (`reconcile/refunds.rs`).
//!
//! A repair goes through the one ingestion path as a synthetic event stamped with the time the fetch was sent, so
//! it is recorded in the inbox, audited, and ordered against real webhooks like any other observation: a webhook
//! older than the fetch never undoes the repair, a newer one still wins.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{IngestOutcome, SweepReport, WebhookService};
use crate::error::{ProcessorError, StoreError};
use crate::events::{EventPayload, ProcessorEvent, SubscriptionSnapshot};
use crate::ids::{CustomerId, EventId, RefundId, SubscriptionId, WorkspaceId};
use crate::ports::{Clock, PaymentProcessor, PaymentRepository, SubscriptionRepository, WorkspaceRepository};
use crate::subscription::{Subscription, SubscriptionStatus};

mod refunds;

/// The event type of a reconciliation repair in the inbox and audit log.
pub const RECONCILE_EVENT_TYPE: &str = "tollgate.reconcile";

/// Subscriptions read from the store per page.
const PAGE: u32 = 100;

/// What one reconciliation run found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Live local subscriptions compared with the processor.
    pub checked: u32,
    /// Those that differed and were repaired.
    pub repaired: Vec<Repair>,
    /// Subscriptions of linked customers that Tollgate had no record of, now ingested.
    pub discovered: Vec<Discovery>,
    /// Those that could not be checked or repaired; the next run tries again.
    pub failed: Vec<ReconcileFailure>,
    /// Parked events whose link existed, applied by this run.
    pub parked: SweepReport,
    /// Refunds left pending (a timeout, a refund the processor makes later) settled with the processor's answer.
    pub refunds_settled: Vec<RefundId>,
}

/// A subscription found at the processor that no webhook had announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discovery {
    pub subscription_id: SubscriptionId,
    pub workspace_id: WorkspaceId,
    pub status: SubscriptionStatus,
}

/// One repaired subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repair {
    pub subscription_id: SubscriptionId,
    pub workspace_id: WorkspaceId,
    pub status_before: SubscriptionStatus,
    pub status_after: SubscriptionStatus,
    /// What differed, e.g. `["status", "price"]`.
    pub fields: Vec<&'static str>,
}

/// A subscription (or a customer's listing) reconciliation could not settle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReconcileFailure {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<CustomerId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<RefundId>,
    pub reason: String,
}

/// Reconciliation could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<super::IngestError> for ReconcileError {
    fn from(error: super::IngestError) -> Self {
        match error {
            super::IngestError::Store(store) => ReconcileError::Store(store),
        }
    }
}

/// Compares local subscriptions of one processor with the processor's own view.
pub struct ReconcileService {
    processor: Arc<dyn PaymentProcessor>,
    workspaces: Arc<dyn WorkspaceRepository>,
    subscriptions: Arc<dyn SubscriptionRepository>,
    webhooks: Arc<WebhookService>,
    clock: Arc<dyn Clock>,
    /// Where pending refunds are found; without it refunds are not reconciled.
    payments: Option<Arc<dyn PaymentRepository>>,
}

impl ReconcileService {
    pub fn new(
        processor: Arc<dyn PaymentProcessor>,
        workspaces: Arc<dyn WorkspaceRepository>,
        subscriptions: Arc<dyn SubscriptionRepository>,
        webhooks: Arc<WebhookService>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { processor, workspaces, subscriptions, webhooks, clock, payments: None }
    }

    /// This service also settling pending refunds (`refunds.rs`).
    pub fn with_refunds(mut self, payments: Arc<dyn PaymentRepository>) -> Self {
        self.payments = Some(payments);
        self
    }

    /// Applies parked events whose link exists, walks every live subscription, then every linked customer's
    /// subscriptions at the processor. A processor failure on one subscription or customer is reported and the
    /// walk goes on; only a store failure stops it.
    pub async fn run(&self) -> Result<ReconcileReport, ReconcileError> {
        self.run_until(&|| false).await
    }

    /// [`Self::run`], stopping early (between subscriptions and between customers) once `stop` says so: a
    /// shutdown must not wait for a walk over every customer at the processor.
    pub async fn run_until(&self, stop: &(dyn Fn() -> bool + Send + Sync)) -> Result<ReconcileReport, ReconcileError> {
        let mut report = ReconcileReport::default();
        match self.webhooks.sweep_parked(super::PARKED_SWEEP_BATCH).await {
            Ok(parked) => report.parked = parked,
            // The walks below do not depend on it; the next run sweeps again.
            Err(error) => report.failed.push(ReconcileFailure {
                subscription_id: None,
                customer_id: None,
                refund_id: None,
                reason: format!("parked-event sweep: {error}"),
            }),
        }
        self.walk_live(&mut report, stop).await?;
        self.discover(&mut report, stop).await?;
        self.settle_refunds(&mut report, stop).await?;
        Ok(report)
    }

    async fn walk_live(
        &self,
        report: &mut ReconcileReport,
        stop: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<(), ReconcileError> {
        let processor = self.processor.id();
        let mut after = None;
        loop {
            let page = self.subscriptions.list_live(&processor, after.clone(), PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            let full = page.len() == PAGE as usize;
            for local in page {
                if stop() {
                    return Ok(());
                }
                report.checked += 1;
                match self.reconcile_one(&local).await {
                    Ok(Some(repair)) => report.repaired.push(repair),
                    Ok(None) => {}
                    Err(reason) => report.failed.push(ReconcileFailure {
                        subscription_id: Some(local.id.clone()),
                        customer_id: None,
                        refund_id: None,
                        reason,
                    }),
                }
            }
            if !full {
                break;
            }
        }
        Ok(())
    }

    /// Lists each linked customer's subscriptions and ingests those with no local record: a workspace whose every
    /// subscription webhook was lost is repaired here.
    async fn discover(
        &self,
        report: &mut ReconcileReport,
        stop: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<(), ReconcileError> {
        let processor = self.processor.id();
        let mut after = None;
        loop {
            let page = self.workspaces.linked_customers(&processor, after.clone(), PAGE).await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            let full = page.len() == PAGE as usize;
            for (customer, workspace) in page {
                if stop() {
                    return Ok(());
                }
                let fetched_at = self.clock.now();
                let remote = match self.processor.list_for_customer(&customer).await {
                    Ok(remote) => remote,
                    Err(error) => {
                        let reason = describe(error, "listing");
                        report.failed.push(ReconcileFailure {
                            subscription_id: None,
                            customer_id: Some(customer),
                            refund_id: None,
                            reason,
                        });
                        continue;
                    }
                };
                for snapshot in remote {
                    // An ended subscription grants nothing: ingesting it would only send "ended" emails and
                    // webhooks for history (every old subscription of a customer Stripe knew before Tollgate).
                    if snapshot.status.is_terminal() {
                        continue;
                    }
                    if self.subscriptions.get(&processor, &snapshot.subscription_id).await?.is_some() {
                        continue; // known: the live walk compares it
                    }
                    let id = snapshot.subscription_id.clone();
                    let status = snapshot.status;
                    match self.repair(snapshot, fetched_at).await {
                        Ok(()) => report.discovered.push(Discovery {
                            subscription_id: id,
                            workspace_id: workspace.clone(),
                            status,
                        }),
                        Err(reason) => report.failed.push(ReconcileFailure {
                            subscription_id: Some(id),
                            customer_id: Some(customer.clone()),
                            refund_id: None,
                            reason,
                        }),
                    }
                }
            }
            if !full {
                break;
            }
        }
        Ok(())
    }

    async fn reconcile_one(&self, local: &Subscription) -> Result<Option<Repair>, String> {
        let fetched_at = self.clock.now();
        let remote = self.processor.fetch(&local.id).await.map_err(|e| describe(e, "fetch"))?;
        let fields = drift(local, &remote);
        if fields.is_empty() {
            return Ok(None);
        }
        let status_after = remote.status;
        self.repair(remote, fetched_at).await?;
        Ok(Some(Repair {
            subscription_id: local.id.clone(),
            workspace_id: local.workspace_id.clone(),
            status_before: local.status,
            status_after,
            fields,
        }))
    }

    /// Ingests the processor's view of a subscription as a synthetic event stamped with the time the request for
    /// it was sent: a webhook the processor sent after that is newer and wins, whenever it arrives.
    async fn repair(&self, remote: SubscriptionSnapshot, fetched_at: DateTime<Utc>) -> Result<(), String> {
        let event = ProcessorEvent {
            id: EventId::new(format!("reconcile:{}:{}", remote.subscription_id, fetched_at.timestamp_millis())),
            processor: self.processor.id(),
            event_type: RECONCILE_EVENT_TYPE.to_owned(),
            occurred_at: fetched_at,
            payload: EventPayload::SubscriptionChanged(remote),
        };
        let raw = serde_json::to_string(&event).map_err(|e| format!("cannot record the repair: {e}"))?;
        match self.webhooks.ingest(&event, &raw).await {
            Ok(IngestOutcome::Applied | IngestOutcome::Duplicate) => Ok(()),
            Ok(IngestOutcome::Failed { reason }) => Err(reason),
            Ok(other) => Err(format!("repair was not applied ({other:?})")),
            Err(error) => Err(format!("storage failed: {error}")),
        }
    }
}

/// A processor failure in words safe for a report.
fn describe(error: ProcessorError, call: &str) -> String {
    match error {
        ProcessorError::Unavailable(_) => "processor unavailable".to_owned(),
        ProcessorError::Rejected(_) => format!("processor rejected the {call}"),
        ProcessorError::Unsupported(what) => format!("processor does not support {what}"),
    }
}

/// The fields where the processor's view differs from ours.
pub fn drift(local: &Subscription, remote: &SubscriptionSnapshot) -> Vec<&'static str> {
    let terms = &local.terms;
    [
        ("status", local.status != remote.status),
        ("price", terms.price_id != remote.price_id),
        ("quantity", terms.quantity != remote.quantity),
        ("cancel_at_period_end", terms.cancel_at_period_end != remote.cancel_at_period_end),
        (
            "current_period_end",
            remote.current_period_end.is_some() && terms.current_period_end != remote.current_period_end,
        ),
    ]
    .into_iter()
    .filter_map(|(field, differs)| differs.then_some(field))
    .collect()
}
