//! Typed settings, layered: `config/default.toml` → `config/{TOLLGATE_ENV}.toml` → `TOLLGATE__SECTION__KEY`
//! environment variables. Loaded once in `main` and passed down; there are no globals.
//!
//! One file per seam: `server` (HTTP and the read cache), `database` (database and group commit), `idempotency`,
//! `billing` (catalog, trial policy, checkout defaults), `billing_page` (the hosted page's links and branding), `processors` (which one, sandbox, Stripe, reconciliation),
//! `delivery` (the outbox worker, owner emails, outbound webhooks), `dunning` (its schedule and job), `usage`,
//! `auth`, `telemetry`; `layers` reads the files and variables, `problems` collects validation lines.

mod auth;
mod billing;
mod billing_page;
mod clock;
mod database;
mod delivery;
mod dunning;
mod idempotency;
mod layers;
mod problems;
mod processors;
mod production;
mod server;
mod telemetry;
#[cfg(test)]
pub(crate) mod tests;
mod usage;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use billing_domain::ids::PlanId;
use billing_domain::services::BillingPolicy;
use billing_domain::trial::TrialPolicy;
use serde::Deserialize;

pub use auth::{ApiKeySettings, AuthSettings, JwtSettings, KeySource};
pub use billing::{BillingSettings, CatalogSettings, CheckoutSettings};
pub use billing_page::BillingPageSettings;
pub use clock::{ClockMode, ClockSettings};
pub use database::{DatabaseSettings, MAX_BATCH, WebhookSettings};
pub use delivery::{NotificationSettings, OutboxSettings, delivery_policy};
pub use dunning::DunningSettings;
pub use idempotency::IdempotencySettings;
pub use processors::{ProcessorChoice, ReconcileSettings, SandboxSettings, StripeSettings};
pub use server::{CacheSettings, ServerSettings};
pub use telemetry::{LogFormat, TelemetrySettings};
pub use usage::UsageSettings;

use layers::read;
use problems::Problems;

/// Names the environment whose file is layered over the defaults.
pub const ENV_VAR: &str = "TOLLGATE_ENV";
/// Overrides the directory holding the configuration files.
pub const CONFIG_DIR_VAR: &str = "TOLLGATE_CONFIG_DIR";
/// The environment used when `TOLLGATE_ENV` is unset: a fresh clone runs with `cargo run`.
pub const DEFAULT_ENV: &str = "development";
/// The configuration directory used when `TOLLGATE_CONFIG_DIR` is unset.
pub const DEFAULT_CONFIG_DIR: &str = "config";

/// Every setting of the service. `Debug` masks the secrets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The environment name these settings were loaded for (`development`, `production`, …).
    pub env: String,
    /// The processor that sells plans (checkout, portal, invoices) and that reconciliation asks.
    pub processor: ProcessorChoice,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub cache: CacheSettings,
    pub webhooks: WebhookSettings,
    pub idempotency: IdempotencySettings,
    pub catalog: CatalogSettings,
    pub billing: BillingSettings,
    pub checkout: CheckoutSettings,
    pub billing_page: BillingPageSettings,
    pub sandbox: SandboxSettings,
    pub stripe: StripeSettings,
    pub reconcile: ReconcileSettings,
    pub clock: ClockSettings,
    pub dunning: DunningSettings,
    pub usage: UsageSettings,
    pub outbox: OutboxSettings,
    pub notifications: NotificationSettings,
    pub outbound_webhooks: billing_notify::OutboundConfig,
    pub auth: AuthSettings,
    pub telemetry: TelemetrySettings,
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

impl Settings {
    /// Loads and validates the settings named by `TOLLGATE_ENV` from `TOLLGATE_CONFIG_DIR` (default `./config`).
    pub fn load() -> Result<Settings, Vec<String>> {
        let dir = std::env::var_os(CONFIG_DIR_VAR)
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_CONFIG_DIR), PathBuf::from);
        let env = std::env::var(ENV_VAR).ok().filter(|e| !e.is_empty()).unwrap_or_else(|| DEFAULT_ENV.to_owned());
        Self::load_from(&dir, &env)
    }

    /// Loads and validates the settings of `env` from `dir`, applying the process's `TOLLGATE__…` overrides.
    pub fn load_from(dir: &Path, env: &str) -> Result<Settings, Vec<String>> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        let settings = read(dir, env, &vars)?;
        let problems = settings.validate();
        if problems.is_empty() { Ok(settings) } else { Err(problems) }
    }

    /// Every problem with these settings, one line each, naming the setting. Secrets are never printed.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Problems::default();
        self.server.validate(&mut p);
        self.cache.validate(&mut p);
        self.database.validate(&mut p);
        self.webhooks.validate(&mut p);
        self.idempotency.validate(&mut p);
        self.catalog.validate(&mut p);
        self.billing.validate(&mut p);
        self.checkout.validate(&mut p);
        self.billing_page.validate(&mut p, self.env == "production");
        processors::validate(self, &mut p);
        let longest_delivery_ms = self.notifications.email.smtp.timeout_ms.max(self.outbound_webhooks.timeout_ms);
        self.outbox.validate(&mut p, longest_delivery_ms);
        self.dunning.validate(&mut p);
        self.usage.validate(&mut p);
        clock::validate(self, &mut p);
        self.notifications.validate(&mut p);
        delivery::validate_outbound(&self.outbound_webhooks, &mut p);
        self.auth.validate(&mut p);
        self.telemetry.validate(&mut p);
        production::validate(self, &mut p);
        p.into_lines()
    }

    /// The domain's trial and grace-period policy.
    pub fn billing_policy(&self) -> BillingPolicy {
        BillingPolicy {
            trial: TrialPolicy { days: self.billing.trial_days, plan: PlanId::new(self.billing.trial_plan.clone()) },
            grace_period: chrono::Duration::days(i64::from(self.billing.grace_period_days)),
        }
    }

    /// HTTP workers: as configured, else one per core (actix-web's own default).
    pub fn workers(&self) -> usize {
        self.server.workers.unwrap_or_else(cores)
    }

    /// Parallel group-commit lanes: one on SQLite (one writer), else as configured or four per core.
    pub fn webhook_lanes(&self) -> usize {
        if self.database.is_sqlite() {
            return 1;
        }
        match self.webhooks.lanes {
            // Measured (docs/BENCHMARKS.md): fewer lanes make bigger batches but run fewer transactions at once;
            // four per core kept 8 senders as fast as one transaction per event and made 32 senders faster.
            0 => 4 * cores(),
            lanes => lanes,
        }
    }

    /// The PostgreSQL pool: as configured, else two connections per HTTP worker (requests of one worker run
    /// concurrently), one per webhook lane, and two for the jobs and the change listener.
    pub fn pool_size(&self) -> u32 {
        self.database
            .max_connections
            .unwrap_or_else(|| u32::try_from(2 * self.workers() + self.webhook_lanes() + 2).unwrap_or(u32::MAX))
    }
}
