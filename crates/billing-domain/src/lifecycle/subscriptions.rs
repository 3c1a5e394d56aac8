//! Subscription events: the event as an observation, merged into the convergent record.

use super::effects::{event_effects, transition_effects};
use super::*;

pub(super) fn subscription_event(
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
        event_effects(event, workspace, known.subscription.map(|s| &s.terms.plan_id), &mut changes);
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
    event_effects(event, workspace, Some(&after.terms.plan_id), &mut changes);
    if changed {
        let after = Subscription { version: known.subscription.map_or(0, |b| b.version + 1), ..after };
        transition_effects(known.subscription, &after, event, &actor, &mut changes);
        changes.subscription = Some(SubscriptionChange { before: known.subscription.cloned(), after });
    }
    Ok(Decision::Apply(Box::new(changes)))
}

/// Turns an event into a subscription observation; `None` when the event says nothing about the subscription.
pub(super) fn observe(event: &ProcessorEvent, catalog: &Catalog) -> Result<Option<Observation>, DecisionError> {
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
