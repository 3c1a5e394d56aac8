//! Unit tests of the use-case services against mockall mocks of their ports.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::TimeZone;
use mockall::predicate::eq;

/// Runs an async test body on a minimal executor: the domain has no async runtime, not even in tests.
macro_rules! async_test {
    (async fn $name:ident() $body:block) => {
        #[test]
        fn $name() {
            futures::executor::block_on(async $body)
        }
    };
}

use super::test_support::{MockTx, clock, context, now, workspace};
use super::*;
use crate::error::{ProcessorError, StoreError};
use crate::events::{CheckoutMode, EventPayload, ProcessorEvent, SubscriptionSnapshot};
use crate::ids::{CustomerId, WorkspaceId};
use crate::ports::{
    CheckoutSession, InboxStatus, MockCouponRepository, MockIdGenerator, MockSubscriptionRepository, MockUnitOfWork,
    MockUsageRepository, MockWorkspaceRepository, Recorded, Redemption,
};
use crate::records::Actor;
use crate::subscription::SubscriptionStatus;
use crate::testing::test_catalog;
use crate::workspace::{BillingDetails, WorkspaceProfile};

pub(super) mod processor_mock {
    use async_trait::async_trait;
    use chrono::{DateTime, Utc};

    use crate::error::ProcessorError;
    use crate::events::{ProcessorEvent, SubscriptionSnapshot};
    use crate::ids::{CustomerId, InvoiceId, PaymentId, PriceId, ProcessorId, SubscriptionId};
    use crate::money::Money;
    use crate::ports::*;
    use crate::workspace::Workspace;

    mockall::mock! {
        pub Processor {}
        impl ProcessorInfo for Processor {
            fn id(&self) -> ProcessorId;
            fn capabilities(&self) -> Capabilities;
        }
        #[async_trait]
        impl CustomerOps for Processor {
            async fn ensure_customer(&self, workspace: &Workspace, known: Option<CustomerId>) -> Result<CustomerId, ProcessorError>;
        }
        #[async_trait]
        impl CheckoutOps for Processor {
            async fn create_checkout(&self, request: &CheckoutRequest) -> Result<CheckoutSession, ProcessorError>;
        }
        #[async_trait]
        impl PortalOps for Processor {
            async fn create_portal(&self, customer: &CustomerId, return_url: &str) -> Result<String, ProcessorError>;
        }
        #[async_trait]
        impl SubscriptionOps for Processor {
            async fn cancel(&self, id: &SubscriptionId, at_period_end: bool, idempotency_key: &str) -> Result<SubscriptionSnapshot, ProcessorError>;
            async fn resume(&self, id: &SubscriptionId, idempotency_key: &str) -> Result<SubscriptionSnapshot, ProcessorError>;
            async fn change_price(&self, id: &SubscriptionId, price: &PriceId, proration: Proration, idempotency_key: &str) -> Result<SubscriptionSnapshot, ProcessorError>;
            async fn preview_price_change(&self, id: &SubscriptionId, price: &PriceId, proration: Proration) -> Result<ChangePreview, ProcessorError>;
            async fn fetch(&self, id: &SubscriptionId) -> Result<SubscriptionSnapshot, ProcessorError>;
            async fn list_for_customer(&self, customer: &CustomerId) -> Result<Vec<SubscriptionSnapshot>, ProcessorError>;
        }
        #[async_trait]
        impl InvoiceOps for Processor {
            async fn list_invoices(&self, customer: &CustomerId, limit: u32, starting_after: Option<InvoiceId>) -> Result<InvoicePage, ProcessorError>;
        }
        #[async_trait]
        impl PaymentOps for Processor {
            async fn create_payment_intent(&self, request: &PaymentIntentRequest) -> Result<PaymentIntent, ProcessorError>;
            async fn refund(&self, payment: &PaymentId, amount: Option<Money>, idempotency_key: &str) -> Result<Refund, ProcessorError>;
            async fn fetch_refund(&self, id: &str) -> Result<Refund, ProcessorError>;
        }
        #[async_trait]
        impl UsageReportingOps for Processor {
            async fn report_usage(&self, customer: &CustomerId, metric: &str, quantity: rust_decimal::Decimal, at: DateTime<Utc>, idempotency_key: &str) -> Result<(), ProcessorError>;
        }
        impl WebhookOps for Processor {
            fn verify_and_parse(&self, headers: &WebhookHeaders, body: &[u8], now: DateTime<Utc>) -> Result<ProcessorEvent, WebhookError>;
        }
    }
}
use processor_mock::MockProcessor;

fn uow_with(tx: MockTx) -> MockUnitOfWork {
    let mut uow = MockUnitOfWork::new();
    let mut slot = Some(tx);
    uow.expect_begin().times(1).returning(move || Ok(Box::new(slot.take().expect("begin called once"))));
    uow
}

fn actor() -> Actor {
    Actor::ApiKey { name: "backend".into() }
}

fn profile() -> WorkspaceProfile {
    WorkspaceProfile::parse("Acme Inc", "billing@acme.test", BillingDetails::default()).unwrap()
}

async_test! {
async fn upsert_creates_a_new_workspace_with_an_audit_entry() {
    let mut tx = MockTx::default();
    tx.workspaces.expect_get().returning(|_| Ok(None));
    tx.workspaces.expect_insert().times(1).returning(|_| Ok(()));
    tx.audit
        .expect_append()
        .withf(|record, _| record.action == "workspace.created" && record.before.is_none())
        .times(1)
        .returning(|_, _| Ok(()));
    let committed = tx.committed.clone();
    let service = WorkspaceService::new(
        context(MockWorkspaceRepository::new(), MockSubscriptionRepository::new()),
        Arc::new(uow_with(tx)),
    );
    let (ws, created) = service.upsert(WorkspaceId::parse("acme").unwrap(), profile(), actor(), None).await.unwrap();
    assert!(created);
    assert_eq!(ws.name, "Acme Inc");
    assert!(committed.load(Ordering::SeqCst));
}}

async_test! {
async fn upsert_of_an_existing_workspace_keeps_its_billing_state() {
    let mut existing = workspace("acme");
    existing.credit_balance = 42;
    let mut tx = MockTx::default();
    let stored = existing.clone();
    tx.workspaces.expect_get().returning(move |_| Ok(Some(stored.clone())));
    tx.workspaces
        .expect_update_profile()
        .withf(|ws| ws.credit_balance == 42 && ws.name == "Acme Inc")
        .times(1)
        .returning(|_| Ok(()));
    tx.workspaces.expect_insert().never();
    tx.audit
        .expect_append()
        .withf(|record, _| record.action == "workspace.updated" && record.before.is_some())
        .times(1)
        .returning(|_, _| Ok(()));
    let service = WorkspaceService::new(
        context(MockWorkspaceRepository::new(), MockSubscriptionRepository::new()),
        Arc::new(uow_with(tx)),
    );
    let (_, created) = service.upsert(existing.id.clone(), profile(), actor(), None).await.unwrap();
    assert!(!created);
}}

async_test! {
async fn a_second_trial_is_refused_and_nothing_is_audited() {
    let mut tx = MockTx::default();
    tx.workspaces.expect_get().returning(|id| Ok(Some(workspace(id.as_str()))));
    tx.workspaces.expect_start_trial().times(1).returning(|_, _, _, _| Ok(false));
    tx.audit.expect_append().never();
    let committed = tx.committed.clone();
    let service = TrialService::new(
        context(MockWorkspaceRepository::new(), MockSubscriptionRepository::new()),
        Arc::new(uow_with(tx)),
    );
    let err = service.start(&WorkspaceId::parse("acme").unwrap(), actor(), None).await.unwrap_err();
    assert!(matches!(err, TrialError::AlreadyUsed));
    assert!(!committed.load(Ordering::SeqCst));
}}

async_test! {
async fn a_trial_lasts_the_configured_days() {
    let mut tx = MockTx::default();
    tx.workspaces.expect_get().returning(|id| Ok(Some(workspace(id.as_str()))));
    tx.workspaces
        .expect_start_trial()
        .withf(|_, plan, ends_at, _| plan.as_str() == "pro" && *ends_at == now() + chrono::Duration::days(14))
        .times(1)
        .returning(|_, _, _, _| Ok(true));
    tx.audit.expect_append().withf(|r, _| r.action == "trial.started").times(1).returning(|_, _| Ok(()));
    let service = TrialService::new(
        context(MockWorkspaceRepository::new(), MockSubscriptionRepository::new()),
        Arc::new(uow_with(tx)),
    );
    service.start(&WorkspaceId::parse("acme").unwrap(), actor(), None).await.unwrap();
}}

async_test! {
async fn a_trial_ending_within_3_days_is_reminded_once_unless_a_paid_subscription_replaced_it() {
    let ending = |id: &str| {
        let mut w = workspace(id);
        w.trial_ends_at = Some(now() + chrono::Duration::days(2));
        w.trial_plan = Some(crate::ids::PlanId::new("pro"));
        w
    };
    let mut workspaces = MockWorkspaceRepository::new();
    workspaces
        .expect_trials_ending()
        .withf(|after, until, _| *after == now() && *until == now() + chrono::Duration::days(3))
        .returning(move |_, _, _| Ok(vec![ending("trialing"), ending("subscribed"), ending("reminded")]));
    // One transaction per workspace: the first is reminded, the second pays already, the third was reminded by
    // an earlier run (its email's key is in the outbox).
    let mut trialing = MockTx::default();
    trialing.subscriptions.expect_current_for_workspace().returning(|_| Ok(None));
    trialing
        .outbox
        .expect_enqueue()
        .withf(|m, _| m.dedup_key.starts_with("email:trial_ending:workspace:trialing:") && m.payload["plan"] == "pro")
        .times(1)
        .returning(|_, _| Ok(true));
    trialing
        .outbox
        .expect_enqueue()
        .withf(|m, _| m.target == crate::records::OutboxTarget::Webhook { topic: "billing.trial.ending".into() })
        .times(1)
        .returning(|_, _| Ok(true));
    let mut subscribed = MockTx::default();
    subscribed.subscriptions.expect_current_for_workspace().returning(|id| {
        Ok(Some(crate::testing::subscription("sub_1", id.as_str(), SubscriptionStatus::Active, now())))
    });
    subscribed.outbox.expect_enqueue().never();
    let mut reminded = MockTx::default();
    reminded.subscriptions.expect_current_for_workspace().returning(|_| Ok(None));
    reminded.outbox.expect_enqueue().times(1).returning(|_, _| Ok(false));
    let committed = [trialing.committed.clone(), reminded.committed.clone()];
    let mut queue = vec![reminded, subscribed, trialing];
    let mut uow = MockUnitOfWork::new();
    uow.expect_begin().times(3).returning(move || Ok(Box::new(queue.pop().expect("three transactions"))));
    let service = TrialService::new(context(workspaces, MockSubscriptionRepository::new()), Arc::new(uow));
    assert_eq!(service.remind_ending(100).await.unwrap(), 1, "only the first reminder is new");
    assert!(committed.iter().all(|c| c.load(Ordering::SeqCst)));
}}

fn checkout_request(plan: &str) -> StartCheckout {
    StartCheckout {
        workspace_id: WorkspaceId::parse("acme").unwrap(),
        plan: plan.into(),
        success_url: "https://app.test/ok".into(),
        cancel_url: "https://app.test/cancel".into(),
        idempotency_key: Some("client-key-1".into()),
        coupon: None,
        actor: actor(),
        request_id: Some("req-1".into()),
    }
}

fn checkout_service(
    workspaces: MockWorkspaceRepository,
    subscriptions: MockSubscriptionRepository,
    processor: MockProcessor,
    audit: crate::ports::MockAuditLog,
    links: MockUnitOfWork,
) -> CheckoutService {
    checkout_service_with_coupons(workspaces, subscriptions, processor, audit, links, MockCouponRepository::new())
}

fn checkout_service_with_coupons(
    workspaces: MockWorkspaceRepository,
    subscriptions: MockSubscriptionRepository,
    processor: MockProcessor,
    audit: crate::ports::MockAuditLog,
    links: MockUnitOfWork,
    coupons: MockCouponRepository,
) -> CheckoutService {
    CheckoutService::new(
        context(workspaces, subscriptions),
        Arc::new(processor),
        Arc::new(audit),
        Arc::new(MockIdGenerator::new()),
        Arc::new(webhook_service(links)),
        Arc::new(coupons),
    )
}

/// A unit of work that must never be opened: the checkout links no customer.
fn no_link() -> MockUnitOfWork {
    let mut uow = MockUnitOfWork::new();
    uow.expect_begin().never();
    uow
}

fn sandbox_processor() -> MockProcessor {
    let mut processor = MockProcessor::new();
    processor.expect_id().return_const(crate::ids::ProcessorId::new("sandbox"));
    processor
}

async_test! {
async fn checkout_for_an_unknown_or_free_plan_never_reaches_the_processor() {
    for (plan, expect_unknown) in [("gold", true), ("free", false)] {
        let mut workspaces = MockWorkspaceRepository::new();
        workspaces.expect_get().returning(|id| Ok(Some(workspace(id.as_str()))));
        let mut processor = sandbox_processor();
        processor.expect_ensure_customer().never();
        processor.expect_create_checkout().never();
        let service =
            checkout_service(workspaces, MockSubscriptionRepository::new(), processor, crate::ports::MockAuditLog::new(), no_link());
        let err = service.start(checkout_request(plan)).await.unwrap_err();
        match err {
            CheckoutError::UnknownPlan(unknown) => {
                assert!(expect_unknown);
                assert_eq!(unknown.valid, ["free", "pro", "credits10"]);
            }
            CheckoutError::NotPurchasable { plan, .. } => assert_eq!(plan, "free"),
            other => panic!("unexpected {other:?}"),
        }
    }
}}

async_test! {
async fn checkout_links_a_new_customer_and_derives_the_idempotency_key() {
    let mut workspaces = MockWorkspaceRepository::new();
    workspaces.expect_get().returning(|id| Ok(Some(workspace(id.as_str()))));
    workspaces.expect_customer_of_workspace().returning(|_, _| Ok(None));
    workspaces.expect_link_customer().never();
    // The link is made like the webhook path makes it: locked, and releasing what waited for it.
    let mut tx = MockTx::default();
    tx.workspaces
        .expect_link_customer()
        .withf(|processor, customer, ws, _| {
            processor.as_str() == "sandbox" && customer.as_str() == "cus_1" && ws.as_str() == "acme"
        })
        .times(1)
        .returning(|_, _, _, _| Ok(true));
    tx.inbox.expect_take_parked().withf(|_, link| link == "customer:cus_1").times(1).returning(|_, _| Ok(vec![]));
    let locks = tx.locks.clone();
    let committed = tx.committed.clone();
    let mut subscriptions = MockSubscriptionRepository::new();
    subscriptions.expect_current_for_workspace().returning(|_| Ok(None));
    let mut processor = sandbox_processor();
    processor.expect_ensure_customer().with(mockall::predicate::always(), eq(None)).times(1).returning(|_, _| Ok(CustomerId::new("cus_1")));
    processor
        .expect_create_checkout()
        .withf(|req| {
            req.idempotency_key == "checkout:acme:pro:key:backend:client-key-1"
                && req.price_id.as_str() == "sbx_price_pro"
                && req.customer_id.as_str() == "cus_1"
        })
        .times(1)
        .returning(|_| Ok(CheckoutSession { id: "cs_1".into(), url: "http://localhost/sandbox/checkout/cs_1".into() }));
    let mut audit = crate::ports::MockAuditLog::new();
    audit.expect_append().withf(|r, _| r.action == "checkout.started" && r.request_id.as_deref() == Some("req-1")).times(1).returning(|_, _| Ok(()));
    let service = checkout_service(workspaces, subscriptions, processor, audit, uow_with(tx));
    let session = service.start(checkout_request("pro")).await.unwrap();
    assert_eq!(session.id.as_str(), "cs_1");
    assert!(committed.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(*locks.lock().unwrap(), ["customer:sandbox:cus_1", "workspace:acme"], "customer first, then workspace");
}}

async_test! {
async fn a_processor_outage_surfaces_as_a_processor_error() {
    let mut workspaces = MockWorkspaceRepository::new();
    workspaces.expect_get().returning(|id| Ok(Some(workspace(id.as_str()))));
    workspaces.expect_customer_of_workspace().returning(|_, _| Ok(Some(CustomerId::new("cus_1"))));
    workspaces.expect_link_customer().never();
    let mut subscriptions = MockSubscriptionRepository::new();
    subscriptions.expect_current_for_workspace().returning(|_| Ok(None));
    let mut processor = sandbox_processor();
    processor.expect_ensure_customer().returning(|_, known| Ok(known.unwrap()));
    processor.expect_create_checkout().returning(|_| Err(ProcessorError::Unavailable("timeout".into())));
    let mut audit = crate::ports::MockAuditLog::new();
    audit.expect_append().never();
    let service = checkout_service(workspaces, subscriptions, processor, audit, no_link());
    let err = service.start(checkout_request("pro")).await.unwrap_err();
    assert!(matches!(err, CheckoutError::Processor(ProcessorError::Unavailable(_))));
}}

async_test! {
async fn a_coupon_use_is_given_back_when_the_checkout_cannot_start() {
    {
        let mut workspaces = MockWorkspaceRepository::new();
        workspaces.expect_get().returning(|id| Ok(Some(workspace(id.as_str()))));
        workspaces.expect_customer_of_workspace().returning(|_, _| Ok(Some(CustomerId::new("cus_1"))));
        let mut subscriptions = MockSubscriptionRepository::new();
        subscriptions.expect_current_for_workspace().returning(|_| Ok(None));
        let mut processor = sandbox_processor();
        processor.expect_ensure_customer().returning(|_, known| Ok(known.unwrap()));
        processor
            .expect_create_checkout()
            .withf(|request| request.coupon.as_ref().is_some_and(|c| c.code == "LAUNCH"))
            .returning(|_| Err(ProcessorError::Unavailable("timeout".into())));
        let mut coupons = MockCouponRepository::new();
        coupons.expect_get().withf(|code| code == "LAUNCH").returning(|_| {
            Ok(Some(crate::coupon::Coupon {
                code: "LAUNCH".into(),
                discount: crate::coupon::Discount::Percent { percent: 20 },
                valid_until: None,
                max_uses: Some(1),
                used_count: 0,
                plans: Vec::new(),
                created_at: now(),
            }))
        });
        coupons.expect_redeem().times(1).returning(|_, _, _| Ok(Redemption::Redeemed));
        coupons.expect_unredeem().times(1).returning(|_, _| Ok(()));
        let mut audit = crate::ports::MockAuditLog::new();
        audit.expect_append().never();
        let service = checkout_service_with_coupons(workspaces, subscriptions, processor, audit, no_link(), coupons);
        let request = StartCheckout { coupon: Some(" launch ".into()), ..checkout_request("pro") };
        let err = service.start(request).await.unwrap_err();
        assert!(matches!(err, CheckoutError::Processor(ProcessorError::Unavailable(_))));
    }
}}

fn subscription_event(id: &str) -> ProcessorEvent {
    ProcessorEvent {
        id: id.into(),
        processor: "sandbox".into(),
        event_type: "customer.subscription.updated".into(),
        occurred_at: now(),
        payload: EventPayload::SubscriptionChanged(SubscriptionSnapshot {
            subscription_id: "sub_1".into(),
            customer_id: "cus_1".into(),
            price_id: "sbx_price_pro".into(),
            status: SubscriptionStatus::Active,
            quantity: 1,
            cancel_at_period_end: false,
            current_period_start: None,
            current_period_end: None,
            trial_end: None,
        }),
    }
}

fn webhook_service(uow: MockUnitOfWork) -> WebhookService {
    WebhookService::new(Arc::new(uow), Arc::new(test_catalog()), clock())
}

async_test! {
async fn a_duplicate_event_applies_nothing() {
    let mut tx = MockTx::default();
    tx.inbox
        .expect_record()
        .returning(|_| Ok(Recorded::Seen { status: InboxStatus::Processed, attempts: 1 }));
    tx.subscriptions.expect_insert().never();
    tx.audit.expect_append().never();
    let committed = tx.committed.clone();
    let outcome = webhook_service(uow_with(tx)).ingest(&subscription_event("evt_1"), "{}").await.unwrap();
    assert_eq!(outcome, IngestOutcome::Duplicate);
    assert!(!committed.load(Ordering::SeqCst));
}}

async_test! {
async fn a_new_subscription_event_writes_state_audit_and_outbox_in_one_commit() {
    let mut tx = MockTx::default();
    tx.inbox.expect_record().returning(|_| Ok(Recorded::New));
    tx.workspaces.expect_workspace_of_customer().returning(|_, _| Ok(Some(WorkspaceId::parse("acme").unwrap())));
    tx.subscriptions.expect_get().returning(|_, _| Ok(None));
    tx.subscriptions
        .expect_insert()
        .withf(|s, at| {
            s.status == SubscriptionStatus::Active && s.terms.plan_id.as_str() == "pro" && s.version == 0 && *at == now()
        })
        .times(1)
        .returning(|_, _| Ok(()));
    tx.audit.expect_append().withf(|r, _| r.action == "subscription.created").times(1).returning(|_, _| Ok(()));
    tx.outbox.expect_enqueue().times(1).returning(|_, _| Ok(true));
    tx.inbox.expect_take_parked().withf(|_, link| link == "subscription:sub_1").times(1).returning(|_, _| Ok(vec![]));
    tx.inbox
        .expect_set_status()
        .with(eq(crate::ids::ProcessorId::new("sandbox")), eq(crate::ids::EventId::new("evt_1")), eq(InboxStatus::Processed), eq(None), eq(now()))
        .times(1)
        .returning(|_, _, _, _, _| Ok(()));
    let committed = tx.committed.clone();
    let outcome = webhook_service(uow_with(tx)).ingest(&subscription_event("evt_1"), "{}").await.unwrap();
    assert_eq!(outcome, IngestOutcome::Applied);
    assert!(committed.load(Ordering::SeqCst));
}}

async_test! {
async fn an_event_for_an_unknown_customer_is_parked() {
    let mut tx = MockTx::default();
    tx.inbox.expect_record().returning(|_| Ok(Recorded::New));
    tx.workspaces.expect_workspace_of_customer().returning(|_, _| Ok(None));
    tx.subscriptions.expect_get().returning(|_, _| Ok(None));
    tx.inbox.expect_park().withf(|_, link, _| link == "customer:cus_1").times(1).returning(|_, _, _| Ok(()));
    tx.inbox.expect_set_status().withf(|_, _, status, _, _| *status == InboxStatus::Parked).times(1).returning(|_, _, _, _, _| Ok(()));
    tx.subscriptions.expect_insert().never();
    let outcome = webhook_service(uow_with(tx)).ingest(&subscription_event("evt_1"), "{}").await.unwrap();
    assert_eq!(outcome, IngestOutcome::Parked);
}}

async_test! {
async fn an_unknown_price_is_recorded_as_failed_not_dropped() {
    let mut event = subscription_event("evt_1");
    if let EventPayload::SubscriptionChanged(s) = &mut event.payload {
        s.price_id = "price_gone".into();
    }
    let mut first = MockTx::default();
    first.inbox.expect_record().returning(|_| Ok(Recorded::New));
    first.workspaces.expect_workspace_of_customer().returning(|_, _| Ok(Some(WorkspaceId::parse("acme").unwrap())));
    first.subscriptions.expect_get().returning(|_, _| Ok(None));
    let first_committed = first.committed.clone();
    let mut second = MockTx::default();
    second
        .inbox
        .expect_record_failure()
        .withf(|e, reason| e.event_id.as_str() == "evt_1" && reason.contains("price_gone"))
        .times(1)
        .returning(|_, _| Ok(()));
    let second_committed = second.committed.clone();
    let mut txs = vec![second, first];
    let mut uow = MockUnitOfWork::new();
    uow.expect_begin().times(2).returning(move || Ok(Box::new(txs.pop().unwrap())));
    let outcome = webhook_service(uow).ingest(&event, "{}").await.unwrap();
    assert!(matches!(outcome, IngestOutcome::Failed { reason } if reason.contains("price_gone")));
    assert!(!first_committed.load(Ordering::SeqCst));
    assert!(second_committed.load(Ordering::SeqCst));
}}

async_test! {
async fn storage_outage_is_an_error_so_the_processor_retries() {
    let mut uow = MockUnitOfWork::new();
    uow.expect_begin().returning(|| Err(StoreError::Unavailable("connection refused".into())));
    let err = webhook_service(uow).ingest(&subscription_event("evt_1"), "{}").await.unwrap_err();
    assert!(matches!(err, IngestError::Store(StoreError::Unavailable(_))));
}}

async_test! {
async fn checkout_completed_for_credits_grants_once_under_the_session_key() {
    let event = ProcessorEvent {
        id: "evt_c".into(),
        processor: "sandbox".into(),
        event_type: "checkout.session.completed".into(),
        occurred_at: chrono::Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
        payload: EventPayload::CheckoutCompleted {
            session_id: "cs_9".into(),
            workspace_id: WorkspaceId::parse("acme").unwrap(),
            customer_id: "cus_1".into(),
            mode: CheckoutMode::Payment,
            subscription_id: None,
            plan_id: Some("credits10".into()),
        },
    };
    let mut tx = MockTx::default();
    tx.inbox.expect_record().returning(|_| Ok(Recorded::New));
    tx.workspaces.expect_get().returning(|id| Ok(Some(workspace(id.as_str()))));
    tx.workspaces.expect_link_customer().times(1).returning(|_, _, _, _| Ok(true));
    tx.workspaces
        .expect_grant_credits()
        .withf(|_, amount, key, _| *amount == 10 && key == "grant:checkout:cs_9")
        .times(1)
        .returning(|_, _, _, _| Ok(true));
    tx.outbox
        .expect_enqueue()
        .withf(|m, _| {
            m.dedup_key == "webhook:credits:grant:checkout:cs_9" && m.payload["delta"] == 10 && m.payload["reason"] == "purchased"
        })
        .times(1)
        .returning(|_, _| Ok(true));
    tx.audit.expect_append().withf(|r, _| r.action == "checkout.completed").times(1).returning(|_, _| Ok(()));
    tx.inbox.expect_take_parked().withf(|_, link| link == "customer:cus_1").times(1).returning(|_, _| Ok(vec![]));
    tx.inbox.expect_set_status().returning(|_, _, _, _, _| Ok(()));
    let outcome = webhook_service(uow_with(tx)).ingest(&event, "{}").await.unwrap();
    assert_eq!(outcome, IngestOutcome::Applied);
}}

async_test! {
async fn entitlements_check_reads_usage_only_for_usage_limits() {
    let mut workspaces = MockWorkspaceRepository::new();
    workspaces.expect_get().returning(|id| Ok(Some(workspace(id.as_str()))));
    let mut subscriptions = MockSubscriptionRepository::new();
    subscriptions.expect_current_for_workspace().returning(|_| Ok(None));
    let mut usage = MockUsageRepository::new();
    usage.expect_totals().times(1).returning(|_, _| {
        let total = crate::usage::MetricTotal::of_event(rust_decimal::Decimal::new(995, 1));
        Ok([("alerts".to_string(), total)].into_iter().collect())
    });
    let service = EntitlementService::new(context(workspaces, subscriptions), Arc::new(usage));
    let id = WorkspaceId::parse("acme").unwrap();
    // 99.5 alerts count as 100 whole units, so the free plan's 100 is reached.
    let crate::entitlements::CheckResult::Limit(alerts) = service.check(&id, "alerts_per_month", 1, None).await.unwrap() else {
        panic!("a limit")
    };
    assert!(!alerts.allowed);
    assert_eq!(alerts.used, 100);
    // A count limit takes the caller's count and never reads usage (times(1) above).
    let crate::entitlements::CheckResult::Limit(members) = service.check(&id, "workspace_members", 1, Some(0)).await.unwrap() else {
        panic!("a limit")
    };
    assert!(members.allowed);
    assert!(matches!(
        service.check(&id, "teleport", 1, None).await,
        Err(EntitlementError::Unknown(_))
    ));
}}

#[test]
fn usage_period_is_the_calendar_month_without_a_subscription() {
    let period = entitlements::usage_period(None, chrono::Utc.with_ymd_and_hms(2026, 12, 15, 0, 0, 0).unwrap());
    assert_eq!(period.start, chrono::Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
    assert_eq!(period.end, chrono::Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
    let _ = AtomicBool::new(false);
}

mod payments {
    use super::*;
    use crate::ids::{PaymentId, ProcessorId};
    use crate::money::{Currency, Money};
    use crate::payment::{Payment, PaymentStatus, RefundStatus};
    use crate::ports::{Capabilities, MockPaymentRepository, Refund, RefundReservation};

    fn paid() -> Payment {
        Payment {
            id: PaymentId::new("pi_1"),
            processor: ProcessorId::new("sandbox"),
            workspace_id: WorkspaceId::parse("acme").unwrap(),
            customer_id: CustomerId::new("cus_1"),
            amount: Money::new(1000, Currency::parse("USD").unwrap()),
            status: PaymentStatus::Succeeded,
            refunded: 0,
            processor_refunded: 0,
            plan_id: None,
            description: None,
            created_at: now(),
            updated_at: now(),
            version: 0,
        }
    }

    fn refunding_processor(answer: fn() -> Result<Refund, ProcessorError>) -> MockProcessor {
        let mut processor = sandbox_processor();
        processor.expect_capabilities().return_const(Capabilities {
            payments: true,
            refunds: true,
            ..Capabilities::default()
        });
        processor
            .expect_refund()
            .withf(|payment, amount, key| {
                payment.as_str() == "pi_1"
                    && amount.as_ref().map(|a| a.minor) == Some(400)
                    && key.starts_with("refund:rf_")
            })
            .times(1)
            .returning(move |_, _, _| answer());
        processor
    }

    fn service(
        processor: MockProcessor,
        payments: MockPaymentRepository,
        audit: crate::ports::MockAuditLog,
    ) -> PaymentService {
        let mut ids = MockIdGenerator::new();
        ids.expect_new_id().returning(|prefix| format!("{prefix}1"));
        PaymentService::new(
            context(MockWorkspaceRepository::new(), MockSubscriptionRepository::new()),
            Arc::new(processor),
            Arc::new(webhook_service(MockUnitOfWork::new())),
            Arc::new(payments),
            Arc::new(audit),
            Arc::new(crate::ports::MockOutbox::new()),
            Arc::new(ids),
        )
    }

    fn refund_of(amount: i64) -> RefundPayment {
        RefundPayment {
            payment_id: PaymentId::new("pi_1"),
            amount: Some(amount),
            reason: None,
            idempotency_key: None,
            actor: actor(),
            request_id: None,
        }
    }

    fn pending(id: &str, key: &str) -> crate::payment::RefundRecord {
        crate::payment::RefundRecord {
            id: crate::ids::RefundId::new(id),
            payment_id: PaymentId::new("pi_1"),
            amount: Money::new(400, Currency::parse("USD").unwrap()),
            status: RefundStatus::Pending,
            reason: None,
            processor_refund_id: None,
            request_key: Some(key.into()),
            created_at: now(),
        }
    }

    async_test! {
    async fn with_a_key_a_timed_out_refund_stays_reserved_and_its_retry_asks_again_under_the_same_processor_key() {
        // First try: the processor times out; the reservation is kept (the refund may have been made).
        let mut payments = MockPaymentRepository::new();
        payments.expect_get().returning(|_| Ok(Some(paid())));
        payments.expect_refunds_of().times(1).returning(|_| Ok(vec![]));
        payments
            .expect_reserve_refund()
            .withf(|r, _| r.request_key.as_deref() == Some("key:backend:refund-7"))
            .times(1)
            .returning(|_, _| Ok(RefundReservation::Reserved(Box::new(paid()))));
        payments.expect_settle_refund().never();
        let mut processor = sandbox_processor();
        processor.expect_capabilities().return_const(Capabilities { payments: true, refunds: true, ..Capabilities::default() });
        processor.expect_refund().withf(|_, _, key| key == "refund:rf_1").times(1).returning(|_, _, _| Err(ProcessorError::Unavailable("timeout".into())));
        let keyed = RefundPayment { idempotency_key: Some("refund-7".into()), ..refund_of(400) };
        let error = service(processor, payments, crate::ports::MockAuditLog::new()).refund(keyed.clone()).await.unwrap_err();
        assert!(matches!(error, PaymentError::Processor(ProcessorError::Unavailable(_))), "{error:?}");

        // The retry finds the pending refund and asks again under its key: nothing is reserved twice.
        let mut payments = MockPaymentRepository::new();
        payments.expect_get().returning(|_| Ok(Some(paid())));
        payments.expect_refunds_of().returning(|_| Ok(vec![pending("rf_1", "key:backend:refund-7")]));
        payments.expect_reserve_refund().never();
        payments
            .expect_settle_refund()
            .withf(|id, s, _| id.as_str() == "rf_1" && s.status == RefundStatus::Succeeded)
            .times(1)
            .returning(|_, _, _| Ok(Payment { refunded: 400, ..paid() }));
        let mut processor = sandbox_processor();
        processor.expect_capabilities().return_const(Capabilities { payments: true, refunds: true, ..Capabilities::default() });
        processor.expect_refund().withf(|_, _, key| key == "refund:rf_1").times(1).returning(|_, _, _| {
            Ok(Refund { id: "re_1".into(), amount: Money::new(400, Currency::parse("USD").unwrap()), status: "succeeded".into() })
        });
        let mut audit = crate::ports::MockAuditLog::new();
        audit.expect_append().times(1).returning(|_, _| Ok(()));
        let done = service(processor, payments, audit).refund(keyed).await.unwrap();
        assert_eq!((done.refund.id.as_str(), done.refund.status), ("rf_1", RefundStatus::Succeeded));
    }}

    async_test! {
    async fn a_refund_the_processor_cannot_make_gives_its_reservation_back_and_is_not_audited() {
        let mut payments = MockPaymentRepository::new();
        payments.expect_get().returning(|_| Ok(Some(paid())));
        payments.expect_reserve_refund().withf(|r, _| r.amount.minor == 400).times(1).returning(|_, _| Ok(RefundReservation::Reserved(Box::new(paid()))));
        payments
            .expect_settle_refund()
            .withf(|_, settlement, _| settlement.status == RefundStatus::Failed && settlement.processor_refund_id.is_none())
            .times(1)
            .returning(|_, _, _| Ok(paid()));
        let mut audit = crate::ports::MockAuditLog::new();
        audit.expect_append().never();
        let processor = refunding_processor(|| Err(ProcessorError::Unavailable("down".into())));
        let error = service(processor, payments, audit).refund(refund_of(400)).await.unwrap_err();
        assert!(matches!(error, PaymentError::Processor(ProcessorError::Unavailable(_))), "{error:?}");
    }}

    async_test! {
    async fn a_refund_the_processor_refuses_is_given_back_and_answered_as_refused() {
        let mut payments = MockPaymentRepository::new();
        payments.expect_get().returning(|_| Ok(Some(paid())));
        payments.expect_reserve_refund().times(1).returning(|_, _| Ok(RefundReservation::Reserved(Box::new(paid()))));
        payments
            .expect_settle_refund()
            .withf(|_, settlement, _| settlement.status == RefundStatus::Failed)
            .times(1)
            .returning(|_, _, _| Ok(paid()));
        let mut audit = crate::ports::MockAuditLog::new();
        audit.expect_append().never();
        let processor = refunding_processor(|| Err(ProcessorError::Rejected("charge already refunded".into())));
        let keyed = RefundPayment { idempotency_key: Some("k".into()), ..refund_of(400) };
        let mut payments_for_key = payments;
        payments_for_key.expect_refunds_of().returning(|_| Ok(vec![]));
        let error = service(processor, payments_for_key, audit).refund(keyed).await.unwrap_err();
        assert!(matches!(error, PaymentError::RefundRefused(_)), "{error:?}");
    }}

    async_test! {
    async fn a_refund_made_is_settled_with_the_processors_id_and_audited() {
        let mut payments = MockPaymentRepository::new();
        payments.expect_get().returning(|_| Ok(Some(paid())));
        payments.expect_reserve_refund().times(1).returning(|_, _| Ok(RefundReservation::Reserved(Box::new(paid()))));
        payments
            .expect_settle_refund()
            .withf(|_, s, _| s.status == RefundStatus::Succeeded && s.processor_refund_id.as_deref() == Some("re_1"))
            .times(1)
            .returning(|_, _, _| Ok(Payment { refunded: 400, ..paid() }));
        let mut audit = crate::ports::MockAuditLog::new();
        audit.expect_append().withf(|r, _| r.action == "payment.refunded").times(1).returning(|_, _| Ok(()));
        let processor = refunding_processor(|| {
            Ok(Refund { id: "re_1".into(), amount: Money::new(400, Currency::parse("USD").unwrap()), status: "succeeded".into() })
        });
        let done = service(processor, payments, audit).refund(refund_of(400)).await.unwrap();
        assert_eq!((done.refund.status, done.payment.refundable()), (RefundStatus::Succeeded, 600));
    }}

    async_test! {
    async fn a_refund_beyond_what_is_left_never_reaches_the_processor() {
        let mut payments = MockPaymentRepository::new();
        payments.expect_get().returning(|_| Ok(Some(paid())));
        payments.expect_reserve_refund().returning(|_, _| Ok(RefundReservation::Exceeds { refundable: 300 }));
        payments.expect_settle_refund().never();
        let mut processor = sandbox_processor();
        processor.expect_capabilities().return_const(Capabilities { payments: true, refunds: true, ..Capabilities::default() });
        processor.expect_refund().never();
        let error = service(processor, payments, crate::ports::MockAuditLog::new()).refund(refund_of(400)).await.unwrap_err();
        assert!(matches!(error, PaymentError::RefundExceedsPayment { refundable: 300 }), "{error:?}");
    }}

    /// Reconciliation over nothing but `payments` (no subscriptions, customers or parked events).
    fn refund_reconciler(processor: MockProcessor, payments: MockPaymentRepository) -> ReconcileService {
        let mut workspaces = MockWorkspaceRepository::new();
        workspaces.expect_linked_customers().returning(|_, _, _| Ok(vec![]));
        let mut subscriptions = MockSubscriptionRepository::new();
        subscriptions.expect_list_live().returning(|_, _, _| Ok(vec![]));
        let mut uow = MockUnitOfWork::new();
        uow.expect_begin().returning(|| Err(StoreError::Unavailable("not needed here".into())));
        ReconcileService::new(
            Arc::new(processor),
            Arc::new(workspaces),
            Arc::new(subscriptions),
            Arc::new(webhook_service(uow)),
            clock(),
        )
        .with_refunds(Arc::new(payments))
    }

    async_test! {
    async fn reconciliation_settles_refunds_left_pending_and_leaves_old_ones_to_an_operator() {
        let timed_out = pending("rf_1", "key:backend:r");
        let at_processor = crate::payment::RefundRecord { processor_refund_id: Some("re_2".into()), ..pending("rf_2", "key:backend:s") };
        let too_old = crate::payment::RefundRecord { created_at: now() - chrono::Duration::days(2), ..pending("rf_3", "key:backend:t") };
        let mut payments = MockPaymentRepository::new();
        payments.expect_pending_refunds().times(1).returning(move |_, _| Ok(vec![timed_out.clone(), at_processor.clone(), too_old.clone()]));
        payments.expect_get().returning(|_| Ok(Some(paid())));
        payments
            .expect_settle_refund()
            .withf(|id, s, _| id.as_str() == "rf_1" && s.status == RefundStatus::Succeeded && s.processor_refund_id.as_deref() == Some("re_1"))
            .times(1)
            .returning(|_, _, _| Ok(paid()));
        let mut processor = sandbox_processor();
        // Asked again under its own key: the processor answers with the refund it made.
        processor.expect_refund().withf(|_, _, key| key == "refund:rf_1").times(1).returning(|_, _, _| {
            Ok(Refund { id: "re_1".into(), amount: Money::new(400, Currency::parse("USD").unwrap()), status: "succeeded".into() })
        });
        // Still pending at the processor: nothing settles yet.
        processor.expect_fetch_refund().withf(|id| id == "re_2").times(1).returning(|_| {
            Ok(Refund { id: "re_2".into(), amount: Money::new(400, Currency::parse("USD").unwrap()), status: "pending".into() })
        });
        processor.expect_list_for_customer().never();
        let report = refund_reconciler(processor, payments).run().await.unwrap();
        assert_eq!(report.refunds_settled.iter().map(|r| r.as_str()).collect::<Vec<_>>(), ["rf_1"]);
        let failed: Vec<_> = report.failed.iter().filter_map(|f| f.refund_id.as_ref().map(|r| r.as_str())).collect();
        assert_eq!(failed, ["rf_3"], "{:?}", report.failed);
    }}

    async_test! {
    async fn a_payment_of_another_processor_is_refunded_there() {
        let mut payments = MockPaymentRepository::new();
        payments.expect_get().returning(|_| Ok(Some(Payment { processor: ProcessorId::new("stripe"), ..paid() })));
        payments.expect_reserve_refund().never();
        let mut processor = sandbox_processor();
        processor.expect_capabilities().return_const(Capabilities { payments: true, refunds: true, ..Capabilities::default() });
        processor.expect_refund().never();
        let error = service(processor, payments, crate::ports::MockAuditLog::new()).refund(refund_of(400)).await.unwrap_err();
        assert!(matches!(error, PaymentError::ManagedElsewhere(ref p) if p == "stripe"), "{error:?}");
    }}

    async_test! {
    async fn a_subscription_plan_is_not_sold_as_a_payment_intent() {
        let mut processor = sandbox_processor();
        processor.expect_capabilities().return_const(Capabilities { payments: true, refunds: true, ..Capabilities::default() });
        processor.expect_create_payment_intent().never();
        let request = CreatePayment {
            workspace_id: WorkspaceId::parse("acme").unwrap(),
            charge: Charge::Plan("pro".into()),
            description: None,
            return_url: "http://localhost/back".into(),
            idempotency_key: None,
            actor: actor(),
            request_id: None,
        };
        let error = service(processor, MockPaymentRepository::new(), crate::ports::MockAuditLog::new()).create(request).await.unwrap_err();
        assert!(matches!(error, PaymentError::Invalid(ref e) if e.field == "plan"), "{error:?}");
    }}
}

async_test! {
async fn renewal_deliveries_refused_for_their_signature_stay_pending_and_unparsable_ones_do_not() {
    use crate::ports::{MockSandboxControls, MockWebhookOps, RawDelivery, WebhookError};
    let delivery = |id: &str| RawDelivery {
        event_id: id.into(),
        event_type: "invoice.paid".into(),
        headers: vec![],
        body: id.into(),
    };
    let mut controls = MockSandboxControls::new();
    controls.expect_unacknowledged().returning(|_| Ok(vec![]));
    controls.expect_renew_due().returning(move || Ok(vec![delivery("evt_stale"), delivery("evt_garbled")]));
    controls
        .expect_acknowledge()
        .withf(|ids| ids == ["evt_garbled".to_owned()])
        .times(1)
        .returning(|_| Ok(()));
    let mut verifier = MockWebhookOps::new();
    verifier.expect_verify_and_parse().returning(|_, body, _| match body {
        b"evt_stale" => Err(WebhookError::StaleTimestamp { tolerance_secs: 300 }),
        _ => Err(WebhookError::MalformedPayload("not json".into())),
    });
    let renewals = RenewalService::new(
        Arc::new(controls),
        Arc::new(verifier),
        Arc::new(webhook_service(MockUnitOfWork::new())),
        clock(),
    );
    let report = renewals.run().await.unwrap();
    assert_eq!((report.renewal_deliveries, report.problems.len()), (1, 2), "{report:?}");
    assert!(report.problems[0].contains("delivered again later"), "{report:?}");
}}
