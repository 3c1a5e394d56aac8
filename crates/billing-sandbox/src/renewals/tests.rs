use std::sync::Arc;

use billing_domain::events::EventPayload;
use billing_domain::ids::WorkspaceId;
use billing_domain::ports::{
    CheckoutOps, Clock, CustomerOps, InvoiceOps, RawDelivery, SandboxControlError, SandboxControls, SubscriptionOps,
    WebhookOps,
};
use billing_domain::subscription::SubscriptionStatus;
use chrono::{DateTime, Duration, Months, Utc};

use crate::SandboxProcessor;
use crate::test_support::{CountingIds, FixedClock, checkout_request, config, now, pro_monthly, workspace};

/// A sandbox on a clock the test moves, with one workspace subscribed to Pro monthly from `now()`.
async fn subscribed() -> (SandboxProcessor, Arc<FixedClock>, WorkspaceId) {
    let clock = Arc::new(FixedClock::at(now()));
    let sandbox = SandboxProcessor::new(config(), Arc::new(CountingIds::default()), clock.clone());
    let customer = sandbox.ensure_customer(&workspace("ws_1"), None).await.unwrap();
    let session = sandbox.create_checkout(&checkout_request("ws_1", &customer, pro_monthly())).await.unwrap();
    let paid = sandbox.pay(session.id.as_str()).await.unwrap();
    sandbox.acknowledge(&ids(&paid)).await.unwrap();
    (sandbox, clock, WorkspaceId::parse("ws_1").unwrap())
}

fn ids(deliveries: &[RawDelivery]) -> Vec<String> {
    deliveries.iter().map(|d| d.event_id.clone()).collect()
}

fn types(deliveries: &[RawDelivery]) -> Vec<&str> {
    deliveries.iter().map(|d| d.event_type.as_str()).collect()
}

fn payload(sandbox: &SandboxProcessor, delivery: &RawDelivery, at: DateTime<Utc>) -> EventPayload {
    sandbox.verify_and_parse(&delivery.headers, delivery.body.as_bytes(), at).unwrap().payload
}

fn months_later(months: u32) -> DateTime<Utc> {
    now().checked_add_months(Months::new(months)).unwrap()
}

#[tokio::test]
async fn at_period_end_a_subscription_renews_once_with_a_paid_invoice() {
    let (sandbox, clock, _) = subscribed().await;
    clock.set(months_later(1) - Duration::seconds(1));
    assert!(sandbox.renew_due().await.unwrap().is_empty(), "nothing is due before the period ends");

    clock.set(months_later(1) + Duration::hours(1));
    let renewal = sandbox.renew_due().await.unwrap();
    assert_eq!(types(&renewal), ["customer.subscription.updated", "invoice.paid"]);
    let EventPayload::SubscriptionChanged(snapshot) = payload(&sandbox, &renewal[0], clock.now()) else {
        panic!("expected a subscription update");
    };
    assert_eq!(snapshot.status, SubscriptionStatus::Active);
    assert_eq!(snapshot.current_period_start, Some(months_later(1)));
    assert_eq!(snapshot.current_period_end, Some(months_later(2)));
    let EventPayload::InvoicePaid { amount, period_start, .. } = payload(&sandbox, &renewal[1], clock.now()) else {
        panic!("expected a paid invoice");
    };
    assert_eq!((amount.minor, period_start), (pro_monthly().price.minor, Some(months_later(1))));
    assert!(sandbox.renew_due().await.unwrap().is_empty(), "a period renews once");

    let customer = sandbox.lock().customers.values().next().cloned().unwrap();
    let invoices = sandbox.list_invoices(&customer, 10, None).await.unwrap();
    assert_eq!(invoices.invoices.iter().map(|i| i.status.as_str()).collect::<Vec<_>>(), ["paid", "paid"]);
}

#[tokio::test]
async fn a_clock_that_jumped_several_periods_renews_each_in_turn() {
    let (sandbox, clock, _) = subscribed().await;
    clock.set(months_later(3));
    let renewals = sandbox.renew_due().await.unwrap();
    assert_eq!(renewals.len(), 6, "three periods, two deliveries each");
    let id = sandbox.lock().subscriptions.keys().next().cloned().unwrap();
    assert_eq!(sandbox.fetch(&id).await.unwrap().current_period_end, Some(months_later(4)));
}

#[tokio::test]
async fn a_declined_renewal_leaves_the_subscription_past_due_until_its_invoice_is_paid() {
    let (sandbox, clock, ws) = subscribed().await;
    let card = sandbox.set_decline_next_charge(&ws, true).await.unwrap();
    assert!(card.decline_next_charge && card.open_invoices.is_empty());

    clock.set(months_later(1));
    let declined = sandbox.renew_due().await.unwrap();
    assert_eq!(types(&declined), ["customer.subscription.updated", "invoice.payment_failed"]);
    let EventPayload::SubscriptionChanged(snapshot) = payload(&sandbox, &declined[0], clock.now()) else {
        panic!("expected a subscription update");
    };
    assert_eq!(snapshot.status, SubscriptionStatus::PastDue);
    let EventPayload::InvoicePaymentFailed { attempt_count, .. } = payload(&sandbox, &declined[1], clock.now()) else {
        panic!("expected a failed payment");
    };
    assert_eq!(attempt_count, 1);
    let card = sandbox.card(&ws).await.unwrap();
    assert!(!card.decline_next_charge, "the decline is used up by the charge it declined");
    assert_eq!(card.open_invoices.len(), 1);
    assert_eq!(card.open_invoices[0].status, "open");
    assert_eq!(card.open_invoices[0].amount_paid.minor, 0);

    clock.set(months_later(2) + Duration::days(10));
    assert!(sandbox.renew_due().await.unwrap().is_empty(), "a past-due subscription is not renewed again");

    let paid = sandbox.pay_open_invoice(&ws).await.unwrap();
    assert_eq!(types(&paid), ["invoice.paid", "customer.subscription.updated"]);
    let EventPayload::SubscriptionChanged(snapshot) = payload(&sandbox, &paid[1], clock.now()) else {
        panic!("expected a subscription update");
    };
    assert_eq!(snapshot.status, SubscriptionStatus::Active);
    assert!(sandbox.card(&ws).await.unwrap().open_invoices.is_empty());
    assert_eq!(sandbox.pay_open_invoice(&ws).await.unwrap_err(), SandboxControlError::NoOpenInvoice);
}

#[tokio::test]
async fn paying_an_open_invoice_with_a_card_told_to_decline_fails_again() {
    let (sandbox, clock, ws) = subscribed().await;
    sandbox.set_decline_next_charge(&ws, true).await.unwrap();
    clock.set(months_later(1));
    sandbox.renew_due().await.unwrap();
    sandbox.set_decline_next_charge(&ws, true).await.unwrap();
    let again = sandbox.pay_open_invoice(&ws).await.unwrap();
    assert_eq!(types(&again), ["invoice.payment_failed"]);
    let EventPayload::InvoicePaymentFailed { attempt_count, .. } = payload(&sandbox, &again[0], clock.now()) else {
        panic!("expected a failed payment");
    };
    assert_eq!(attempt_count, 2);
    assert_eq!(sandbox.card(&ws).await.unwrap().open_invoices.len(), 1, "still open");
}

#[tokio::test]
async fn a_subscription_set_to_cancel_ends_at_period_end_without_an_invoice() {
    let (sandbox, clock, _) = subscribed().await;
    let id = sandbox.lock().subscriptions.keys().next().cloned().unwrap();
    sandbox.cancel(&id, true, "cancel-1").await.unwrap();
    clock.set(months_later(1));
    let ended = sandbox.renew_due().await.unwrap();
    assert_eq!(types(&ended), ["customer.subscription.deleted"]);
    assert_eq!(sandbox.fetch(&id).await.unwrap().status, SubscriptionStatus::Canceled);
    assert_eq!(sandbox.lock().invoices.len(), 1, "no invoice for a period that is not served");
}

#[tokio::test]
async fn controls_of_a_workspace_the_sandbox_never_saw_say_so() {
    let (sandbox, _, _) = subscribed().await;
    let stranger = WorkspaceId::parse("ws_other").unwrap();
    assert_eq!(sandbox.card(&stranger).await.unwrap_err(), SandboxControlError::UnknownCustomer);
    let set = sandbox.set_decline_next_charge(&stranger, true).await;
    assert_eq!(set.unwrap_err(), SandboxControlError::UnknownCustomer);
    assert_eq!(sandbox.pay_open_invoice(&stranger).await.unwrap_err(), SandboxControlError::UnknownCustomer);
}

#[tokio::test]
async fn deliveries_stay_pending_until_acknowledged_and_come_back_signed_anew() {
    let (sandbox, clock, _) = subscribed().await;
    clock.set(months_later(1));
    let renewal = sandbox.renew_due().await.unwrap();
    assert!(sandbox.unacknowledged(clock.now()).await.unwrap().is_empty(), "only older ones count as lost");

    clock.set(months_later(1) + Duration::hours(2));
    let lost = sandbox.unacknowledged(clock.now()).await.unwrap();
    assert_eq!(ids(&lost), ids(&renewal), "in the order they were made");
    assert_eq!(lost[0].body, renewal[0].body, "the same event");
    // Two hours on, the first signature is past the tolerance; the one given again verifies now.
    assert!(sandbox.verify_and_parse(&renewal[0].headers, renewal[0].body.as_bytes(), clock.now()).is_err());
    assert!(sandbox.verify_and_parse(&lost[0].headers, lost[0].body.as_bytes(), clock.now()).is_ok());

    sandbox.acknowledge(&ids(&lost[..1])).await.unwrap();
    assert_eq!(ids(&sandbox.unacknowledged(clock.now()).await.unwrap()), ids(&renewal[1..]));
}

#[tokio::test]
async fn after_a_price_change_renewals_bill_the_new_plan_on_its_interval() {
    use billing_domain::catalog::{Catalog, CatalogFile};
    use billing_domain::ids::PriceId;
    let file: CatalogFile = serde_json::from_value(serde_json::json!({"plans": [
        {"id": "free", "name": "Free", "kind": "subscription", "interval": "month",
         "price": {"amount": 0, "currency": "USD"}, "default": true},
        {"id": "pro", "name": "Pro", "kind": "subscription", "interval": "month",
         "price": {"amount": 4900, "currency": "USD"}, "processor_prices": {"sandbox": "sbx_price_pro"}},
        {"id": "pro_yearly", "name": "Pro (yearly)", "kind": "subscription", "interval": "year",
         "price": {"amount": 49000, "currency": "USD"}, "processor_prices": {"sandbox": "sbx_price_pro_yearly"}}
    ]}))
    .unwrap();
    let clock = Arc::new(FixedClock::at(now()));
    let sandbox = SandboxProcessor::new(config(), Arc::new(CountingIds::default()), clock.clone())
        .with_catalog(Arc::new(Catalog::from_file(file).unwrap()));
    let customer = sandbox.ensure_customer(&workspace("ws_1"), None).await.unwrap();
    let session = sandbox.create_checkout(&checkout_request("ws_1", &customer, pro_monthly())).await.unwrap();
    sandbox.pay(session.id.as_str()).await.unwrap();
    let id = sandbox.lock().subscriptions.keys().next().cloned().unwrap();
    let yearly = PriceId::new("sbx_price_pro_yearly");
    sandbox.change_price(&id, &yearly, billing_domain::ports::Proration::None, "upgrade-1").await.unwrap();

    clock.set(months_later(1));
    let renewal = sandbox.renew_due().await.unwrap();
    let EventPayload::InvoicePaid { amount, price_id, .. } = payload(&sandbox, &renewal[1], clock.now()) else {
        panic!("expected a paid invoice");
    };
    assert_eq!((amount.minor, price_id), (49000, Some(yearly)), "the yearly plan's price");
    assert_eq!(sandbox.fetch(&id).await.unwrap().current_period_end, Some(months_later(13)), "a year on");
}

#[tokio::test]
async fn periods_are_whole_seconds_so_the_end_an_event_shows_is_when_the_renewal_is_due() {
    let clock = Arc::new(FixedClock::at(now() + Duration::milliseconds(579)));
    let sandbox = SandboxProcessor::new(config(), Arc::new(CountingIds::default()), clock.clone());
    let customer = sandbox.ensure_customer(&workspace("ws_1"), None).await.unwrap();
    let session = sandbox.create_checkout(&checkout_request("ws_1", &customer, pro_monthly())).await.unwrap();
    sandbox.pay(session.id.as_str()).await.unwrap();
    let id = sandbox.lock().subscriptions.keys().next().cloned().unwrap();
    let shown = sandbox.fetch(&id).await.unwrap().current_period_end.unwrap();
    assert_eq!(shown, months_later(1), "no fraction of a second");
    clock.set(shown);
    assert_eq!(sandbox.renew_due().await.unwrap().len(), 2, "due at the shown end itself");
}
