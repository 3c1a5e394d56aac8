//! Refunds left pending: a refund whose processor call timed out (kept reserved because it may have been made)
//! is asked for again under its own processor key, which the processor answers with the refund it made or makes
//! it now; a refund the processor reported pending (bank debits) is fetched until it settles. A failed one gives
//! its reservation back (`PaymentRepository::settle_refund`).

use chrono::Duration;

use super::{ReconcileError, ReconcileFailure, ReconcileReport, ReconcileService};
use crate::payment::{RefundRecord, RefundStatus};
use crate::ports::RefundSettlement;

/// A refund younger than this may still have its own request in flight: left to it.
const IN_FLIGHT: Duration = Duration::minutes(2);
/// Processors keep idempotency keys about a day (Stripe: 24 h); asking again later could make a second refund,
/// so an older pending refund without a processor id is left to an operator.
const KEY_LIFETIME: Duration = Duration::hours(23);
/// Pending refunds read per run.
const BATCH: u32 = 100;

impl ReconcileService {
    pub(super) async fn settle_refunds(
        &self,
        report: &mut ReconcileReport,
        stop: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<(), ReconcileError> {
        let Some(payments) = &self.payments else { return Ok(()) };
        let now = self.clock.now();
        let processor = self.processor.id();
        for refund in payments.pending_refunds(now - IN_FLIGHT, BATCH).await? {
            if stop() {
                return Ok(());
            }
            let Some(payment) = payments.get(&refund.payment_id).await? else { continue };
            if payment.processor != processor {
                continue;
            }
            match self.processor_answer(&refund, now).await {
                Ok(Some(settlement)) => {
                    payments.settle_refund(&refund.id, &settlement, self.clock.now()).await?;
                    report.refunds_settled.push(refund.id.clone());
                }
                Ok(None) => {}
                Err(reason) => report.failed.push(ReconcileFailure {
                    subscription_id: None,
                    customer_id: None,
                    refund_id: Some(refund.id.clone()),
                    reason,
                }),
            }
        }
        Ok(())
    }

    /// How the processor settles `refund` now; `None` while it is still pending there.
    async fn processor_answer(
        &self,
        refund: &RefundRecord,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<RefundSettlement>, String> {
        let answer = match &refund.processor_refund_id {
            Some(id) => self.processor.fetch_refund(id).await,
            None if now - refund.created_at > KEY_LIFETIME => {
                return Err("pending past the processor's idempotency window; check it at the processor".into());
            }
            None => {
                let key = format!("refund:{}", refund.id);
                self.processor.refund(&refund.payment_id, Some(refund.amount.clone()), &key).await
            }
        };
        let answer = answer.map_err(|e| e.to_string())?;
        let status = RefundStatus::from_processor(&answer.status);
        Ok((status != RefundStatus::Pending)
            .then(|| RefundSettlement { status, processor_refund_id: Some(answer.id.clone()) }))
    }
}
