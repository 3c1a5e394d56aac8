//! Settings of the Stripe adapter.

use std::time::Duration;

use billing_domain::ports::Proration;
use secrecy::{ExposeSecret, SecretString};

/// Stripe's production API; tests point `api_base` at localstripe or wiremock instead.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// Keys, endpoint and behaviour of the adapter. `Debug` masks the secrets.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// `sk_live_…`/`sk_test_…` or a restricted `rk_…` key.
    pub secret_key: SecretString,
    /// Active webhook signing secrets (`whsec_…`); any may match (rotation).
    pub webhook_secrets: Vec<SecretString>,
    /// Allowed distance in seconds between a delivery's timestamp and now.
    pub tolerance_secs: i64,
    /// Base URL without `/v1`.
    pub api_base: String,
    /// Budget of one HTTP attempt.
    pub timeout: Duration,
    /// Retries after the first attempt, for retryable failures only.
    pub max_retries: usize,
    /// First backoff delay; later ones grow exponentially, with jitter, up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// How plan changes are prorated.
    pub proration: Proration,
    /// Stripe Tax on checkout; needs tax settings in the Stripe account.
    pub automatic_tax: bool,
    /// Let customers enter promotion codes at checkout.
    pub allow_promotion_codes: bool,
}

impl StripeConfig {
    /// Production defaults around the given keys.
    pub fn new(secret_key: SecretString, webhook_secrets: Vec<SecretString>) -> Self {
        Self {
            secret_key,
            webhook_secrets,
            tolerance_secs: 300,
            api_base: DEFAULT_API_BASE.to_owned(),
            timeout: Duration::from_secs(10),
            max_retries: 2,
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
            proration: Proration::CreateProrations,
            automatic_tax: true,
            allow_promotion_codes: true,
        }
    }

    /// Checks the settings once at startup; every problem is reported, never a secret's value.
    pub fn validate(&self) -> Result<(), Vec<StripeConfigError>> {
        let mut problems = Vec::new();
        let key = self.secret_key.expose_secret();
        if key.is_empty() {
            problems.push(StripeConfigError::MissingSecretKey);
        } else if !(key.starts_with("sk_") || key.starts_with("rk_")) || key.trim() != key {
            problems.push(StripeConfigError::BadSecretKey);
        }
        if self.webhook_secrets.is_empty() {
            problems.push(StripeConfigError::NoWebhookSecret);
        }
        if let Some(index) = self.webhook_secrets.iter().position(|s| s.expose_secret().trim().is_empty()) {
            problems.push(StripeConfigError::EmptyWebhookSecret(index));
        }
        if !(self.api_base.starts_with("https://") || self.api_base.starts_with("http://")) {
            problems.push(StripeConfigError::BadApiBase);
        }
        if self.tolerance_secs <= 0 {
            problems.push(StripeConfigError::BadTolerance);
        }
        if self.timeout.is_zero() {
            problems.push(StripeConfigError::BadTimeout);
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }
}

/// A setting the adapter cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeConfigError {
    #[error("stripe.secret_key is required when processor = \"stripe\"")]
    MissingSecretKey,
    #[error("stripe.secret_key must be an `sk_…` or `rk_…` key without surrounding spaces")]
    BadSecretKey,
    #[error("stripe.webhook_secrets needs at least one signing secret")]
    NoWebhookSecret,
    #[error("stripe.webhook_secrets #{0} is empty")]
    EmptyWebhookSecret(usize),
    #[error("stripe.api_base must start with https:// or http://")]
    BadApiBase,
    #[error("stripe.tolerance_secs must be positive")]
    BadTolerance,
    #[error("stripe.timeout_ms must be positive")]
    BadTimeout,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(key: &str, secrets: &[&str]) -> StripeConfig {
        StripeConfig::new(SecretString::from(key), secrets.iter().map(|s| SecretString::from(*s)).collect())
    }

    #[test]
    fn accepts_defaults_around_valid_keys() {
        assert_eq!(config("sk_test_123", &["whsec_1"]).validate(), Ok(()));
        assert_eq!(config("rk_live_123", &["whsec_1", "whsec_2"]).validate(), Ok(()));
    }

    #[test]
    fn reports_every_problem_without_the_secret() {
        let mut bad = config("pk_live_oops", &["whsec_1", " "]);
        bad.api_base = "ftp://example".into();
        bad.tolerance_secs = 0;
        let problems = bad.validate().unwrap_err();
        assert_eq!(
            problems,
            vec![
                StripeConfigError::BadSecretKey,
                StripeConfigError::EmptyWebhookSecret(1),
                StripeConfigError::BadApiBase,
                StripeConfigError::BadTolerance
            ]
        );
        let shown = format!("{problems:?} {bad:?}");
        assert!(!shown.contains("pk_live_oops"), "{shown}");
        assert_eq!(config("", &[]).validate().unwrap_err().len(), 2);
    }
}
