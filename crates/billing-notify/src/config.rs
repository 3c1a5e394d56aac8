//! Settings of the email and outbound-webhook adapters, read by the app's layered configuration. Each validates
//! itself, one line per problem naming the setting; `Debug` masks the secrets.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

/// Where owner emails go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// `log` (the default: one line per email, nothing sent) or `smtp`.
    pub transport: EmailTransport,
    /// The sender, `Name <address>` or a bare address.
    pub from: String,
    pub smtp: SmtpConfig,
}

/// How emails leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTransport {
    Log,
    Smtp,
}

/// An SMTP relay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// Empty: no authentication.
    pub username: String,
    pub password: SecretString,
    /// Budget of one delivery (connect, TLS, the whole SMTP dialogue).
    pub timeout_ms: u64,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text: only for a relay on the same host or network (and tests).
    None,
    /// Upgrade with STARTTLS, refusing to continue without it (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// The product backend's webhook endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundConfig {
    /// Budget of one delivery.
    pub timeout_ms: u64,
    /// By name; the name keys each endpoint's own delivery of an event.
    #[serde(default)]
    pub endpoints: BTreeMap<String, EndpointConfig>,
}

/// One endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    pub url: String,
    /// Every secret signs (one `v1` each), so a receiver rotating its secret verifies with either.
    #[serde(deserialize_with = "list_or_commas")]
    pub secrets: Vec<SecretString>,
    /// Topics it receives: exact (`billing.payment.failed`), a prefix (`billing.payment.*`) or `*`.
    #[serde(default = "every_event", deserialize_with = "list_or_commas")]
    pub events: Vec<String>,
}

fn every_event() -> Vec<String> {
    vec!["*".to_owned()]
}

/// A list, or one string of comma-separated items (how a list comes from an environment variable).
fn list_or_commas<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: From<String>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    let items = match Raw::deserialize(deserializer)? {
        Raw::One(joined) => joined.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect(),
        Raw::Many(items) => items,
    };
    Ok(items.into_iter().map(T::from).collect())
}

impl EmailConfig {
    /// Problems, each naming its setting under `prefix` (`notifications.email`).
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            problems.push(format!("{prefix}.from: must be an address like `Billing <billing@example.com>`"));
        }
        if self.transport == EmailTransport::Smtp {
            let smtp = &self.smtp;
            if smtp.host.trim().is_empty() {
                problems.push(format!("{prefix}.smtp.host: must name the SMTP relay"));
            }
            if smtp.port == 0 {
                problems.push(format!("{prefix}.smtp.port: must be 1-65535"));
            }
            if !(100..=120_000).contains(&smtp.timeout_ms) {
                problems.push(format!("{prefix}.smtp.timeout_ms: must be 100-120000"));
            }
            if smtp.username.is_empty() != smtp.password.expose_secret().is_empty() {
                problems.push(format!("{prefix}.smtp.username/password: set both or neither"));
            }
        }
        problems
    }
}

impl OutboundConfig {
    /// Problems, each naming its setting under `prefix` (`outbound_webhooks`). Secrets are never printed.
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if !(100..=120_000).contains(&self.timeout_ms) {
            problems.push(format!("{prefix}.timeout_ms: must be 100-120000"));
        }
        for (name, endpoint) in &self.endpoints {
            let at = format!("{prefix}.endpoints.{name}");
            // The name is part of each delivery's outbox key: short, and plain.
            if name.is_empty()
                || name.len() > 64
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                problems.push(format!("{at}: the name must be 1-64 letters, digits, '_' or '-'"));
            }
            match url::Url::parse(&endpoint.url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
                _ => problems.push(format!("{at}.url: must be an http(s) URL")),
            }
            if endpoint.secrets.is_empty() || endpoint.secrets.iter().any(|s| s.expose_secret().len() < 16) {
                problems.push(format!("{at}.secrets: at least one secret, each 16 characters or more"));
            }
            if endpoint.events.is_empty() || endpoint.events.iter().any(|e| !valid_filter(e)) {
                problems.push(format!("{at}.events: topics like `billing.payment.failed`, `billing.payment.*` or `*`"));
            }
        }
        problems
    }
}

fn valid_filter(filter: &str) -> bool {
    let name = filter.strip_suffix(".*").unwrap_or(filter);
    filter == "*"
        || (!name.is_empty()
            && name.split('.').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c == '_')))
}

/// Whether `filter` lets `topic` through.
pub(crate) fn matches(filter: &str, topic: &str) -> bool {
    match filter.strip_suffix('*') {
        Some(prefix) => topic.starts_with(prefix),
        None => filter == topic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_exact_topics_prefixes_and_everything() {
        assert!(matches("*", "billing.payment.failed"));
        assert!(matches("billing.payment.*", "billing.payment.failed"));
        assert!(!matches("billing.payment.*", "billing.paymentx"));
        assert!(matches("billing.trial.ending", "billing.trial.ending"));
        assert!(!matches("billing.trial.ending", "billing.trial.ended"));
        assert!(valid_filter("billing.payment.*") && valid_filter("*") && valid_filter("billing.dunning.step"));
        assert!(!valid_filter("billing..x") && !valid_filter("") && !valid_filter("Billing.X"));
    }

    #[test]
    fn an_endpoint_takes_its_lists_from_toml_or_one_comma_separated_variable() {
        let from_env: EndpointConfig = serde_json::from_value(
            serde_json::json!({"url": "http://x.test/h", "secrets": "whsec_aaaaaaaaaaaaaaaa, whsec_bbbbbbbbbbbbbbbb"}),
        )
        .unwrap();
        assert_eq!(from_env.secrets.len(), 2);
        assert_eq!(from_env.secrets[1].expose_secret(), "whsec_bbbbbbbbbbbbbbbb");
        assert_eq!(from_env.events, ["*"]);
        let config = OutboundConfig { timeout_ms: 5, endpoints: BTreeMap::from([("bad name".to_owned(), from_env)]) };
        let problems = config.validate("outbound_webhooks");
        assert!(problems.iter().any(|p| p.starts_with("outbound_webhooks.timeout_ms")), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("outbound_webhooks.endpoints.bad name:")), "{problems:?}");
        assert!(!problems.iter().any(|p| p.contains("whsec_")), "no secret in a problem: {problems:?}");
    }
}
