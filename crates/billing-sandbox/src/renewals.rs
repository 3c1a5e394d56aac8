//! The sandbox over time: renewals at period end, the card control that makes the next charge decline, paying an
//! open invoice, and the pending deliveries every change keeps until Tollgate acknowledges them
//! ([`SandboxControls`]). Each is one change through `transact`, so of two replicas only one renews a period.

use async_trait::async_trait;
use billing_domain::catalog::Interval;
use billing_domain::ids::{InvoiceId, ProcessorId, SubscriptionId, WorkspaceId};
use billing_domain::ports::{RawDelivery, SandboxCard, SandboxControlError, SandboxControls, SandboxMeterTally};
use billing_domain::subscription::SubscriptionStatus;
use chrono::{DateTime, Months, Utc};
use serde_json::Value;

use crate::payloads;
use crate::processor::{SIGNATURE_HEADER, SandboxProcessor, whole_seconds};
use crate::state::{InvoiceRecord, Kind, PaidState, PendingDelivery, State};
use stripe_wire::signature;

/// Renewals one change makes at most; the rest wait for the next run, so one write stays small.
const RENEWALS_PER_RUN: usize = 200;

impl SandboxProcessor {
    fn renew_due_in(&self, state: &mut State, now: DateTime<Utc>) -> Result<Vec<RawDelivery>, SandboxControlError> {
        // A period ends within the second its end names (records written before ends were whole seconds carry a
        // fraction the events never showed).
        let due_by = whole_seconds(now) + chrono::Duration::seconds(1) - chrono::Duration::nanoseconds(1);
        let mut due: Vec<SubscriptionId> = state
            .subscriptions
            .values()
            .filter(|s| matches!(s.snapshot.status, SubscriptionStatus::Active | SubscriptionStatus::Trialing))
            .filter(|s| s.snapshot.current_period_end.is_some_and(|end| end <= due_by))
            .map(|s| s.snapshot.subscription_id.clone())
            .collect();
        due.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        due.truncate(RENEWALS_PER_RUN);
        let mut events = Vec::new();
        for id in due {
            self.renew_one(state, &id, due_by, &mut events);
        }
        if events.is_empty() {
            return Ok(Vec::new());
        }
        tracing::info!(deliveries = events.len(), "sandbox subscriptions renewed");
        Ok(self.sign_all(state, self.signing_secret().map_err(SandboxControlError::Unavailable)?, now, events))
    }

    /// Renews `id` (active, its period ended) period by period up to `due_by`: ends it if it was set to cancel, stops
    /// at a declined charge.
    fn renew_one(
        &self,
        state: &mut State,
        id: &SubscriptionId,
        due_by: DateTime<Utc>,
        events: &mut Vec<(&str, Value)>,
    ) {
        while let Some(mut record) = state.subscriptions.get(id).cloned() {
            let Some(end) = record.snapshot.current_period_end.filter(|end| *end <= due_by) else { return };
            if record.snapshot.cancel_at_period_end {
                record.snapshot.status = SubscriptionStatus::Canceled;
                record.snapshot.cancel_at_period_end = false;
                record.canceled_at = Some(end);
                events.push(("customer.subscription.deleted", payloads::subscription(&record)));
                state.subscriptions.insert(id.clone(), record);
                state.touch(Kind::Subscription, id.as_str());
                return;
            }
            let declines = state.decline_next.remove(&record.workspace_id);
            if declines {
                state.touch(Kind::CardDecline, record.workspace_id.as_str());
            }
            let next_end = next_period_end(record.cycle_anchor.unwrap_or(record.created), end, record.interval);
            let invoice = InvoiceRecord {
                id: InvoiceId::new(self.ids.new_id("in_sbx_")),
                number: state.next_invoice_number(),
                customer_id: record.snapshot.customer_id.clone(),
                subscription_id: Some(id.clone()),
                price_id: Some(record.snapshot.price_id.clone()),
                description: format!("1 × {} (renewal)", record.plan_id),
                amount: record.amount.clone(),
                created: end,
                period_start: end,
                period_end: next_end,
                paid: if declines { PaidState::Open } else { PaidState::Paid },
                attempt_count: 1,
                billing_reason: "subscription_cycle".to_owned(),
            };
            record.snapshot.current_period_start = Some(end);
            record.snapshot.current_period_end = Some(next_end);
            record.snapshot.status = if declines { SubscriptionStatus::PastDue } else { SubscriptionStatus::Active };
            record.latest_invoice = Some(invoice.id.clone());
            events.push(("customer.subscription.updated", payloads::subscription(&record)));
            let invoice_event = if declines { "invoice.payment_failed" } else { "invoice.paid" };
            events.push((invoice_event, payloads::invoice(&invoice, Some(record.interval))));
            state.touch(Kind::Subscription, id.as_str());
            state.touch(Kind::Invoice, invoice.id.as_str());
            state.subscriptions.insert(id.clone(), record);
            state.invoices.push(invoice);
            if declines {
                return;
            }
        }
    }

    fn pay_open_invoice_in(
        &self,
        state: &mut State,
        workspace: &WorkspaceId,
        now: DateTime<Utc>,
    ) -> Result<Vec<RawDelivery>, SandboxControlError> {
        let customer = state.customers.get(workspace).cloned().ok_or(SandboxControlError::UnknownCustomer)?;
        let at = state
            .invoices
            .iter()
            .position(|i| i.customer_id == customer && !i.is_paid())
            .ok_or(SandboxControlError::NoOpenInvoice)?;
        let declines = state.decline_next.remove(workspace);
        if declines {
            state.touch(Kind::CardDecline, workspace.as_str());
        }
        let invoice = &mut state.invoices[at];
        invoice.attempt_count += 1;
        if !declines {
            invoice.paid = PaidState::Paid;
        }
        let invoice = invoice.clone();
        state.touch(Kind::Invoice, invoice.id.as_str());
        let mut events = Vec::new();
        let subscription = invoice.subscription_id.as_ref().and_then(|id| state.subscriptions.get_mut(id));
        let interval = subscription.as_ref().map(|s| s.interval);
        if declines {
            events.push(("invoice.payment_failed", payloads::invoice(&invoice, interval)));
        } else {
            events.push(("invoice.paid", payloads::invoice(&invoice, interval)));
            // Paying the invoice a renewal left open makes its subscription active again, as at Stripe.
            if let Some(record) = subscription.filter(|s| s.snapshot.status == SubscriptionStatus::PastDue) {
                record.snapshot.status = SubscriptionStatus::Active;
                let object = payloads::subscription(record);
                let id = record.snapshot.subscription_id.clone();
                state.touch(Kind::Subscription, id.as_str());
                events.push(("customer.subscription.updated", object));
            }
        }
        tracing::info!(declines, "sandbox open invoice charged again");
        Ok(self.sign_all(state, self.signing_secret().map_err(SandboxControlError::Unavailable)?, now, events))
    }

    fn card_in(&self, state: &State, workspace: &WorkspaceId) -> Result<SandboxCard, SandboxControlError> {
        let customer = state.customers.get(workspace).ok_or(SandboxControlError::UnknownCustomer)?;
        Ok(SandboxCard {
            workspace_id: workspace.clone(),
            decline_next_charge: state.decline_next.contains(workspace),
            open_invoices: state
                .invoices
                .iter()
                .filter(|i| &i.customer_id == customer && !i.is_paid())
                .map(|invoice| invoice.to_domain(self.config.base_url()))
                .collect(),
        })
    }
}

/// The end of the period that starts at `end`, counted from the subscription's `anchor` as Stripe's billing cycle
/// anchor is: a subscription started on Jan 31 renews on Feb 29, then Mar 31, never drifting to the 29th.
fn next_period_end(anchor: DateTime<Utc>, end: DateTime<Utc>, interval: Interval) -> DateTime<Utc> {
    let step = match interval {
        Interval::Month => 1,
        Interval::Year => 12,
    };
    let mut months = step;
    while let Some(next) = anchor.checked_add_months(Months::new(months)) {
        if next > end {
            return next;
        }
        months += step;
    }
    // Only at the far end of chrono's range, where a period that ends when it starts is harmless.
    end
}

#[async_trait]
impl SandboxControls for SandboxProcessor {
    fn processor_id(&self) -> ProcessorId {
        Self::processor_id()
    }

    async fn renew_due(&self) -> Result<Vec<RawDelivery>, SandboxControlError> {
        let now = self.clock.now();
        self.transact(|state| self.renew_due_in(state, now), SandboxControlError::Unavailable).await
    }

    async fn card(&self, workspace: &WorkspaceId) -> Result<SandboxCard, SandboxControlError> {
        self.refresh().await.map_err(SandboxControlError::Unavailable)?;
        self.card_in(&self.lock(), workspace)
    }

    async fn set_decline_next_charge(
        &self,
        workspace: &WorkspaceId,
        decline: bool,
    ) -> Result<SandboxCard, SandboxControlError> {
        let set = |state: &mut State| {
            if !state.customers.contains_key(workspace) {
                return Err(SandboxControlError::UnknownCustomer);
            }
            let changed = match decline {
                true => state.decline_next.insert(workspace.clone()),
                false => state.decline_next.remove(workspace),
            };
            if changed {
                state.touch(Kind::CardDecline, workspace.as_str());
            }
            self.card_in(state, workspace)
        };
        self.transact(set, SandboxControlError::Unavailable).await
    }

    async fn pay_open_invoice(&self, workspace: &WorkspaceId) -> Result<Vec<RawDelivery>, SandboxControlError> {
        let now = self.clock.now();
        self.transact(|state| self.pay_open_invoice_in(state, workspace, now), SandboxControlError::Unavailable).await
    }

    async fn meter_events(&self, workspace: &WorkspaceId) -> Result<Vec<SandboxMeterTally>, SandboxControlError> {
        self.refresh().await.map_err(SandboxControlError::Unavailable)?;
        let state = self.lock();
        let customer = state.customers.get(workspace).ok_or(SandboxControlError::UnknownCustomer)?;
        Ok(state.meter_tallies(customer))
    }

    async fn acknowledge(&self, event_ids: &[String]) -> Result<(), SandboxControlError> {
        let mark = |state: &mut State| {
            for id in event_ids {
                if state.pending.remove(id).is_some() {
                    state.touch(Kind::Delivery, id);
                }
            }
            Ok(())
        };
        self.transact(mark, SandboxControlError::Unavailable).await
    }

    /// Signed again at now, as a processor's retry is: the first signature may be older than the verifier's
    /// tolerance by now.
    async fn unacknowledged(&self, before: DateTime<Utc>) -> Result<Vec<RawDelivery>, SandboxControlError> {
        self.refresh().await.map_err(SandboxControlError::Unavailable)?;
        let secret = self.signing_secret().map_err(SandboxControlError::Unavailable)?;
        let now = self.clock.now().timestamp();
        let state = self.lock();
        let mut waiting: Vec<(&String, &PendingDelivery)> =
            state.pending.iter().filter(|(_, d)| d.created < before).collect();
        // Oldest first: the order they were made in.
        waiting.sort_by(|a, b| (a.1.created, a.0).cmp(&(b.1.created, b.0)));
        Ok(waiting
            .into_iter()
            .map(|(id, d)| RawDelivery {
                event_id: id.clone(),
                event_type: d.event_type.clone(),
                headers: vec![(SIGNATURE_HEADER.to_owned(), signature::sign(secret, now, d.body.as_bytes()))],
                body: d.body.clone(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests;
