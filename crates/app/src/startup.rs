//! Wiring: settings → store, processors, services, HTTP server. `main` only calls into here.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, Service};
use actix_web::{App, HttpMessage, HttpServer, web};
use anyhow::Context as _;
use async_trait::async_trait;
use billing_domain::catalog::Catalog;
use billing_domain::ports::{Clock, IdGenerator, PaymentProcessor, WebhookOps};
use billing_domain::services::{
    CheckoutService, Context, EntitlementService, ReconcileReport, ReconcileService, TrialService, WebhookService,
    WorkspaceService,
};
use billing_http::auth::ApiKeys;
use billing_http::group_commit::{GroupCommit, GroupCommitSettings};
use billing_http::request_span::RequestSpan;
use billing_http::{AppState, CheckoutDefaults, Edge, Readiness, SandboxPages, WebhookDelivery};
use billing_sandbox::{SandboxConfig, SandboxProcessor};
use billing_store::Store;
use billing_stripe::StripeProcessor;
use secrecy::ExposeSecret;
use tracing_actix_web::{RequestId, TracingLogger};

use crate::jobs::Jobs;
use crate::settings::{ProcessorChoice, Settings};
use crate::system::{SystemClock, UuidIds};

/// A built, bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    store: Store,
    jobs: Jobs,
}

impl Application {
    /// Connects and migrates the database, wires every adapter and binds the listener (port 0 picks a free port).
    pub async fn build(settings: Settings, catalog: Catalog) -> anyhow::Result<Self> {
        let cache = settings.cache.to_store().context("cache settings")?;
        let store = open_store(&settings, settings.database.migrate_on_start).await?.with_cache(cache);
        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .with_context(|| format!("binding {}:{}", settings.server.host, settings.server.port))?;
        let address = listener.local_addr()?;
        let port = address.port();
        let public_url = settings.server.public_base_url(port);
        let loopback_host =
            if address.ip().is_unspecified() { "127.0.0.1".to_owned() } else { address.ip().to_string() };

        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ids: Arc<dyn IdGenerator> = Arc::new(UuidIds);
        let catalog = Arc::new(catalog);
        let store_arc = Arc::new(store.clone());

        let Processors { active: processor, sandbox, webhook_verifiers } =
            processors(&settings, &public_url, ids.clone(), clock.clone())?;
        let webhooks = Arc::new(WebhookService::new(store_arc.clone(), catalog.clone(), clock.clone()));
        let ctx = Context {
            catalog: catalog.clone(),
            policy: settings.billing_policy(),
            clock: clock.clone(),
            workspaces: store_arc.clone(),
            subscriptions: store_arc.clone(),
            state: store_arc.clone(),
        };
        let state = AppState {
            catalog: catalog.clone(),
            workspaces: WorkspaceService::new(ctx.clone(), store_arc.clone()),
            trials: TrialService::new(ctx.clone(), store_arc.clone()),
            checkout: CheckoutService::new(
                ctx.clone(),
                processor.clone(),
                store_arc.clone(),
                ids.clone(),
                webhooks.clone(),
            ),
            entitlements: EntitlementService::new(ctx, store_arc.clone()),
            webhooks: GroupCommit::start(
                webhooks.clone(),
                GroupCommitSettings {
                    lanes: settings.webhook_lanes(),
                    max_batch: settings.webhooks.max_batch,
                    max_wait: std::time::Duration::from_micros(settings.webhooks.max_wait_us),
                },
            ),
            subscriptions: store_arc.clone(),
            audit: store_arc.clone(),
            webhook_verifiers,
            clock: clock.clone(),
            readiness: Arc::new(StoreReadiness(store.clone())),
            checkout_defaults: CheckoutDefaults {
                success_url: settings.checkout.success_url.clone(),
                cancel_url: settings.checkout.cancel_url.clone(),
            },
        };
        let keys = ApiKeys::new(
            settings.auth.api_keys.iter().map(|k| (k.name.as_str(), k.hash.as_str(), k.scopes.as_slice())),
        )
        .map_err(anyhow::Error::msg)?;
        let sandbox_pages = match sandbox {
            Some(processor) => Some(web::Data::new(SandboxPages {
                processor,
                delivery: Arc::new(LoopbackDelivery::new(format!("http://{loopback_host}:{port}/webhooks/sandbox"))?),
            })),
            None => None,
        };
        let edge = Edge {
            state: web::Data::new(state),
            keys: web::Data::new(keys),
            sandbox: sandbox_pages,
            max_json_bytes: settings.server.max_json_bytes,
        };

        let mut server = HttpServer::new(move || {
            let edge = edge.clone();
            App::new()
                // Innermost, so an oversized head's 431 still carries the request id and is traced.
                .wrap(actix_web::middleware::from_fn(billing_http::limits::limit_header_size))
                .wrap_fn(|req, srv| {
                    let response = srv.call(req);
                    async move {
                        let mut response = response.await?;
                        let id = response.request().extensions().get::<RequestId>().map(|id| id.to_string());
                        if let Some(value) =
                            id.and_then(|id: String| actix_web::http::header::HeaderValue::from_str(&id).ok())
                        {
                            response
                                .headers_mut()
                                .insert(actix_web::http::header::HeaderName::from_static("x-request-id"), value);
                        }
                        Ok(response)
                    }
                })
                .wrap(billing_http::error::problem_details())
                .wrap(TracingLogger::<RequestSpan>::new())
                .configure(|cfg| edge.configure(cfg))
        })
        .shutdown_timeout(settings.server.shutdown_timeout_secs);
        if let Some(workers) = settings.server.workers {
            server = server.workers(workers);
        }
        let server = server.listen(listener)?.run();
        tracing::info!(%address, public_url, backend = store.backend(), "tollgate listening");
        let reconciler = ReconcileService::new(processor, store_arc.clone(), store_arc, webhooks.clone(), clock);
        let jobs =
            Jobs::start(reconciler, settings.reconcile.interval_secs, webhooks, settings.reconcile.parked_sweep_secs);
        Ok(Self { port, server, store, jobs })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGINT/SIGTERM; in-flight requests finish (up to the shutdown timeout), then the pool closes.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.await.context("running the HTTP server");
        tracing::info!("shutting down: letting background jobs finish");
        self.jobs.stop().await;
        if let Some(stats) = self.store.cache_stats() {
            tracing::info!(hits = stats.hits, misses = stats.misses, "billing-state cache since start");
        }
        served?;
        tracing::info!("shutting down: closing database connections");
        self.store.close().await.context("closing the database")?;
        Ok(())
    }
}

/// `tollgate serve`.
pub async fn serve(settings: Settings, catalog: Catalog) -> anyhow::Result<()> {
    Application::build(settings, catalog).await?.run_until_stopped().await
}

/// `tollgate reconcile`: one reconciliation run against the active processor; prints what it changed.
pub async fn reconcile(settings: &Settings, catalog: Catalog) -> anyhow::Result<ReconcileReport> {
    let store = open_store(settings, settings.database.migrate_on_start).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ids: Arc<dyn IdGenerator> = Arc::new(UuidIds);
    let public_url = settings.server.public_base_url(settings.server.port);
    let Processors { active, .. } = processors(settings, &public_url, ids, clock.clone())?;
    let store_arc = Arc::new(store.clone());
    let webhooks = Arc::new(WebhookService::new(store_arc.clone(), Arc::new(catalog), clock.clone()));
    let report = ReconcileService::new(active, store_arc.clone(), store_arc, webhooks, clock).run().await;
    store.close().await.context("closing the database")?;
    Ok(report?)
}

/// The processor adapters this configuration enables.
struct Processors {
    /// The one that sells plans and answers reconciliation.
    active: Arc<dyn PaymentProcessor>,
    /// The sandbox, when enabled: its pages are served whichever processor is active.
    sandbox: Option<Arc<SandboxProcessor>>,
    /// Webhook verification by processor id (`/webhooks/{id}`).
    webhook_verifiers: HashMap<String, Arc<dyn WebhookOps>>,
}

fn processors(
    settings: &Settings,
    public_url: &str,
    ids: Arc<dyn IdGenerator>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Processors> {
    let mut webhook_verifiers: HashMap<String, Arc<dyn WebhookOps>> = HashMap::new();
    let sandbox = match settings.sandbox.enabled {
        true => {
            let config = SandboxConfig {
                public_base_url: public_url.to_owned(),
                webhook_secrets: settings.sandbox.webhook_secrets.clone(),
                tolerance_secs: settings.sandbox.tolerance_secs,
            };
            config.validate().context("sandbox configuration")?;
            tracing::warn!(
                "the sandbox processor is enabled: anyone who can reach /sandbox/checkout can complete its \
                 checkouts without paying; disable it (sandbox.enabled = false) wherever real money is involved"
            );
            let sandbox = Arc::new(SandboxProcessor::new(config, ids, clock));
            webhook_verifiers.insert(billing_sandbox::PROCESSOR_ID.to_owned(), sandbox.clone());
            Some(sandbox)
        }
        false => None,
    };
    let active: Arc<dyn PaymentProcessor> = match settings.processor {
        ProcessorChoice::Sandbox => match &sandbox {
            Some(sandbox) => sandbox.clone(),
            None => anyhow::bail!("processor = \"sandbox\" needs sandbox.enabled = true"),
        },
        ProcessorChoice::Stripe => {
            let config = settings.stripe.adapter_config();
            config.validate().map_err(|problems| {
                let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
                anyhow::anyhow!(lines.join("; "))
            })?;
            let stripe = Arc::new(StripeProcessor::new(config).map_err(|e| anyhow::anyhow!("stripe: {e}"))?);
            webhook_verifiers.insert(billing_stripe::PROCESSOR_ID.to_owned(), stripe.clone());
            tracing::info!(api_version = billing_stripe::api::api_version(), "stripe processor active");
            stripe
        }
    };
    Ok(Processors { active, sandbox, webhook_verifiers })
}

/// Connects to the configured database, applying pending migrations when `migrate` is set.
async fn open_store(settings: &Settings, migrate: bool) -> anyhow::Result<Store> {
    let store = billing_store::connect_with(settings.database.url.expose_secret(), Some(settings.pool_size()))
        .await
        .context("connecting to the database")?;
    if migrate {
        store.migrate().await.context("applying migrations")?;
    }
    Ok(store)
}

/// `tollgate migrate`.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let store = open_store(settings, true).await?;
    tracing::info!(backend = store.backend(), "migrations applied");
    store.close().await.context("closing the database")?;
    Ok(())
}

struct StoreReadiness(Store);

#[async_trait]
impl Readiness for StoreReadiness {
    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| e.to_string())
    }
}

/// Delivers sandbox events to this very server over HTTP, like a processor would.
struct LoopbackDelivery {
    client: reqwest::Client,
    url: String,
}

impl LoopbackDelivery {
    fn new(url: String) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Self { client, url })
    }
}

#[async_trait]
impl WebhookDelivery for LoopbackDelivery {
    async fn deliver(&self, body: &str, signature: &str) -> Result<u16, String> {
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header(billing_sandbox::SIGNATURE_HEADER, signature)
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok(response.status().as_u16())
    }
}
