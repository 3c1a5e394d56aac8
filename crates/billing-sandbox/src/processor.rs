//! The sandbox processor: records checkouts and, when the customer presses Pay or Decline on Tollgate's own checkout
//! page, produces the signed Stripe-shaped webhook deliveries a real processor would send.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use billing_domain::catalog::{Interval, PlanKind};
use billing_domain::events::SubscriptionSnapshot;
use billing_domain::ids::{CheckoutSessionId, InvoiceId, PaymentId, ProcessorId, SubscriptionId};
use billing_domain::ports::{
    CheckoutAnswer, Clock, HostedCheckout, HostedCheckoutError, HostedCheckoutOps, HostedCheckoutStatus, IdGenerator,
    ProcessorRecords, RawDelivery,
};
use billing_domain::subscription::SubscriptionStatus;
use chrono::{DateTime, Months, Utc};
use serde_json::Value;

use crate::config::SandboxConfig;
use crate::payloads::{self, CheckoutOutcome};
use crate::payments::{PAYMENT_PREFIX, PaymentRecord};
use crate::state::{InvoiceRecord, Kind, PaidState, PendingDelivery, SessionRecord, State, SubscriptionRecord};
use stripe_wire::signature;

/// The processor id of the sandbox in routes, catalog `processor_prices` and stored rows.
pub const PROCESSOR_ID: &str = "sandbox";

/// The (lower-cased) request header carrying a delivery's signature.
pub const SIGNATURE_HEADER: &str = "sandbox-signature";

/// An offline, deterministic payment processor whose checkout page is served by Tollgate itself.
pub struct SandboxProcessor {
    pub(crate) config: SandboxConfig,
    pub(crate) ids: Arc<dyn IdGenerator>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) state: Mutex<State>,
    /// Where its records are kept; memory only without.
    pub(crate) records: Option<Arc<dyn ProcessorRecords>>,
    /// Held for each change from its copy to its write, so changes are written in the order they were made.
    pub(crate) change_turn: tokio::sync::Mutex<()>,
    /// The plans its prices belong to, so a price change bills the new plan's amount at renewal.
    pub(crate) catalog: Option<Arc<billing_domain::catalog::Catalog>>,
}

impl std::fmt::Debug for SandboxProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxProcessor").field("config", &self.config).finish_non_exhaustive()
    }
}

/// The decline every Decline press produces, as Stripe reports a generic card decline.
const DECLINE_CODE: &str = "card_declined";
const DECLINE_MESSAGE: &str = "Your card was declined.";

impl SandboxProcessor {
    /// A sandbox with no records; check `config` with [`SandboxConfig::validate`] at startup.
    pub fn new(config: SandboxConfig, ids: Arc<dyn IdGenerator>, clock: Arc<dyn Clock>) -> Self {
        let state = Mutex::new(State::default());
        Self { config, ids, clock, state, records: None, change_turn: tokio::sync::Mutex::new(()), catalog: None }
    }

    /// This sandbox knowing the plans behind its prices (`processor_prices.sandbox`).
    pub fn with_catalog(mut self, catalog: Arc<billing_domain::catalog::Catalog>) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// This sandbox keeping its records in `records`; call [`SandboxProcessor::restore`] before serving.
    pub fn with_records(mut self, records: Arc<dyn ProcessorRecords>) -> Self {
        self.records = Some(records);
        self
    }

    /// The processor id, `sandbox`.
    pub fn processor_id() -> ProcessorId {
        ProcessorId::new(PROCESSOR_ID)
    }

    /// The checkout session `id` as the page shows it, if it exists.
    pub fn session(&self, id: &str) -> Option<HostedCheckout> {
        let state = self.lock();
        let session = state.sessions.get(&CheckoutSessionId::new(id))?;
        Some(HostedCheckout {
            id: session.id.clone(),
            workspace_id: session.workspace_id.clone(),
            plan_name: session.plan.name.clone(),
            price: session.amount.clone(),
            plan_kind: describe(&session.plan.kind),
            status: session.status,
            success_url: session.success_url.clone(),
            cancel_url: session.cancel_url.clone(),
        })
    }

    /// Pays an open session: a subscription plan gets a subscription and a paid invoice and emits
    /// `checkout.session.completed`, `customer.subscription.created` and `invoice.paid`, in that order; a credits plan
    /// emits one `checkout.session.completed` in `payment` mode. Both end with the charge's
    /// `payment_intent.succeeded`.
    #[tracing::instrument(skip_all, fields(session_id = %session_id))]
    pub async fn pay(&self, session_id: &str) -> Result<Vec<RawDelivery>, HostedCheckoutError> {
        self.transact(|state| self.pay_in(state, session_id), HostedCheckoutError::Unavailable).await
    }

    fn pay_in(&self, state: &mut State, session_id: &str) -> Result<Vec<RawDelivery>, HostedCheckoutError> {
        let now = self.clock.now();
        let invoice_number = state.next_invoice_number();
        let session = open_session(&mut state.sessions, session_id)?;
        let secret = self.signing_secret().map_err(HostedCheckoutError::Unavailable)?;
        let mut events = Vec::new();
        match session.plan.kind {
            PlanKind::Subscription { interval } => {
                let (subscription, invoice) = self.subscribe(session, interval, now, invoice_number);
                let subscription_id = subscription.snapshot.subscription_id.clone();
                let invoice_id = invoice.id.clone();
                let outcome =
                    CheckoutOutcome::Paid { subscription: Some(&subscription_id), invoice: Some(&invoice_id) };
                events.push(("checkout.session.completed", payloads::checkout_session(session, &outcome)));
                events.push(("customer.subscription.created", payloads::subscription(&subscription)));
                events.push(("invoice.paid", payloads::invoice(&invoice, Some(interval))));
                state.touched.insert((Kind::Subscription, subscription_id.to_string()));
                state.touched.insert((Kind::Invoice, invoice.id.to_string()));
                state.subscriptions.insert(subscription_id, subscription);
                state.invoices.push(invoice);
            }
            PlanKind::Credits { .. } => {
                let outcome = CheckoutOutcome::Paid { subscription: None, invoice: None };
                events.push(("checkout.session.completed", payloads::checkout_session(session, &outcome)));
            }
        }
        session.status = HostedCheckoutStatus::Paid;
        let session_id = session.id.clone();
        // The charge itself, as Stripe announces it after the checkout's events: a payment Tollgate records and
        // an operator can refund.
        let charge = self.checkout_charge(session, now);
        events.push(("payment_intent.succeeded", payloads::payment_intent(&charge)));
        state.touched.insert((Kind::Session, session_id.to_string()));
        state.touched.insert((Kind::Payment, charge.id.to_string()));
        state.payments.insert(charge.id.clone(), charge);
        tracing::info!(deliveries = events.len(), "sandbox checkout paid");
        Ok(self.sign_all(state, secret, now, events))
    }

    /// Declines an open session: emits one `checkout.session.async_payment_failed` with a `card_declined` reason.
    #[tracing::instrument(skip_all, fields(session_id = %session_id))]
    pub async fn decline(&self, session_id: &str) -> Result<Vec<RawDelivery>, HostedCheckoutError> {
        self.transact(|state| self.decline_in(state, session_id), HostedCheckoutError::Unavailable).await
    }

    fn decline_in(&self, state: &mut State, session_id: &str) -> Result<Vec<RawDelivery>, HostedCheckoutError> {
        let now = self.clock.now();
        let session = open_session(&mut state.sessions, session_id)?;
        let secret = self.signing_secret().map_err(HostedCheckoutError::Unavailable)?;
        let outcome = CheckoutOutcome::Declined { code: DECLINE_CODE, message: DECLINE_MESSAGE };
        let object = payloads::checkout_session(session, &outcome);
        session.status = HostedCheckoutStatus::Declined;
        let id = session.id.clone();
        state.touched.insert((Kind::Session, id.to_string()));
        tracing::info!("sandbox checkout declined");
        Ok(self.sign_all(state, secret, now, vec![("checkout.session.async_payment_failed", object)]))
    }

    /// The paid payment a checkout's charge is.
    fn checkout_charge(&self, session: &SessionRecord, now: DateTime<Utc>) -> PaymentRecord {
        PaymentRecord {
            id: PaymentId::new(self.ids.new_id(PAYMENT_PREFIX)),
            workspace_id: session.workspace_id.clone(),
            customer_id: session.customer_id.clone(),
            amount: session.amount.clone(),
            credits_plan: None,
            checkout_plan: Some(session.plan.id.clone()),
            description: Some(session.plan.name.clone()),
            return_url: session.success_url.clone(),
            status: HostedCheckoutStatus::Paid,
            refunded: 0,
            created: now,
        }
    }

    /// The active subscription and paid first invoice a paid subscription checkout creates.
    fn subscribe(
        &self,
        session: &SessionRecord,
        interval: Interval,
        now: DateTime<Utc>,
        invoice_number: String,
    ) -> (SubscriptionRecord, InvoiceRecord) {
        // Whole seconds, as Stripe's timestamps are: the periods every renewal counts from must be the ones the
        // events (and so Tollgate) show, or advancing the clock to a shown period end would stop short of it.
        let now = whole_seconds(now);
        let subscription_id = SubscriptionId::new(self.ids.new_id("sub_sbx_"));
        let invoice_id = InvoiceId::new(self.ids.new_id("in_sbx_"));
        let period_end = period_end(now, interval);
        let subscription = SubscriptionRecord {
            snapshot: SubscriptionSnapshot {
                subscription_id: subscription_id.clone(),
                customer_id: session.customer_id.clone(),
                price_id: session.price_id.clone(),
                status: SubscriptionStatus::Active,
                quantity: 1,
                cancel_at_period_end: false,
                current_period_start: Some(now),
                current_period_end: Some(period_end),
                trial_end: None,
            },
            workspace_id: session.workspace_id.clone(),
            plan_id: session.plan.id.clone(),
            amount: session.plan.price.clone(),
            interval,
            created: now,
            canceled_at: None,
            latest_invoice: Some(invoice_id.clone()),
            cycle_anchor: None,
        };
        let invoice = InvoiceRecord {
            id: invoice_id,
            number: invoice_number,
            customer_id: session.customer_id.clone(),
            subscription_id: Some(subscription_id),
            price_id: Some(session.price_id.clone()),
            description: match &session.coupon {
                Some(code) => format!("1 × {} (coupon {code})", session.plan.name),
                None => format!("1 × {}", session.plan.name),
            },
            amount: session.amount.clone(),
            created: now,
            period_start: now,
            period_end,
            paid: PaidState::Paid,
            attempt_count: 1,
            billing_reason: "subscription_create".to_owned(),
        };
        (subscription, invoice)
    }

    /// The state, recovered if a panicking thread poisoned the lock: every change is applied after all checks pass,
    /// so a half-applied change cannot be observed.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The secret deliveries are signed with (the first configured), or why there is none.
    pub(crate) fn signing_secret(&self) -> Result<&secrecy::SecretString, String> {
        self.config
            .webhook_secrets
            .first()
            .ok_or_else(|| "no webhook secret is configured to sign deliveries".to_owned())
    }

    /// The state after [`SandboxProcessor::refresh`], for reads that must see what other replicas wrote.
    pub(crate) async fn fresh(&self) -> Result<MutexGuard<'_, State>, billing_domain::error::ProcessorError> {
        self.refresh().await.map_err(billing_domain::error::ProcessorError::Unavailable)?;
        Ok(self.lock())
    }

    /// Wraps each object in an event envelope, signs it at `now` and keeps it in `state` as pending until it is
    /// acknowledged, so it is written with the change that caused it.
    pub(crate) fn sign_all(
        &self,
        state: &mut State,
        secret: &secrecy::SecretString,
        now: DateTime<Utc>,
        events: Vec<(&str, Value)>,
    ) -> Vec<RawDelivery> {
        events
            .into_iter()
            .map(|(event_type, object)| {
                let event_id = self.ids.new_id("evt_sbx_");
                let body = payloads::event(&event_id, event_type, now, object).to_string();
                let signature = signature::sign(secret, now.timestamp(), body.as_bytes());
                let headers = vec![(SIGNATURE_HEADER.to_owned(), signature)];
                let pending = PendingDelivery {
                    event_type: event_type.to_owned(),
                    body: body.clone(),
                    created: now,
                    delivered: false,
                };
                state.pending.insert(event_id.clone(), pending);
                state.touch(Kind::Delivery, &event_id);
                RawDelivery { event_id, event_type: event_type.to_owned(), headers, body }
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl HostedCheckoutOps for SandboxProcessor {
    fn processor_id(&self) -> ProcessorId {
        Self::processor_id()
    }

    async fn refresh(&self) {
        if let Err(error) = SandboxProcessor::refresh(self).await {
            tracing::warn!(%error, "sandbox records not read again; the page may show an older copy");
        }
    }

    /// A checkout session, or a payment intent's payment page (`pi_sbx_…`).
    fn hosted_checkout(&self, id: &CheckoutSessionId) -> Option<HostedCheckout> {
        if id.as_str().starts_with(PAYMENT_PREFIX) {
            return self.payment_page(id.as_str());
        }
        self.session(id.as_str())
    }

    async fn answer(
        &self,
        id: &CheckoutSessionId,
        answer: CheckoutAnswer,
    ) -> Result<Vec<RawDelivery>, HostedCheckoutError> {
        if id.as_str().starts_with(PAYMENT_PREFIX) {
            return self.answer_payment(id.as_str(), answer == CheckoutAnswer::Pay).await;
        }
        match answer {
            CheckoutAnswer::Pay => self.pay(id.as_str()).await,
            CheckoutAnswer::Decline => self.decline(id.as_str()).await,
        }
    }
}

/// The session `id` if it is still open.
fn open_session<'a>(
    sessions: &'a mut HashMap<CheckoutSessionId, SessionRecord>,
    id: &str,
) -> Result<&'a mut SessionRecord, HostedCheckoutError> {
    let session = sessions.get_mut(&CheckoutSessionId::new(id)).ok_or(HostedCheckoutError::UnknownSession)?;
    match session.status {
        HostedCheckoutStatus::Open => Ok(session),
        other => Err(HostedCheckoutError::NotOpen(other)),
    }
}

/// The end of a billing period starting at `start`; month ends clamp (Jan 31 → Feb 28) as Stripe's do.
pub(crate) fn period_end(start: DateTime<Utc>, interval: Interval) -> DateTime<Utc> {
    let months = match interval {
        Interval::Month => Months::new(1),
        Interval::Year => Months::new(12),
    };
    // Only fails at the far end of chrono's range, where a period that ends when it starts is harmless.
    start.checked_add_months(months).unwrap_or(start)
}

/// `at` without its fraction of a second.
pub(crate) fn whole_seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

/// The plan kind in words for the checkout page.
fn describe(kind: &PlanKind) -> String {
    match kind {
        PlanKind::Subscription { interval: Interval::Month } => "Monthly subscription".to_owned(),
        PlanKind::Subscription { interval: Interval::Year } => "Yearly subscription".to_owned(),
        PlanKind::Credits { credits } => format!("One-time purchase of {credits} credits"),
    }
}

#[cfg(test)]
mod tests;
