//! The `PaymentProcessor` contract, written once and run against every adapter: the sandbox and Stripe (on
//! localstripe). Each adapter comes with a peer that can put a live subscription behind it and sign deliveries the
//! way its processor does; the checks themselves only use the port.

use std::sync::Arc;

use async_trait::async_trait;
use billing_domain::catalog::{Interval, Plan, PlanKind};
use billing_domain::error::ProcessorError;
use billing_domain::events::EventPayload;
use billing_domain::ids::{CustomerId, InvoiceId, PlanId, PriceId, SubscriptionId};
use billing_domain::money::{Currency, Money};
use billing_domain::ports::{
    CheckoutOps, CheckoutRequest, Clock, CustomerOps, IdGenerator, PaymentProcessor, ProcessorInfo, Proration,
    WebhookError,
};
use billing_domain::subscription::SubscriptionStatus;
use billing_domain::workspace::Workspace;
use billing_sandbox::{SandboxConfig, SandboxProcessor};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::json;

use crate::support::{Localstripe, WEBHOOK_SECRET, adapter, localstripe_url, workspace};

/// What a contract check needs besides the adapter itself.
#[async_trait]
trait Peer: Send + Sync {
    fn processor(&self) -> &dyn PaymentProcessor;
    /// An active subscription of a new customer of `workspace`, created at the processor.
    async fn live_subscription(&self, workspace: &Workspace) -> (CustomerId, SubscriptionId, PriceId);
    /// The header (name, value) the processor would sign `body` with at `at`.
    fn sign(&self, body: &[u8], at: DateTime<Utc>) -> (String, String);
}

struct StripePeer {
    adapter: billing_stripe::StripeProcessor,
    localstripe: Localstripe,
}

#[async_trait]
impl Peer for StripePeer {
    fn processor(&self) -> &dyn PaymentProcessor {
        &self.adapter
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
}

struct SandboxPeer {
    adapter: SandboxProcessor,
}

struct SystemClock;
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

struct RandomIds;
impl IdGenerator for RandomIds {
    fn new_id(&self, prefix: &str) -> String {
        format!("{prefix}{}", uuid::Uuid::new_v4().simple())
    }
}

impl SandboxPeer {
    fn new() -> Self {
        let config = SandboxConfig {
            public_base_url: "http://127.0.0.1:8080".into(),
            webhook_secrets: vec![SecretString::from(WEBHOOK_SECRET)],
            tolerance_secs: 300,
        };
        Self { adapter: SandboxProcessor::new(config, Arc::new(RandomIds), Arc::new(SystemClock)) }
    }
}

#[async_trait]
impl Peer for SandboxPeer {
    fn processor(&self) -> &dyn PaymentProcessor {
        &self.adapter
    }

    async fn live_subscription(&self, workspace: &Workspace) -> (CustomerId, SubscriptionId, PriceId) {
        let customer = self.adapter.ensure_customer(workspace, None).await.unwrap();
        let price = PriceId::new("price_sandbox_pro");
        let plan = Plan {
            id: PlanId::new("pro"),
            name: "Pro".into(),
            description: String::new(),
            kind: PlanKind::Subscription { interval: Interval::Month },
            price: Money::new(2900, Currency::parse("usd").unwrap()),
            processor_prices: Default::default(),
            limits: Default::default(),
            features: Default::default(),
            metered: Vec::new(),
            is_default: false,
        };
        let session = self
            .adapter
            .create_checkout(&CheckoutRequest {
                workspace: workspace.clone(),
                customer_id: customer.clone(),
                plan,
                price_id: price.clone(),
                success_url: "http://127.0.0.1/ok".into(),
                cancel_url: "http://127.0.0.1/cancel".into(),
                idempotency_key: format!("contract:{}", workspace.id),
            })
            .await
            .unwrap();
        let deliveries = self.adapter.pay(session.id.as_str()).unwrap();
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
}

/// Runs every check of the contract against `peer`.
async fn contract(peer: &dyn Peer) {
    customers_are_never_duplicated(peer).await;
    subscriptions_can_be_fetched_and_changed(peer).await;
    unknown_objects_are_rejected_or_empty(peer).await;
    webhooks_verify_before_they_parse(peer).await;
    capabilities_tell_the_truth(peer).await;
}

async fn customers_are_never_duplicated(peer: &dyn Peer) {
    let processor = peer.processor();
    let ws = workspace();
    let first = processor.ensure_customer(&ws, None).await.unwrap();
    assert_eq!(processor.ensure_customer(&ws, None).await.unwrap(), first, "{}: found again", processor.id());
    assert_eq!(processor.ensure_customer(&ws, Some(first.clone())).await.unwrap(), first);
    let other = processor.ensure_customer(&workspace(), None).await.unwrap();
    assert_ne!(other, first, "{}: another workspace gets another customer", processor.id());
}

async fn subscriptions_can_be_fetched_and_changed(peer: &dyn Peer) {
    let processor = peer.processor();
    let (customer, id, price) = peer.live_subscription(&workspace()).await;
    let fetched = processor.fetch(&id).await.unwrap();
    assert_eq!((&fetched.subscription_id, &fetched.customer_id, &fetched.price_id), (&id, &customer, &price));
    assert_eq!(fetched.status, SubscriptionStatus::Active);
    if !processor.capabilities().subscription_changes {
        return;
    }
    let key = |what: &str| format!("contract:{what}:{id}");
    let canceling = processor.cancel(&id, true, &key("cancel")).await.unwrap();
    assert!(canceling.cancel_at_period_end && canceling.status == SubscriptionStatus::Active);
    assert!(processor.fetch(&id).await.unwrap().cancel_at_period_end, "{}: the change is stored", processor.id());
    let resumed = processor.resume(&id, &key("resume")).await.unwrap();
    assert!(!resumed.cancel_at_period_end);
    let ended = processor.cancel(&id, false, &key("end")).await.unwrap();
    assert_eq!(ended.status, SubscriptionStatus::Canceled);
    assert_eq!(processor.fetch(&id).await.unwrap().status, SubscriptionStatus::Canceled);
    let listed = processor.list_for_customer(&customer).await.unwrap();
    let ours: Vec<_> = listed.iter().filter(|s| s.subscription_id == id).collect();
    assert_eq!(ours.len(), 1, "{}: the customer's listing holds canceled ones too: {listed:?}", processor.id());
    assert_eq!(ours[0].status, SubscriptionStatus::Canceled);
    assert!(listed.iter().all(|s| s.customer_id == customer), "{}: only this customer's", processor.id());
    if processor.capabilities().invoices {
        let page = processor.list_invoices(&customer, 10, None).await.unwrap();
        assert!(page.invoices.iter().any(|i| i.status == "paid"), "{}: the first period was paid", processor.id());
    }
}

async fn unknown_objects_are_rejected_or_empty(peer: &dyn Peer) {
    let processor = peer.processor();
    let unknown = processor.fetch(&SubscriptionId::new("sub_contract_unknown")).await;
    assert!(matches!(unknown, Err(ProcessorError::Rejected(_))), "{}: {unknown:?}", processor.id());
    let none = processor.list_for_customer(&CustomerId::new("cus_contract_unknown")).await.unwrap();
    assert!(none.is_empty(), "{}: an unknown customer has no subscriptions", processor.id());
    if processor.capabilities().invoices {
        let none = processor.list_invoices(&CustomerId::new("cus_contract_unknown"), 10, None).await.unwrap();
        assert!(none.invoices.is_empty() && !none.has_more);
        let after = Some(InvoiceId::new("in_contract_unknown"));
        let none = processor.list_invoices(&CustomerId::new("cus_contract_unknown"), 10, after).await.unwrap();
        assert!(none.invoices.is_empty());
    }
}

async fn webhooks_verify_before_they_parse(peer: &dyn Peer) {
    let processor = peer.processor();
    let now = Utc::now();
    let body = json!({
        "id": format!("evt_contract_{}", uuid::Uuid::new_v4().simple()),
        "object": "event",
        "type": "customer.subscription.updated",
        "created": now.timestamp(),
        "data": {"object": {
            "id": "sub_contract", "object": "subscription", "customer": "cus_contract", "status": "past_due",
            "cancel_at_period_end": false, "items": {"object": "list", "data": [{"price": {"id": "price_contract"}}]}
        }}
    })
    .to_string()
    .into_bytes();
    let signed = vec![peer.sign(&body, now)];
    let event = processor.verify_and_parse(&signed, &body, now).unwrap();
    let EventPayload::SubscriptionChanged(snapshot) = event.payload else { panic!("{:?}", event.payload) };
    assert_eq!(snapshot.status, SubscriptionStatus::PastDue);
    assert_eq!(event.processor, processor.id());

    let mut tampered = body.clone();
    tampered[body.len() / 2] ^= 1;
    assert_eq!(processor.verify_and_parse(&signed, &tampered, now), Err(WebhookError::BadSignature));
    let stale = processor.verify_and_parse(&signed, &body, now + chrono::Duration::seconds(301));
    assert!(matches!(stale, Err(WebhookError::StaleTimestamp { .. })), "{stale:?}");
    assert!(matches!(processor.verify_and_parse(&Vec::new(), &body, now), Err(WebhookError::MissingSignature(_))));
    // A signed body that is not an event is refused after the signature check, never a panic.
    let garbage = b"{\"not\": \"an event\"".to_vec();
    let signed_garbage = vec![peer.sign(&garbage, now)];
    assert!(matches!(
        processor.verify_and_parse(&signed_garbage, &garbage, now),
        Err(WebhookError::MalformedPayload(_))
    ));
}

async fn capabilities_tell_the_truth(peer: &dyn Peer) {
    let processor = peer.processor();
    let capabilities = processor.capabilities();
    let customer = CustomerId::new("cus_contract_capabilities");
    let usd = Money::new(100, Currency::parse("usd").unwrap());
    let unsupported = |result: Result<(), ProcessorError>| matches!(result, Err(ProcessorError::Unsupported(_)));
    if !capabilities.portal {
        assert!(unsupported(processor.create_portal(&customer, "http://x").await.map(drop)));
    }
    if !capabilities.payments {
        assert!(unsupported(processor.create_payment_intent(&customer, &usd, "k").await.map(drop)));
    }
    if !capabilities.refunds {
        assert!(unsupported(processor.refund("pi_x", None, "k").await.map(drop)));
    }
    if !capabilities.usage_reporting {
        let quantity = rust_decimal::Decimal::ONE;
        assert!(unsupported(processor.report_usage(&customer, "m", quantity, Utc::now(), "k").await));
    }
    if !capabilities.subscription_changes {
        let id = SubscriptionId::new("sub_x");
        assert!(unsupported(processor.change_price(&id, &PriceId::new("p"), Proration::None, "k").await.map(drop)));
    }
}

#[tokio::test]
async fn the_sandbox_meets_the_processor_contract() {
    contract(&SandboxPeer::new()).await;
}

#[tokio::test]
async fn the_stripe_adapter_meets_the_processor_contract() {
    contract(&StripePeer { adapter: adapter(&localstripe_url()), localstripe: Localstripe::new() }).await;
}
