//! Wiring: settings → store, processors, services, HTTP server. `main` only calls into here.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use billing_domain::catalog::Catalog;
use billing_domain::ports::{
    Clock, ClockOffsets, HostedCheckoutOps, HostedPortalOps, IdGenerator, Notifier, PaymentProcessor, ProcessorRecords,
    TimeTravel, WebhookOps,
};
use billing_domain::services::{
    AccountService, CheckoutService, Context, CouponService, CreditService, DunningService, EntitlementService,
    MeterReportPolicy, MeterReportingService, OutboxPorts, OutboxService, PaymentService, ReconcileReport,
    ReconcileService, RenewalService, SubscriptionService, TrialService, UsageService, WebhookService,
    WorkspaceService,
};
use billing_http::auth::ApiKeys;
use billing_http::group_commit::{GroupCommit, GroupCommitSettings};
use billing_http::server::{Server, ServerSettings};
use billing_http::telemetry::{CacheCounts, Metrics};
use billing_http::usage_commit::UsageCommit;
use billing_http::{AppState, CheckoutDefaults, Edge, Readiness};
use billing_notify::{EmailTransport, HttpPublisher, LogNotifier, SmtpNotifier};
use billing_sandbox::SandboxProcessor;
use billing_store::Store;
use billing_stripe::StripeProcessor;
use secrecy::ExposeSecret;

use crate::clock::{TestClock, TimeMachine};
use crate::jobs::{JobSet, Jobs};
use crate::settings::{ClockMode, ProcessorChoice, Settings, delivery_policy};
use crate::system::{SystemClock, UuidIds};
use crate::user_tokens::UserTokens;

/// A built, bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    store: Store,
    jobs: Jobs,
    /// Held for the JWKS watch it runs.
    _user_tokens: Option<UserTokens>,
}

impl Application {
    /// Connects and migrates the database, wires every adapter and binds the listener (port 0 picks a free port).
    pub async fn build(settings: Settings, catalog: Catalog) -> anyhow::Result<Self> {
        let cache = settings.cache.to_store().context("cache settings")?;
        let store = open_store(&settings, settings.database.migrate_on_start).await?.with_cache(cache);
        if !store.listening(std::time::Duration::from_secs(5)).await {
            tracing::warn!("not yet listening for other replicas' changes; cached entries age out meanwhile");
        }
        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .with_context(|| format!("binding {}:{}", settings.server.host, settings.server.port))?;
        let address = listener.local_addr()?;
        let port = address.port();
        let public_url = settings.server.public_base_url(port);

        let ids: Arc<dyn IdGenerator> = Arc::new(UuidIds);
        let catalog = Arc::new(catalog);
        let store_arc = Arc::new(store.clone());
        // Every service and job reads this clock; a test clock starts where the database says it stands.
        let test_clock = match settings.clock.mode {
            ClockMode::Test => {
                let clock = Arc::new(TestClock::default());
                clock.catch_up(store.offset_ms().await.context("reading the test clock")?);
                tracing::warn!(offset_ms = clock.offset_ms(), "running on a test clock (clock.mode = \"test\")");
                Some(clock)
            }
            ClockMode::System => None,
        };
        let clock: Arc<dyn Clock> = match &test_clock {
            Some(test_clock) => test_clock.clone(),
            None => Arc::new(SystemClock),
        };

        let Processors { active: processor, sandbox, webhook_verifiers } =
            processors(&settings, &public_url, ids.clone(), clock.clone(), store_arc.clone(), catalog.clone()).await?;
        let webhooks = Arc::new(WebhookService::new(store_arc.clone(), catalog.clone(), clock.clone()));
        let outbox = Arc::new(outbox_service(&settings, catalog.clone(), clock.clone(), &store_arc)?);
        let ctx = Context {
            catalog: catalog.clone(),
            policy: settings.billing_policy(),
            clock: clock.clone(),
            workspaces: store_arc.clone(),
            subscriptions: store_arc.clone(),
            state: store_arc.clone(),
        };
        // The dunning cancel step goes through the same command service as an API cancel.
        let subscription_commands = Arc::new(SubscriptionService::new(
            ctx.clone(),
            processor.clone(),
            webhooks.clone(),
            store_arc.clone(),
            ids.clone(),
            settings.stripe.proration,
        ));
        let reminders = Arc::new(TrialService::new(ctx.clone(), store_arc.clone()));
        let dunning = Arc::new(DunningService::new(
            store_arc.clone(),
            subscription_commands.clone(),
            settings.dunning.schedule(),
            clock.clone(),
        ));
        let renewals = sandbox
            .clone()
            .map(|sandbox| Arc::new(RenewalService::new(sandbox.clone(), sandbox, webhooks.clone(), clock.clone())));
        let time_machine = test_clock.map(|clock| {
            Arc::new(TimeMachine {
                clock,
                offsets: store_arc.clone(),
                dunning: dunning.clone(),
                trials: reminders.clone(),
                renewals: renewals.clone(),
            })
        });
        // SQLite has one writer: transactions side by side would only queue for it.
        let partitions = if settings.database.is_sqlite() { 1 } else { settings.usage.write_partitions };
        let usage = UsageService::new(ctx.clone(), store_arc.clone(), store_arc.clone(), settings.usage.policy());
        let usage = Arc::new(usage.with_write_partitions(partitions));
        let billing_page = crate::billing_page::start(&settings, &public_url, store_arc.clone())?;
        let state = AppState {
            catalog: catalog.clone(),
            workspaces: WorkspaceService::new(ctx.clone(), store_arc.clone()).with_dunning(store_arc.clone()),
            trials: TrialService::new(ctx.clone(), store_arc.clone()),
            checkout: CheckoutService::new(
                ctx.clone(),
                processor.clone(),
                store_arc.clone(),
                ids.clone(),
                webhooks.clone(),
                store_arc.clone(),
            ),
            credits: CreditService::new(ctx.clone(), store_arc.clone()),
            payments: PaymentService::new(
                ctx.clone(),
                processor.clone(),
                webhooks.clone(),
                store_arc.clone(),
                store_arc.clone(),
                store_arc.clone(),
                ids.clone(),
            ),
            coupons: CouponService::new(ctx.clone(), store_arc.clone()),
            account: AccountService::new(ctx.clone(), processor.clone(), webhooks.clone(), store_arc.clone()),
            subscription_commands,
            entitlements: EntitlementService::new(ctx.clone(), store_arc.clone()),
            usage: usage.clone(),
            usage_batches: UsageCommit::start(usage, settings.usage.group_commit_max_events),
            outbox: outbox.clone(),
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
            time_travel: time_machine.clone().map(|machine| machine as Arc<dyn TimeTravel>),
            readiness: Arc::new(StoreReadiness(store.clone())),
            checkout_defaults: CheckoutDefaults {
                success_url: settings.checkout.success_url.clone(),
                cancel_url: settings.checkout.cancel_url.clone(),
            },
            hosted_checkout: sandbox.clone().map(|sandbox| sandbox as Arc<dyn HostedCheckoutOps>),
            hosted_portal: sandbox.map(|sandbox| sandbox as Arc<dyn HostedPortalOps>),
            sandbox: renewals.clone(),
            idempotency: store_arc.clone(),
            idempotency_policy: settings.idempotency.to_edge(),
            billing_page,
            metrics: settings.telemetry.metrics.then(|| {
                let cached = store.clone();
                let cache: CacheCounts = Arc::new(move || cached.cache_stats().map(|s| (s.hits, s.misses)));
                Metrics::new(settings.telemetry.metrics_token.clone(), cache)
            }),
        };
        let keys = ApiKeys::new(
            settings.auth.api_keys.iter().map(|k| (k.name.as_str(), k.hash.as_str(), k.scopes.as_slice())),
        )
        .map_err(anyhow::Error::msg)?;
        let keys = match settings.auth.rate_limit() {
            Some(limit) => keys.with_rate_limit(limit),
            None => keys,
        };
        let user_tokens = crate::user_tokens::start(&settings.auth.jwt)?;
        let mut edge = Edge::new(state, keys, settings.server.max_json_bytes);
        if let Some(tokens) = &user_tokens {
            edge = edge.with_user_tokens(tokens.verifier.clone());
        }
        let server_settings = ServerSettings {
            workers: settings.server.workers,
            shutdown_timeout_secs: settings.server.shutdown_timeout_secs,
            request_timeout: std::time::Duration::from_millis(settings.server.request_timeout_ms),
        };
        let server = billing_http::server::serve(edge, listener, server_settings)?;
        tracing::info!(%address, public_url, backend = store.backend(), "tollgate listening");
        let reconciler = ReconcileService::new(
            processor.clone(),
            store_arc.clone(),
            store_arc.clone(),
            webhooks.clone(),
            clock.clone(),
        )
        .with_refunds(store_arc.clone());
        let meters = meter_reporting(&processor, &catalog, &store_arc, ids.as_ref(), settings.usage.report_policy());
        let jobs = Jobs::start(JobSet {
            reconciler,
            reconcile_secs: settings.reconcile.interval_secs,
            webhooks,
            sweep_secs: settings.reconcile.parked_sweep_secs,
            idempotency: store_arc.clone(),
            clock,
            prune_keys_secs: settings.idempotency.prune_interval_secs,
            page_links: store_arc,
            outbox,
            outbox_poll: settings.outbox.poll_interval(),
            dunning,
            dunning_secs: settings.dunning.interval_secs,
            time_machine,
            trials: reminders,
            trial_reminder_secs: settings.billing.trial_reminder_interval_secs,
            renewals,
            renewal_secs: settings.sandbox.renewal_interval_secs,
            meters,
            meter_report_secs: settings.usage.report_interval_secs,
        });
        Ok(Self { port, server, store, jobs, _user_tokens: user_tokens })
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
    let store_arc = Arc::new(store.clone());
    let catalog = Arc::new(catalog);
    let Processors { active, .. } =
        processors(settings, &public_url, ids, clock.clone(), store_arc.clone(), catalog.clone()).await?;
    let webhooks = Arc::new(WebhookService::new(store_arc.clone(), catalog, clock.clone()));
    let reconciler = ReconcileService::new(active, store_arc.clone(), store_arc.clone(), webhooks, clock);
    let report = reconciler.with_refunds(store_arc).run().await;
    store.close().await.context("closing the database")?;
    Ok(report?)
}

/// The usage reporter, when the catalog names meters and the active processor takes meter events.
fn meter_reporting(
    processor: &Arc<dyn PaymentProcessor>,
    catalog: &Catalog,
    store: &Arc<Store>,
    ids: &dyn IdGenerator,
    policy: MeterReportPolicy,
) -> Option<Arc<MeterReportingService>> {
    let meters = catalog.meter_events().clone();
    if meters.is_empty() || !processor.capabilities().usage_reporting {
        return None;
    }
    // The lease names this process: unique, so two replicas never both think they hold it.
    let owner = ids.new_id(&format!("meter-reporter-{}-", std::process::id()));
    Some(Arc::new(MeterReportingService::new(
        processor.clone(),
        store.clone(),
        store.clone(),
        meters,
        // Leases are about whether a reporter is alive: real time, whatever clock billing runs on.
        Arc::new(SystemClock),
        owner,
        policy,
    )))
}

/// The outbox worker over the configured email transport and webhook endpoints.
fn outbox_service(
    settings: &Settings,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
    store: &Arc<Store>,
) -> anyhow::Result<OutboxService> {
    let email = &settings.notifications.email;
    let notifier: Arc<dyn Notifier> = match email.transport {
        EmailTransport::Log => Arc::new(LogNotifier),
        EmailTransport::Smtp => Arc::new(SmtpNotifier::new(email).map_err(anyhow::Error::msg)?),
    };
    let publisher = HttpPublisher::new(&settings.outbound_webhooks).map_err(anyhow::Error::msg)?;
    let ports = OutboxPorts {
        outbox: store.clone(),
        uow: store.clone(),
        workspaces: store.clone(),
        catalog,
        notifier,
        publisher: Arc::new(publisher),
        retry: Arc::new(settings.outbox.backoff()),
        clock,
        // Leases are about whether a worker is alive: real time, whatever clock billing runs on.
        wall: Arc::new(SystemClock),
    };
    Ok(OutboxService::new(ports, delivery_policy(&settings.outbox, &settings.notifications)))
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

/// The sandbox keeps its records in `records` (Tollgate's database) and reads them back here.
async fn processors(
    settings: &Settings,
    public_url: &str,
    ids: Arc<dyn IdGenerator>,
    clock: Arc<dyn Clock>,
    records: Arc<dyn ProcessorRecords>,
    catalog: Arc<Catalog>,
) -> anyhow::Result<Processors> {
    let mut webhook_verifiers: HashMap<String, Arc<dyn WebhookOps>> = HashMap::new();
    let sandbox = match settings.sandbox.enabled {
        true => {
            let config = settings.sandbox.adapter_config(public_url);
            if let Err(problems) = config.validate() {
                let lines: Vec<String> = problems.iter().map(|p| format!("sandbox.{}: {p}", p.setting())).collect();
                anyhow::bail!(lines.join("; "));
            }
            tracing::warn!(
                "the sandbox processor is enabled: anyone who can reach /sandbox/checkout can complete its \
                 checkouts without paying; disable it (sandbox.enabled = false) wherever real money is involved"
            );
            let sandbox =
                Arc::new(SandboxProcessor::new(config, ids, clock).with_records(records).with_catalog(catalog));
            let restored = sandbox.restore().await.map_err(|e| anyhow::anyhow!("sandbox records: {e}"))?;
            tracing::info!(records = restored, "sandbox records restored");
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
