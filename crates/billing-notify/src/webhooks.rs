//! Outbound webhooks to the product backend: `POST` of the event's JSON, signed the way Stripe signs its own
//! (`Tollgate-Signature: t=<unix>,v1=<hex>[,v1=…]`, HMAC-SHA256 over `"{t}.{body}"`, one `v1` per active secret),
//! so a receiver verifies it with the few lines in the README or with any Stripe-compatible verifier.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use billing_domain::ports::{OutboundEvent, PublishError, WebhookPublisher};
use secrecy::SecretString;
use stripe_wire::signature::sign;

use crate::config::{OutboundConfig, matches};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Tollgate-Signature";

struct Endpoint {
    name: String,
    url: String,
    secrets: Vec<SecretString>,
    events: Vec<String>,
}

/// Publishes to the configured endpoints over HTTP.
pub struct HttpPublisher {
    client: reqwest::Client,
    endpoints: Vec<Endpoint>,
}

impl HttpPublisher {
    /// A publisher for a validated configuration.
    pub fn new(config: &OutboundConfig) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            // A redirect would re-send the signed body somewhere the operator did not configure.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Tollgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("outbound_webhooks: cannot build the HTTP client: {e}"))?;
        let endpoints = config
            .endpoints
            .iter()
            .map(|(name, e)| Endpoint {
                name: name.clone(),
                url: e.url.clone(),
                secrets: e.secrets.clone(),
                events: e.events.clone(),
            })
            .collect();
        Ok(Self { client, endpoints })
    }

    /// The signature header of `body` sent at `timestamp`, one `v1` per secret.
    pub fn signature(secrets: &[SecretString], timestamp: i64, body: &[u8]) -> String {
        let mut header = format!("t={timestamp}");
        for secret in secrets {
            let signed = sign(secret, timestamp, body);
            if let Some(tag) = signed.split(',').find(|part| part.starts_with("v1=")) {
                header.push(',');
                header.push_str(tag);
            }
        }
        header
    }
}

#[async_trait]
impl WebhookPublisher for HttpPublisher {
    fn subscribers(&self, topic: &str) -> Vec<String> {
        self.endpoints
            .iter()
            .filter(|e| e.events.iter().any(|filter| matches(filter, topic)))
            .map(|e| e.name.clone())
            .collect()
    }

    async fn publish(&self, endpoint: &str, event: &OutboundEvent) -> Result<(), PublishError> {
        let Some(target) = self.endpoints.iter().find(|e| e.name == endpoint) else {
            return Err(PublishError(format!("endpoint `{endpoint}` is no longer configured")));
        };
        let body = serde_json::to_vec(event).map_err(|e| PublishError(format!("encoding the event: {e}")))?;
        // The receiver compares `t` with its own clock: real time, whatever clock billing runs on.
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let signature = Self::signature(&target.secrets, i64::try_from(now).unwrap_or(i64::MAX), &body);
        let response = self
            .client
            .post(&target.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            // Without the URL: it may carry a token in its query.
            .map_err(|e| PublishError(format!("endpoint `{endpoint}` unreachable: {}", e.without_url())))?;
        let status = response.status();
        if status.is_success() { Ok(()) } else { Err(PublishError(format!("endpoint `{endpoint}` answered {status}"))) }
    }
}
