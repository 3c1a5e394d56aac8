//! Money outside the subscription state machine: a PaymentIntent's outcome or a refunded charge is merged into the
//! payments table, and a paid PaymentIntent Tollgate created for a credits plan grants its credits once. Each is
//! audited and announced to the product.

use super::*;
use crate::payment::{self, PaymentObservation, PaymentStatus};

pub(super) fn payment_event(
    event: &ProcessorEvent,
    actor: Actor,
    workspace: &WorkspaceId,
    known: Known<'_>,
) -> Result<Decision, DecisionError> {
    let EventPayload::PaymentActivity {
        activity,
        customer_id,
        object_id,
        amount,
        subscription_id,
        detail,
        payment_id,
        plan_id,
        paid_for,
        refunded,
    } = &event.payload
    else {
        return Ok(Decision::Ignore);
    };
    let details = json!({
        "object_id": object_id, "amount": amount, "subscription_id": subscription_id, "detail": detail,
        "payment_id": payment_id, "refunded": refunded,
    });
    let mut changes = payment_activity(actor, workspace, *activity, object_id, details);
    let status = match activity {
        PaymentActivityKind::InvoiceUpcoming => None,
        PaymentActivityKind::PaymentFailed => Some(PaymentStatus::Failed),
        // A refunded charge was paid.
        PaymentActivityKind::PaymentSucceeded | PaymentActivityKind::ChargeRefunded => Some(PaymentStatus::Succeeded),
    };
    let (Some(status), Some(payment_id)) = (status, payment_id) else {
        return Ok(Decision::Apply(Box::new(changes)));
    };
    if status == PaymentStatus::Succeeded
        && let Some(plan_id) = plan_id
    {
        let plan = known.catalog.get(plan_id).ok_or_else(|| DecisionError::UnknownPlan(plan_id.to_string()))?;
        if let PlanKind::Credits { credits } = plan.kind {
            changes.credit_grant = Some(CreditGrant {
                workspace_id: workspace.clone(),
                amount: i64::from(credits),
                key: payment::grant_key(payment_id),
            });
        }
    }
    changes.payment = Some(PaymentObservation {
        id: payment_id.clone(),
        processor: event.processor.clone(),
        workspace_id: workspace.clone(),
        customer_id: customer_id.clone(),
        amount: amount.clone(),
        status,
        refunded: refunded.as_ref().map(|r| r.minor),
        plan_id: plan_id.clone().or_else(|| paid_for.clone()),
        description: None,
    });
    Ok(Decision::Apply(Box::new(changes)))
}
