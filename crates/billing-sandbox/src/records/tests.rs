use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::ids::{PaymentId, ProcessorId};
use billing_domain::money::{Currency, Money};
use billing_domain::ports::{
    CheckoutOps, CustomerOps, HostedCheckoutStatus, InvoiceOps, PaymentIntentRequest, PaymentOps, PortalOps,
    ProcessorRecord, ProcessorRecords, StoredRecords, SubscriptionOps, UsageReportingOps,
};
use chrono::{DateTime, Utc};

use crate::SandboxProcessor;
use crate::test_support::{self, CountingIds, FixedClock, config, now, pro_monthly, workspace};

/// Records kept in a map with a version moved by compare-and-set, as the database keeps them; `fail` makes the
/// next write fail.
#[derive(Default)]
struct MapRecords {
    rows: Mutex<BTreeMap<(String, String), String>>,
    version: Mutex<u64>,
    writes: Mutex<usize>,
    fail: Mutex<bool>,
}

#[async_trait]
impl ProcessorRecords for MapRecords {
    async fn load_records(&self, _: &ProcessorId) -> Result<StoredRecords, StoreError> {
        let rows = self.rows.lock().unwrap();
        let records = rows
            .iter()
            .map(|((kind, id), body)| ProcessorRecord { kind: kind.clone(), id: id.clone(), body: body.clone() })
            .collect();
        Ok(StoredRecords { records, version: *self.version.lock().unwrap() })
    }

    async fn records_version(&self, _: &ProcessorId) -> Result<u64, StoreError> {
        Ok(*self.version.lock().unwrap())
    }

    async fn save_records(
        &self,
        _: &ProcessorId,
        records: &[ProcessorRecord],
        expected: u64,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if std::mem::take(&mut *self.fail.lock().unwrap()) {
            return Err(StoreError::Unavailable("database down".into()));
        }
        let mut version = self.version.lock().unwrap();
        if *version != expected {
            return Ok(false);
        }
        *version += 1;
        *self.writes.lock().unwrap() += 1;
        let mut rows = self.rows.lock().unwrap();
        for r in records {
            rows.insert((r.kind.clone(), r.id.clone()), r.body.clone());
        }
        Ok(true)
    }
}

/// A sandbox over `records`, its ids counted from `first_id` so a restarted one does not reuse ids.
fn sandbox(records: &Arc<MapRecords>, first_id: u64) -> SandboxProcessor {
    let ids = CountingIds::starting_at(first_id);
    SandboxProcessor::new(config(), Arc::new(ids), Arc::new(FixedClock::at(now()))).with_records(records.clone())
}

#[tokio::test]
async fn a_restarted_sandbox_has_every_record_it_wrote() {
    let records = Arc::new(MapRecords::default());
    let before = sandbox(&records, 0);
    let customer = before.ensure_customer(&workspace("ws_1"), None).await.unwrap();
    let paid = before.create_checkout(&test_support::checkout_request("ws_1", &customer, pro_monthly())).await.unwrap();
    before.pay(paid.id.as_str()).await.unwrap();
    let mut open_request = test_support::checkout_request("ws_1", &customer, pro_monthly());
    open_request.idempotency_key = "open".into();
    let open = before.create_checkout(&open_request).await.unwrap();
    let usd = Money::new(1500, Currency::parse("USD").unwrap());
    let intent = PaymentIntentRequest {
        workspace_id: workspace("ws_1").id,
        customer_id: customer.clone(),
        amount: usd.clone(),
        plan_id: None,
        description: None,
        return_url: "http://localhost/back".into(),
        idempotency_key: "pi-1".into(),
    };
    let intent = before.create_payment_intent(&intent).await.unwrap();
    before.answer_payment(intent.id.as_str(), true).await.unwrap();
    let refund = before.refund(&intent.id, Some(Money::new(500, usd.currency.clone())), "r-1").await.unwrap();
    let portal = before.create_portal(&customer, "http://localhost/back").await.unwrap();
    let subscription = before.list_for_customer(&customer).await.unwrap().remove(0);
    before.cancel(&subscription.subscription_id, true, "cancel-1").await.unwrap();
    let one = rust_decimal::Decimal::ONE;
    before.report_usage(&customer, "api_calls", one, now(), "usage:ws_1:e1").await.unwrap();

    let after = sandbox(&records, 1_000);
    assert_eq!(after.restore().await.unwrap(), records.rows.lock().unwrap().len());
    assert_eq!(after.ensure_customer(&workspace("ws_1"), None).await.unwrap(), customer, "no second customer");
    assert_eq!(after.session(paid.id.as_str()).unwrap().status, HostedCheckoutStatus::Paid);
    assert_eq!(after.session(open.id.as_str()).unwrap().status, HostedCheckoutStatus::Open);
    assert_eq!(after.create_checkout(&open_request).await.unwrap().id, open.id, "its idempotency key too");
    after.pay(open.id.as_str()).await.unwrap();
    let invoices = after.list_invoices(&customer, 10, None).await.unwrap();
    assert_eq!(invoices.invoices.len(), 2, "the invoice from before and the one just paid");
    assert!(invoices.invoices[0].number > invoices.invoices[1].number, "newest first across the restart");
    let fetched = after.fetch(&subscription.subscription_id).await.unwrap();
    assert!(fetched.cancel_at_period_end);
    assert_eq!(
        after.refund(&intent.id, Some(Money::new(500, usd.currency.clone())), "r-1").await.unwrap().id,
        refund.id
    );
    let over = after.refund(&intent.id, Some(Money::new(1001, usd.currency.clone())), "r-2").await;
    assert!(over.is_err(), "what was refunded before the restart counts");
    let portal_id = portal.rsplit('/').next().unwrap();
    assert!(billing_domain::ports::HostedPortalOps::hosted_portal(&after, portal_id).is_some());
    assert!(after.payment_page(PaymentId::new(intent.id.as_str()).as_str()).is_some());
    after.report_usage(&customer, "api_calls", one, now(), "usage:ws_1:e1").await.unwrap();
    let meters = after.lock().meter_tallies(&customer);
    assert_eq!((meters[0].events, meters[0].repeats), (1, 1), "what the meter took is remembered: {meters:?}");
}

#[tokio::test]
async fn a_write_that_fails_is_an_error_and_changes_nothing() {
    let records = Arc::new(MapRecords::default());
    let sandbox = sandbox(&records, 0);
    let customer = sandbox.ensure_customer(&workspace("ws_1"), None).await.unwrap();
    let session =
        sandbox.create_checkout(&test_support::checkout_request("ws_1", &customer, pro_monthly())).await.unwrap();
    *records.fail.lock().unwrap() = true;
    let failed = sandbox.pay(session.id.as_str()).await;
    assert!(matches!(failed, Err(billing_domain::ports::HostedCheckoutError::Unavailable(_))), "{failed:?}");
    assert_eq!(sandbox.session(session.id.as_str()).unwrap().status, HostedCheckoutStatus::Open, "still payable");
    assert!(sandbox.lock().subscriptions.is_empty() && sandbox.lock().invoices.is_empty());
    // The database is back: the same press pays, and what it made is written.
    let deliveries = sandbox.pay(session.id.as_str()).await.unwrap();
    assert_eq!(deliveries.len(), 4);
    let rows = records.rows.lock().unwrap();
    assert!(rows.keys().any(|(kind, _)| kind == "subscription") && rows.keys().any(|(kind, _)| kind == "invoice"));
    let stored_customer = rows.get(&("customer".to_owned(), "ws_1".to_owned()));
    assert_eq!(stored_customer, Some(&format!("\"{customer}\"")));
}

#[tokio::test]
async fn an_unreadable_record_stops_the_restore_with_its_name() {
    let records = Arc::new(MapRecords::default());
    records.rows.lock().unwrap().insert(("checkout_session".into(), "cs_1".into()), "{not json".into());
    let error = sandbox(&records, 0).restore().await.unwrap_err();
    assert!(error.contains("checkout_session/cs_1"), "{error}");
}

#[tokio::test]
async fn replicas_on_one_store_see_each_others_changes_and_renew_a_period_once() {
    use billing_domain::ports::{Clock, SandboxControls};
    let records = Arc::new(MapRecords::default());
    let clock = Arc::new(FixedClock::at(now()));
    let replica = |first_id| {
        SandboxProcessor::new(config(), Arc::new(CountingIds::starting_at(first_id)), clock.clone())
            .with_records(records.clone())
    };
    let (a, b) = (replica(0), replica(1_000_000));
    a.restore().await.unwrap();
    b.restore().await.unwrap();
    let customer = a.ensure_customer(&workspace("ws_1"), None).await.unwrap();
    assert_eq!(b.ensure_customer(&workspace("ws_1"), None).await.unwrap(), customer, "B reads A's customer");
    let session = a.create_checkout(&test_support::checkout_request("ws_1", &customer, pro_monthly())).await.unwrap();
    b.refresh().await.unwrap();
    assert_eq!(b.session(session.id.as_str()).unwrap().status, HostedCheckoutStatus::Open, "B serves A's page");
    b.pay(session.id.as_str()).await.unwrap();
    assert!(a.pay(session.id.as_str()).await.is_err(), "A reads B's payment before paying again");

    clock.set(clock.now().checked_add_months(chrono::Months::new(1)).unwrap());
    // B renews; A, whose copy is one write behind, reads B's renewal before changing anything and finds nothing
    // left to renew.
    assert_eq!(b.renew_due().await.unwrap().len(), 2);
    assert!(a.renew_due().await.unwrap().is_empty(), "the period was renewed once");
    assert_eq!(a.list_invoices(&customer, 10, None).await.unwrap().invoices.len(), 2);
}
