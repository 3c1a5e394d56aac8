//! Carrying a simulated processor (the sandbox) through time: its renewals at period end, ingested through the
//! processor's own verifier and the webhook service like any delivery, and the deliveries a replica made but did
//! not live to ingest, taken up again by whichever replica runs next.

use std::sync::Arc;

use chrono::Duration;

use crate::ports::{Clock, RawDelivery, SandboxControlError, SandboxControls, WebhookError, WebhookOps};
use crate::services::WebhookService;

/// How long a delivery may wait for its acknowledgement before a run takes it for lost: far longer than any
/// ingestion takes, so a delivery still on its way is rarely sent twice (and the inbox drops it if it is).
pub const REDELIVER_AFTER: Duration = Duration::seconds(30);

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RenewalReport {
    /// Deliveries of renewals made in this run, ingested.
    pub renewal_deliveries: usize,
    /// Deliveries found unacknowledged and ingested again.
    pub redelivered: usize,
    /// What went wrong with single deliveries, for the log: refused by the verifier (acknowledged: the same bytes
    /// cannot fare better), or not ingested (the store was unavailable; they stay pending for the next run).
    pub problems: Vec<String>,
}

/// What ingesting a list of deliveries did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// Durable in the inbox, whatever their outcome, and acknowledged.
    pub count: usize,
    pub problems: Vec<String>,
}

/// Renews the simulated processor's subscriptions and ingests what that causes.
pub struct RenewalService {
    controls: Arc<dyn SandboxControls>,
    verifier: Arc<dyn WebhookOps>,
    webhooks: Arc<WebhookService>,
    clock: Arc<dyn Clock>,
}

impl RenewalService {
    pub fn new(
        controls: Arc<dyn SandboxControls>,
        verifier: Arc<dyn WebhookOps>,
        webhooks: Arc<WebhookService>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { controls, verifier, webhooks, clock }
    }

    pub fn controls(&self) -> &Arc<dyn SandboxControls> {
        &self.controls
    }

    /// Ingests deliveries left unacknowledged, then renews what is due and ingests that.
    pub async fn run(&self) -> Result<RenewalReport, SandboxControlError> {
        let lost = self.controls.unacknowledged(self.clock.now() - REDELIVER_AFTER).await?;
        let again = self.ingest(&lost).await?;
        let renewals = self.controls.renew_due().await?;
        let renewed = self.ingest(&renewals).await?;
        let mut problems = again.problems;
        problems.extend(renewed.problems);
        Ok(RenewalReport { renewal_deliveries: renewed.count, redelivered: again.count, problems })
    }

    /// Verifies and ingests `deliveries` in order and acknowledges those now durable in the inbox (whatever their
    /// outcome). A payload the verifier cannot parse is acknowledged too: the same bytes cannot fare better. A
    /// signature it refuses is not: on a test clock another replica may have moved time past the signature's
    /// tolerance since it was made, and the next run delivers it again signed anew.
    pub async fn ingest(&self, deliveries: &[RawDelivery]) -> Result<Ingested, SandboxControlError> {
        let mut done = Vec::new();
        let mut problems = Vec::new();
        for delivery in deliveries {
            let id = &delivery.event_id;
            match self.verifier.verify_and_parse(&delivery.headers, delivery.body.as_bytes(), self.clock.now()) {
                Err(error @ WebhookError::MalformedPayload(_)) => {
                    problems.push(format!("delivery {id} refused by its verifier: {error}"));
                    done.push(id.clone());
                }
                Err(error) => problems.push(format!("delivery {id} refused, delivered again later: {error}")),
                Ok(event) => match self.webhooks.ingest(&event, &delivery.body).await {
                    Ok(_) => done.push(id.clone()),
                    Err(error) => problems.push(format!("delivery {id} not ingested, still pending: {error}")),
                },
            }
        }
        if !done.is_empty() {
            self.controls.acknowledge(&done).await?;
        }
        Ok(Ingested { count: done.len(), problems })
    }
}
