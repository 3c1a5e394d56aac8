//! Reconciliation: re-fetch live subscriptions from the processor and repair drift left by missed webhooks.
//!
//! A repair goes through the one ingestion path as a synthetic event stamped with the fetch time, so it is
//! recorded in the inbox, audited, and ordered against real webhooks like any other observation: a webhook older
//! than the fetch never undoes the repair, a newer one still wins.

use std::sync::Arc;

use serde::Serialize;

use super::{IngestOutcome, WebhookService};
use crate::error::{ProcessorError, StoreError};
use crate::events::{EventPayload, ProcessorEvent, SubscriptionSnapshot};
use crate::ids::{EventId, SubscriptionId, WorkspaceId};
use crate::ports::{Clock, PaymentProcessor, SubscriptionRepository};
use crate::subscription::{Subscription, SubscriptionStatus};

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
    /// Those that could not be checked or repaired; the next run tries again.
    pub failed: Vec<ReconcileFailure>,
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

/// A subscription reconciliation could not settle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReconcileFailure {
    pub subscription_id: SubscriptionId,
    pub reason: String,
}

/// Reconciliation could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Compares local subscriptions of one processor with the processor's own view.
pub struct ReconcileService {
    processor: Arc<dyn PaymentProcessor>,
    subscriptions: Arc<dyn SubscriptionRepository>,
    webhooks: Arc<WebhookService>,
    clock: Arc<dyn Clock>,
}

impl ReconcileService {
    pub fn new(
        processor: Arc<dyn PaymentProcessor>,
        subscriptions: Arc<dyn SubscriptionRepository>,
        webhooks: Arc<WebhookService>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { processor, subscriptions, webhooks, clock }
    }

    /// Walks every live subscription once. A processor failure on one subscription is reported and the walk goes
    /// on; only a store failure stops it.
    pub async fn run(&self) -> Result<ReconcileReport, ReconcileError> {
        let processor = self.processor.id();
        let mut report = ReconcileReport::default();
        let mut after = None;
        loop {
            let page = self.subscriptions.list_live(&processor, after.clone(), PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            let full = page.len() == PAGE as usize;
            for local in page {
                report.checked += 1;
                match self.reconcile_one(&local).await {
                    Ok(Some(repair)) => report.repaired.push(repair),
                    Ok(None) => {}
                    Err(reason) => report.failed.push(ReconcileFailure { subscription_id: local.id.clone(), reason }),
                }
            }
            if !full {
                break;
            }
        }
        Ok(report)
    }

    async fn reconcile_one(&self, local: &Subscription) -> Result<Option<Repair>, String> {
        let remote = self.processor.fetch(&local.id).await.map_err(|e| match e {
            ProcessorError::Unavailable(_) => "processor unavailable".to_owned(),
            ProcessorError::Rejected(_) => "processor rejected the fetch".to_owned(),
            ProcessorError::Unsupported(what) => format!("processor does not support {what}"),
        })?;
        let fields = drift(local, &remote);
        if fields.is_empty() {
            return Ok(None);
        }
        let now = self.clock.now();
        let event = ProcessorEvent {
            id: EventId::new(format!("reconcile:{}:{}", local.id, now.timestamp_millis())),
            processor: local.processor.clone(),
            event_type: RECONCILE_EVENT_TYPE.to_owned(),
            occurred_at: now,
            payload: EventPayload::SubscriptionChanged(remote.clone()),
        };
        let raw = serde_json::to_string(&event).map_err(|e| format!("cannot record the repair: {e}"))?;
        match self.webhooks.ingest(&event, &raw).await {
            Ok(IngestOutcome::Applied | IngestOutcome::Duplicate) => Ok(Some(Repair {
                subscription_id: local.id.clone(),
                workspace_id: local.workspace_id.clone(),
                status_before: local.status,
                status_after: remote.status,
                fields,
            })),
            Ok(IngestOutcome::Failed { reason }) => Err(reason),
            Ok(other) => Err(format!("repair was not applied ({other:?})")),
            Err(error) => Err(format!("storage failed: {error}")),
        }
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
