//! The `PaymentProcessor` port, implemented from the sandbox's own records (payments and refunds in `payments.rs`).

use async_trait::async_trait;
use billing_domain::catalog::PlanKind;
use billing_domain::error::ProcessorError;
use billing_domain::events::{ProcessorEvent, SubscriptionSnapshot};
use billing_domain::ids::{CheckoutSessionId, CustomerId, InvoiceId, PriceId, ProcessorId, SubscriptionId};
use billing_domain::money::Money;
use billing_domain::ports::{
    Capabilities, ChangePreview, CheckoutOps, CheckoutRequest, CheckoutSession, CustomerOps, HostedCheckoutStatus,
    InvoiceOps, InvoicePage, PortalOps, ProcessorInfo, Proration, SubscriptionOps, UsageReportingOps, WebhookError,
    WebhookHeaders, WebhookOps,
};
use billing_domain::workspace::Workspace;
use chrono::{DateTime, Utc};

use crate::processor::SandboxProcessor;
use crate::state::{Kind, SessionRecord, SoldPlan, State, SubscriptionChange};

impl ProcessorInfo for SandboxProcessor {
    fn id(&self) -> ProcessorId {
        SandboxProcessor::processor_id()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            checkout: true,
            portal: true,
            invoices: true,
            subscription_changes: true,
            payments: true,
            refunds: true,
            usage_reporting: true,
        }
    }
}

#[async_trait]
impl CustomerOps for SandboxProcessor {
    #[tracing::instrument(skip_all, fields(workspace_id = %workspace.id))]
    async fn ensure_customer(
        &self,
        workspace: &Workspace,
        known: Option<CustomerId>,
    ) -> Result<CustomerId, ProcessorError> {
        if let Some(customer) = self.fresh().await?.customers.get(&workspace.id) {
            return Ok(customer.clone());
        }
        let remember = |state: &mut State| {
            let customer = state.customers.get(&workspace.id).cloned().unwrap_or_else(|| {
                // A known one is remembered too, so a sandbox that lost its records never makes a second one.
                let customer = known.clone().unwrap_or_else(|| CustomerId::new(self.ids.new_id("cus_sbx_")));
                state.customers.insert(workspace.id.clone(), customer.clone());
                state.touch(Kind::Customer, workspace.id.as_str());
                customer
            });
            Ok(customer)
        };
        self.transact(remember, ProcessorError::Unavailable).await
    }
}

#[async_trait]
impl CheckoutOps for SandboxProcessor {
    #[tracing::instrument(skip_all, fields(workspace_id = %request.workspace.id, plan_id = %request.plan.id))]
    async fn create_checkout(&self, request: &CheckoutRequest) -> Result<CheckoutSession, ProcessorError> {
        let now = self.clock.now();
        // The coupon's discount applies to what this checkout charges (Stripe's `duration: once`).
        let amount = match &request.coupon {
            Some(coupon) => {
                coupon.discounted(&request.plan.price).map_err(|e| ProcessorError::Rejected(e.to_string()))?
            }
            None => request.plan.price.clone(),
        };
        let sold = SoldPlan::from(&request.plan);
        let record = |state: &mut State| Ok(self.record_session(state, request, sold.clone(), amount.clone(), now));
        let id = self.transact(record, ProcessorError::Unavailable).await?;
        let url = format!("{}/sandbox/checkout/{id}", self.config.base_url());
        Ok(CheckoutSession { id, url })
    }
}

impl SandboxProcessor {
    /// The session of `request`'s idempotency key, recorded now if it is new.
    fn record_session(
        &self,
        state: &mut State,
        request: &CheckoutRequest,
        sold: SoldPlan,
        amount: billing_domain::money::Money,
        now: DateTime<Utc>,
    ) -> CheckoutSessionId {
        let known = state.sessions_by_key.get(&request.idempotency_key).cloned();
        match known {
            Some(id) => id.clone(),
            None => {
                let id = CheckoutSessionId::new(self.ids.new_id("cs_sbx_"));
                state.sessions.insert(
                    id.clone(),
                    SessionRecord {
                        id: id.clone(),
                        workspace_id: request.workspace.id.clone(),
                        customer_id: request.customer_id.clone(),
                        plan: sold,
                        price_id: request.price_id.clone(),
                        success_url: request.success_url.clone(),
                        cancel_url: request.cancel_url.clone(),
                        status: HostedCheckoutStatus::Open,
                        created: now,
                        amount,
                        coupon: request.coupon.as_ref().map(|c| c.code.clone()),
                    },
                );
                state.sessions_by_key.insert(request.idempotency_key.clone(), id.clone());
                state.touch(Kind::Session, id.as_str());
                state.touch(Kind::SessionKey, &request.idempotency_key);
                if !state.customers.contains_key(&request.workspace.id) {
                    state.customers.insert(request.workspace.id.clone(), request.customer_id.clone());
                    state.touch(Kind::Customer, request.workspace.id.as_str());
                }
                id
            }
        }
    }
}

#[async_trait]
impl PortalOps for SandboxProcessor {
    /// A portal session on Tollgate's own `/sandbox/portal/{id}` page (`portal.rs`).
    async fn create_portal(&self, customer: &CustomerId, return_url: &str) -> Result<String, ProcessorError> {
        let id = self.ids.new_id("bps_sbx_");
        let record = crate::portal::PortalRecord { customer_id: customer.clone(), return_url: return_url.to_owned() };
        let remember = |state: &mut State| {
            state.portals.insert(id.clone(), record.clone());
            state.touch(Kind::Portal, &id);
            Ok(())
        };
        self.transact(remember, ProcessorError::Unavailable).await?;
        Ok(format!("{}/sandbox/portal/{id}", self.config.base_url()))
    }
}

#[async_trait]
impl SubscriptionOps for SandboxProcessor {
    #[tracing::instrument(skip_all, fields(subscription_id = %id, at_period_end))]
    async fn cancel(
        &self,
        id: &SubscriptionId,
        at_period_end: bool,
        idempotency_key: &str,
    ) -> Result<SubscriptionSnapshot, ProcessorError> {
        let change = SubscriptionChange::Cancel { at_period_end };
        self.change(id, change, idempotency_key).await
    }

    #[tracing::instrument(skip_all, fields(subscription_id = %id))]
    async fn resume(&self, id: &SubscriptionId, idempotency_key: &str) -> Result<SubscriptionSnapshot, ProcessorError> {
        self.change(id, SubscriptionChange::Resume, idempotency_key).await
    }

    /// Proration is accepted and ignored: the sandbox bills nothing until the next period.
    #[tracing::instrument(skip_all, fields(subscription_id = %id, price_id = %price))]
    async fn change_price(
        &self,
        id: &SubscriptionId,
        price: &PriceId,
        _proration: Proration,
        idempotency_key: &str,
    ) -> Result<SubscriptionSnapshot, ProcessorError> {
        if price.as_str().is_empty() {
            return Err(ProcessorError::Rejected("empty price id".to_owned()));
        }
        let change = SubscriptionChange::ChangePrice(price.clone());
        let plan = self.catalog.as_ref().and_then(|c| c.by_price(&Self::processor_id(), price)).map(SoldPlan::from);
        let now = self.clock.now();
        let apply = |state: &mut State| {
            let snapshot = state.change_subscription(id, change.clone(), idempotency_key, now)?;
            // What the renewals bill from now on: the new plan's price and interval.
            if let (Some(plan), Ok(record)) = (&plan, state.subscription_mut(id))
                && let PlanKind::Subscription { interval } = plan.kind
            {
                record.switch_plan(&plan.id, &plan.price, interval);
            }
            Ok(snapshot)
        };
        self.transact(apply, ProcessorError::Unavailable).await
    }

    /// The sandbox prorates nothing: a change bills the new price from the next period on, so the preview is zero
    /// now, in the subscription's currency.
    #[tracing::instrument(skip_all, fields(subscription_id = %id))]
    async fn preview_price_change(
        &self,
        id: &SubscriptionId,
        price: &PriceId,
        _proration: Proration,
    ) -> Result<ChangePreview, ProcessorError> {
        if price.as_str().is_empty() {
            return Err(ProcessorError::Rejected("empty price id".to_owned()));
        }
        let mut state = self.fresh().await?;
        let currency = state.subscription_mut(id)?.amount.currency.clone();
        Ok(ChangePreview { prorated: Money { minor: 0, currency } })
    }

    #[tracing::instrument(skip_all, fields(subscription_id = %id))]
    async fn fetch(&self, id: &SubscriptionId) -> Result<SubscriptionSnapshot, ProcessorError> {
        let mut state = self.fresh().await?;
        Ok(state.subscription_mut(id)?.snapshot.clone())
    }

    /// From the sandbox's own records, in id order (the sandbox has no pages).
    #[tracing::instrument(skip_all, fields(customer_id = %customer))]
    async fn list_for_customer(&self, customer: &CustomerId) -> Result<Vec<SubscriptionSnapshot>, ProcessorError> {
        let state = self.fresh().await?;
        let mut found: Vec<SubscriptionSnapshot> = state
            .subscriptions
            .values()
            .filter(|record| &record.snapshot.customer_id == customer)
            .map(|record| record.snapshot.clone())
            .collect();
        found.sort_by(|a, b| a.subscription_id.as_str().cmp(b.subscription_id.as_str()));
        Ok(found)
    }
}

impl SandboxProcessor {
    /// One idempotent subscription change at the clock's now.
    async fn change(
        &self,
        id: &SubscriptionId,
        change: SubscriptionChange,
        idempotency_key: &str,
    ) -> Result<SubscriptionSnapshot, ProcessorError> {
        let now = self.clock.now();
        let apply = |state: &mut State| state.change_subscription(id, change.clone(), idempotency_key, now);
        self.transact(apply, ProcessorError::Unavailable).await
    }
}

#[async_trait]
impl InvoiceOps for SandboxProcessor {
    #[tracing::instrument(skip_all, fields(customer_id = %customer, limit))]
    async fn list_invoices(
        &self,
        customer: &CustomerId,
        limit: u32,
        starting_after: Option<InvoiceId>,
    ) -> Result<InvoicePage, ProcessorError> {
        self.fresh().await?.invoice_page(customer, limit, starting_after.as_ref(), self.config.base_url())
    }
}

#[async_trait]
impl UsageReportingOps for SandboxProcessor {
    /// Tallied by its meter (`meters.rs`); the key is the meter event's identifier, taken once.
    #[tracing::instrument(skip_all, fields(customer_id = %customer, metric))]
    async fn report_usage(
        &self,
        customer: &CustomerId,
        metric: &str,
        quantity: rust_decimal::Decimal,
        at: DateTime<Utc>,
        idempotency_key: &str,
    ) -> Result<(), ProcessorError> {
        let record = |state: &mut State| state.record_meter_event(customer, metric, quantity, at, idempotency_key);
        self.transact(record, ProcessorError::Unavailable).await
    }
}

impl WebhookOps for SandboxProcessor {
    fn verify_and_parse(
        &self,
        headers: &WebhookHeaders,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<ProcessorEvent, WebhookError> {
        let signing = stripe_wire::Signing {
            header: "Sandbox-Signature",
            secrets: &self.config.webhook_secrets,
            tolerance_secs: self.config.tolerance_secs,
        };
        stripe_wire::verify_and_parse(&self.id(), &signing, headers, body, now)
    }
}

#[cfg(test)]
mod tests;
