//! The `PaymentProcessor` contract (`billing_domain::testing::processor_contract`, written once) run against every
//! adapter: the sandbox and Stripe (on localstripe). Each adapter comes with a peer here that can put a live
//! subscription behind it and sign deliveries the way its processor does.

use std::sync::Arc;

use async_trait::async_trait;
use billing_domain::ids::{CustomerId, PaymentId, PriceId, SubscriptionId};
use billing_domain::ports::{
    CheckoutAnswer, CheckoutOps, CheckoutRequest, CustomerOps, HostedCheckoutOps, PaymentProcessor, ProcessorInfo,
};
use billing_domain::testing::{
    CountingIds, FixedClock, ProcessorPeer, checkout_request, pro_monthly, processor_contract,
};
use billing_domain::workspace::Workspace;
use billing_sandbox::{SandboxConfig, SandboxProcessor};
use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::support::{Localstripe, WEBHOOK_SECRET, adapter, localstripe_url, workspace};

struct StripePeer {
    adapter: billing_stripe::StripeProcessor,
    localstripe: Localstripe,
}

#[async_trait]
impl ProcessorPeer for StripePeer {
    fn processor(&self) -> &dyn PaymentProcessor {
        &self.adapter
    }

    fn new_workspace(&self) -> Workspace {
        workspace()
    }

    async fn live_subscription(&self, workspace: &Workspace) -> (CustomerId, SubscriptionId, PriceId) {
        let customer = self.adapter.ensure_customer(workspace, None).await.unwrap();
        let plan = self.localstripe.plan(2900).await;
        self.localstripe.add_card(customer.as_str()).await;
        let subscription = self.localstripe.subscribe(customer.as_str(), &plan).await;
        (customer, SubscriptionId::new(subscription), PriceId::new(plan))
    }

    fn sign(&self, body: &[u8], at: DateTime<Utc>) -> (String, String) {
        let header = billing_stripe::signature::sign(&SecretString::from(WEBHOOK_SECRET), at.timestamp(), body);
        (billing_stripe::SIGNATURE_HEADER.to_owned(), header)
    }

    /// What Stripe.js does with the client secret: a card attached, then confirmed.
    async fn pay(&self, payment: &PaymentId) {
        self.localstripe.pay_intent(payment.as_str()).await;
    }

    /// localstripe ignores idempotency keys and refunds whatever is asked. That the adapter sends the keys and
    /// maps Stripe's refusal (a 400) to `Rejected` is checked against wiremock (`wiremock_calls.rs`).
    fn enforces_processor_rules(&self) -> bool {
        false
    }
}

struct SandboxPeer {
    adapter: SandboxProcessor,
}

impl SandboxPeer {
    fn new() -> Self {
        let config = SandboxConfig {
            public_base_url: "http://127.0.0.1:8080".into(),
            webhook_secrets: vec![SecretString::from(WEBHOOK_SECRET)],
            tolerance_secs: 300,
        };
        let clock = FixedClock::at(Utc::now());
        Self { adapter: SandboxProcessor::new(config, Arc::new(CountingIds::default()), Arc::new(clock)) }
    }
}

#[async_trait]
impl ProcessorPeer for SandboxPeer {
    fn processor(&self) -> &dyn PaymentProcessor {
        &self.adapter
    }

    fn new_workspace(&self) -> Workspace {
        workspace()
    }

    async fn live_subscription(&self, workspace: &Workspace) -> (CustomerId, SubscriptionId, PriceId) {
        let customer = self.adapter.ensure_customer(workspace, None).await.unwrap();
        let request = CheckoutRequest {
            workspace: workspace.clone(),
            idempotency_key: format!("contract:{}", workspace.id),
            ..checkout_request(workspace.id.as_str(), &customer, pro_monthly())
        };
        let price = request.price_id.clone();
        let session = self.adapter.create_checkout(&request).await.unwrap();
        let deliveries = self.adapter.pay(session.id.as_str()).await.unwrap();
        let subscription = deliveries
            .iter()
            .find_map(|delivery| {
                let event = billing_sandbox::parse_event(&self.adapter.id(), delivery.body.as_bytes()).ok()?;
                event.payload.subscription_id().cloned()
            })
            .expect("paying a subscription checkout creates a subscription");
        (customer, subscription, price)
    }

    fn sign(&self, body: &[u8], at: DateTime<Utc>) -> (String, String) {
        let header = billing_sandbox::signature::sign(&SecretString::from(WEBHOOK_SECRET), at.timestamp(), body);
        (billing_sandbox::SIGNATURE_HEADER.to_owned(), header)
    }

    /// The Pay button of the sandbox's payment page.
    async fn pay(&self, payment: &PaymentId) {
        let id = billing_domain::ids::CheckoutSessionId::new(payment.as_str());
        let deliveries = self.adapter.answer(&id, CheckoutAnswer::Pay).await.unwrap();
        assert_eq!(deliveries[0].event_type, "payment_intent.succeeded");
    }
}

#[tokio::test]
async fn the_sandbox_meets_the_processor_contract() {
    processor_contract(&SandboxPeer::new()).await;
}

#[tokio::test]
async fn the_stripe_adapter_meets_the_processor_contract() {
    processor_contract(&StripePeer { adapter: adapter(&localstripe_url()), localstripe: Localstripe::new() }).await;
}
