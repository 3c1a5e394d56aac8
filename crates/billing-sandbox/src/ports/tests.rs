use std::sync::Arc;

use billing_domain::error::ProcessorError;
use billing_domain::ids::{CustomerId, InvoiceId, PriceId, SubscriptionId};
use billing_domain::ports::{
    CheckoutOps, CustomerOps, InvoiceOps, ProcessorInfo, Proration, SubscriptionOps, UsageReportingOps, WebhookError,
    WebhookOps,
};
use billing_domain::subscription::SubscriptionStatus;
use chrono::Duration;
use secrecy::SecretString;

use crate::test_support::{self, CountingIds, FixedClock, checkout_request, now, pro_monthly, processor, workspace};
use crate::{SIGNATURE_HEADER, SandboxProcessor};
use stripe_wire::signature;

/// A paid monthly subscription of `workspace_id`, bought with checkout key `key`.
async fn subscribe(sandbox: &SandboxProcessor, workspace_id: &str, key: &str) -> SubscriptionId {
    let customer = sandbox.ensure_customer(&workspace(workspace_id), None).await.unwrap();
    let mut request = checkout_request(workspace_id, &customer, pro_monthly());
    request.idempotency_key = key.to_owned();
    let session = sandbox.create_checkout(&request).await.unwrap();
    sandbox.pay(session.id.as_str()).await.unwrap();
    let state = sandbox.lock();
    let newest = state.invoices.last().unwrap();
    newest.subscription_id.clone().unwrap()
}

#[test]
fn describes_itself() {
    let sandbox = processor();
    assert_eq!(sandbox.id().as_str(), "sandbox");
    let caps = sandbox.capabilities();
    assert!(caps.checkout && caps.invoices && caps.subscription_changes && caps.portal);
    assert!(caps.payments && caps.refunds && caps.usage_reporting);
}

#[tokio::test]
async fn meters_count_each_identifier_once_and_only_for_known_customers() {
    let sandbox = processor();
    let customer = sandbox.ensure_customer(&workspace("ws_m"), None).await.unwrap();
    let value = |v: &str| v.parse::<rust_decimal::Decimal>().unwrap();
    let later = now() + Duration::minutes(5);
    sandbox.report_usage(&customer, "api_calls", value("2.5"), later, "usage:ws_m:e1").await.unwrap();
    sandbox.report_usage(&customer, "api_calls", value("1"), now(), "usage:ws_m:e2").await.unwrap();
    // A repeat, as a reporter restarted before saving its cursor sends it: taken, not counted.
    sandbox.report_usage(&customer, "api_calls", value("2.5"), later, "usage:ws_m:e1").await.unwrap();
    sandbox.report_usage(&customer, "storage_gb", value("7"), now(), "usage:ws_m:e3").await.unwrap();

    let tallies = sandbox.lock().meter_tallies(&customer);
    assert_eq!(tallies.len(), 2);
    let calls = &tallies[0];
    assert_eq!((calls.meter.as_str(), calls.events, calls.value, calls.repeats), ("api_calls", 2, value("3.5"), 1));
    assert_eq!((calls.first_at, calls.last_at), (now(), later));
    assert_eq!((tallies[1].meter.as_str(), tallies[1].value), ("storage_gb", value("7")));

    let stranger = sandbox.report_usage(&CustomerId::new("cus_nobody"), "api_calls", value("1"), now(), "x").await;
    assert!(matches!(stranger, Err(ProcessorError::Rejected(_))), "{stranger:?}");
    let negative = sandbox.report_usage(&customer, "api_calls", value("-1"), now(), "usage:ws_m:e4").await;
    assert!(matches!(negative, Err(ProcessorError::Rejected(_))), "{negative:?}");
}

#[tokio::test]
async fn ensure_customer_never_makes_two_per_workspace() {
    let sandbox = processor();
    let first = sandbox.ensure_customer(&workspace("ws_a"), None).await.unwrap();
    assert!(first.as_str().starts_with("cus_sbx_"));
    let again = sandbox.ensure_customer(&workspace("ws_a"), None).await.unwrap();
    assert_eq!(again, first);
    let other = sandbox.ensure_customer(&workspace("ws_b"), None).await.unwrap();
    assert_ne!(other, first);
    let known = CustomerId::new("cus_sbx_from_before_restart");
    let kept = sandbox.ensure_customer(&workspace("ws_c"), Some(known.clone())).await.unwrap();
    assert_eq!(kept, known);
    // Remembered, so a later call without the id finds the same customer.
    let found = sandbox.ensure_customer(&workspace("ws_c"), None).await.unwrap();
    assert_eq!(found, known);
    assert_eq!(sandbox.lock().customers.len(), 3);
}

#[tokio::test]
async fn create_checkout_is_idempotent_on_its_key() {
    let sandbox = processor();
    let customer = sandbox.ensure_customer(&workspace("ws_a"), None).await.unwrap();
    let request = checkout_request("ws_a", &customer, pro_monthly());
    let first = sandbox.create_checkout(&request).await.unwrap();
    let again = sandbox.create_checkout(&request).await.unwrap();
    assert_eq!(again, first);
    assert!(first.id.as_str().starts_with("cs_sbx_"));
    let mut other = request.clone();
    other.idempotency_key = "another".to_owned();
    let second = sandbox.create_checkout(&other).await.unwrap();
    assert_ne!(second.id, first.id);
    assert_eq!(sandbox.lock().sessions.len(), 2);
}

#[tokio::test]
async fn cancel_at_period_end_then_resume() {
    let sandbox = processor();
    let id = subscribe(&sandbox, "ws_a", "k1").await;
    let canceling = sandbox.cancel(&id, true, "cancel-1").await.unwrap();
    assert!(canceling.cancel_at_period_end);
    assert_eq!(canceling.status, SubscriptionStatus::Active);
    assert_eq!(sandbox.fetch(&id).await.unwrap(), canceling);
    let resumed = sandbox.resume(&id, "resume-1").await.unwrap();
    assert!(!resumed.cancel_at_period_end);
    assert_eq!(sandbox.fetch(&id).await.unwrap(), resumed);
}

#[tokio::test]
async fn cancel_immediately_is_final() {
    let sandbox = processor();
    let id = subscribe(&sandbox, "ws_a", "k1").await;
    let canceled = sandbox.cancel(&id, false, "cancel-now").await.unwrap();
    assert_eq!(canceled.status, SubscriptionStatus::Canceled);
    assert!(!canceled.cancel_at_period_end);
    assert_eq!(sandbox.lock().subscriptions[&id].canceled_at, Some(now()));
    assert!(matches!(sandbox.resume(&id, "resume-after-cancel").await, Err(ProcessorError::Rejected(_))));
    assert!(matches!(sandbox.cancel(&id, true, "cancel-again").await, Err(ProcessorError::Rejected(_))));
    // A retry of the cancel itself still returns its result.
    assert_eq!(sandbox.cancel(&id, false, "cancel-now").await.unwrap(), canceled);
}

#[tokio::test]
async fn changes_are_idempotent_on_their_key() {
    let sandbox = processor();
    let id = subscribe(&sandbox, "ws_a", "k1").await;
    let business = PriceId::new("sbx_price_business");
    let changed = sandbox.change_price(&id, &business, Proration::CreateProrations, "change-1").await.unwrap();
    assert_eq!(changed.price_id, business);
    sandbox.cancel(&id, true, "cancel-1").await.unwrap();
    // The repeat answers what the first call answered, not today's state.
    let repeat = sandbox.change_price(&id, &business, Proration::CreateProrations, "change-1").await.unwrap();
    assert_eq!(repeat, changed);
    assert!(!repeat.cancel_at_period_end);
    let reused = sandbox.change_price(&id, &PriceId::new("other"), Proration::None, "change-1").await;
    assert!(matches!(reused, Err(ProcessorError::Rejected(_))));
    let wrong_op = sandbox.resume(&id, "cancel-1").await;
    assert!(matches!(wrong_op, Err(ProcessorError::Rejected(_))));
}

#[tokio::test]
async fn unknown_subscriptions_are_rejected() {
    let sandbox = processor();
    let ghost = SubscriptionId::new("sub_sbx_ghost");
    assert!(matches!(sandbox.fetch(&ghost).await, Err(ProcessorError::Rejected(_))));
    assert!(matches!(sandbox.cancel(&ghost, true, "k").await, Err(ProcessorError::Rejected(_))));
    assert!(matches!(sandbox.resume(&ghost, "k2").await, Err(ProcessorError::Rejected(_))));
    let price = PriceId::new("p");
    assert!(matches!(
        sandbox.change_price(&ghost, &price, Proration::None, "k3").await,
        Err(ProcessorError::Rejected(_))
    ));
}

#[tokio::test]
async fn lists_invoices_newest_first_in_pages() {
    let sandbox = processor();
    for key in ["k1", "k2", "k3", "k4", "k5"] {
        subscribe(&sandbox, "ws_a", key).await;
    }
    subscribe(&sandbox, "ws_b", "other-customer").await;
    let customer = sandbox.ensure_customer(&workspace("ws_a"), None).await.unwrap();
    let all: Vec<InvoiceId> = {
        let state = sandbox.lock();
        let mine = state.invoices.iter().filter(|i| i.customer_id == customer);
        mine.rev().map(|i| i.id.clone()).collect()
    };
    assert_eq!(all.len(), 5);

    let first = sandbox.list_invoices(&customer, 2, None).await.unwrap();
    let ids = |page: &billing_domain::ports::InvoicePage| -> Vec<InvoiceId> {
        page.invoices.iter().map(|i| i.id.clone()).collect()
    };
    assert_eq!(ids(&first), all[..2]);
    assert!(first.has_more);
    let second = sandbox.list_invoices(&customer, 2, Some(all[1].clone())).await.unwrap();
    assert_eq!(ids(&second), all[2..4]);
    assert!(second.has_more);
    let last = sandbox.list_invoices(&customer, 2, Some(all[3].clone())).await.unwrap();
    assert_eq!(ids(&last), all[4..]);
    assert!(!last.has_more);
    let beyond = sandbox.list_invoices(&customer, 2, Some(all[4].clone())).await.unwrap();
    assert!(beyond.invoices.is_empty() && !beyond.has_more);

    let invoice = &first.invoices[0];
    assert_eq!(invoice.status, "paid");
    assert_eq!(invoice.amount_paid, pro_monthly().price);
    assert_eq!(invoice.amount_due, pro_monthly().price);
    assert_eq!(invoice.created_at, now());
    assert_eq!(invoice.number.as_deref(), Some("SBX-000005"));

    // A zero limit still returns one, as Stripe clamps to 1..=100.
    let one = sandbox.list_invoices(&customer, 0, None).await.unwrap();
    assert_eq!(one.invoices.len(), 1);
    let many = sandbox.list_invoices(&customer, u32::MAX, None).await.unwrap();
    assert_eq!(many.invoices.len(), 5);
    assert!(!many.has_more);
}

#[tokio::test]
async fn unknown_customers_get_an_empty_page_and_foreign_cursors_are_rejected() {
    let sandbox = processor();
    subscribe(&sandbox, "ws_a", "k1").await;
    let ghost = CustomerId::new("cus_sbx_ghost");
    let empty = sandbox.list_invoices(&ghost, 10, None).await.unwrap();
    assert!(empty.invoices.is_empty() && !empty.has_more);
    let also_empty = sandbox.list_invoices(&ghost, 10, Some(InvoiceId::new("in_sbx_x"))).await.unwrap();
    assert!(also_empty.invoices.is_empty());
    let customer = sandbox.ensure_customer(&workspace("ws_a"), None).await.unwrap();
    let foreign = sandbox.list_invoices(&customer, 10, Some(InvoiceId::new("in_sbx_x"))).await;
    assert!(matches!(foreign, Err(ProcessorError::Rejected(_))));
}

#[test]
fn webhooks_need_the_signature_header() {
    let sandbox = processor();
    let body = br#"{"id":"evt_1","type":"x","created":1706702400}"#;
    assert_eq!(
        sandbox.verify_and_parse(&vec![], body, now()),
        Err(WebhookError::MissingSignature("Sandbox-Signature"))
    );
    let wrong_name = vec![("stripe-signature".to_owned(), "t=1,v1=00".to_owned())];
    assert_eq!(
        sandbox.verify_and_parse(&wrong_name, body, now()),
        Err(WebhookError::MissingSignature("Sandbox-Signature"))
    );
    let secret = SecretString::from(test_support::SECRET);
    let header = signature::sign(&secret, now().timestamp(), body);
    let mixed_case = vec![("Sandbox-Signature".to_owned(), header)];
    let event = sandbox.verify_and_parse(&mixed_case, body, now()).unwrap();
    assert_eq!(event.id.as_str(), "evt_1");
}

#[test]
fn webhooks_are_verified_before_they_are_parsed() {
    let sandbox = processor();
    let garbage = b"definitely not json";
    let forged = signature::sign(&SecretString::from("whsec_attacker"), now().timestamp(), garbage);
    let headers = vec![(SIGNATURE_HEADER.to_owned(), forged)];
    assert_eq!(sandbox.verify_and_parse(&headers, garbage, now()), Err(WebhookError::BadSignature));
    let secret = SecretString::from(test_support::SECRET);
    let genuine = signature::sign(&secret, now().timestamp(), garbage);
    let headers = vec![(SIGNATURE_HEADER.to_owned(), genuine)];
    assert!(matches!(sandbox.verify_and_parse(&headers, garbage, now()), Err(WebhookError::MalformedPayload(_))));
    let late = now() + Duration::seconds(301);
    assert_eq!(
        sandbox.verify_and_parse(&headers, garbage, late),
        Err(WebhookError::StaleTimestamp { tolerance_secs: 300 })
    );
}

#[tokio::test]
async fn deliveries_signed_before_a_rotation_still_verify() {
    let old = processor();
    let customer = old.ensure_customer(&workspace("ws_a"), None).await.unwrap();
    let session = old.create_checkout(&checkout_request("ws_a", &customer, pro_monthly())).await.unwrap();
    let delivery = old.pay(session.id.as_str()).await.unwrap().remove(0);

    let mut config = test_support::config();
    config.webhook_secrets.insert(0, SecretString::from("whsec_new_primary"));
    let rotated = SandboxProcessor::new(config, Arc::new(CountingIds::default()), Arc::new(FixedClock::at(now())));
    let event = rotated.verify_and_parse(&delivery.headers, delivery.body.as_bytes(), now()).unwrap();
    assert_eq!(event.id.as_str(), delivery.event_id);
}
