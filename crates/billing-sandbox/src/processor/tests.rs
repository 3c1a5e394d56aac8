use billing_domain::catalog::Plan;
use billing_domain::events::{CheckoutMode, EventPayload, ProcessorEvent, SubscriptionSnapshot};
use billing_domain::ids::{CustomerId, WorkspaceId};
use billing_domain::ports::{CheckoutOps, CheckoutSession, CustomerOps, SubscriptionOps, WebhookOps};
use billing_domain::subscription::SubscriptionStatus;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::*;
use crate::test_support::{self, credits10, now, pro_monthly, pro_yearly, processor, workspace};

async fn start_checkout(sandbox: &SandboxProcessor, workspace_id: &str, plan: Plan) -> (CustomerId, CheckoutSession) {
    let customer = sandbox.ensure_customer(&workspace(workspace_id), None).await.unwrap();
    let request = test_support::checkout_request(workspace_id, &customer, plan);
    let session = sandbox.create_checkout(&request).await.unwrap();
    (customer, session)
}

/// What `POST /webhooks/sandbox` does with a delivery.
fn receive(sandbox: &SandboxProcessor, delivery: &RawDelivery) -> ProcessorEvent {
    sandbox.verify_and_parse(&delivery.headers, delivery.body.as_bytes(), now()).unwrap()
}

fn at(unix: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix, 0).unwrap()
}

#[tokio::test]
async fn pay_for_a_subscription_emits_four_verifiable_events_with_consistent_ids() {
    let sandbox = processor();
    let (customer, session) = start_checkout(&sandbox, "ws_1", pro_monthly()).await;
    assert_eq!(session.url, format!("http://localhost:8080/sandbox/checkout/{}", session.id));

    let deliveries = sandbox.pay(session.id.as_str()).await.unwrap();
    let types: Vec<&str> = deliveries.iter().map(|d| d.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["checkout.session.completed", "customer.subscription.created", "invoice.paid", "payment_intent.succeeded"]
    );
    let events: Vec<ProcessorEvent> = deliveries.iter().map(|d| receive(&sandbox, d)).collect();
    for (delivery, event) in deliveries.iter().zip(&events) {
        assert_eq!(event.id.as_str(), delivery.event_id);
        assert!(delivery.event_id.starts_with("evt_sbx_"));
        assert_eq!(event.event_type, delivery.event_type);
        assert_eq!(event.processor.as_str(), "sandbox");
        assert_eq!(event.occurred_at, now());
    }

    let EventPayload::CheckoutCompleted {
        session_id,
        workspace_id,
        customer_id,
        mode,
        subscription_id: Some(subscription_id),
        plan_id,
    } = events[0].payload.clone()
    else {
        panic!("expected a subscription checkout, got {:?}", events[0].payload);
    };
    assert_eq!(session_id, session.id);
    assert_eq!(workspace_id, WorkspaceId::parse("ws_1").unwrap());
    assert_eq!(customer_id, customer);
    assert_eq!(mode, CheckoutMode::Subscription);
    assert_eq!(plan_id.unwrap().as_str(), "pro");
    assert!(subscription_id.as_str().starts_with("sub_sbx_"));

    // 2024-01-31 plus one month clamps to 2024-02-29 (leap year), as Stripe's periods do.
    let period_end = at(1_709_208_000);
    let expected_snapshot = SubscriptionSnapshot {
        subscription_id: subscription_id.clone(),
        customer_id: customer.clone(),
        price_id: "sbx_price_pro".into(),
        status: SubscriptionStatus::Active,
        quantity: 1,
        cancel_at_period_end: false,
        current_period_start: Some(now()),
        current_period_end: Some(period_end),
        trial_end: None,
    };
    assert_eq!(events[1].payload, EventPayload::SubscriptionChanged(expected_snapshot.clone()));
    let EventPayload::InvoicePaid {
        invoice_id,
        customer_id,
        subscription_id: invoice_subscription,
        price_id,
        amount,
        period_start,
        period_end: invoice_period_end,
        ..
    } = events[2].payload.clone()
    else {
        panic!("expected InvoicePaid, got {:?}", events[2].payload);
    };
    assert!(invoice_id.as_str().starts_with("in_sbx_"));
    assert_eq!(customer_id, customer);
    assert_eq!(invoice_subscription, Some(subscription_id.clone()));
    assert_eq!(price_id, Some("sbx_price_pro".into()));
    assert_eq!(amount, pro_monthly().price);
    assert_eq!((period_start, invoice_period_end), (Some(now()), Some(period_end)));

    let EventPayload::PaymentActivity { payment_id: Some(payment_id), plan_id: None, amount, .. } =
        events[3].payload.clone()
    else {
        panic!("expected the charge, without a plan to grant, got {:?}", events[3].payload);
    };
    assert!(payment_id.as_str().starts_with("pi_sbx_"));
    assert_eq!(amount, pro_monthly().price);

    // The processor's own records agree with what it announced.
    assert_eq!(sandbox.fetch(&subscription_id).await.unwrap(), expected_snapshot);
    assert_eq!(sandbox.session(session.id.as_str()).unwrap().status, HostedCheckoutStatus::Paid);
}

#[tokio::test]
async fn deliveries_look_like_stripe_events() {
    let sandbox = processor();
    let (customer, session) = start_checkout(&sandbox, "ws_1", pro_yearly()).await;
    let deliveries = sandbox.pay(session.id.as_str()).await.unwrap();
    let bodies: Vec<Value> = deliveries.iter().map(|d| serde_json::from_str(&d.body).unwrap()).collect();
    for (delivery, body) in deliveries.iter().zip(&bodies) {
        assert_eq!(body["object"], "event");
        assert_eq!(body["id"], delivery.event_id.as_str());
        assert_eq!(body["type"], delivery.event_type.as_str());
        assert_eq!(body["livemode"], false);
        assert_eq!(body["created"], test_support::NOW_UNIX);
        let [(name, signature)] = delivery.headers.as_slice() else { panic!("one header: {:?}", delivery.headers) };
        assert_eq!(name, SIGNATURE_HEADER);
        assert!(signature.starts_with(&format!("t={},v1=", test_support::NOW_UNIX)));
    }
    let checkout = &bodies[0]["data"]["object"];
    assert_eq!(checkout["object"], "checkout.session");
    assert_eq!(checkout["mode"], "subscription");
    assert_eq!(checkout["payment_status"], "paid");
    assert_eq!(checkout["client_reference_id"], "ws_1");
    assert_eq!(checkout["customer"], customer.as_str());
    assert_eq!(checkout["metadata"]["workspace_id"], "ws_1");
    assert_eq!(checkout["metadata"]["plan_id"], "pro_yearly");
    assert_eq!(checkout["currency"], "usd");
    let subscription = &bodies[1]["data"]["object"];
    assert_eq!(subscription["object"], "subscription");
    assert_eq!(subscription["id"], checkout["subscription"]);
    assert_eq!(subscription["items"]["data"][0]["price"]["recurring"]["interval"], "year");
    // 2024-01-31 + 1 year.
    assert_eq!(subscription["current_period_end"], 1_738_324_800);
    let invoice = &bodies[2]["data"]["object"];
    assert_eq!(invoice["object"], "invoice");
    assert_eq!(invoice["id"], checkout["invoice"]);
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["lines"]["data"][0]["price"]["id"], "sbx_price_pro_yearly");
    assert_eq!(invoice["lines"]["data"][0]["period"]["end"], 1_738_324_800);
}

#[tokio::test]
async fn pay_for_credits_emits_one_payment_checkout_and_its_charge() {
    let sandbox = processor();
    let (customer, session) = start_checkout(&sandbox, "ws_2", credits10()).await;
    let deliveries = sandbox.pay(session.id.as_str()).await.unwrap();
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[1].event_type, "payment_intent.succeeded");
    let EventPayload::PaymentActivity { plan_id, .. } = receive(&sandbox, &deliveries[1]).payload else {
        panic!("the charge")
    };
    assert_eq!(plan_id, None, "the checkout grants the credits, its charge does not");
    let event = receive(&sandbox, &deliveries[0]);
    assert_eq!(
        event.payload,
        EventPayload::CheckoutCompleted {
            session_id: session.id.clone(),
            workspace_id: WorkspaceId::parse("ws_2").unwrap(),
            customer_id: customer,
            mode: CheckoutMode::Payment,
            subscription_id: None,
            plan_id: Some("credits10".into()),
        }
    );
}

#[tokio::test]
async fn decline_emits_checkout_failed() {
    let sandbox = processor();
    let (_, session) = start_checkout(&sandbox, "ws_3", pro_monthly()).await;
    let deliveries = sandbox.decline(session.id.as_str()).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].event_type, "checkout.session.async_payment_failed");
    let event = receive(&sandbox, &deliveries[0]);
    assert_eq!(
        event.payload,
        EventPayload::CheckoutFailed {
            session_id: session.id.clone(),
            workspace_id: WorkspaceId::parse("ws_3").unwrap(),
            plan_id: Some("pro".into()),
            reason: "card_declined".to_owned(),
        }
    );
    assert_eq!(sandbox.session(session.id.as_str()).unwrap().status, HostedCheckoutStatus::Declined);
}

#[tokio::test]
async fn a_session_is_paid_or_declined_once() {
    let sandbox = processor();
    let (_, paid) = start_checkout(&sandbox, "ws_4", pro_monthly()).await;
    sandbox.pay(paid.id.as_str()).await.unwrap();
    assert_eq!(sandbox.pay(paid.id.as_str()).await, Err(HostedCheckoutError::NotOpen(HostedCheckoutStatus::Paid)));
    assert_eq!(sandbox.decline(paid.id.as_str()).await, Err(HostedCheckoutError::NotOpen(HostedCheckoutStatus::Paid)));
    let (_, declined) = start_checkout(&sandbox, "ws_5", pro_monthly()).await;
    sandbox.decline(declined.id.as_str()).await.unwrap();
    assert_eq!(
        sandbox.pay(declined.id.as_str()).await,
        Err(HostedCheckoutError::NotOpen(HostedCheckoutStatus::Declined))
    );
    assert_eq!(sandbox.pay("cs_sbx_nope").await, Err(HostedCheckoutError::UnknownSession));
    assert_eq!(sandbox.decline("cs_sbx_nope").await, Err(HostedCheckoutError::UnknownSession));
    assert!(sandbox.session("cs_sbx_nope").is_none());
}

#[tokio::test]
async fn session_view_shows_what_the_page_needs() {
    let sandbox = processor();
    let (_, session) = start_checkout(&sandbox, "ws_6", credits10()).await;
    let view = sandbox.session(session.id.as_str()).unwrap();
    assert_eq!(view.id, session.id);
    assert_eq!(view.workspace_id.as_str(), "ws_6");
    assert_eq!(view.plan_name, "10 credits");
    assert_eq!(view.price, credits10().price);
    assert_eq!(view.plan_kind, "One-time purchase of 10 credits");
    assert_eq!(view.status, HostedCheckoutStatus::Open);
    assert_eq!(view.success_url, "https://app.example.com/billing?ok=1");
    assert_eq!(view.cancel_url, "https://app.example.com/billing?cancel=1");
    let (_, monthly) = start_checkout(&sandbox, "ws_6", pro_monthly()).await;
    assert_eq!(sandbox.session(monthly.id.as_str()).unwrap().plan_kind, "Monthly subscription");
}

#[tokio::test]
async fn pay_without_a_signing_secret_changes_nothing() {
    let mut config = test_support::config();
    config.webhook_secrets.clear();
    let sandbox = SandboxProcessor::new(
        config,
        Arc::new(test_support::CountingIds::default()),
        Arc::new(test_support::FixedClock::at(now())),
    );
    let (_, session) = start_checkout(&sandbox, "ws_7", pro_monthly()).await;
    assert_eq!(
        sandbox.pay(session.id.as_str()).await,
        Err(HostedCheckoutError::Unavailable("no webhook secret is configured to sign deliveries".to_owned()))
    );
    assert_eq!(sandbox.session(session.id.as_str()).unwrap().status, HostedCheckoutStatus::Open);
    assert!(sandbox.lock().subscriptions.is_empty());
}

#[test]
fn debug_hides_the_secret() {
    let text = format!("{:?}", processor());
    assert!(text.contains("SandboxProcessor"));
    assert!(!text.contains(test_support::SECRET));
}

#[test]
fn survives_a_poisoned_lock() {
    let sandbox = Arc::new(processor());
    let poisoner = Arc::clone(&sandbox);
    let _ = std::thread::spawn(move || {
        let _guard = poisoner.lock();
        panic!("poison the state lock");
    })
    .join();
    assert!(sandbox.state.is_poisoned());
    assert!(sandbox.session("cs_sbx_1").is_none());
}

#[tokio::test]
async fn the_portal_shows_the_customers_subscriptions_and_signs_each_action() {
    use billing_domain::ports::{HostedPortalOps, PortalAction, PortalOps};

    let sandbox = processor();
    let (customer, session) = start_checkout(&sandbox, "ws_p", pro_monthly()).await;
    sandbox.pay(session.id.as_str()).await.unwrap();
    let (_, other) = start_checkout(&sandbox, "ws_q", pro_monthly()).await;
    sandbox.pay(other.id.as_str()).await.unwrap();
    let url = sandbox.create_portal(&customer, "https://app.example.com/back").await.unwrap();
    let id = url.rsplit('/').next().unwrap();
    assert!(url.starts_with("http://localhost:8080/sandbox/portal/bps_sbx_"), "{url}");

    let portal = sandbox.hosted_portal(id).unwrap();
    assert_eq!(
        (portal.customer_id.clone(), portal.return_url.as_str()),
        (customer.clone(), "https://app.example.com/back")
    );
    assert_eq!(portal.subscriptions.len(), 1, "only this customer's: {portal:?}");
    let subscription = portal.subscriptions[0].id.clone();

    let deliveries = sandbox.portal_action(id, &subscription, PortalAction::CancelAtPeriodEnd).await.unwrap();
    let event = receive(&sandbox, &deliveries[0]);
    assert_eq!(event.event_type, "customer.subscription.updated");
    let EventPayload::SubscriptionChanged(snapshot) = event.payload else { panic!("{:?}", event.payload) };
    assert!(snapshot.cancel_at_period_end && snapshot.status == SubscriptionStatus::Active);

    let yearly = pro_yearly();
    let switch = billing_domain::ports::PortalPlan {
        id: yearly.id.clone(),
        name: yearly.name.clone(),
        price: "sbx_price_pro_yearly".into(),
        amount: yearly.price.clone(),
        interval: billing_domain::catalog::Interval::Year,
    };
    let switched = sandbox.portal_action(id, &subscription, PortalAction::ChangePlan(switch.clone())).await.unwrap();
    let body: Value = serde_json::from_str(&switched[0].body).unwrap();
    let item = &body["data"]["object"]["items"]["data"][0]["price"];
    assert_eq!(
        (item["id"].as_str(), item["recurring"]["interval"].as_str()),
        (Some("sbx_price_pro_yearly"), Some("year"))
    );
    assert_eq!(body["data"]["object"]["metadata"]["plan_id"], yearly.id.as_str());
    assert_eq!(sandbox.hosted_portal(id).unwrap().subscriptions[0].price_id.as_str(), "sbx_price_pro_yearly");
    assert!(matches!(
        sandbox.portal_action(id, &subscription, PortalAction::ChangePlan(switch)).await,
        Err(HostedCheckoutError::NotAllowed(_))
    ));

    let ended = sandbox.portal_action(id, &subscription, PortalAction::CancelNow).await.unwrap();
    assert_eq!(receive(&sandbox, &ended[0]).event_type, "customer.subscription.deleted");
    assert_eq!(sandbox.hosted_portal(id).unwrap().subscriptions[0].status, SubscriptionStatus::Canceled);
    assert!(matches!(
        sandbox.portal_action(id, &subscription, PortalAction::Resume).await,
        Err(HostedCheckoutError::NotAllowed(_))
    ));
    // Another customer's subscription is not reachable from this portal, and an unknown portal is no portal.
    let foreign = sandbox.lock().subscriptions.keys().find(|s| **s != subscription).unwrap().clone();
    assert!(matches!(
        sandbox.portal_action(id, &foreign, PortalAction::CancelNow).await,
        Err(HostedCheckoutError::NotAllowed(_))
    ));
    assert!(matches!(
        sandbox.portal_action("bps_nope", &foreign, PortalAction::CancelNow).await,
        Err(HostedCheckoutError::UnknownSession)
    ));
    assert!(sandbox.hosted_portal("bps_nope").is_none());
}
