//! Typed settings, layered: `config/default.toml` → `config/{TOLLGATE_ENV}.toml` → `TOLLGATE__SECTION__KEY`
//! environment variables. Loaded once in `main` and passed down; there are no globals.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use billing_domain::ids::PlanId;
use billing_domain::ports::Proration;
use billing_domain::services::BillingPolicy;
use billing_domain::trial::TrialPolicy;
use billing_stripe::StripeConfig;
use config::{Config, Environment, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// Names the environment whose file is layered over the defaults.
pub const ENV_VAR: &str = "TOLLGATE_ENV";
/// Overrides the directory holding the configuration files.
pub const CONFIG_DIR_VAR: &str = "TOLLGATE_CONFIG_DIR";
/// The environment used when `TOLLGATE_ENV` is unset: a fresh clone runs with `cargo run`.
pub const DEFAULT_ENV: &str = "development";
/// The configuration directory used when `TOLLGATE_CONFIG_DIR` is unset.
pub const DEFAULT_CONFIG_DIR: &str = "config";

/// Scopes an API key may carry.
pub const KNOWN_SCOPES: [&str; 4] = ["billing:read", "billing:write", "usage:write", "admin"];

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
    pub catalog: CatalogSettings,
    pub billing: BillingSettings,
    pub checkout: CheckoutSettings,
    pub sandbox: SandboxSettings,
    pub stripe: StripeSettings,
    pub reconcile: ReconcileSettings,
    pub auth: AuthSettings,
    pub telemetry: TelemetrySettings,
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The HTTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// Base URL where Tollgate is reachable, used in sandbox checkout URLs; see [`Self::public_base_url`].
    #[serde(default)]
    pub public_url: Option<String>,
    pub shutdown_timeout_secs: u64,
    /// Worker threads; `None` means one per core.
    #[serde(default)]
    pub workers: Option<usize>,
    pub max_json_bytes: usize,
}

impl ServerSettings {
    /// The base URL browsers reach Tollgate at: `public_url` when set, else `http://localhost:{port}` on the port
    /// actually bound, so changing only the port keeps sandbox links right. With port 0 (tests) no configured URL
    /// can know the port, so the bound loopback address is used.
    pub fn public_base_url(&self, bound_port: u16) -> String {
        match &self.public_url {
            _ if self.port == 0 => format!("http://127.0.0.1:{bound_port}"),
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://localhost:{bound_port}"),
        }
    }
}

/// The in-process cache of billing state read by entitlement checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    /// Workspaces kept in memory at most (least recently used go first).
    pub workspaces: usize,
    /// Longest time a change made by another replica may stay unseen here, in milliseconds. Changes arrive much
    /// sooner through PostgreSQL notifications; this bounds staleness even if one is lost.
    pub max_staleness_ms: u64,
}

impl CacheSettings {
    /// The store's view of these settings; `None` when they are invalid (see `validate`).
    pub fn to_store(&self) -> Option<billing_store::CacheSettings> {
        Some(billing_store::CacheSettings {
            capacity: std::num::NonZeroUsize::new(self.workspaces)?,
            max_age: std::time::Duration::from_millis(self.max_staleness_ms),
        })
    }
}

/// The SQL database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`; secret because it may carry a password.
    pub url: SecretString,
    pub migrate_on_start: bool,
    /// PostgreSQL pool size; `None` follows workers and lanes (see `Settings::pool_size`).
    #[serde(default)]
    pub max_connections: Option<u32>,
}

/// Group commit of webhook deliveries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Parallel batches; 0 means four per core (SQLite: always 1).
    pub lanes: usize,
    /// Events per transaction at most; 1 turns group commit off.
    pub max_batch: usize,
    /// How long a batch waits for more once it has one, in microseconds.
    pub max_wait_us: u64,
}

/// Events one transaction may hold: each runs in a subtransaction (a credit grant opens one more), and PostgreSQL
/// tracks up to 64 of them per transaction cheaply (beyond that, every other session's snapshot checks get slower).
pub const MAX_BATCH: usize = 32;

/// Where the plan catalog lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSettings {
    pub path: PathBuf,
}

/// Trial and grace period policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingSettings {
    pub trial_days: u32,
    pub trial_plan: String,
    pub grace_period_days: u32,
}

/// Defaults used when a checkout request omits its URLs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutSettings {
    pub success_url: String,
    pub cancel_url: String,
}

/// The offline sandbox processor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSettings {
    pub enabled: bool,
    /// The first signs; all verify (rotation).
    pub webhook_secrets: Vec<SecretString>,
    pub tolerance_secs: i64,
}

/// Which payment processor is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessorChoice {
    Sandbox,
    Stripe,
}

/// The Stripe processor; used when `processor = "stripe"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeSettings {
    pub secret_key: SecretString,
    /// Any may match (rotation).
    pub webhook_secrets: Vec<SecretString>,
    pub tolerance_secs: i64,
    pub api_base: String,
    pub timeout_ms: u64,
    pub max_retries: usize,
    pub proration: Proration,
    pub automatic_tax: bool,
    pub allow_promotion_codes: bool,
}

impl StripeSettings {
    /// The adapter's configuration.
    pub fn adapter_config(&self) -> StripeConfig {
        let mut config = StripeConfig::new(self.secret_key.clone(), self.webhook_secrets.clone());
        config.tolerance_secs = self.tolerance_secs;
        config.api_base = self.api_base.clone();
        config.timeout = std::time::Duration::from_millis(self.timeout_ms);
        config.max_retries = self.max_retries;
        config.proration = self.proration;
        config.automatic_tax = self.automatic_tax;
        config.allow_promotion_codes = self.allow_promotion_codes;
        config
    }
}

/// The periodic reconciliation job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileSettings {
    /// Seconds between runs while serving; 0 turns the job off (`tollgate reconcile` still works).
    pub interval_secs: u64,
    /// Seconds between sweeps applying parked events whose link exists; 0 turns the sweep off.
    pub parked_sweep_secs: u64,
}

/// Service authentication.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub api_keys: Vec<ApiKeySettings>,
}

/// One service API key, stored as a hash.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySettings {
    pub name: String,
    /// `sha256:<64 hex>` of the key.
    pub hash: String,
    /// Any of [`KNOWN_SCOPES`].
    pub scopes: Vec<String>,
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// A level (`info`) or an `EnvFilter` directive; `RUST_LOG` overrides it.
    pub level: String,
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Pretty on a terminal, JSON otherwise.
    Auto,
    Pretty,
    Json,
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
        self.validate_server(&mut p);
        self.validate_cache(&mut p);
        self.validate_webhooks(&mut p);

        let url = self.database.url.expose_secret();
        if !["sqlite:", "postgres:", "postgresql:"].iter().any(|scheme| url.starts_with(scheme)) {
            p.add("database.url", "must start with sqlite:, postgres: or postgresql: (value hidden)");
        }
        if self.catalog.path.as_os_str().is_empty() {
            p.add("catalog.path", "must not be empty");
        }
        if self.billing.trial_days == 0 {
            p.add("billing.trial_days", "must be at least 1");
        }
        if self.billing.trial_plan.trim().is_empty() {
            p.add("billing.trial_plan", "must name a plan of the catalog");
        }
        check_http_url(&mut p, "checkout.success_url", &self.checkout.success_url);
        check_http_url(&mut p, "checkout.cancel_url", &self.checkout.cancel_url);

        if self.sandbox.enabled && self.sandbox.webhook_secrets.is_empty() {
            p.add("sandbox.webhook_secrets", "at least one secret is required while sandbox.enabled = true");
        }
        for (i, secret) in self.sandbox.webhook_secrets.iter().enumerate() {
            if secret.expose_secret().trim().is_empty() {
                p.add(&format!("sandbox.webhook_secrets[{i}]"), "must not be empty");
            }
        }
        if self.sandbox.tolerance_secs <= 0 {
            p.add("sandbox.tolerance_secs", "must be positive");
        }
        match self.processor {
            ProcessorChoice::Sandbox if !self.sandbox.enabled => {
                p.add("processor", "is \"sandbox\" but sandbox.enabled = false");
            }
            ProcessorChoice::Stripe => {
                if let Err(problems) = self.stripe.adapter_config().validate() {
                    p.0.extend(problems.into_iter().map(|problem| problem.to_string()));
                }
            }
            ProcessorChoice::Sandbox => {}
        }

        self.validate_api_keys(&mut p);
        check_log_level(&mut p, &self.telemetry.level);
        p.0
    }

    /// The domain's trial and grace-period policy.
    pub fn billing_policy(&self) -> BillingPolicy {
        BillingPolicy {
            trial: TrialPolicy { days: self.billing.trial_days, plan: PlanId::new(self.billing.trial_plan.clone()) },
            grace_period: chrono::Duration::days(i64::from(self.billing.grace_period_days)),
        }
    }

    fn validate_webhooks(&self, p: &mut Problems) {
        if self.webhooks.lanes > 256 {
            p.add("webhooks.lanes", "must be at most 256 (0 means one per CPU core)");
        }
        if !(1..=MAX_BATCH).contains(&self.webhooks.max_batch) {
            p.add("webhooks.max_batch", &format!("must be between 1 and {MAX_BATCH}"));
        }
        if self.webhooks.max_wait_us > 1_000_000 {
            p.add("webhooks.max_wait_us", "must be at most 1000000 (one second)");
        }
        if self.database.max_connections == Some(0) {
            p.add("database.max_connections", "must be at least 1 (leave it unset to follow the workers)");
        }
    }

    /// HTTP workers: as configured, else one per core (actix-web's own default).
    pub fn workers(&self) -> usize {
        self.server.workers.unwrap_or_else(cores)
    }

    /// Parallel group-commit lanes: one on SQLite (one writer), else as configured or four per core.
    pub fn webhook_lanes(&self) -> usize {
        if self.database.url.expose_secret().starts_with("sqlite:") {
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

    fn validate_cache(&self, p: &mut Problems) {
        if self.cache.workspaces == 0 {
            p.add("cache.workspaces", "must be at least 1");
        }
        if !(1..=60_000).contains(&self.cache.max_staleness_ms) {
            p.add("cache.max_staleness_ms", "must be between 1 and 60000");
        }
    }

    fn validate_server(&self, p: &mut Problems) {
        let server = &self.server;
        if !is_host(&server.host) {
            p.add("server.host", &format!("must be an IP address or a host name, got {:?}", server.host));
        }
        if let Some(url) = &server.public_url {
            check_http_url(p, "server.public_url", url);
        }
        if server.shutdown_timeout_secs > 3600 {
            p.add("server.shutdown_timeout_secs", "must be at most 3600");
        }
        if server.workers == Some(0) {
            p.add("server.workers", "must be at least 1 (leave it unset for one per core)");
        }
        if server.max_json_bytes < 1024 {
            p.add("server.max_json_bytes", "must be at least 1024");
        }
    }

    fn validate_api_keys(&self, p: &mut Problems) {
        let keys = &self.auth.api_keys;
        if keys.is_empty() {
            p.add("auth.api_keys", "at least one API key is required (see config/default.toml)");
        }
        let mut names = HashSet::new();
        let mut hashes = HashSet::new();
        for (i, key) in keys.iter().enumerate() {
            let at = format!("auth.api_keys[{i}]");
            if key.name.trim().is_empty() {
                p.add(&format!("{at}.name"), "must not be empty");
            } else if !names.insert(key.name.as_str()) {
                p.add(&format!("{at}.name"), &format!("duplicate key name `{}`", key.name));
            }
            let digest = key.hash.strip_prefix("sha256:").unwrap_or_default();
            if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                p.add(
                    &format!("{at}.hash"),
                    "must be \"sha256:\" followed by 64 hex digits (printf %s \"$KEY\" | sha256sum)",
                );
            } else if !hashes.insert(digest.to_ascii_lowercase()) {
                p.add(&format!("{at}.hash"), "the same key is configured twice");
            }
            if key.scopes.is_empty() {
                p.add(&format!("{at}.scopes"), "must list at least one scope");
            }
            for scope in &key.scopes {
                if !KNOWN_SCOPES.contains(&scope.as_str()) {
                    p.add(
                        &format!("{at}.scopes"),
                        &format!("unknown scope {scope:?} (known: {})", KNOWN_SCOPES.join(", ")),
                    );
                }
            }
        }
    }
}

/// Reads the layers without validating. `vars` stands for the process environment, so tests pass their own.
fn read(dir: &Path, env: &str, vars: &HashMap<String, String>) -> Result<Settings, Vec<String>> {
    if env.is_empty() || !env.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(vec![format!("{ENV_VAR}: must be letters, digits, '-' or '_', got {env:?}")]);
    }
    let default_file = dir.join("default.toml");
    let env_file = dir.join(format!("{env}.toml"));
    // DATABASE_URL is the conventional name; TOLLGATE__DATABASE__URL still wins over it.
    let aliases: config::Map<String, String> = vars
        .get("DATABASE_URL")
        .filter(|url| !url.is_empty())
        .map(|url| ("DATABASE__URL".to_owned(), url.clone()))
        .into_iter()
        .collect();
    let overrides: config::Map<String, String> = vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();

    let built = Config::builder()
        .add_source(File::new(&default_file.to_string_lossy(), FileFormat::Toml).required(true))
        .add_source(File::new(&env_file.to_string_lossy(), FileFormat::Toml).required(false))
        .add_source(Environment::default().separator("__").source(Some(aliases)))
        .add_source(
            Environment::with_prefix("TOLLGATE")
                .prefix_separator("__")
                .separator("__")
                .ignore_empty(true)
                // Parsing lets one list, the webhook secrets, come from the environment as `a,b`.
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("sandbox.webhook_secrets")
                .with_list_parse_key("stripe.webhook_secrets")
                .source(Some(overrides)),
        )
        .set_override("env", env)
        .and_then(|builder| builder.build())
        .map_err(|e| vec![config_error(e)])?;
    built.try_deserialize::<Settings>().map_err(|e| vec![config_error(e)])
}

/// One line for a configuration error. A type error on a secret setting would quote the secret: blank it out.
fn config_error(error: config::ConfigError) -> String {
    let line = error.to_string().replace('\n', " ");
    let secret_keys = ["database.url", "webhook_secrets", "secret_key"];
    if !secret_keys.iter().any(|k| line.contains(k)) {
        return line;
    }
    let mut redacted = String::with_capacity(line.len());
    let mut inside = false;
    for c in line.chars() {
        if c == '"' {
            if inside {
                redacted.push_str("[REDACTED]\"");
            } else {
                redacted.push('"');
            }
            inside = !inside;
        } else if !inside {
            redacted.push(c);
        }
    }
    redacted
}

#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, setting: &str, why: &str) {
        self.0.push(format!("{setting}: {why}"));
    }
}

fn check_http_url(p: &mut Problems, setting: &str, value: &str) {
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
        _ => p.add(setting, &format!("must be an absolute http:// or https:// URL, got {value:?}")),
    }
}

fn is_host(host: &str) -> bool {
    if host.parse::<IpAddr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `EnvFilter` takes a bare word as a target name, so a misspelt level (`inf`) would silently log nothing useful:
/// a bare word must be a level.
fn check_log_level(p: &mut Problems, level: &str) {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let level = level.trim();
    let bare_word = !level.contains(['=', ',', '[']);
    if level.is_empty() || (bare_word && !LEVELS.contains(&level.to_ascii_lowercase().as_str())) {
        p.add(
            "telemetry.level",
            &format!(
                "must be one of {} or an EnvFilter directive such as \"info,sqlx=warn\", got {level:?}",
                LEVELS.join(", ")
            ),
        );
    } else if let Err(e) = EnvFilter::try_new(level) {
        p.add("telemetry.level", &format!("invalid EnvFilter directive: {e}"));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The repository's `config/` directory.
    pub(crate) fn repo_config_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
    }

    /// A fresh, empty directory under the system temp dir.
    pub(crate) fn scratch_dir(name: &str) -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tollgate-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn no_vars() -> HashMap<String, String> {
        HashMap::new()
    }

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn development() -> Settings {
        read(&repo_config_dir(), "development", &no_vars()).unwrap()
    }

    /// A config dir holding the repository's defaults plus `{env}.toml` with `text`.
    fn dir_with(env: &str, text: &str) -> PathBuf {
        let dir = scratch_dir("settings");
        std::fs::copy(repo_config_dir().join("default.toml"), dir.join("default.toml")).unwrap();
        std::fs::write(dir.join(format!("{env}.toml")), text).unwrap();
        dir
    }

    #[test]
    fn defaults_are_production_safe_and_fail_fast_without_keys() {
        // No `production.toml` in the repository: only default.toml applies.
        let s = read(&repo_config_dir(), "production", &no_vars()).unwrap();
        assert_eq!(s.env, "production");
        assert_eq!((s.server.host.as_str(), s.server.port), ("127.0.0.1", 8080));
        assert_eq!(s.server.workers, None);
        assert_eq!(s.server.max_json_bytes, 65536);
        assert_eq!(s.database.url.expose_secret(), "sqlite://data/tollgate.db?mode=rwc");
        assert!(s.database.migrate_on_start);
        assert_eq!(s.catalog.path, Path::new("config/plans.toml"));
        assert_eq!((s.billing.trial_days, s.billing.trial_plan.as_str()), (14, "pro"));
        assert_eq!(s.billing.grace_period_days, 7);
        assert!(s.sandbox.enabled && s.sandbox.webhook_secrets.is_empty());
        assert_eq!(s.sandbox.tolerance_secs, 300);
        assert!(s.auth.api_keys.is_empty());
        assert_eq!(s.telemetry.format, LogFormat::Auto);

        let problems = s.validate();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems[0].starts_with("sandbox.webhook_secrets: "));
        assert!(problems[1].starts_with("auth.api_keys: "));
    }

    #[test]
    fn development_has_the_dev_key_and_validates() {
        let s = development();
        assert_eq!(s.validate(), Vec::<String>::new());
        let key = &s.auth.api_keys[0];
        assert_eq!(key.name, "dev");
        let expected = format!("sha256:{}", hex::encode(Sha256::digest(b"tg_dev_local_only")));
        assert_eq!(key.hash, expected);
        assert_eq!(key.scopes, KNOWN_SCOPES);
        assert_eq!(s.sandbox.webhook_secrets[0].expose_secret(), "whsec_sandbox_dev_only");
        assert_eq!(s.telemetry.format, LogFormat::Pretty);
        let policy = s.billing_policy();
        assert_eq!((policy.trial.days, policy.trial.plan.as_str()), (14, "pro"));
        assert_eq!(policy.grace_period, chrono::Duration::days(7));
    }

    #[test]
    fn the_test_environment_validates() {
        let s = read(&repo_config_dir(), "test", &no_vars()).unwrap();
        assert_eq!(s.validate(), Vec::<String>::new());
    }

    #[test]
    fn environment_variables_override_files() {
        let s = read(
            &repo_config_dir(),
            "development",
            &vars(&[
                ("TOLLGATE__SERVER__PORT", "9123"),
                ("TOLLGATE__SERVER__WORKERS", "3"),
                ("TOLLGATE__SERVER__PUBLIC_URL", "https://billing.example.com"),
                ("TOLLGATE__DATABASE__MIGRATE_ON_START", "false"),
                ("TOLLGATE__TELEMETRY__FORMAT", "json"),
                ("TOLLGATE__SANDBOX__WEBHOOK_SECRETS", "whsec_new,whsec_old"),
                ("TOLLGATE__BILLING__TRIAL_PLAN", "hobby"),
                ("TOLLGATE__SERVER__SHUTDOWN_TIMEOUT_SECS", ""),
                ("TOLLGATE_UNRELATED", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(s.server.port, 9123);
        assert_eq!(s.server.workers, Some(3));
        assert_eq!(s.server.public_base_url(9123), "https://billing.example.com");
        assert_eq!(s.server.shutdown_timeout_secs, 30, "empty values are unset");
        assert!(!s.database.migrate_on_start);
        assert_eq!(s.telemetry.format, LogFormat::Json);
        assert_eq!(s.billing.trial_plan, "hobby");
        let secrets: Vec<&str> = s.sandbox.webhook_secrets.iter().map(|s| s.expose_secret()).collect();
        assert_eq!(secrets, ["whsec_new", "whsec_old"]);
    }

    #[test]
    fn the_public_url_follows_the_port_unless_it_is_set() {
        let s = read(&repo_config_dir(), "development", &vars(&[("TOLLGATE__SERVER__PORT", "9000")])).unwrap();
        assert_eq!(s.server.public_base_url(9000), "http://localhost:9000");
        let s = read(
            &repo_config_dir(),
            "development",
            &vars(&[("TOLLGATE__SERVER__PORT", "9000"), ("TOLLGATE__SERVER__PUBLIC_URL", "https://pay.example.com/")]),
        )
        .unwrap();
        assert_eq!(s.server.public_base_url(9000), "https://pay.example.com");
    }

    #[test]
    fn database_url_comes_from_database_url_unless_tollgate_sets_it() {
        let pg = "postgres://postgres@127.0.0.1:5432/postgres";
        let s = read(&repo_config_dir(), "development", &vars(&[("DATABASE_URL", pg)])).unwrap();
        assert_eq!(s.database.url.expose_secret(), pg);
        let s = read(
            &repo_config_dir(),
            "development",
            &vars(&[("DATABASE_URL", pg), ("TOLLGATE__DATABASE__URL", "sqlite::memory:")]),
        )
        .unwrap();
        assert_eq!(s.database.url.expose_secret(), "sqlite::memory:");
    }

    #[test]
    fn validate_names_each_bad_setting_on_its_own_line() {
        let mut s = development();
        s.server.host = "bad host".into();
        s.server.public_url = Some("localhost:8080".into());
        s.server.workers = Some(0);
        s.webhooks.max_batch = 65;
        s.webhooks.max_wait_us = 2_000_000;
        s.database.max_connections = Some(0);
        s.database.url = SecretString::from("mysql://root:hunter2@db/tollgate");
        s.billing.trial_days = 0;
        s.checkout.cancel_url = "/cancel".into();
        s.sandbox.webhook_secrets = vec![SecretString::from("")];
        s.sandbox.tolerance_secs = 0;
        s.auth.api_keys.push(ApiKeySettings {
            name: "dev".into(),
            hash: "sha256:abc".into(),
            scopes: vec!["billing:delete".into()],
        });
        s.telemetry.level = "inf".into();
        let problems = s.validate();
        let expected = [
            "server.host: ",
            "server.public_url: ",
            "server.workers: ",
            "webhooks.max_batch: ",
            "webhooks.max_wait_us: ",
            "database.max_connections: ",
            "database.url: ",
            "billing.trial_days: ",
            "checkout.cancel_url: ",
            "sandbox.webhook_secrets[0]: ",
            "sandbox.tolerance_secs: ",
            "auth.api_keys[1].name: duplicate key name `dev`",
            "auth.api_keys[1].hash: ",
            "auth.api_keys[1].scopes: unknown scope \"billing:delete\"",
            "telemetry.level: ",
        ];
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
        for (line, prefix) in problems.iter().zip(expected) {
            assert!(line.starts_with(prefix), "{line:?} should start with {prefix:?}");
            assert!(!line.contains('\n'));
        }
        assert!(problems.iter().all(|line| !line.contains("hunter2")));
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let mut s = development();
        s.database.url = SecretString::from("postgres://tollgate:hunter2@db/tollgate");
        let debug = format!("{s:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("whsec_sandbox_dev_only"), "{debug}");
        assert!(debug.contains("REDACTED"));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = dir_with("staging", "[server]\nprot = 9000\n");
        let problems = read(&dir, "staging", &no_vars()).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("prot"), "{problems:?}");

        let problems = read(&repo_config_dir(), "development", &vars(&[("TOLLGATE__SERVER__TYPO", "1")])).unwrap_err();
        assert!(problems[0].contains("typo"), "{problems:?}");
    }

    #[test]
    fn type_errors_on_secrets_do_not_quote_them() {
        let dir = dir_with("staging", "[sandbox]\nwebhook_secrets = \"whsec_leaked\"\n");
        let problems = read(&dir, "staging", &no_vars()).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("webhook_secrets"), "{problems:?}");
        assert!(!problems[0].contains("whsec_leaked"), "{problems:?}");
    }

    #[test]
    fn a_missing_directory_or_bad_env_name_is_one_line() {
        let problems = read(Path::new("/nonexistent/tollgate"), "development", &no_vars()).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("/nonexistent/tollgate/default"), "{problems:?}");

        let problems = read(&repo_config_dir(), "../etc", &no_vars()).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("TOLLGATE_ENV: "));
    }

    #[test]
    fn lanes_and_the_pool_follow_the_workers_unless_set() {
        let mut s = development();
        s.database.url = SecretString::from("postgres://postgres@127.0.0.1/tollgate");
        s.server.workers = Some(3);
        s.webhooks.lanes = 5;
        assert_eq!(s.webhook_lanes(), 5);
        assert_eq!(s.pool_size(), 2 * 3 + 5 + 2);
        s.database.max_connections = Some(7);
        assert_eq!(s.pool_size(), 7);
        s.webhooks.lanes = 0;
        assert_eq!(s.webhook_lanes(), 4 * cores());
        s.database.url = SecretString::from("sqlite://data/t.db?mode=rwc");
        assert_eq!(s.webhook_lanes(), 1, "SQLite has one writer");
    }
}
