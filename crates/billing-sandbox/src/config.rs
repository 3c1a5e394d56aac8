//! Settings of the sandbox processor.

use secrecy::{ExposeSecret, SecretString};

/// Where the checkout page lives and how webhooks are signed. `Debug` masks the secrets.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Tollgate's own public base URL (`http://localhost:8080`); checkout URLs point at its `/sandbox/checkout/{id}`.
    pub public_base_url: String,
    /// Active signing secrets; the first signs, any verifies (rotation).
    pub webhook_secrets: Vec<SecretString>,
    /// Allowed distance in seconds between a delivery's timestamp and now.
    pub tolerance_secs: i64,
}

/// A setting the sandbox cannot run with, reported at startup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxConfigError {
    #[error("sandbox: at least one webhook secret is required (the first one signs)")]
    NoWebhookSecret,
    #[error("sandbox: webhook secret #{0} is empty")]
    EmptyWebhookSecret(usize),
    #[error("sandbox: public_base_url must start with http:// or https://")]
    BadPublicBaseUrl,
    #[error("sandbox: tolerance_secs must be positive")]
    BadTolerance,
}

impl SandboxConfig {
    /// Checks the settings once at startup so `pay` and webhook verification cannot fail on configuration later.
    pub fn validate(&self) -> Result<(), SandboxConfigError> {
        if self.webhook_secrets.is_empty() {
            return Err(SandboxConfigError::NoWebhookSecret);
        }
        if let Some(index) = self.webhook_secrets.iter().position(|s| s.expose_secret().is_empty()) {
            return Err(SandboxConfigError::EmptyWebhookSecret(index));
        }
        let url = self.public_base_url.as_str();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(SandboxConfigError::BadPublicBaseUrl);
        }
        if self.tolerance_secs <= 0 {
            return Err(SandboxConfigError::BadTolerance);
        }
        Ok(())
    }

    /// The base URL without a trailing slash, so joined paths never contain `//`.
    pub(crate) fn base_url(&self) -> &str {
        self.public_base_url.trim_end_matches('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SandboxConfig {
        SandboxConfig {
            public_base_url: "http://localhost:8080/".into(),
            webhook_secrets: vec![SecretString::from("whsec_private_value")],
            tolerance_secs: 300,
        }
    }

    #[test]
    fn validates_each_setting() {
        assert_eq!(config().validate(), Ok(()));
        assert_eq!(config().base_url(), "http://localhost:8080");
        let mut c = config();
        c.webhook_secrets.clear();
        assert_eq!(c.validate(), Err(SandboxConfigError::NoWebhookSecret));
        let mut c = config();
        c.webhook_secrets.push(SecretString::from(""));
        assert_eq!(c.validate(), Err(SandboxConfigError::EmptyWebhookSecret(1)));
        let mut c = config();
        c.public_base_url = "localhost".into();
        assert_eq!(c.validate(), Err(SandboxConfigError::BadPublicBaseUrl));
        let mut c = config();
        c.tolerance_secs = 0;
        assert_eq!(c.validate(), Err(SandboxConfigError::BadTolerance));
    }

    #[test]
    fn debug_masks_secrets() {
        assert!(!format!("{:?}", config()).contains("private_value"));
    }
}
