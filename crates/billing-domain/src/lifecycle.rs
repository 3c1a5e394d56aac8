//! The subscription state machine as pure decisions: given a processor event and what is already known, decide the
//! new state and its effects. Services load the inputs through ports and persist the decision in one transaction.

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
            if let EventPayload::PaymentActivity { activity, object_id, amount, subscription_id, detail, .. } = payload
            {
                let details = json!({
                    "object_id": object_id, "amount": amount, "subscription_id": subscription_id, "detail": detail,
                });
                return Ok(Decision::Apply(Box::new(payment_activity(
                    actor, workspace, *activity, object_id, details,
                ))));
            }
            subscription_event(event, actor, workspace, customer, known)
        }
    }
}

/// An audit entry and an outbound `billing.<action>` webhook, each once per processor object.
fn payment_activity(
    actor: Actor,
    workspace: &WorkspaceId,
    kind: PaymentActivityKind,
    object_id: &str,
    details: serde_json::Value,
) -> Changes {
    let action = kind.action();
    let audit = AuditRecord {
        workspace_id: workspace.clone(),
        action: action.into(),
        actor,
        before: None,
        after: Some(details.clone()),
        request_id: None,
    };
    let announce = webhook(workspace, format!("webhook:{action}:{object_id}"), &format!("billing.{action}"), details);
    Changes { audit: vec![audit], outbox: vec![announce], ..Changes::default() }
}

#[allow(clippy::too_many_arguments)]
fn checkout_completed(
    actor: Actor,
    session_id: &CheckoutSessionId,
    workspace_id: &WorkspaceId,
    customer_id: &CustomerId,
    mode: CheckoutMode,
    plan_id: Option<&PlanId>,
    known: Known<'_>,
) -> Result<Decision, DecisionError> {
    let mut changes =
        Changes { link_customer: Some((customer_id.clone(), workspace_id.clone())), ..Changes::default() };
    if mode == CheckoutMode::Payment {
        let plan_id = plan_id.ok_or(DecisionError::MissingPlan)?;
        let plan = known.catalog.get(plan_id).ok_or_else(|| DecisionError::UnknownPlan(plan_id.to_string()))?;
        if let PlanKind::Credits { credits } = plan.kind {
            changes.credit_grant = Some(CreditGrant {
                workspace_id: workspace_id.clone(),
                amount: i64::from(credits),
                key: credits::grant_key(session_id),
            });
        }
    }
    changes.audit.push(AuditRecord {
        workspace_id: workspace_id.clone(),
        action: "checkout.completed".into(),
        actor,
        before: None,
        after: Some(json!({
            "session_id": session_id, "customer_id": customer_id, "mode": mode, "plan": plan_id,
            "credits_granted": changes.credit_grant.as_ref().map(|g| g.amount),
        })),
        request_id: None,
    });
    Ok(Decision::Apply(Box::new(changes)))
}

fn subscription_event(
    event: &ProcessorEvent,
    actor: Actor,
    workspace: &WorkspaceId,
    customer: &CustomerId,
    known: Known<'_>,
) -> Result<Decision, DecisionError> {
    let Some(subscription_id) = event.payload.subscription_id() else {
        // A one-off invoice outside any subscription changes no subscription state.
        return Ok(Decision::Ignore);
    };
    if let Some(current) = known.subscription
        && &current.workspace_id != workspace
    {
        return Err(DecisionError::WorkspaceMismatch {
            subscription: subscription_id.clone(),
            owner: current.workspace_id.clone(),
            claimed: workspace.clone(),
        });
    }
    let mut changes = Changes::default();
    let Some(observation) = observe(event, known.catalog)? else {
        event_effects(event, workspace, &mut changes);
        return Ok(Decision::Apply(Box::new(changes)));
    };
    let after = match known.subscription {
        Some(current) => current.merge(&observation),
        None => {
            let first = Subscription::from_observation(
                subscription_id.clone(),
                event.processor.clone(),
                workspace.clone(),
                customer.clone(),
                observation,
            );
            // A status without terms cannot start a record: wait for the subscription itself.
            let Some(first) = first else {
                return Ok(Decision::Park { link: subscription_link(subscription_id) });
            };
            first
        }
    };
    let changed = known.subscription.is_none_or(|before| !before.same_state(&after));
    event_effects(event, workspace, &mut changes);
    if changed {
        let after = Subscription { version: known.subscription.map_or(0, |b| b.version + 1), ..after };
        transition_effects(known.subscription, &after, event, &actor, &mut changes);
        changes.subscription = Some(SubscriptionChange { before: known.subscription.cloned(), after });
    }
    Ok(Decision::Apply(Box::new(changes)))
}

/// Turns an event into a subscription observation; `None` when the event says nothing about the subscription.
fn observe(event: &ProcessorEvent, catalog: &Catalog) -> Result<Option<Observation>, DecisionError> {
    let plan_for = |price: &PriceId| {
        catalog
            .by_price(&event.processor, price)
            .map(|p| p.id.clone())
            .ok_or_else(|| DecisionError::UnknownPrice(price.to_string()))
    };
    let at = event.occurred_at;
    let observed = |terms| Some(ObservedTerms { source: TermsSource::Invoice, terms });
    Ok(match &event.payload {
        EventPayload::SubscriptionChanged(s) => Some(Observation {
            at,
            status: s.status,
            terms: Some(ObservedTerms {
                source: TermsSource::Snapshot,
                terms: SubscriptionTerms {
                    plan_id: plan_for(&s.price_id)?,
                    price_id: s.price_id.clone(),
                    quantity: s.quantity,
                    cancel_at_period_end: s.cancel_at_period_end,
                    current_period_start: s.current_period_start,
                    current_period_end: s.current_period_end,
                    trial_end: s.trial_end,
                },
            }),
        }),
        // Terms inferred from an invoice always lose to a snapshot's (TermsSource order), so they only fill in
        // until the subscription object itself arrives.
        EventPayload::InvoicePaid { price_id, period_start, period_end, .. } => Some(Observation {
            at,
            status: SubscriptionStatus::Active,
            terms: match price_id {
                Some(price) => observed(SubscriptionTerms {
                    plan_id: plan_for(price)?,
                    price_id: price.clone(),
                    quantity: 1,
                    cancel_at_period_end: false,
                    current_period_start: *period_start,
                    current_period_end: *period_end,
                    trial_end: None,
                }),
                None => None,
            },
        }),
        EventPayload::InvoicePaymentFailed { .. } => {
            Some(Observation { at, status: SubscriptionStatus::PastDue, terms: None })
        }
        _ => None,
    })
}

/// Effects of the event itself, independent of whether the state changed (each deduplicated by its key).
fn event_effects(event: &ProcessorEvent, workspace: &WorkspaceId, changes: &mut Changes) {
    match &event.payload {
        EventPayload::InvoicePaid { invoice_id, amount, .. } => changes.outbox.push(email(
            workspace,
            format!("email:receipt:{invoice_id}"),
            NotificationKind::PaymentSucceeded,
            json!({"invoice_id": invoice_id, "amount": amount}),
        )),
        EventPayload::InvoicePaymentFailed { invoice_id, amount, attempt_count, .. } => {
            changes.outbox.push(email(
                workspace,
                format!("email:payment_failed:{invoice_id}:{attempt_count}"),
                NotificationKind::PaymentFailed,
                json!({"invoice_id": invoice_id, "amount": amount, "attempt": attempt_count}),
            ));
            changes.outbox.push(webhook(
                workspace,
                format!("webhook:payment_failed:{invoice_id}:{attempt_count}"),
                "billing.payment.failed",
                json!({"invoice_id": invoice_id, "amount": amount, "attempt": attempt_count}),
            ));
        }
        EventPayload::TrialWillEnd { subscription_id, trial_end, .. } => changes.outbox.push(email(
            workspace,
            format!("email:trial_ending:{subscription_id}"),
            NotificationKind::TrialEnding,
            json!({"subscription_id": subscription_id, "trial_end": trial_end}),
        )),
        _ => {}
    }
}

/// Effects of a state change: audit, the outbound `billing.subscription.updated`, and owner emails on the
/// transitions that matter to them.
fn transition_effects(
    before: Option<&Subscription>,
    after: &Subscription,
    event: &ProcessorEvent,
    actor: &Actor,
    changes: &mut Changes,
) {
    let workspace = &after.workspace_id;
    let summary = |s: &Subscription| {
        json!({
            "subscription_id": s.id, "status": s.status, "plan": s.terms.plan_id,
            "cancel_at_period_end": s.terms.cancel_at_period_end,
            "current_period_end": s.terms.current_period_end, "canceled_at": s.canceled_at,
        })
    };
    changes.audit.push(AuditRecord {
        workspace_id: workspace.clone(),
        action: if before.is_none() { "subscription.created" } else { "subscription.updated" }.into(),
        actor: actor.clone(),
        before: before.map(summary),
        after: Some(summary(after)),
        request_id: None,
    });
    changes.outbox.push(webhook(
        workspace,
        format!("webhook:subscription:{}:{}:{}", after.id, event.processor, event.id),
        "billing.subscription.updated",
        summary(after),
    ));
    let was_scheduled = before.is_some_and(|b| b.terms.cancel_at_period_end);
    if after.terms.cancel_at_period_end && !was_scheduled && !after.status.is_terminal() {
        changes.outbox.push(email(
            workspace,
            format!("email:cancellation_scheduled:{}:{}", after.id, event.id),
            NotificationKind::CancellationScheduled,
            json!({"subscription_id": after.id, "ends_at": after.terms.current_period_end}),
        ));
    }
    // Sent when the record first becomes terminal (canceled or expired). Terminal states absorb, so that happens
    // once in any delivery order; the payload holds only what every order agrees on, and the sender reads the
    // final `canceled_at` when it delivers.
    let was_ended = before.is_some_and(|b| b.status.is_terminal());
    if after.status.is_terminal() && !was_ended {
        changes.outbox.push(email(
            workspace,
            format!("email:subscription_ended:{}", after.id),
            NotificationKind::SubscriptionEnded,
            json!({"subscription_id": after.id}),
        ));
    }
}

fn email(workspace: &WorkspaceId, key: String, kind: NotificationKind, payload: serde_json::Value) -> OutboxMessage {
    OutboxMessage { dedup_key: key, workspace_id: workspace.clone(), target: OutboxTarget::Email { kind }, payload }
}

fn webhook(workspace: &WorkspaceId, key: String, topic: &str, payload: serde_json::Value) -> OutboxMessage {
    OutboxMessage {
        dedup_key: key,
        workspace_id: workspace.clone(),
        target: OutboxTarget::Webhook { topic: topic.into() },
        payload,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::catalog::tests::test_catalog;
    use crate::events::PaymentActivityKind;
    use crate::ids::{EventId, ProcessorId};
    use crate::money::{Currency, Money};

    fn refund_event() -> ProcessorEvent {
        ProcessorEvent {
            id: EventId::new("evt_refund"),
            processor: ProcessorId::new("stripe"),
            event_type: "charge.refunded".into(),
            occurred_at: Utc.timestamp_opt(1_767_225_600, 0).unwrap(),
            payload: EventPayload::PaymentActivity {
                activity: PaymentActivityKind::ChargeRefunded,
                customer_id: CustomerId::new("cus_1"),
                object_id: "ch_1".into(),
                amount: Money::new(500, Currency::parse("usd").unwrap()),
                subscription_id: None,
                detail: None,
            },
        }
    }

    #[test]
    fn payment_activity_is_audited_and_announced_once_per_object_without_state_changes() {
        let catalog = test_catalog();
        let workspace = WorkspaceId::parse("acme").unwrap();
        let known = Known { catalog: &catalog, workspace: Some(&workspace), subscription: None };
        let Decision::Apply(changes) = decide(&refund_event(), known).unwrap() else { panic!("applies") };
        assert_eq!(changes.audit.len(), 1);
        assert_eq!(changes.audit[0].action, "charge.refunded");
        assert_eq!(changes.audit[0].workspace_id, workspace);
        assert_eq!(changes.outbox.len(), 1);
        assert_eq!(changes.outbox[0].dedup_key, "webhook:charge.refunded:ch_1");
        assert_eq!(changes.outbox[0].target, OutboxTarget::Webhook { topic: "billing.charge.refunded".into() });
        assert!(changes.subscription.is_none() && changes.credit_grant.is_none() && changes.link_customer.is_none());
    }

    #[test]
    fn payment_activity_of_an_unknown_customer_waits_for_the_link() {
        let catalog = test_catalog();
        let known = Known { catalog: &catalog, workspace: None, subscription: None };
        assert_eq!(
            decide(&refund_event(), known).unwrap(),
            Decision::Park { link: customer_link(&CustomerId::new("cus_1")) }
        );
    }
}
