//! The sandbox's billing portal: a page Tollgate hosts (the domain's `HostedPortalOps`) where the customer cancels
//! at period end, resumes, switches plan or ends a subscription, each emitting the signed `customer.subscription.updated` or
//! `.deleted` Stripe would send, which the edge ingests like any delivery.

use billing_domain::ids::{CustomerId, InvoiceId, ProcessorId, SubscriptionId};
use billing_domain::ports::{
    HostedCheckoutError, HostedInvoice, HostedPortal, HostedPortalOps, PortalAction, PortalSubscription, RawDelivery,
};
use billing_domain::subscription::SubscriptionStatus;

use crate::payloads;
use crate::processor::SandboxProcessor;
use crate::state::{Kind, State, SubscriptionChange};

/// A portal session: whose subscriptions it shows and where it returns.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct PortalRecord {
    pub customer_id: CustomerId,
    pub return_url: String,
}

#[async_trait::async_trait]
impl HostedPortalOps for SandboxProcessor {
    fn processor_id(&self) -> ProcessorId {
        Self::processor_id()
    }

    async fn refresh(&self) {
        if let Err(error) = SandboxProcessor::refresh(self).await {
            tracing::warn!(%error, "sandbox records not read again; the page may show an older copy");
        }
    }

    fn hosted_portal(&self, id: &str) -> Option<HostedPortal> {
        let state = self.lock();
        let portal = state.portals.get(id)?;
        let mut subscriptions: Vec<PortalSubscription> = state
            .subscriptions
            .values()
            .filter(|record| record.snapshot.customer_id == portal.customer_id)
            .map(|record| PortalSubscription {
                id: record.snapshot.subscription_id.clone(),
                price_id: record.snapshot.price_id.clone(),
                plan_name: record.plan_id.to_string(),
                status: record.snapshot.status,
                cancel_at_period_end: record.snapshot.cancel_at_period_end,
                current_period_end: record.snapshot.current_period_end,
            })
            .collect();
        subscriptions.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        Some(HostedPortal {
            id: id.to_owned(),
            customer_id: portal.customer_id.clone(),
            return_url: portal.return_url.clone(),
            subscriptions,
        })
    }

    fn hosted_invoice(&self, id: &InvoiceId) -> Option<HostedInvoice> {
        let state = self.lock();
        let record = state.invoices.iter().find(|invoice| &invoice.id == id)?;
        Some(HostedInvoice {
            invoice: record.to_domain(self.config.base_url()),
            description: record.description.clone(),
            period_start: record.period_start,
            period_end: record.period_end,
        })
    }

    #[tracing::instrument(skip_all, fields(portal_id = %id, subscription_id = %subscription))]
    async fn portal_action(
        &self,
        id: &str,
        subscription: &SubscriptionId,
        action: PortalAction,
    ) -> Result<Vec<RawDelivery>, HostedCheckoutError> {
        let now = self.clock.now();
        let secret = self.signing_secret().map_err(HostedCheckoutError::Unavailable)?;
        let act = |state: &mut State| {
            let (event_type, object) = self.apply_portal_action(state, id, subscription, action.clone(), now)?;
            tracing::info!(event_type, "sandbox portal action");
            Ok(self.sign_all(state, secret, now, vec![(event_type, object)]))
        };
        self.transact(act, HostedCheckoutError::Unavailable).await
    }
}

impl SandboxProcessor {
    /// Carries out a portal action in memory: the event type it announces and the subscription as it now is.
    fn apply_portal_action(
        &self,
        state: &mut State,
        id: &str,
        subscription: &SubscriptionId,
        action: PortalAction,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(&'static str, serde_json::Value), HostedCheckoutError> {
        let customer = state.portals.get(id).ok_or(HostedCheckoutError::UnknownSession)?.customer_id.clone();
        let record = state
            .subscriptions
            .get_mut(subscription)
            .filter(|record| record.snapshot.customer_id == customer)
            .ok_or_else(|| HostedCheckoutError::NotAllowed("no such subscription in this portal".into()))?;
        let (change, event_type) = match action {
            PortalAction::CancelAtPeriodEnd => {
                (SubscriptionChange::Cancel { at_period_end: true }, "customer.subscription.updated")
            }
            PortalAction::Resume => (SubscriptionChange::Resume, "customer.subscription.updated"),
            PortalAction::CancelNow => {
                (SubscriptionChange::Cancel { at_period_end: false }, "customer.subscription.deleted")
            }
            PortalAction::ChangePlan(ref plan) => {
                if plan.price == record.snapshot.price_id {
                    return Err(HostedCheckoutError::NotAllowed(format!(
                        "the subscription is on {} already",
                        plan.name
                    )));
                }
                (SubscriptionChange::ChangePrice(plan.price.clone()), "customer.subscription.updated")
            }
        };
        if record.snapshot.status == SubscriptionStatus::Canceled {
            return Err(HostedCheckoutError::NotAllowed("the subscription has ended".into()));
        }
        record.apply(&change, now).map_err(|e| HostedCheckoutError::NotAllowed(e.to_string()))?;
        if let PortalAction::ChangePlan(plan) = &action {
            // What the item's price object and later invoices show.
            record.switch_plan(&plan.id, &plan.amount, plan.interval);
        }
        let object = payloads::subscription(record);
        state.touched.insert((Kind::Subscription, subscription.to_string()));
        Ok((event_type, object))
    }
}
