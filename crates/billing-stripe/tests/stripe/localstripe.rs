//! The adapter against localstripe, a stateful fake of Stripe's API: customers, subscriptions, invoices, payments,
//! refunds, and the signed webhooks it sends.

use std::time::Duration;

use billing_domain::error::ProcessorError;
use billing_domain::events::EventPayload;
use billing_domain::ids::{CustomerId, PaymentId, PlanId, PriceId, SubscriptionId};
use billing_domain::money::{Currency, Money};
use billing_domain::ports::{CustomerOps, InvoiceOps, PaymentIntentRequest, PaymentOps, SubscriptionOps, WebhookOps};
use billing_domain::subscription::SubscriptionStatus;

use crate::support::{Localstripe, WEBHOOK_SECRET, adapter, localstripe_url, workspace};

#[tokio::test]
async fn ensure_customer_creates_once_and_finds_it_again_by_workspace_metadata() {
    let stripe = adapter(&localstripe_url());
    let peer = Localstripe::new();
    let ws = workspace();

    let created = stripe.ensure_customer(&ws, None).await.unwrap();
    // A second call without the stored id (say the link write was lost) finds the same customer.
    let found = stripe.ensure_customer(&ws, None).await.unwrap();
    assert_eq!(found, created);
    let known = stripe.ensure_customer(&ws, Some(created.clone())).await.unwrap();
    assert_eq!(known, created);

    let listed = peer.get(&format!("/v1/customers?email={}", ws.owner_email.as_str())).await;
    let customers = listed["data"].as_array().unwrap();
    assert_eq!(customers.len(), 1, "exactly one customer for the workspace: {listed}");
    assert_eq!(customers[0]["metadata"]["workspace_id"], ws.id.as_str());

    // Another workspace of the same owner gets its own customer.
    let mut sibling = workspace();
    sibling.owner_email = ws.owner_email.clone();
    let other = stripe.ensure_customer(&sibling, None).await.unwrap();
    assert_ne!(other, created);
}

#[tokio::test]
/// Plan changes are covered against wiremock: localstripe predates prices and `proration_behavior`.
async fn subscription_fetch_cancel_resume_and_delete() {
    let stripe = adapter(&localstripe_url());
    let peer = Localstripe::new();
    let basic = peer.plan(900).await;
    let customer = stripe.ensure_customer(&workspace(), None).await.unwrap();
    peer.add_card(customer.as_str()).await;
    let id = SubscriptionId::new(peer.subscribe(customer.as_str(), &basic).await);

    let fetched = stripe.fetch(&id).await.unwrap();
    assert_eq!(fetched.subscription_id, id);
    assert_eq!(fetched.customer_id, customer);
    assert_eq!(fetched.price_id, PriceId::new(basic.clone()));
    assert_eq!(fetched.status, SubscriptionStatus::Active);
    assert!(!fetched.cancel_at_period_end);
    let (start, end) = (fetched.current_period_start.unwrap(), fetched.current_period_end.unwrap());
    assert!(end > start, "a real period: {start} → {end}");

    let canceling = stripe.cancel(&id, true, "test:cancel:1").await.unwrap();
    assert!(canceling.cancel_at_period_end);
    assert_eq!(canceling.status, SubscriptionStatus::Active);
    let resumed = stripe.resume(&id, "test:resume:1").await.unwrap();
    assert!(!resumed.cancel_at_period_end);

    let deleted = stripe.cancel(&id, false, "test:delete:1").await.unwrap();
    assert_eq!(deleted.status, SubscriptionStatus::Canceled);
    assert_eq!(stripe.fetch(&id).await.unwrap().status, SubscriptionStatus::Canceled);
}

#[tokio::test]
async fn an_unknown_subscription_is_rejected() {
    let stripe = adapter(&localstripe_url());
    let error = stripe.fetch(&SubscriptionId::new("sub_does_not_exist")).await.unwrap_err();
    assert!(matches!(error, ProcessorError::Rejected(_)), "{error:?}");
}

#[tokio::test]
async fn lists_the_invoices_of_a_subscription() {
    let stripe = adapter(&localstripe_url());
    let peer = Localstripe::new();
    let plan = peer.plan(2900).await;
    let customer = stripe.ensure_customer(&workspace(), None).await.unwrap();
    peer.add_card(customer.as_str()).await;
    peer.subscribe(customer.as_str(), &plan).await;

    let page = stripe.list_invoices(&customer, 10, None).await.unwrap();
    let paid: Vec<_> = page.invoices.iter().filter(|i| i.status == "paid").collect();
    assert_eq!(paid.len(), 1, "{page:?}");
    let usd = Currency::parse("usd").unwrap();
    assert_eq!(paid[0].amount_paid, Money::new(2900, usd.clone()));
    assert_eq!(paid[0].amount_due.currency, usd);
    assert!(paid[0].id.as_str().starts_with("in_"));

    let first = stripe.list_invoices(&customer, 1, None).await.unwrap();
    assert_eq!(first.invoices.len(), 1);
    let unknown = stripe.list_invoices(&CustomerId::new("cus_does_not_exist"), 10, None).await.unwrap();
    assert!(unknown.invoices.is_empty() && !unknown.has_more);
}

#[tokio::test]
async fn creates_payment_intents_and_refunds_charges() {
    let stripe = adapter(&localstripe_url());
    let peer = Localstripe::new();
    let customer = stripe.ensure_customer(&workspace(), None).await.unwrap();
    peer.add_card(customer.as_str()).await;
    let usd = Currency::parse("usd").unwrap();

    let ws = workspace();
    let request = PaymentIntentRequest {
        workspace_id: ws.id.clone(),
        customer_id: customer.clone(),
        amount: Money::new(1500, usd.clone()),
        plan_id: Some(PlanId::new("credits_500")),
        description: None,
        return_url: "http://localhost/back".into(),
        idempotency_key: "test:pi:1".into(),
    };
    let intent = stripe.create_payment_intent(&request).await.unwrap();
    assert!(intent.id.as_str().starts_with("pi_"), "{intent:?}");
    assert!(intent.client_secret.starts_with(intent.id.as_str()), "Stripe's client secret extends the id: {intent:?}");
    assert_eq!(intent.status, "requires_payment_method");
    assert_eq!(intent.confirm_url, None, "Stripe's are confirmed by its own JavaScript");
    let stored = peer.get(&format!("/v1/payment_intents/{}", intent.id)).await;
    assert_eq!(stored["metadata"]["workspace_id"], ws.id.as_str());
    assert_eq!(stored["metadata"]["credits_plan_id"], "credits_500", "the paid event grants from it");
    assert_eq!((stored["amount"].as_i64(), stored["customer"].as_str()), (Some(1500), Some(customer.as_str())));

    let charge = |amount: &'static str| {
        let peer = &peer;
        let customer = customer.clone();
        async move {
            let charge = peer
                .post("/v1/charges", &[("amount", amount), ("currency", "usd"), ("customer", customer.as_str())])
                .await;
            PaymentId::new(charge["id"].as_str().unwrap())
        }
    };
    let partly = charge("2000").await;
    let partial = stripe.refund(&partly, Some(Money::new(500, usd.clone())), "test:refund:1").await.unwrap();
    assert_eq!(partial.amount, Money::new(500, usd.clone()));
    assert!(partial.id.starts_with("re_"));
    // A paid PaymentIntent is refunded through its charge.
    peer.pay_intent(intent.id.as_str()).await;
    let through_intent = stripe.refund(&intent.id, Some(Money::new(300, usd.clone())), "test:refund:pi").await.unwrap();
    assert_eq!(through_intent.amount, Money::new(300, usd.clone()));
    let fully = charge("1200").await;
    let whole = stripe.refund(&fully, None, "test:refund:2").await.unwrap();
    assert_eq!(whole.amount, Money::new(1200, usd));

    let unknown = stripe.refund(&PaymentId::new("ch_does_not_exist"), None, "test:refund:3").await;
    assert!(matches!(unknown, Err(ProcessorError::Rejected(_))), "{unknown:?}");
}

/// localstripe's own signed deliveries verify and parse: the payloads of a real peer, not only our fixtures.
#[tokio::test]
async fn verifies_and_parses_the_webhooks_localstripe_sends() {
    let receiver = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let peer = Localstripe::new();
    peer.register_webhook(&format!("{}/hook", receiver.uri()), WEBHOOK_SECRET).await;

    let stripe = adapter(&localstripe_url());
    let plan = peer.plan(2900).await;
    let customer = stripe.ensure_customer(&workspace(), None).await.unwrap();
    peer.add_card(customer.as_str()).await;
    let subscription = SubscriptionId::new(peer.subscribe(customer.as_str(), &plan).await);
    stripe.cancel(&subscription, false, "test:webhooks:delete").await.unwrap();

    // localstripe delivers each event about a second after it happens.
    let mut ours = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        ours = deliveries_for(&stripe, &receiver, &customer).await;
        if ours.iter().any(|(kind, _)| kind == "customer.subscription.deleted") {
            break;
        }
    }
    let kinds: Vec<&str> = ours.iter().map(|(kind, _)| kind.as_str()).collect();
    for expected in ["customer.subscription.created", "invoice.payment_succeeded", "customer.subscription.deleted"] {
        assert!(kinds.contains(&expected), "missing {expected} in {kinds:?}");
    }
    for (kind, payload) in &ours {
        match (kind.as_str(), payload) {
            ("customer.subscription.created", EventPayload::SubscriptionChanged(s)) => {
                assert_eq!((s.status, &s.price_id), (SubscriptionStatus::Active, &PriceId::new(plan.clone())));
            }
            ("customer.subscription.deleted", EventPayload::SubscriptionChanged(s)) => {
                assert_eq!(s.status, SubscriptionStatus::Canceled);
            }
            // localstripe also pays a zero-amount invoice of the customer's own; only the subscription's counts.
            ("invoice.payment_succeeded", EventPayload::InvoicePaid { subscription_id, amount, .. })
                if amount.minor > 0 =>
            {
                assert_eq!(subscription_id.as_ref(), Some(&subscription));
                assert_eq!(amount.minor, 2900);
            }
            ("invoice.payment_succeeded", EventPayload::InvoicePaid { .. }) => {}
            (
                "customer.subscription.created" | "customer.subscription.deleted" | "invoice.payment_succeeded",
                other,
            ) => {
                panic!("{kind} parsed as {other:?}")
            }
            _ => {}
        }
    }
}

/// Every delivery so far that concerns `customer`, verified with the adapter, as (type, payload).
async fn deliveries_for(
    stripe: &billing_stripe::StripeProcessor,
    receiver: &wiremock::MockServer,
    customer: &CustomerId,
) -> Vec<(String, EventPayload)> {
    let mut ours = Vec::new();
    for request in receiver.received_requests().await.unwrap_or_default() {
        // localstripe sends every test's events to every registered hook; only this customer's are ours to judge.
        if !String::from_utf8_lossy(&request.body).contains(customer.as_str()) {
            continue;
        }
        let headers: Vec<(String, String)> = request
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap_or_default().to_owned()))
            .collect();
        // Deliveries are signed with the event's creation time and sent a second later: well within tolerance.
        let event = stripe
            .verify_and_parse(&headers, &request.body, chrono::Utc::now())
            .unwrap_or_else(|e| panic!("a localstripe delivery failed verification or parsing: {e}"));
        ours.push((event.event_type, event.payload));
    }
    ours
}
