//! A completed checkout: the customer link of a subscription checkout, the credits of a one-time one.

use super::*;

#[allow(clippy::too_many_arguments)]
pub(super) fn checkout_completed(
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
