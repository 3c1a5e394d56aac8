//! The delivery worker against mocks of its ports: what it sends, what it records, and when it gives up.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::Duration;
use serde_json::json;

use super::*;
use crate::ports::{
    MockNotifier, MockOutbox, MockRetrySchedule, MockUnitOfWork, MockWebhookPublisher, MockWorkspaceRepository,
    NotifyError, PublishError,
};
use crate::services::test_support::{MockTx, clock, now, workspace};
use crate::testing::test_catalog;

macro_rules! async_test {
    (async fn $name:ident() $body:block) => {
        #[test]
        fn $name() {
            futures::executor::block_on(async $body)
        }
    };
}

fn pending(id: i64, attempts: u32, target: OutboxTarget, payload: serde_json::Value) -> PendingMessage {
    PendingMessage {
        id,
        attempts,
        created_at: now() - Duration::minutes(1),
        message: OutboxMessage {
            dedup_key: format!("key:{id}"),
            workspace_id: WorkspaceId::parse("acme").unwrap(),
            target,
            payload,
            request_id: None,
        },
    }
}

fn receipt(id: i64, attempts: u32) -> PendingMessage {
    let payload = json!({
        "invoice_id": "in_1", "amount": {"minor": 4900, "currency": "USD"}, "plan": "pro",
        "invoice_url": "https://pay.example/in_1",
    });
    pending(id, attempts, OutboxTarget::Email { kind: NotificationKind::PaymentSucceeded }, payload)
}

/// The ports, each a mock a test configures; what it leaves unset must not be called.
struct Ports {
    outbox: MockOutbox,
    uow: MockUnitOfWork,
    workspaces: MockWorkspaceRepository,
    notifier: MockNotifier,
    publisher: MockWebhookPublisher,
    retry: MockRetrySchedule,
}

impl Ports {
    /// Ports whose outbox hands `claimed` to the one claim a round makes.
    fn new(claimed: Vec<PendingMessage>) -> Self {
        let mut ports = Self::idle();
        let mut slot = Some(claimed);
        ports
            .outbox
            .expect_claim_due()
            .withf(|due, lease, limit| {
                *due == now() && lease.until - lease.now == Duration::seconds(300) && *limit == 16
            })
            .times(1)
            .returning(move |_, _, _| Ok(slot.take().unwrap_or_default()));
        ports
    }

    /// Ports for calls that claim nothing.
    fn idle() -> Self {
        let mut workspaces = MockWorkspaceRepository::new();
        workspaces.expect_get().returning(|id| Ok(Some(workspace(id.as_str()))));
        Self {
            outbox: MockOutbox::new(),
            uow: MockUnitOfWork::new(),
            workspaces,
            notifier: MockNotifier::new(),
            publisher: MockWebhookPublisher::new(),
            retry: MockRetrySchedule::new(),
        }
    }

    fn service(self) -> OutboxService {
        let ports = OutboxPorts {
            outbox: Arc::new(self.outbox),
            uow: Arc::new(self.uow),
            workspaces: Arc::new(self.workspaces),
            catalog: Arc::new(test_catalog()),
            notifier: Arc::new(self.notifier),
            publisher: Arc::new(self.publisher),
            retry: Arc::new(self.retry),
            clock: clock(),
            wall: clock(),
        };
        let policy = DeliveryPolicy {
            batch: 16,
            lease: Duration::seconds(300),
            manage_url: Some("https://app.example/billing/{workspace_id}".into()),
        };
        OutboxService::new(ports, policy)
    }
}

async_test! {
async fn an_email_goes_to_the_owner_with_its_facts_and_is_marked_delivered() {
    let mut ports = Ports::new(vec![receipt(7, 0)]);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let seen = sent.clone();
    ports.notifier.expect_send().times(1).returning(move |n| {
        seen.lock().unwrap().push(n.clone());
        Ok(())
    });
    ports.outbox.expect_mark_delivered().withf(|id, at| *id == 7 && *at == now()).times(1).returning(|_, _| Ok(()));
    let report = ports.service().deliver_due().await.unwrap();
    assert_eq!((report.claimed, report.delivered, report.retrying, report.dead), (1, 1, 0, 0));
    let sent = sent.lock().unwrap();
    let notification = &sent[0];
    assert_eq!(notification.outbox_id, 7, "the Message-ID is derived from it");
    assert_eq!(notification.to.as_str(), "owner@example.com");
    assert_eq!(notification.workspace_name, "Acme");
    assert_eq!(notification.kind, NotificationKind::PaymentSucceeded);
    assert_eq!(notification.facts.plan.as_deref(), Some("Pro"), "the plan's display name");
    assert_eq!(notification.facts.amount.as_ref().map(|m| m.minor), Some(4900));
    assert_eq!(notification.facts.invoice_url.as_deref(), Some("https://pay.example/in_1"));
    assert_eq!(notification.facts.manage_url.as_deref(), Some("https://app.example/billing/acme"));
}}

async_test! {
async fn a_failed_send_is_retried_after_the_schedules_delay_then_dead() {
    let mut ports = Ports::new(vec![receipt(1, 0), receipt(2, 4)]);
    ports.notifier.expect_send().times(2).returning(|_| Err(NotifyError("421 try later".into())));
    ports.retry.expect_next_delay().withf(|failed| *failed == 1).returning(|_| Some(StdDuration::from_secs(30)));
    ports.retry.expect_next_delay().withf(|failed| *failed == 5).returning(|_| None);
    ports
        .outbox
        .expect_mark_failed()
        .withf(|id, error, retry_at| *id == 1 && error.contains("421") && *retry_at == Some(now() + Duration::seconds(30)))
        .times(1)
        .returning(|_, _, _| Ok(()));
    ports.outbox.expect_mark_failed().withf(|id, _, retry_at| *id == 2 && retry_at.is_none()).times(1).returning(|_, _, _| Ok(()));
    let report = ports.service().deliver_due().await.unwrap();
    assert_eq!((report.delivered, report.retrying, report.dead), (0, 1, 1));
    assert_eq!(report.failures.len(), 2);
}}

async_test! {
async fn an_email_to_a_workspace_that_is_gone_is_dead_at_once() {
    let mut ports = Ports::new(vec![receipt(3, 0)]);
    ports.workspaces = MockWorkspaceRepository::new();
    ports.workspaces.expect_get().returning(|_| Ok(None));
    ports.notifier.expect_send().never();
    ports.retry.expect_next_delay().never();
    ports.outbox.expect_mark_failed().withf(|id, _, retry_at| *id == 3 && retry_at.is_none()).times(1).returning(|_, _, _| Ok(()));
    assert_eq!(ports.service().deliver_due().await.unwrap().dead, 1);
}}

async_test! {
async fn a_webhook_is_addressed_to_each_subscribed_endpoint_in_one_transaction() {
    let webhook = pending(9, 0, OutboxTarget::Webhook { topic: "billing.payment.failed".into() }, json!({"invoice_id": "in_1"}));
    let mut ports = Ports::new(vec![webhook]);
    ports.publisher.expect_subscribers().withf(|topic| topic == "billing.payment.failed").returning(|_| vec!["backend".into(), "audit".into()]);
    ports.publisher.expect_publish().never();
    let mut tx = MockTx::default();
    let enqueued = Arc::new(Mutex::new(Vec::new()));
    let seen = enqueued.clone();
    tx.outbox.expect_enqueue_all().times(1).returning(move |messages| {
        seen.lock().unwrap().extend(messages.iter().map(|(m, _)| m.clone()));
        Ok(())
    });
    tx.outbox.expect_mark_delivered().withf(|id, _| *id == 9).times(1).returning(|_, _| Ok(()));
    let committed = tx.committed.clone();
    let mut slot = Some(tx);
    ports.uow.expect_begin().times(1).returning(move || Ok(Box::new(slot.take().unwrap())));
    let report = ports.service().deliver_due().await.unwrap();
    assert_eq!((report.fanned_out, report.delivered), (1, 0));
    assert!(committed.load(Ordering::SeqCst));
    let enqueued = enqueued.lock().unwrap();
    let endpoints: Vec<_> = enqueued
        .iter()
        .map(|m| match &m.target {
            OutboxTarget::Endpoint { endpoint, topic } => (endpoint.as_str(), topic.as_str(), m.dedup_key.as_str()),
            other => panic!("not addressed: {other:?}"),
        })
        .collect();
    assert_eq!(
        endpoints,
        [("backend", "billing.payment.failed", "key:9@backend"), ("audit", "billing.payment.failed", "key:9@audit")]
    );
    let body: OutboundEvent = serde_json::from_value(enqueued[0].payload.clone()).unwrap();
    assert_eq!(body.id, "evt_9", "one id on every endpoint and every retry");
    assert_eq!(body.created, (now() - Duration::minutes(1)).timestamp());
    assert_eq!(body.data, json!({"invoice_id": "in_1", "workspace_id": "acme"}));
    assert_eq!(enqueued[1].payload, enqueued[0].payload);
}}

async_test! {
async fn a_webhook_nobody_subscribes_to_is_done() {
    let webhook = pending(4, 0, OutboxTarget::Webhook { topic: "billing.charge.refunded".into() }, json!({}));
    let mut ports = Ports::new(vec![webhook]);
    ports.publisher.expect_subscribers().returning(|_| vec![]);
    let mut tx = MockTx::default();
    tx.outbox.expect_enqueue_all().withf(|messages| messages.is_empty()).returning(|_| Ok(()));
    tx.outbox.expect_mark_delivered().withf(|id, _| *id == 4).times(1).returning(|_, _| Ok(()));
    let mut slot = Some(tx);
    ports.uow.expect_begin().times(1).returning(move || Ok(Box::new(slot.take().unwrap())));
    assert_eq!(ports.service().deliver_due().await.unwrap().fanned_out, 1);
}}

async_test! {
async fn an_addressed_webhook_is_published_and_a_failing_endpoint_retried_alone() {
    let body = |id: &str| json!({"id": id, "type": "billing.payment.failed", "created": 1, "data": {}});
    let to = |endpoint: &str| OutboxTarget::Endpoint { endpoint: endpoint.into(), topic: "billing.payment.failed".into() };
    let mut ports = Ports::new(vec![pending(5, 0, to("backend"), body("evt_1")), pending(6, 2, to("dead"), body("evt_1"))]);
    ports.publisher.expect_publish().withf(|endpoint, event| endpoint == "backend" && event.id == "evt_1").times(1).returning(|_, _| Ok(()));
    ports.publisher.expect_publish().withf(|endpoint, _| endpoint == "dead").times(1).returning(|_, _| Err(PublishError("connection refused".into())));
    ports.retry.expect_next_delay().withf(|failed| *failed == 3).returning(|_| Some(StdDuration::from_secs(240)));
    ports.outbox.expect_mark_delivered().withf(|id, _| *id == 5).times(1).returning(|_, _| Ok(()));
    ports.outbox.expect_mark_failed().withf(|id, _, at| *id == 6 && *at == Some(now() + Duration::seconds(240))).times(1).returning(|_, _, _| Ok(()));
    let report = ports.service().deliver_due().await.unwrap();
    assert_eq!((report.delivered, report.retrying), (1, 1));
}}

async_test! {
async fn an_operator_retries_a_dead_message_but_never_a_delivered_one() {
    let entry = |status| OutboxEntry {
        id: 8,
        message: receipt(8, 3).message,
        status,
        attempts: 0,
        last_error: None,
        available_at: now(),
        leased_until: None,
        created_at: now(),
        delivered_at: None,
    };
    let mut ports = Ports::idle();
    ports.outbox.expect_retry().withf(|id, at| *id == 8 && *at == now()).times(1).returning(|_, _| Ok(true));
    ports.outbox.expect_retry().withf(|id, _| *id == 9).returning(|_, _| Ok(false));
    ports.outbox.expect_retry().withf(|id, _| *id == 10).returning(|_, _| Ok(false));
    ports.outbox.expect_get().withf(|id| *id == 8).returning(move |_| Ok(Some(entry(OutboxStatus::Pending))));
    ports.outbox.expect_get().withf(|id| *id == 9).returning(move |_| Ok(Some(entry(OutboxStatus::Delivered))));
    ports.outbox.expect_get().withf(|id| *id == 10).returning(|_| Ok(None));
    let service = ports.service();
    assert_eq!(service.retry(8).await.unwrap().status, OutboxStatus::Pending);
    assert!(matches!(service.retry(9).await, Err(OutboxError::Delivered)));
    assert!(matches!(service.retry(10).await, Err(OutboxError::NotFound)));
}}
