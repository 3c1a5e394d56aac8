//! Which processor sells plans, the sandbox and Stripe adapters' settings, and reconciliation. Each adapter
//! validates its own configuration (`SandboxConfig::validate`, `StripeConfig::validate`): the rules live there
//! once, and this file only names the settings they came from.

use billing_domain::ports::Proration;
use billing_sandbox::{SandboxConfig, SandboxConfigError};
use billing_stripe::StripeConfig;
use secrecy::SecretString;
use serde::Deserialize;

use super::Settings;
use super::problems::Problems;

/// The offline sandbox processor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSettings {
    pub enabled: bool,
    /// The first signs; all verify (rotation).
    pub webhook_secrets: Vec<SecretString>,
    pub tolerance_secs: i64,
    /// Seconds between renewal runs (0: off).
    pub renewal_interval_secs: u64,
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

impl SandboxSettings {
    /// The adapter's configuration, its checkout pages under `public_base_url`.
    pub fn adapter_config(&self, public_base_url: &str) -> SandboxConfig {
        SandboxConfig {
            public_base_url: public_base_url.to_owned(),
            webhook_secrets: self.webhook_secrets.clone(),
            tolerance_secs: self.tolerance_secs,
        }
    }
}

/// The enabled adapters' own validation, and the choice of the active one.
pub(super) fn validate(settings: &Settings, p: &mut Problems) {
    if settings.sandbox.enabled {
        let public_url = settings.server.public_base_url(settings.server.port);
        if let Err(problems) = settings.sandbox.adapter_config(&public_url).validate() {
            // The base URL is `server.public_url`'s, which names its own problem.
            for problem in problems.into_iter().filter(|p| *p != SandboxConfigError::BadPublicBaseUrl) {
                p.add(&format!("sandbox.{}", problem.setting()), &problem.to_string());
            }
        }
    }
    match settings.processor {
        ProcessorChoice::Sandbox if !settings.sandbox.enabled => {
            p.add("processor", "is \"sandbox\" but sandbox.enabled = false");
        }
        ProcessorChoice::Stripe => {
            if let Err(problems) = settings.stripe.adapter_config().validate() {
                p.extend(problems.into_iter().map(|problem| problem.to_string()));
            }
            // A request would be stopped before its first call to Stripe could answer.
            if settings.server.request_timeout_ms <= settings.stripe.timeout_ms {
                p.add("server.request_timeout_ms", "must exceed stripe.timeout_ms");
            }
        }
        ProcessorChoice::Sandbox => {}
    }
}
