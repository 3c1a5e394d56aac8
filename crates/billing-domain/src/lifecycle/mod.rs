//! The subscription state machine as pure decisions: given a processor event and what is already known, decide the
//! new state and its effects. Services load the inputs through ports and persist the decision in one transaction.
//!
//! [`decide`] routes each event: `checkout.rs` (a completed checkout links its customer or grants credits),
//! `subscriptions.rs` (an observation merged into the convergent record), `payments.rs` (a payment's outcome
//! or refund, merged into the payments table), `effects.rs` (audit entries, emails and outbound webhooks an event
//! or a state change causes).

mod checkout;
mod effects;
pub use effects::{CreditChange, credits_changed};
pub(crate) use effects::{email, webhook};
mod payments;
mod subscriptions;
#[cfg(test)]
mod tests;

use serde_json::json;

use crate::catalog::{Catalog, PlanKind};
use crate::credits;
use crate::events::{CheckoutMode, EventPayload, PaymentActivityKind, ProcessorEvent};
use crate::ids::{CheckoutSessionId, CustomerId, PlanId, PriceId, SubscriptionId, WorkspaceId};
use crate::records::{Actor, AuditRecord, NotificationKind, OutboxMessage, OutboxTarget};
use crate::subscription::{
    Observation, ObservedTerms, Subscription, SubscriptionStatus, SubscriptionTerms, TermsSource,
};

/// What is known before deciding an event.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    pub catalog: &'a Catalog,
    /// The workspace of the event's customer, if the customer is linked.
    pub workspace: Option<&'a WorkspaceId>,
    /// The current record of the event's subscription, if any.
    pub subscription: Option<&'a Subscription>,
}

/// A subscription write: the record before (None when new) and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionChange {
    pub before: Option<Subscription>,
    pub after: Subscription,
}

/// Credits to grant once under `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditGrant {
    pub workspace_id: WorkspaceId,
    pub amount: i64,
    pub key: String,
}

/// Everything one event changes, to be written in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes {
    /// Links a processor customer to a workspace; events parked under [`customer_link`] then apply.
    pub link_customer: Option<(CustomerId, WorkspaceId)>,
    pub subscription: Option<SubscriptionChange>,
    pub credit_grant: Option<CreditGrant>,
    /// What the event says about a payment, merged into the payments table.
    pub payment: Option<crate::payment::PaymentObservation>,
    /// What a paid or failed invoice tells the workspace's dunning.
    pub dunning: Option<(WorkspaceId, crate::dunning::DunningSignal)>,
    pub audit: Vec<AuditRecord>,
    pub outbox: Vec<OutboxMessage>,
}

/// The decision for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Apply these changes (possibly none: a stale or duplicate observation).
    Apply(Box<Changes>),
    /// It refers to something not known yet; keep it under this link until the link appears.
    Park { link: String },
    /// Nothing to do for this event type.
    Ignore,
}

/// The event cannot be applied as sent; it is recorded as failed for an operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    #[error("price `{0}` is not in the plan catalog")]
    UnknownPrice(String),
    #[error("plan `{0}` is not in the plan catalog")]
    UnknownPlan(String),
    #[error("checkout completed without a plan id in its metadata")]
    MissingPlan,
    #[error("subscription {subscription} belongs to workspace {owner}, not {claimed}")]
    WorkspaceMismatch { subscription: SubscriptionId, owner: WorkspaceId, claimed: WorkspaceId },
}

/// The link key under which events of an unknown customer wait.
pub fn customer_link(customer: &CustomerId) -> String {
    format!("customer:{customer}")
}

/// The link key under which status-only events of a subscription not yet recorded wait.
pub fn subscription_link(subscription: &SubscriptionId) -> String {
    format!("subscription:{subscription}")
}

impl Changes {
    /// Links this change creates, under which parked events may now apply.
    pub fn links_created(&self) -> Vec<String> {
        let mut links = Vec::new();
        if let Some((customer, _)) = &self.link_customer {
            links.push(customer_link(customer));
        }
        if let Some(change) = &self.subscription
            && change.before.is_none()
        {
            links.push(subscription_link(&change.after.id));
        }
        links
    }

    /// Whether applying changes nothing at all.
    pub fn is_empty(&self) -> bool {
        self == &Changes::default()
    }
}

/// Decides what `event` changes given what is `known`. Deterministic; the same inputs give the same decision.
pub fn decide(event: &ProcessorEvent, known: Known<'_>) -> Result<Decision, DecisionError> {
    let actor = Actor::Webhook { processor: event.processor.clone(), event_id: event.id.clone() };
    match &event.payload {
        EventPayload::Ignored => Ok(Decision::Ignore),
        EventPayload::CheckoutCompleted { session_id, workspace_id, customer_id, mode, plan_id, .. } => {
            checkout_completed(actor, session_id, workspace_id, customer_id, *mode, plan_id.as_ref(), known)
        }
        EventPayload::CheckoutFailed { session_id, workspace_id, plan_id, reason } => {
            let audit = AuditRecord {
                workspace_id: workspace_id.clone(),
                action: "checkout.payment_failed".into(),
                actor,
                before: None,
                after: Some(json!({"session_id": session_id, "plan": plan_id, "reason": reason})),
                request_id: None,
            };
            Ok(Decision::Apply(Box::new(Changes { audit: vec![audit], ..Changes::default() })))
        }
        payload => {
            // Every remaining payload names its customer; one that does not has nothing to apply to.
            let Some(customer) = payload.customer_id() else {
                return Ok(Decision::Ignore);
            };
            let Some(workspace) = known.workspace else {
                return Ok(Decision::Park { link: customer_link(customer) });
            };
            if let EventPayload::PaymentActivity { .. } = payload {
                return payment_event(event, actor, workspace, known);
            }
            subscription_event(event, actor, workspace, customer, known)
        }
    }
}

use checkout::checkout_completed;
use effects::payment_activity;
use payments::payment_event;
use subscriptions::subscription_event;
