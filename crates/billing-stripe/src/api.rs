//! The HTTP transport under async-stripe's request types. async-stripe builds each request (path, form body, query);
//! this sends it with the pinned API version, our own idempotency key and SPEC §4's retry rules, which the stock
//! client cannot express: it drops `Stripe-Should-Retry` before the caller sees it and retries with a random key.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use billing_domain::error::ProcessorError;
use reqwest::header::{HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use stripe_client_core::{RequestBuilder, StripeMethod};

use crate::config::StripeConfig;

/// The API version every request pins. async-stripe's request types are generated for it; responses are read
/// tolerantly, so an account whose default version differs still parses.
pub fn api_version() -> &'static str {
    static PINNED: stripe_shared::ApiVersion = stripe_shared::version::VERSION;
    PINNED.as_str()
}

/// A call that failed, classified for the retry decision and for the domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No answer: connection refused or reset, DNS, timeout.
    #[error("{0}")]
    Transport(String),
    /// Stripe answered with an error status. Only Stripe's `type` and `code` are kept, never its message, which
    /// may echo parameters.
    #[error("HTTP {status} ({kind})")]
    Status { status: u16, should_retry: Option<bool>, kind: String },
    /// A success body we could not read.
    #[error("unreadable response: {0}")]
    Decode(String),
}

impl CallError {
    /// SPEC §4: network errors and 429 are retried; any status when Stripe says `Stripe-Should-Retry: true`;
    /// never when it says `false`.
    pub fn is_retryable(&self) -> bool {
        match self {
            CallError::Transport(_) => true,
            CallError::Status { status, should_retry, .. } => match should_retry {
                Some(answer) => *answer,
                None => *status == 429,
            },
            CallError::Decode(_) => false,
        }
    }

    /// Whether Stripe said the object, or one the request names, does not exist: a 404, or Stripe's
    /// `resource_missing` code (which it also sends with 400 for a missing id in a parameter).
    pub fn is_missing_resource(&self) -> bool {
        match self {
            CallError::Status { status, kind, .. } => *status == 404 || kind.ends_with("/resource_missing"),
            _ => false,
        }
    }

    /// The domain error for `what` (`"POST /v1/customers"`); the text is for logs and carries no secret.
    pub fn into_domain(self, what: &str) -> ProcessorError {
        let retryable = self.is_retryable();
        match self {
            // Rate limits and Stripe's own failures pass with time: the caller may retry later.
            CallError::Status { status, .. } if status >= 500 || status == 429 || retryable => {
                ProcessorError::Unavailable(format!("stripe {what}: {self}"))
            }
            CallError::Transport(_) => ProcessorError::Unavailable(format!("stripe {what}: {self}")),
            CallError::Status { .. } | CallError::Decode(_) => {
                ProcessorError::Rejected(format!("stripe {what}: {self}"))
            }
        }
    }
}

/// Stripe's error envelope; only the classification is read.
#[derive(Deserialize)]
struct ErrorEnvelope {
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
}

/// Sends async-stripe requests to the configured base URL.
#[derive(Clone)]
pub struct StripeApi {
    http: reqwest::Client,
    base: String,
    secret_key: SecretString,
    backoff: ExponentialBuilder,
}

impl StripeApi {
    pub fn new(config: &StripeConfig) -> Result<Self, ProcessorError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProcessorError::Rejected(format!("stripe client: {e}")))?;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(config.min_backoff)
            .with_max_delay(config.max_backoff)
            .with_max_times(config.max_retries)
            .with_jitter();
        Ok(Self {
            http,
            base: config.api_base.trim_end_matches('/').to_owned(),
            secret_key: config.secret_key.clone(),
            backoff,
        })
    }

    /// Sends `request`, retrying what SPEC §4 allows. Every attempt of a state-changing call carries the same
    /// `idempotency_key`, so Stripe applies it at most once however many attempts reach it.
    pub async fn send(&self, request: &RequestBuilder, idempotency_key: Option<&str>) -> Result<Vec<u8>, CallError> {
        let attempt = || self.attempt(request, idempotency_key);
        let started = std::time::Instant::now();
        let result = attempt
            .retry(self.backoff)
            .sleep(tokio::time::sleep)
            .when(CallError::is_retryable)
            .notify(|error: &CallError, delay: Duration| {
                tracing::warn!(path = %request.path, %error, ?delay, "stripe call failed; retrying");
            })
            .await;
        record_call(request, &result, started.elapsed());
        result
    }

    async fn attempt(&self, request: &RequestBuilder, idempotency_key: Option<&str>) -> Result<Vec<u8>, CallError> {
        let mut url = format!("{}/v1{}", self.base, request.path);
        if let Some(query) = request.query.as_deref().filter(|q| !q.is_empty()) {
            url.push('?');
            url.push_str(query);
        }
        let method = match request.method {
            StripeMethod::Get => reqwest::Method::GET,
            StripeMethod::Post => reqwest::Method::POST,
            StripeMethod::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self
            .http
            .request(method, url)
            .headers(self.headers(idempotency_key))
            .bearer_auth(self.secret_key.expose_secret());
        if let Some(body) = &request.body {
            builder = builder.header("content-type", "application/x-www-form-urlencoded").body(body.clone());
        }
        // reqwest's error text names the URL (ours, no secret) and the cause; the auth header never appears in it.
        let response = builder.send().await.map_err(|e| CallError::Transport(transport_reason(&e)))?;
        let status = response.status();
        let should_retry = response
            .headers()
            .get("stripe-should-retry")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<bool>().ok());
        let body = response.bytes().await.map_err(|e| CallError::Transport(transport_reason(&e)))?;
        if status.is_success() {
            return Ok(body.to_vec());
        }
        let envelope = serde_json::from_slice::<ErrorEnvelope>(&body).ok().and_then(|e| e.error);
        let kind = envelope
            .map(|e| match (e.kind, e.code) {
                (Some(kind), Some(code)) => format!("{kind}/{code}"),
                (Some(kind), None) => kind,
                (None, Some(code)) => code,
                (None, None) => "unknown".to_owned(),
            })
            .unwrap_or_else(|| "no error body".to_owned());
        Err(CallError::Status { status: status.as_u16(), should_retry, kind })
    }

    fn headers(&self, idempotency_key: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("stripe-version", HeaderValue::from_static(api_version()));
        if let Some(key) = idempotency_key.and_then(|k| HeaderValue::from_str(k).ok()) {
            headers.insert("idempotency-key", key);
        }
        headers
    }
}

/// What went wrong on the wire, without the URL's query (it may carry customer emails).
/// `tollgate_processor_call_duration_seconds{processor, operation, outcome}` (retries included: what the caller
/// waited) and `tollgate_processor_call_errors_total{processor, operation, kind}`.
fn record_call(request: &RequestBuilder, result: &Result<Vec<u8>, CallError>, took: Duration) {
    let operation = operation(request.method, &request.path);
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::histogram!(
        "tollgate_processor_call_duration_seconds",
        "processor" => "stripe",
        "operation" => operation.clone(),
        "outcome" => outcome,
    )
    .record(took.as_secs_f64());
    if let Err(error) = result {
        let kind = match error {
            CallError::Transport(_) => "transport".to_owned(),
            CallError::Decode(_) => "decode".to_owned(),
            CallError::Status { status, .. } => status.to_string(),
        };
        metrics::counter!(
            "tollgate_processor_call_errors_total",
            "processor" => "stripe",
            "operation" => operation,
            "kind" => kind,
        )
        .increment(1);
    }
}

/// A call's operation as a bounded label: the method and the path with its object ids (the segments holding a
/// digit, as every Stripe id does) replaced, `POST /customers/{id}`.
fn operation(method: StripeMethod, path: &str) -> String {
    let method = match method {
        StripeMethod::Get => "GET",
        StripeMethod::Post => "POST",
        StripeMethod::Delete => "DELETE",
    };
    let path: Vec<&str> = path
        .split('/')
        .map(|segment| if segment.bytes().any(|b| b.is_ascii_digit()) { "{id}" } else { segment })
        .collect();
    format!("{method} {}", path.join("/"))
}

fn transport_reason(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "response body interrupted"
    } else {
        "request failed"
    };
    let path = error.url().map(|u| u.path().to_owned()).unwrap_or_default();
    format!("{kind} ({path})")
}

/// An idempotency key Stripe accepts (≤ 255 characters): derived from our own ids, so the same operation on the
/// same ids always sends the same key, however many times it is retried or re-requested.
pub fn idempotency_key(parts: &[&str]) -> String {
    bounded_key(parts, 255)
}

/// A meter event's `identifier`: Stripe deduplicates meter events on it and takes at most 100 characters.
pub fn meter_event_identifier(key: &str) -> String {
    bounded_key(&[key], 100)
}

/// `tollgate:` and the parts joined by `:`, printable ASCII only, at most `max` characters.
fn bounded_key(parts: &[&str], max: usize) -> String {
    let mut key = String::from("tollgate");
    for part in parts {
        key.push(':');
        key.extend(part.chars().filter(|c| c.is_ascii_graphic()));
    }
    if key.len() > max {
        // Long caller keys are shortened by a stable digest so two different keys still differ.
        let digest = stable_digest(&key);
        key.truncate(max - 17);
        key.push('~');
        key.push_str(&format!("{digest:016x}"));
    }
    key
}

/// FNV-1a, 64-bit: stable across builds and platforms, unlike `DefaultHasher`.
fn stable_digest(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, should_retry: Option<bool>) -> CallError {
        CallError::Status { status, should_retry, kind: "api_error".into() }
    }

    #[test]
    fn retries_follow_spec_section_4() {
        assert!(CallError::Transport("timed out".into()).is_retryable());
        assert!(status(429, None).is_retryable());
        assert!(!status(429, Some(false)).is_retryable());
        assert!(status(500, Some(true)).is_retryable());
        assert!(!status(500, None).is_retryable());
        assert!(!status(503, Some(false)).is_retryable());
        assert!(status(409, Some(true)).is_retryable());
        assert!(!status(400, None).is_retryable());
        assert!(!CallError::Decode("x".into()).is_retryable());
    }

    #[test]
    fn operations_name_paths_without_their_ids() {
        assert_eq!(operation(StripeMethod::Post, "/customers"), "POST /customers");
        assert_eq!(operation(StripeMethod::Get, "/subscriptions/sub_1MowQVLkdIwHu7ix"), "GET /subscriptions/{id}");
        assert_eq!(operation(StripeMethod::Post, "/billing_portal/sessions"), "POST /billing_portal/sessions");
        assert_eq!(
            operation(StripeMethod::Delete, "/subscriptions/sub_9/discount"),
            "DELETE /subscriptions/{id}/discount"
        );
        assert_eq!(operation(StripeMethod::Post, "/billing/meter_events"), "POST /billing/meter_events");
    }

    #[test]
    fn recognises_missing_resources() {
        assert!(status(404, None).is_missing_resource());
        let missing = CallError::Status {
            status: 400,
            should_retry: None,
            kind: "invalid_request_error/resource_missing".into(),
        };
        assert!(missing.is_missing_resource());
        assert!(!status(400, None).is_missing_resource());
        assert!(!CallError::Transport("t".into()).is_missing_resource());
    }

    #[test]
    fn maps_to_domain_errors() {
        use ProcessorError::{Rejected, Unavailable};
        assert!(matches!(status(503, None).into_domain("GET /v1/x"), Unavailable(_)));
        assert!(matches!(status(429, None).into_domain("GET /v1/x"), Unavailable(_)));
        assert!(matches!(status(429, Some(false)).into_domain("GET /v1/x"), Unavailable(_)));
        assert!(matches!(status(409, Some(true)).into_domain("GET /v1/x"), Unavailable(_)));
        assert!(matches!(status(409, None).into_domain("GET /v1/x"), Rejected(_)));
        assert!(matches!(status(402, None).into_domain("GET /v1/x"), Rejected(_)));
        assert!(matches!(CallError::Transport("t".into()).into_domain("x"), Unavailable(_)));
        assert!(matches!(CallError::Decode("d".into()).into_domain("x"), Rejected(_)));
    }

    #[test]
    fn idempotency_keys_are_stable_bounded_and_distinct() {
        assert_eq!(idempotency_key(&["customer", "ws_1"]), "tollgate:customer:ws_1");
        assert_eq!(idempotency_key(&["a b\n", "c"]), "tollgate:ab:c");
        let long_a = idempotency_key(&["checkout", &"a".repeat(300)]);
        let long_b = idempotency_key(&["checkout", &format!("{}b", "a".repeat(299))]);
        assert_eq!(long_a.len(), 255);
        assert_ne!(long_a, long_b);
        assert_eq!(long_a, idempotency_key(&["checkout", &"a".repeat(300)]));
    }

    #[test]
    fn meter_event_identifiers_fit_stripes_limit_and_stay_distinct() {
        assert_eq!(meter_event_identifier("usage:ws_1:evt_42"), "tollgate:usage:ws_1:evt_42");
        let workspace = format!("usage:ws_{}:", "w".repeat(60));
        let long_a = meter_event_identifier(&format!("{workspace}{}", "e".repeat(80)));
        let long_b = meter_event_identifier(&format!("{workspace}{}f", "e".repeat(79)));
        assert_eq!(long_a.len(), 100);
        assert_ne!(long_a, long_b);
    }
}
