//! The sandbox's records in Tollgate's database (the domain's `ProcessorRecords` port): every change, made through
//! [`SandboxProcessor::transact`], notes the records it touched ([`State::touch`]), which are written before the
//! change is kept and answered; [`SandboxProcessor::restore`] reads them all back at startup. A version moved by
//! compare-and-set with every write lets replicas on one database share them ([`SandboxProcessor::refresh`]).

use billing_domain::ids::{CheckoutSessionId, PaymentId, SubscriptionId, WorkspaceId};
use billing_domain::ports::ProcessorRecord;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::processor::SandboxProcessor;
use crate::state::{Kind, PendingDelivery, State};

impl Kind {
    const ALL: [Kind; 13] = [
        Kind::Customer,
        Kind::Session,
        Kind::SessionKey,
        Kind::Subscription,
        Kind::Invoice,
        Kind::SubscriptionChange,
        Kind::Portal,
        Kind::Payment,
        Kind::PaymentKey,
        Kind::RefundKey,
        Kind::CardDecline,
        Kind::Delivery,
        Kind::Meter,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Customer => "customer",
            Kind::Session => "checkout_session",
            Kind::SessionKey => "checkout_session_key",
            Kind::Subscription => "subscription",
            Kind::Invoice => "invoice",
            Kind::SubscriptionChange => "subscription_change",
            Kind::Portal => "portal_session",
            Kind::Payment => "payment",
            Kind::PaymentKey => "payment_key",
            Kind::RefundKey => "refund_key",
            Kind::CardDecline => "card_decline",
            Kind::Delivery => "delivery",
            Kind::Meter => "meter",
        }
    }

    fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl State {
    /// The records touched since the last call, as they are now.
    pub(crate) fn take_touched(&mut self) -> Vec<ProcessorRecord> {
        let touched = std::mem::take(&mut self.touched);
        touched.into_iter().filter_map(|(kind, id)| self.record(kind, &id)).collect()
    }

    fn record(&self, kind: Kind, id: &str) -> Option<ProcessorRecord> {
        let body = match kind {
            Kind::Customer => json(WorkspaceId::parse(id).ok().and_then(|w| self.customers.get(&w))),
            Kind::Session => json(self.sessions.get(&CheckoutSessionId::new(id))),
            Kind::SessionKey => json(self.sessions_by_key.get(id)),
            Kind::Subscription => json(self.subscriptions.get(&SubscriptionId::new(id))),
            Kind::Invoice => json(self.invoices.iter().find(|i| i.id.as_str() == id)),
            Kind::SubscriptionChange => json(self.subscription_changes.get(id)),
            Kind::Portal => json(self.portals.get(id)),
            Kind::Payment => json(self.payments.get(&PaymentId::new(id))),
            Kind::PaymentKey => json(self.payments_by_key.get(id)),
            Kind::RefundKey => json(self.refunds_by_key.get(id)),
            Kind::CardDecline => {
                let workspace = WorkspaceId::parse(id).ok()?;
                json(Some(&self.decline_next.contains(&workspace)))
            }
            Kind::Delivery => json(Some(&self.pending.get(id).cloned().unwrap_or_else(PendingDelivery::acknowledged))),
            Kind::Meter => json(self.meters.get(id)),
        }?;
        Some(ProcessorRecord { kind: kind.name().to_owned(), id: id.to_owned(), body })
    }

    /// The state the stored `records` describe. An unreadable record is an error naming it: the sandbox would
    /// otherwise forget it silently.
    pub(crate) fn restored(records: Vec<ProcessorRecord>) -> Result<State, String> {
        let mut state = State::default();
        for record in records {
            let kind =
                Kind::parse(&record.kind).ok_or_else(|| format!("unknown sandbox record kind `{}`", record.kind))?;
            let id = record.id.clone();
            let body = record.body.as_str();
            let broken = |e: serde_json::Error| format!("sandbox record {}/{}: {e}", record.kind, record.id);
            match kind {
                Kind::Customer => {
                    let workspace =
                        WorkspaceId::parse(id.as_str()).map_err(|e| format!("sandbox customer {id}: {e}"))?;
                    state.customers.insert(workspace, parse(body).map_err(broken)?);
                }
                Kind::Session => {
                    state.sessions.insert(CheckoutSessionId::new(id), parse(body).map_err(broken)?);
                }
                Kind::SessionKey => {
                    state.sessions_by_key.insert(id, parse(body).map_err(broken)?);
                }
                Kind::Subscription => {
                    state.subscriptions.insert(SubscriptionId::new(id), parse(body).map_err(broken)?);
                }
                Kind::Invoice => state.invoices.push(parse(body).map_err(broken)?),
                Kind::SubscriptionChange => {
                    state.subscription_changes.insert(id, parse(body).map_err(broken)?);
                }
                Kind::Portal => {
                    state.portals.insert(id, parse(body).map_err(broken)?);
                }
                Kind::Payment => {
                    state.payments.insert(PaymentId::new(id), parse(body).map_err(broken)?);
                }
                Kind::PaymentKey => {
                    state.payments_by_key.insert(id, parse(body).map_err(broken)?);
                }
                Kind::RefundKey => {
                    state.refunds_by_key.insert(id, parse(body).map_err(broken)?);
                }
                Kind::CardDecline => {
                    let workspace =
                        WorkspaceId::parse(id.as_str()).map_err(|e| format!("sandbox card of {id}: {e}"))?;
                    if parse::<bool>(body).map_err(broken)? {
                        state.decline_next.insert(workspace);
                    }
                }
                Kind::Delivery => {
                    let delivery: PendingDelivery = parse(body).map_err(broken)?;
                    if !delivery.delivered {
                        state.pending.insert(id, delivery);
                    }
                }
                Kind::Meter => {
                    state.meters.insert(id, parse(body).map_err(broken)?);
                }
            }
        }
        // Invoice numbers count up in creation order, which listing newest-first relies on.
        state.invoices.sort_by(|a, b| a.number.cmp(&b.number));
        Ok(state)
    }
}

/// How often a change is made again on fresh records when another replica wrote first, before it gives up.
const WRITE_ATTEMPTS: u32 = 8;

impl SandboxProcessor {
    /// Applies `change` and keeps it only once its records are written. With records the change is made on a
    /// fresh copy of the state, written by compare-and-set on the records' version, and only then becomes the
    /// state, so a failed write changes nothing (the ports' contract); when another replica wrote first, the
    /// records are read again and the change is made anew on them. Changes of one replica queue on one lock, so
    /// they are written in the order they were made. Without records (tests) it changes the memory directly.
    pub(crate) async fn transact<T, E>(
        &self,
        mut change: impl FnMut(&mut State) -> Result<T, E>,
        unwritten: impl Fn(String) -> E,
    ) -> Result<T, E> {
        let Some(records) = &self.records else {
            let mut state = self.lock();
            let outcome = change(&mut state);
            state.touched.clear();
            return outcome;
        };
        let _turn = self.change_turn.lock().await;
        for attempt in 0..WRITE_ATTEMPTS {
            self.refresh().await.map_err(&unwritten)?;
            let mut copy = self.lock().clone();
            let outcome = change(&mut copy)?;
            let batch = copy.take_touched();
            if batch.is_empty() {
                return Ok(outcome);
            }
            match records.save_records(&Self::processor_id(), &batch, copy.version, self.clock.now()).await {
                Ok(true) => {
                    copy.version += 1;
                    *self.lock() = copy;
                    return Ok(outcome);
                }
                Ok(false) => {
                    tracing::debug!("another replica changed the sandbox first; making the change again");
                    // A short, growing pause, so two replicas in step do not keep colliding.
                    tokio::time::sleep(std::time::Duration::from_millis(2 << attempt)).await;
                }
                Err(error) => {
                    tracing::error!(%error, records = batch.len(), "sandbox records not written; the change is not made");
                    return Err(unwritten(format!("the sandbox could not write its records: {error}")));
                }
            }
        }
        Err(unwritten("the sandbox records kept changing under this change; try again".to_owned()))
    }

    /// Reads the stored records again when another replica (or an earlier run) wrote since this copy was read,
    /// so every replica on one database serves the same checkouts, subscriptions and invoices.
    pub async fn refresh(&self) -> Result<(), String> {
        let Some(records) = &self.records else { return Ok(()) };
        let processor = Self::processor_id();
        let version = records.records_version(&processor).await.map_err(|e| e.to_string())?;
        if version == self.lock().version {
            return Ok(());
        }
        let stored = records.load_records(&processor).await.map_err(|e| e.to_string())?;
        let mut state = State::restored(stored.records)?;
        state.version = stored.version;
        let mut current = self.lock();
        // A concurrent refresh may have installed a newer copy meanwhile; never step back.
        if state.version >= current.version {
            *current = state;
        }
        Ok(())
    }

    /// Replaces the sandbox's memory with its stored records (at startup); returns how many were read.
    pub async fn restore(&self) -> Result<usize, String> {
        let Some(records) = &self.records else { return Ok(0) };
        let stored = records.load_records(&Self::processor_id()).await.map_err(|e| e.to_string())?;
        let count = stored.records.len();
        let mut state = State::restored(stored.records)?;
        state.version = stored.version;
        *self.lock() = state;
        Ok(count)
    }
}

#[cfg(test)]
mod tests;

fn json<T: Serialize>(value: Option<&T>) -> Option<String> {
    // The records are plain data (ids, amounts, words): serializing them cannot fail.
    value.and_then(|v| serde_json::to_string(v).ok())
}

fn parse<T: DeserializeOwned>(body: &str) -> Result<T, serde_json::Error> {
    serde_json::from_str(body)
}
