//! `spawn_app`: a fresh database (SQLite file or PostgreSQL database), the real wiring, a random port.

use std::path::PathBuf;
use std::time::Duration;

use billing_app::catalog_file::load_catalog;
use billing_app::settings::{ApiKeySettings, ProcessorChoice, Settings};
use billing_app::startup::Application;
use hmac::{Hmac, Mac};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::transcript::{self, Client};

/// The development key shipped in `config/development.toml` (for local use only).
pub const DEV_KEY: &str = "tg_dev_local_only";
/// A key with only `billing:read`, added by `spawn_app`.
pub const READ_KEY: &str = "tg_test_read_only";
/// The sandbox secret of `config/development.toml`.
pub const SANDBOX_SECRET: &str = "whsec_sandbox_dev_only";
/// The fake Stripe secret key of [`spawn_stripe_app`]; valid in shape only, so no Stripe account ever sees it.
pub const STRIPE_SECRET_KEY: &str = "sk_test_51TollgateApiTestsFakeSecretKey00000000000000";
/// The Stripe webhook signing secret of [`spawn_stripe_app`].
pub const STRIPE_WEBHOOK_SECRET: &str = "whsec_TollgateApiTestsStripeSigningSecret0000";
/// The SMTP password every test app is configured with (`scripts/scan-secrets` looks for it).
pub const SMTP_PASSWORD: &str = "smtp-pass-TollgateApiTests-0000";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    /// Records every response for the secret scan (`transcript.rs`).
    pub client: Client,
    pub db_url: String,
    /// Dropped with the app: the test's database goes with it.
    _database: TestDatabase,
}

/// A test's own database, removed when the test ends (pass or fail), so runs do not pile databases up.
enum TestDatabase {
    Sqlite(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match self {
            Self::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            // `Drop` cannot await, and the test's runtime may be shutting down: a thread with its own runtime.
            // FORCE ends the connections the app's pool still holds.
            Self::Postgres { admin_url, name } => {
                let (admin_url, database) = (admin_url.clone(), name.clone());
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    runtime.block_on(async {
                        let admin = Database::connect(&admin_url).await?;
                        admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).await?;
                        admin.close().await
                    })?;
                    Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
                })
                .join();
                match dropped {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => eprintln!("could not drop test database {name}: {error}"),
                    Err(_) => eprintln!("dropping test database {name} panicked"),
                }
            }
        }
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh, empty database for `backend`: its URL, and the guard that removes it.
async fn fresh_database(backend: Backend) -> (String, TestDatabase) {
    let name = format!("tollgate_api_{}", uuid::Uuid::new_v4().simple());
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join("tollgate-api-tests");
            std::fs::create_dir_all(&dir).expect("temp dir");
            let path = dir.join(format!("{name}.db"));
            (format!("sqlite://{}?mode=rwc", path.display()), TestDatabase::Sqlite(path))
        }
        Backend::Postgres => {
            let admin_url = std::env::var("TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
            let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is required for these tests and is not reachable at {admin_url}: {e}. Start it with \
                     `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` or run scripts/test."
                )
            });
            admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
            admin.close().await.expect("close the admin connection");
            let base = admin_url.rsplit_once('/').map(|(base, _)| base).unwrap_or(&admin_url);
            (format!("{base}/{name}"), TestDatabase::Postgres { admin_url: admin_url.clone(), name })
        }
    }
}

/// The app with the development settings: the sandbox processor.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// The app with `processor = "stripe"`: a fake `sk_test_…` key, [`STRIPE_WEBHOOK_SECRET`], the sandbox off, no
/// reconciliation job, and an API base URL where nothing listens (webhook ingestion calls no Stripe API; anything
/// that does gets a connection refused).
pub async fn spawn_stripe_app(backend: Backend) -> TestApp {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let api_base = format!("http://127.0.0.1:{}", unused.local_addr().unwrap().port());
    drop(unused);
    spawn_app_with(backend, move |settings| {
        settings.processor = ProcessorChoice::Stripe;
        settings.sandbox.enabled = false;
        settings.stripe.secret_key = SecretString::from(STRIPE_SECRET_KEY);
        settings.stripe.webhook_secrets = vec![SecretString::from(STRIPE_WEBHOOK_SECRET)];
        settings.stripe.api_base = api_base;
        settings.stripe.timeout_ms = 2_000;
        settings.reconcile.interval_secs = 0;
    })
    .await
}

/// The settings entry of API key `key` named `name`, with one `scope`.
pub fn api_key(name: &str, key: &str, scope: &str) -> ApiKeySettings {
    ApiKeySettings {
        name: name.into(),
        hash: format!("sha256:{}", billing_http::auth::hash_key(key)),
        scopes: vec![scope.into()],
    }
}

/// The app with the development settings changed by `configure` (validated again afterwards).
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let root = repo_root();
    let mut settings = Settings::load_from(&root.join("config"), "development").expect("development settings load");
    settings.server.port = 0;
    settings.server.host = "127.0.0.1".into();
    settings.catalog.path = root.join("config/plans.toml");
    let (db_url, database) = fresh_database(backend).await;
    settings.database.url = SecretString::from(db_url.clone());
    settings.database.migrate_on_start = true;
    settings.auth.api_keys.push(api_key("reader", READ_KEY, "billing:read"));
    settings.notifications.email.smtp.username = "tollgate".into();
    settings.notifications.email.smtp.password = SecretString::from(SMTP_PASSWORD);
    configure(&mut settings);
    transcript::capture_logs();
    let problems = settings.validate();
    assert!(problems.is_empty(), "test settings are invalid: {problems:?}");
    let catalog = load_catalog(&settings.catalog.path).expect("shipped catalog loads");
    let app = Application::build(settings, catalog).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = Client::new(reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap());
    TestApp { address, client, db_url, _database: database }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(DEV_KEY).send().await.expect("request")
    }

    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.client.post(self.url(path)).bearer_auth(DEV_KEY).json(&body).send().await.expect("request")
    }

    pub async fn put_workspace(&self, id: &str) -> reqwest::Response {
        let body = json!({"name": "Acme", "owner_email": "owner@acme.test", "billing_details": {"country": "DE"}});
        self.client
            .put(self.url(&format!("/v1/workspaces/{id}")))
            .bearer_auth(DEV_KEY)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn checkout(&self, id: &str, plan: &str) -> Value {
        let response = self.post_json(&format!("/v1/workspaces/{id}/checkout"), json!({"plan": plan})).await;
        assert_eq!(response.status(), 201, "checkout failed");
        response.json().await.unwrap()
    }

    /// Presses a button on the sandbox checkout page, as a browser form post.
    pub async fn press(&self, session_id: &str, button: &str) -> reqwest::Response {
        self.client.post(self.url(&format!("/sandbox/checkout/{session_id}/{button}"))).send().await.unwrap()
    }

    pub async fn json_of(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    pub async fn audit_actions(&self, id: &str) -> Vec<String> {
        let audit = self.json_of(&format!("/v1/workspaces/{id}/audit?limit=200")).await;
        audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect()
    }

    /// The sandbox customer linked when the workspace's first checkout started.
    pub async fn customer_of(&self, id: &str) -> String {
        let audit = self.json_of(&format!("/v1/workspaces/{id}/audit?limit=200")).await;
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "checkout.started")
            .and_then(|e| e["after"]["customer_id"].as_str())
            .expect("a checkout started")
            .to_owned()
    }

    pub async fn post_webhook(&self, body: &str, signature: Option<&str>) -> reqwest::Response {
        let mut request = self.client.post(self.url("/webhooks/sandbox")).header("content-type", "application/json");
        if let Some(signature) = signature {
            request = request.header("Sandbox-Signature", signature);
        }
        request.body(body.to_owned()).send().await.unwrap()
    }

    /// Delivers `body` to `POST /webhooks/stripe`, with `Stripe-Signature: {signature}` when given.
    pub async fn post_stripe_webhook(&self, body: &str, signature: Option<&str>) -> reqwest::Response {
        let mut request = self.client.post(self.url("/webhooks/stripe")).header("content-type", "application/json");
        if let Some(signature) = signature {
            request = request.header("Stripe-Signature", signature);
        }
        request.body(body.to_owned()).send().await.unwrap()
    }

    /// The first column, as text, of every row of `sql` on the app's database, read directly.
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        let db: DatabaseConnection = Database::connect(&self.db_url).await.unwrap();
        let backend = db.get_database_backend();
        let rows = db.query_all_raw(Statement::from_string(backend, sql.to_owned())).await.unwrap();
        let texts = rows.iter().map(|row| row.try_get_by_index::<String>(0).unwrap()).collect();
        db.close().await.ok();
        texts
    }

    /// Counts rows of a table in the app's database, read directly.
    pub async fn count(&self, table: &str) -> i64 {
        let db: DatabaseConnection = Database::connect(&self.db_url).await.unwrap();
        let backend = db.get_database_backend();
        let row = db
            .query_one_raw(Statement::from_string(backend, format!("SELECT COUNT(*) AS n FROM {table}")))
            .await
            .unwrap()
            .unwrap();
        let n: i64 = row.try_get("", "n").unwrap();
        db.close().await.ok();
        n
    }
}

/// Signs `body` the way the sandbox (and Stripe) do, at unix time `t`.
pub fn sign(body: &str, t: i64) -> String {
    sign_with(SANDBOX_SECRET, body, t)
}

/// A `t=…,v1=…` signature header of `body` at unix time `t` with `secret` (HMAC-SHA256 over `"{t}.{body}"`, hex).
pub fn sign_with(secret: &str, body: &str, t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A Stripe-shaped `customer.subscription.created` event for `customer` on the sandbox pro price.
pub fn subscription_event(event_id: &str, customer: &str, subscription: &str, created: i64) -> String {
    subscription_update(event_id, "customer.subscription.created", customer, subscription, created, "active")
}

/// A Stripe-shaped subscription event of `kind` with `status`, created at `created`.
pub fn subscription_update(
    event_id: &str,
    kind: &str,
    customer: &str,
    subscription: &str,
    created: i64,
    status: &str,
) -> String {
    json!({
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": created,
        "livemode": false,
        "data": {"object": {
            "id": subscription,
            "object": "subscription",
            "customer": customer,
            "status": status,
            "cancel_at_period_end": false,
            "current_period_start": created,
            "current_period_end": created + 2_592_000,
            "items": {"object": "list", "data": [{"id": "si_1", "object": "subscription_item", "quantity": 1,
                "price": {"id": "sbx_price_pro", "object": "price"}}]}
        }}
    })
    .to_string()
}

/// Runs a test body against both databases.
macro_rules! on_both_databases {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)(crate::helpers::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)(crate::helpers::Backend::Postgres).await;
            }
        }
    };
}
pub(crate) use on_both_databases;
