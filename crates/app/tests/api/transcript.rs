//! The transcript of the API test run: every log line the app writes (JSON, at debug level for Tollgate's crates)
//! and every response body the tests receive, appended to one file per test process under
//! `{CARGO_TARGET_TMPDIR}/transcripts/`. `scripts/scan-secrets` reads them all after the run and fails on any
//! Stripe key, webhook secret, API key, JWT or SMTP password in them (SPEC §8: secrets never in logs or errors).
//!
//! Tests reach the app only through [`Client`], which records as it receives, so no test can skip the scan.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::{IntoUrl, Method};
use serde::Serialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The directory `scripts/scan-secrets` reads.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("transcripts")
}

/// This process's transcript file, opened on first use.
fn file() -> &'static Mutex<File> {
    static FILE: OnceLock<Mutex<File>> = OnceLock::new();
    FILE.get_or_init(|| {
        std::fs::create_dir_all(dir()).expect("transcript dir");
        let path = dir().join(format!("api-{}.log", std::process::id()));
        Mutex::new(OpenOptions::new().create(true).append(true).open(path).expect("transcript file"))
    })
}

fn append(bytes: &[u8]) {
    let mut file = file().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let _ = file.write_all(bytes);
    let _ = file.write_all(b"\n");
}

/// The log sink: each write goes to the transcript.
#[derive(Clone, Copy)]
struct Sink;

impl std::io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut file = file().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        file.write_all(bytes)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = Sink;
    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// Installs the app's own JSON subscriber, writing to the transcript (once per process). Debug for Tollgate's
/// crates, so the scan also covers what an operator sees with `RUST_LOG=debug`.
pub fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let filter = EnvFilter::new("info,billing_app=debug,billing_http=debug,billing_domain=debug,billing_store=debug,billing_stripe=debug,billing_notify=debug,billing_sandbox=debug");
        let _ = billing_app::telemetry::get_subscriber(filter, true, Sink).try_init();
    });
}

#[derive(Serialize)]
struct ResponseLine<'a> {
    response: &'a str,
    status: u16,
    body: &'a str,
}

/// The test client: reqwest's, recording each response's body before the test reads it.
#[derive(Clone)]
pub struct Client(Arc<reqwest::Client>);

impl Client {
    pub fn new(inner: reqwest::Client) -> Self {
        Self(Arc::new(inner))
    }

    pub fn request(&self, method: Method, url: impl IntoUrl) -> Request {
        Request(self.0.request(method, url))
    }

    pub fn get(&self, url: impl IntoUrl) -> Request {
        self.request(Method::GET, url)
    }

    pub fn post(&self, url: impl IntoUrl) -> Request {
        self.request(Method::POST, url)
    }

    pub fn put(&self, url: impl IntoUrl) -> Request {
        self.request(Method::PUT, url)
    }

    pub fn delete(&self, url: impl IntoUrl) -> Request {
        self.request(Method::DELETE, url)
    }
}

/// A request being built; [`Request::send`] records the answer.
pub struct Request(reqwest::RequestBuilder);

impl Request {
    pub fn bearer_auth(self, token: impl std::fmt::Display) -> Self {
        Self(self.0.bearer_auth(token))
    }

    pub fn header(self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        Self(self.0.header(name.as_ref(), value.as_ref()))
    }

    pub fn json<T: Serialize + ?Sized>(self, body: &T) -> Self {
        Self(self.0.json(body))
    }

    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        Self(self.0.body(body))
    }

    /// Sends, reads the whole body into the transcript, and hands back a response holding that body.
    pub async fn send(self) -> reqwest::Result<reqwest::Response> {
        let response = self.0.send().await?;
        let (status, version, headers, url) =
            (response.status(), response.version(), response.headers().clone(), response.url().to_string());
        let body = response.bytes().await?;
        let (url, text) = (without_page_links(&url), without_page_links(&String::from_utf8_lossy(&body)));
        let line = ResponseLine { response: &url, status: status.as_u16(), body: &text };
        append(serde_json::to_string(&line).expect("a response line serializes").as_bytes());
        let mut rebuilt = http::Response::new(body);
        *rebuilt.status_mut() = status;
        *rebuilt.version_mut() = version;
        *rebuilt.headers_mut() = headers;
        Ok(reqwest::Response::from(rebuilt))
    }
}

/// `text` with the token of every billing-page link (`/billing/open/{token}`, a signed JWT) left out. Handing that
/// link over is what `POST …/billing-page-sessions` is for, and a test then opens it; the scan still reads every log
/// line, where no link may ever appear.
fn without_page_links(text: &str) -> String {
    const PATH: &str = "/billing/open/";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(PATH) {
        out.push_str(&rest[..at + PATH.len()]);
        rest = &rest[at + PATH.len()..];
        let token_len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c))).unwrap_or(rest.len());
        out.push_str("[link]");
        rest = &rest[token_len..];
    }
    out.push_str(rest);
    out
}
