//! What a paid or failed invoice does to its workspace's dunning, written in the event's transaction (which holds
//! the workspace's lock): a failure opens the workspace's case (or joins it); paying the last unpaid invoice
//! closes it and lifts the restriction at once. The schedule itself runs from the dunning job.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::ApplyError;
use super::scope::Scope;
use crate::dunning::{CloseReason, DunningCase, DunningSignal, NewCase, RESTRICTED_REASON};
use crate::error::StoreError;
use crate::ids::{ProcessorId, WorkspaceId};
use crate::lifecycle::webhook;
use crate::ports::Transaction;
use crate::records::{Actor, AuditRecord};

pub(super) async fn apply(
    tx: &dyn Transaction,
    scope: &mut Scope,
    processor: &ProcessorId,
    (workspace, signal): &(WorkspaceId, DunningSignal),
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), ApplyError> {
    let dunning = tx.dunning();
    match signal {
        DunningSignal::PaymentFailed { invoice_id, subscription_id, amount } => {
            // A failure of an invoice known already (retried, or paid before its failure arrived) changes nothing.
            if dunning.case_for_invoice(workspace, invoice_id).await?.is_some() {
                return Ok(());
            }
            let open = dunning.open_case(workspace).await?;
            let row = NewCase {
                workspace_id: workspace.clone(),
                processor: processor.clone(),
                invoice_id: invoice_id.clone(),
                subscription_id: subscription_id.clone(),
                amount: amount.clone(),
                opened_at: now,
                // A new case: the job looks at once and runs step 0 when the schedule says. An invoice failing
                // while the workspace is in dunning joins that case and its schedule.
                first_step_at: open.is_none().then_some(now),
            };
            let opened = match dunning.open(&row).await {
                Ok(opened) => opened,
                Err(StoreError::Duplicate(_)) => return Ok(()),
                Err(other) => return Err(other.into()),
            };
            if open.is_none() {
                let record = audit(&opened, "dunning.opened", actor, None, Some(summary(&opened)));
                scope.audit(tx, &record, now).await?;
            }
        }
        DunningSignal::Paid { invoice_id, amount } => {
            let Some(paid) = dunning.case_for_invoice(workspace, invoice_id).await? else {
                // So that this invoice's failure, arriving late, opens no case.
                let marker = NewCase {
                    workspace_id: workspace.clone(),
                    processor: processor.clone(),
                    invoice_id: invoice_id.clone(),
                    subscription_id: None,
                    amount: amount.clone(),
                    opened_at: now,
                    first_step_at: None,
                };
                dunning.insert_closed(&marker, CloseReason::Paid).await?;
                return Ok(());
            };
            let case = dunning.open_case(workspace).await?;
            if !dunning.close(paid.id, CloseReason::Paid, now).await? {
                return Ok(());
            }
            // The case's own invoice was paid: another still unpaid takes its schedule over, or the case ends.
            if case.as_ref().is_some_and(|c| c.id == paid.id) {
                match dunning.open_case(workspace).await? {
                    Some(next) => dunning.adopt(next.id, paid.next_step, paid.next_step_at, paid.opened_at).await?,
                    None => close_case(tx, scope, &paid, invoice_id, actor, now).await?,
                }
            }
        }
    }
    Ok(())
}

/// The last unpaid invoice of a case was paid: the restriction goes at once, and the product hears of it.
async fn close_case(
    tx: &dyn Transaction,
    scope: &mut Scope,
    case: &DunningCase,
    invoice_id: &crate::ids::InvoiceId,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), ApplyError> {
    let workspace = &case.workspace_id;
    lift_restriction(tx, workspace, now).await?;
    let after = json!({"status": "closed", "reason": "paid", "paid_invoice_id": invoice_id});
    let record = audit(case, "dunning.closed", actor, Some(summary(case)), Some(after));
    scope.audit(tx, &record, now).await?;
    let key = format!("webhook:dunning_closed:{}", case.id);
    let payload = json!({"case_id": case.id, "reason": "paid", "invoice_id": invoice_id});
    scope.outbox(tx, &webhook(workspace, key, "billing.dunning.closed", payload), now).await?;
    Ok(())
}

/// Lifts a restriction dunning set; one an operator set for another reason stays.
pub(crate) async fn lift_restriction(
    tx: &dyn Transaction,
    workspace: &WorkspaceId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if let Some(current) = tx.workspaces().get(workspace).await?
        && current.restricted
        && current.restricted_reason.as_deref() == Some(RESTRICTED_REASON)
    {
        tx.workspaces().set_restricted(workspace, false, None, now).await?;
    }
    Ok(())
}

/// A case as the audit log and `GET /v1/workspaces/{id}` show it.
pub(crate) fn summary(case: &DunningCase) -> serde_json::Value {
    json!({
        "case_id": case.id, "invoice_id": case.invoice_id, "status": case.status, "next_step": case.next_step,
        "next_step_at": case.next_step_at, "opened_at": case.opened_at, "amount": case.amount,
    })
}

pub(crate) fn audit(
    case: &DunningCase,
    action: &str,
    actor: &Actor,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> AuditRecord {
    AuditRecord {
        workspace_id: case.workspace_id.clone(),
        action: action.to_owned(),
        actor: actor.clone(),
        before,
        after,
        request_id: None,
    }
}
