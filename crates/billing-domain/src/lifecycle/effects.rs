//! What an event or a state change causes besides the state: audit entries, owner emails and outbound webhooks,
//! each with a key that makes it happen once.

use super::*;
use crate::dunning::DunningSignal;

/// An audit entry and an outbound `billing.<action>` webhook, each once per processor object.
pub(super) fn payment_activity(
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

/// Effects of the event itself, independent of whether the state changed (each deduplicated by its key). `plan`
/// is the plan of the event's subscription, when known, for the owner's email.
pub(super) fn event_effects(
    event: &ProcessorEvent,
    workspace: &WorkspaceId,
    plan: Option<&PlanId>,
    changes: &mut Changes,
) {
    match &event.payload {
        EventPayload::InvoicePaid { invoice_id, amount, invoice_url, subscription_id, .. } => {
            let signal = DunningSignal::Paid { invoice_id: invoice_id.clone(), amount: amount.clone() };
            changes.dunning = Some((workspace.clone(), signal));
            changes.outbox.push(email(
                workspace,
                format!("email:receipt:{invoice_id}"),
                NotificationKind::PaymentSucceeded,
                json!({"invoice_id": invoice_id, "amount": amount, "plan": plan, "invoice_url": invoice_url}),
            ));
            changes.outbox.push(webhook(
                workspace,
                format!("webhook:payment_succeeded:{invoice_id}"),
                "billing.payment.succeeded",
                json!({"invoice_id": invoice_id, "amount": amount, "subscription_id": subscription_id, "plan": plan}),
            ));
        }
        EventPayload::InvoicePaymentFailed { invoice_id, amount, attempt_count, subscription_id, .. } => {
            let signal = DunningSignal::PaymentFailed {
                invoice_id: invoice_id.clone(),
                subscription_id: subscription_id.clone(),
                amount: amount.clone(),
            };
            changes.dunning = Some((workspace.clone(), signal));
            changes.outbox.push(email(
                workspace,
                format!("email:payment_failed:{invoice_id}:{attempt_count}"),
                NotificationKind::PaymentFailed,
                json!({"invoice_id": invoice_id, "amount": amount, "attempt": attempt_count, "plan": plan}),
            ));
            changes.outbox.push(webhook(
                workspace,
                format!("webhook:payment_failed:{invoice_id}:{attempt_count}"),
                "billing.payment.failed",
                json!({
                    "invoice_id": invoice_id, "amount": amount, "attempt": attempt_count,
                    "subscription_id": subscription_id,
                }),
            ));
        }
        EventPayload::TrialWillEnd { subscription_id, trial_end, .. } => {
            changes.outbox.push(email(
                workspace,
                format!("email:trial_ending:{subscription_id}"),
                NotificationKind::TrialEnding,
                json!({"subscription_id": subscription_id, "trial_end": trial_end, "plan": plan}),
            ));
            changes.outbox.push(webhook(
                workspace,
                format!("webhook:trial_ending:{subscription_id}"),
                "billing.trial.ending",
                json!({"subscription_id": subscription_id, "trial_end": trial_end, "plan": plan}),
            ));
        }
        _ => {}
    }
}

/// Effects of a state change: audit, the outbound `billing.subscription.updated`, and owner emails on the
/// transitions that matter to them.
pub(super) fn transition_effects(
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
            json!({
                "subscription_id": after.id, "ends_at": after.terms.current_period_end, "plan": after.terms.plan_id,
            }),
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
            json!({"subscription_id": after.id, "plan": after.terms.plan_id}),
        ));
    }
}

pub(crate) fn email(
    workspace: &WorkspaceId,
    key: String,
    kind: NotificationKind,
    payload: serde_json::Value,
) -> OutboxMessage {
    OutboxMessage {
        dedup_key: key,
        workspace_id: workspace.clone(),
        target: OutboxTarget::Email { kind },
        payload,
        request_id: None,
    }
}

pub(crate) fn webhook(workspace: &WorkspaceId, key: String, topic: &str, payload: serde_json::Value) -> OutboxMessage {
    OutboxMessage {
        dedup_key: key,
        workspace_id: workspace.clone(),
        target: OutboxTarget::Webhook { topic: topic.into() },
        payload,
        request_id: None,
    }
}

/// Why a workspace's credit balance moved, as `billing.credits.changed` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditChange {
    /// A credit pack was paid for.
    Purchased,
    /// The product consumed them through the API.
    Consumed,
    /// A refund of a credit pack took its share back.
    Revoked,
}

impl CreditChange {
    pub fn as_str(self) -> &'static str {
        match self {
            CreditChange::Purchased => "purchased",
            CreditChange::Consumed => "consumed",
            CreditChange::Revoked => "revoked",
        }
    }
}

/// `billing.credits.changed`, once per ledger entry (its key): by how much, why, and the balance after it.
pub fn credits_changed(
    workspace: &WorkspaceId,
    ledger_key: &str,
    delta: i64,
    balance: i64,
    reason: CreditChange,
) -> OutboxMessage {
    webhook(
        workspace,
        format!("webhook:credits:{ledger_key}"),
        "billing.credits.changed",
        json!({"delta": delta, "balance": balance, "reason": reason.as_str(), "ledger_key": ledger_key}),
    )
}
