//! Fresh databases per test and fixture builders.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::Duration;

use billing_domain::events::{EventPayload, ProcessorEvent};
use billing_domain::ids::{CustomerId, EventId, ProcessorId, SubscriptionId, WorkspaceId};
use billing_domain::ports::InboxEvent;
use billing_domain::records::{Actor, AuditRecord, NotificationKind, OutboxMessage, OutboxTarget};
use billing_domain::subscription::{Subscription, SubscriptionStatus};
use billing_domain::testing;
use billing_domain::workspace::{BillingDetails, TaxId, Workspace};
use billing_store::Store;
use chrono::{DateTime, TimeZone, Utc};
use futures::FutureExt;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs `body` on a fresh migrated database of `backend` and removes the database afterwards, even on failure.
pub async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let db = TestDb::create(backend).await;
    let outcome = AssertUnwindSafe(body(db.store.clone())).catch_unwind().await;
    db.destroy().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

struct TestDb {
    store: Store,
    cleanup: Cleanup,
}

enum Cleanup {
    SqliteDir(PathBuf),
    Postgres(String),
}

impl TestDb {
    async fn create(backend: Backend) -> Self {
        let (url, cleanup) = match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("tollgate-test-{}", uuid::Uuid::new_v4()));
                // A nested, missing directory: `connect` must create it.
                let url = format!("sqlite://{}/data/tollgate.db?mode=rwc", dir.display());
                (url, Cleanup::SqliteDir(dir))
            }
            Backend::Postgres => {
                let (url, name) = create_postgres_database().await;
                (url, Cleanup::Postgres(name))
            }
        };
        let store = billing_store::connect(&url).await.unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
        store.migrate().await.expect("migrations apply to a fresh database");
        Self { store, cleanup }
    }

    /// Best effort: a leftover database must not hide the test's own outcome.
    async fn destroy(self) {
        let _ = self.store.close().await;
        match self.cleanup {
            Cleanup::SqliteDir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres(name) => drop_postgres_database(&name).await,
        }
    }
}

/// Creates an empty database named `tollgate_t_<uuid>`; returns its URL and name.
pub async fn create_postgres_database() -> (String, String) {
    let admin_url = postgres_admin_url();
    let name = format!("tollgate_t_{}", uuid::Uuid::new_v4().simple());
    let admin = admin_connection(&admin_url).await;
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    let _ = admin.close().await;
    (with_database(&admin_url, &name), name)
}

/// Drops a test database, disconnecting whoever still uses it. Best effort.
pub async fn drop_postgres_database(name: &str) {
    let admin = admin_connection(&postgres_admin_url()).await;
    let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
    let _ = admin.close().await;
}

fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

async fn admin_connection(url: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    Database::connect(options).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is required for the store tests and is not reachable at {url}: {e}\n\
             Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n\
             or point TEST_POSTGRES_URL at a server where the user may CREATE DATABASE."
        )
    })
}

/// The same server URL with another database name (the path), keeping any query string.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// A fixed instant `secs` seconds after an arbitrary epoch, so tests never depend on the wall clock.
pub fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).single().expect("a valid timestamp")
}

pub fn ws_id(raw: &str) -> WorkspaceId {
    WorkspaceId::parse(raw).expect("a valid workspace id")
}

/// The shared builder's workspace with full billing details (so every column round-trips), created at `at(0)`.
pub fn workspace(id: &str) -> Workspace {
    let details = BillingDetails {
        legal_name: Some("Acme GmbH".into()),
        city: Some("Berlin".into()),
        country: Some("DE".into()),
        tax_ids: vec![TaxId { kind: "eu_vat".into(), value: "DE123456789".into() }],
        ..Default::default()
    };
    testing::workspace_with(id, details, at(0))
}

/// The shared builder's subscription with three seats and a period from `at(0)`, in `status` since `at(status_at)`.
pub fn subscription(id: &str, workspace: &str, status: SubscriptionStatus, status_at: i64) -> Subscription {
    let mut subscription = testing::subscription(id, workspace, status, at(status_at));
    subscription.terms.quantity = 3;
    subscription.terms.current_period_start = Some(at(0));
    subscription.terms.current_period_end = Some(at(30 * 86_400));
    subscription
}

pub fn inbox_event(id: &str) -> InboxEvent {
    InboxEvent {
        processor: ProcessorId::new("sandbox"),
        event_id: EventId::new(id),
        event_type: "invoice.paid".into(),
        payload: format!(r#"{{"id":"{id}","type":"invoice.paid"}}"#),
        received_at: at(0),
    }
}

pub fn processor_event(id: &str, customer: &str) -> ProcessorEvent {
    ProcessorEvent {
        id: EventId::new(id),
        processor: ProcessorId::new("sandbox"),
        event_type: "customer.subscription.trial_will_end".into(),
        occurred_at: at(5),
        payload: EventPayload::TrialWillEnd {
            customer_id: CustomerId::new(customer),
            subscription_id: SubscriptionId::new("sub_1"),
            trial_end: Some(at(86_400)),
        },
    }
}

pub fn audit_record(workspace: &str, action: &str) -> AuditRecord {
    AuditRecord {
        workspace_id: ws_id(workspace),
        action: action.into(),
        actor: Actor::ApiKey { name: "backend".into() },
        before: Some(serde_json::json!({"plan": "free"})),
        after: Some(serde_json::json!({"plan": "pro"})),
        request_id: Some("req-1".into()),
    }
}

pub fn outbox_message(dedup_key: &str) -> OutboxMessage {
    OutboxMessage {
        dedup_key: dedup_key.into(),
        workspace_id: ws_id("team_1"),
        target: OutboxTarget::Email { kind: NotificationKind::PaymentSucceeded },
        payload: serde_json::json!({"invoice": "in_1", "amount": 1200}),
        request_id: Some("req-1".into()),
    }
}

/// The time the tests' writes are stamped with (the store keeps no clock of its own).
pub fn now() -> DateTime<Utc> {
    at(1_700_000_000)
}
