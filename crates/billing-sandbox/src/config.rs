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
    #[error("at least one webhook secret is required while the sandbox is enabled (the first one signs)")]
    NoWebhookSecret,
    #[error("must not be empty")]
    EmptyWebhookSecret(usize),
    #[error("must start with http:// or https://")]
    BadPublicBaseUrl,
    #[error("must be positive")]
    BadTolerance,
}

impl SandboxConfigError {
    /// The setting at fault, as [`SandboxConfig`] names it (`webhook_secrets[1]`).
    pub fn setting(&self) -> String {
        match self {
            Self::NoWebhookSecret => "webhook_secrets".to_owned(),
            Self::EmptyWebhookSecret(index) => format!("webhook_secrets[{index}]"),
            Self::BadPublicBaseUrl => "public_base_url".to_owned(),
            Self::BadTolerance => "tolerance_secs".to_owned(),
        }
    }
}

impl SandboxConfig {
    /// Every problem of these settings, checked once at startup so `pay` and webhook verification cannot fail on
    /// configuration later.
    pub fn validate(&self) -> Result<(), Vec<SandboxConfigError>> {
        let mut problems = Vec::new();
        if self.webhook_secrets.is_empty() {
            problems.push(SandboxConfigError::NoWebhookSecret);
        }
        for (index, secret) in self.webhook_secrets.iter().enumerate() {
            if secret.expose_secret().trim().is_empty() {
                problems.push(SandboxConfigError::EmptyWebhookSecret(index));
            }
        }
        let url = self.public_base_url.as_str();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            problems.push(SandboxConfigError::BadPublicBaseUrl);
        }
        if self.tolerance_secs <= 0 {
            problems.push(SandboxConfigError::BadTolerance);
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
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
        assert_eq!(c.validate(), Err(vec![SandboxConfigError::NoWebhookSecret]));
        let mut c = config();
        c.webhook_secrets.push(SecretString::from(""));
        assert_eq!(c.validate(), Err(vec![SandboxConfigError::EmptyWebhookSecret(1)]));
        let mut c = config();
        c.public_base_url = "localhost".into();
        assert_eq!(c.validate(), Err(vec![SandboxConfigError::BadPublicBaseUrl]));
        let mut c = config();
        c.tolerance_secs = 0;
        assert_eq!(c.validate(), Err(vec![SandboxConfigError::BadTolerance]));
        c.webhook_secrets = vec![SecretString::from(" ")];
        let all = c.validate().unwrap_err();
        assert_eq!(all, [SandboxConfigError::EmptyWebhookSecret(0), SandboxConfigError::BadTolerance]);
        assert_eq!(
            all.iter().map(SandboxConfigError::setting).collect::<Vec<_>>(),
            ["webhook_secrets[0]", "tolerance_secs"]
        );
    }

    #[test]
    fn debug_masks_secrets() {
        assert!(!format!("{:?}", config()).contains("private_value"));
    }
}
