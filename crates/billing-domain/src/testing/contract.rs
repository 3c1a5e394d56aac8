//! The `PaymentProcessor` contract, written once and run against every adapter (the sandbox and Stripe on
//! localstripe, in `billing-stripe`'s tests). Each adapter comes with a peer that can put a live subscription
//! behind it and sign deliveries the way its processor does; the checks themselves only use the port.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::error::ProcessorError;
use crate::events::EventPayload;
use crate::ids::{CustomerId, InvoiceId, PaymentId, PriceId, SubscriptionId};
use crate::money::{Currency, Money};
use crate::ports::{PaymentIntentRequest, PaymentProcessor, Proration, WebhookError};
use crate::subscription::SubscriptionStatus;
use crate::workspace::Workspace;

/// What a contract check needs besides the adapter itself.
#[async_trait]
pub trait ProcessorPeer: Send + Sync {
    fn processor(&self) -> &dyn PaymentProcessor;
    /// A workspace the processor has never seen (unique per call).
    fn new_workspace(&self) -> Workspace;
    /// An active subscription of a new customer of `workspace`, created at the processor.
    async fn live_subscription(&self, workspace: &Workspace) -> (CustomerId, SubscriptionId, PriceId);
    /// The header (name, value) the processor would sign `body` with at `at`.
    fn sign(&self, body: &[u8], at: DateTime<Utc>) -> (String, String);
    /// Pays the PaymentIntent `payment` as its customer would (a test card, the sandbox's Pay button).
    async fn pay(&self, payment: &PaymentId);
    /// Whether the peer enforces the rules a real processor does beyond keeping objects: one object per
    /// idempotency key, no refund beyond what is left (localstripe keeps neither).
    fn enforces_processor_rules(&self) -> bool {
        true
    }
}

/// Runs every check of the contract against `peer`.
pub async fn processor_contract(peer: &dyn ProcessorPeer) {
    customers_are_never_duplicated(peer).await;
    subscriptions_can_be_fetched_and_changed(peer).await;
    unknown_objects_are_rejected_or_empty(peer).await;
    webhooks_verify_before_they_parse(peer).await;
    payments_are_created_once_and_refunded_within_what_was_paid(peer).await;
    capabilities_tell_the_truth(peer).await;
}

async fn customers_are_never_duplicated(peer: &dyn ProcessorPeer) {
    let processor = peer.processor();
    let ws = peer.new_workspace();
    let first = processor.ensure_customer(&ws, None).await.unwrap();
    assert_eq!(processor.ensure_customer(&ws, None).await.unwrap(), first, "{}: found again", processor.id());
    assert_eq!(processor.ensure_customer(&ws, Some(first.clone())).await.unwrap(), first);
    let other = processor.ensure_customer(&peer.new_workspace(), None).await.unwrap();
    assert_ne!(other, first, "{}: another workspace gets another customer", processor.id());
}

async fn subscriptions_can_be_fetched_and_changed(peer: &dyn ProcessorPeer) {
    let processor = peer.processor();
    let (customer, id, price) = peer.live_subscription(&peer.new_workspace()).await;
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

async fn unknown_objects_are_rejected_or_empty(peer: &dyn ProcessorPeer) {
    let processor = peer.processor();
    let unknown = processor.fetch(&SubscriptionId::new("sub_contract_unknown")).await;
    assert!(matches!(unknown, Err(ProcessorError::Rejected(_))), "{}: {unknown:?}", processor.id());
    let none = processor.list_for_customer(&CustomerId::new("cus_contract_unknown")).await.unwrap();
    assert!(none.is_empty(), "{}: an unknown customer has no subscriptions", processor.id());
    if processor.capabilities().subscription_changes {
        let unknown = SubscriptionId::new("sub_contract_unknown");
        let preview = processor.preview_price_change(&unknown, &PriceId::new("price_x"), Proration::None).await;
        assert!(matches!(preview, Err(ProcessorError::Rejected(_))), "{}: {preview:?}", processor.id());
    }
    if processor.capabilities().invoices {
        let none = processor.list_invoices(&CustomerId::new("cus_contract_unknown"), 10, None).await.unwrap();
        assert!(none.invoices.is_empty() && !none.has_more);
        let after = Some(InvoiceId::new("in_contract_unknown"));
        let none = processor.list_invoices(&CustomerId::new("cus_contract_unknown"), 10, after).await.unwrap();
        assert!(none.invoices.is_empty());
    }
}

async fn webhooks_verify_before_they_parse(peer: &dyn ProcessorPeer) {
    let processor = peer.processor();
    let now = Utc::now();
    let body = json!({
        "id": format!("evt_contract_{}", now.timestamp_nanos_opt().unwrap_or_default()),
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

async fn payments_are_created_once_and_refunded_within_what_was_paid(peer: &dyn ProcessorPeer) {
    let processor = peer.processor();
    let capabilities = processor.capabilities();
    if !capabilities.payments {
        return;
    }
    let workspace = peer.new_workspace();
    let customer = processor.ensure_customer(&workspace, None).await.unwrap();
    let usd = |minor| Money::new(minor, Currency::parse("usd").unwrap());
    let request = PaymentIntentRequest {
        workspace_id: workspace.id.clone(),
        customer_id: customer,
        amount: usd(1500),
        plan_id: None,
        description: None,
        return_url: "http://localhost/back".into(),
        idempotency_key: format!("contract:pi:{}", workspace.id),
    };
    let intent = processor.create_payment_intent(&request).await.unwrap();
    assert!(!intent.client_secret.is_empty(), "{}: a client secret", processor.id());
    if peer.enforces_processor_rules() {
        let again = processor.create_payment_intent(&request).await.unwrap();
        assert_eq!(again.id, intent.id, "{}: one payment per idempotency key", processor.id());
    }
    if !capabilities.refunds {
        return;
    }
    peer.pay(&intent.id).await;
    let key = |what: &str| format!("contract:refund:{what}:{}", intent.id);
    let part = processor.refund(&intent.id, Some(usd(500)), &key("part")).await.unwrap();
    assert_eq!(part.amount, usd(500));
    let fetched = processor.fetch_refund(&part.id).await.unwrap();
    assert_eq!((fetched.id.as_str(), fetched.amount.minor), (part.id.as_str(), 500), "{}", processor.id());
    let unknown = processor.fetch_refund("re_contract_unknown").await;
    assert!(matches!(unknown, Err(ProcessorError::Rejected(_))), "{}: {unknown:?}", processor.id());
    if !peer.enforces_processor_rules() {
        return;
    }
    let repeated = processor.refund(&intent.id, Some(usd(500)), &key("part")).await.unwrap();
    assert_eq!(repeated.id, part.id, "{}: one refund per idempotency key", processor.id());
    let over = processor.refund(&intent.id, Some(usd(1001)), &key("over")).await;
    assert!(matches!(over, Err(ProcessorError::Rejected(_))), "{}: more than is left: {over:?}", processor.id());
    let rest = processor.refund(&intent.id, None, &key("rest")).await.unwrap();
    assert_eq!(rest.amount, usd(1000), "{}: all that is left", processor.id());
    let nothing_left = processor.refund(&intent.id, None, &key("empty")).await;
    assert!(matches!(nothing_left, Err(ProcessorError::Rejected(_))), "{}: {nothing_left:?}", processor.id());
}

async fn capabilities_tell_the_truth(peer: &dyn ProcessorPeer) {
    let processor = peer.processor();
    let capabilities = processor.capabilities();
    let customer = CustomerId::new("cus_contract_capabilities");
    let usd = Money::new(100, Currency::parse("usd").unwrap());
    let unsupported = |result: Result<(), ProcessorError>| matches!(result, Err(ProcessorError::Unsupported(_)));
    if !capabilities.portal {
        assert!(unsupported(processor.create_portal(&customer, "http://x").await.map(drop)));
    }
    if !capabilities.payments {
        let request = PaymentIntentRequest {
            workspace_id: peer.new_workspace().id,
            customer_id: customer.clone(),
            amount: usd.clone(),
            plan_id: None,
            description: None,
            return_url: "http://localhost/back".into(),
            idempotency_key: "k".into(),
        };
        assert!(unsupported(processor.create_payment_intent(&request).await.map(drop)));
    }
    if !capabilities.refunds {
        assert!(unsupported(processor.refund(&PaymentId::new("pi_x"), None, "k").await.map(drop)));
    }
    if !capabilities.usage_reporting {
        let quantity = rust_decimal::Decimal::ONE;
        assert!(unsupported(processor.report_usage(&customer, "m", quantity, Utc::now(), "k").await));
    }
    if !capabilities.subscription_changes {
        let id = SubscriptionId::new("sub_x");
        assert!(unsupported(processor.change_price(&id, &PriceId::new("p"), Proration::None, "k").await.map(drop)));
        assert!(unsupported(processor.preview_price_change(&id, &PriceId::new("p"), Proration::None).await.map(drop)));
    }
}
