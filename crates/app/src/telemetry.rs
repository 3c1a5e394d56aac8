//! Logging: one `tracing` subscriber with an `EnvFilter`, pretty on a terminal and JSON lines otherwise.

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::settings::{LogFormat, TelemetrySettings};

/// Installs the global subscriber writing to stdout. `RUST_LOG`, when set and valid, overrides the configured
/// level. Call once at startup; a second call leaves the first subscriber in place.
pub fn init(settings: &TelemetrySettings) {
    init_with(settings, std::io::stdout);
}

/// Like [`init`] but logging to stderr, for commands whose stdout is their output (`tollgate reconcile`).
pub fn init_to_stderr(settings: &TelemetrySettings) {
    init_with(settings, std::io::stderr);
}

fn init_with<W>(settings: &TelemetrySettings, sink: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(settings.level.as_str()));
    let json = match settings.format {
        LogFormat::Auto => !std::io::stdout().is_terminal(),
        LogFormat::Pretty => false,
        LogFormat::Json => true,
    };
    // Fails only when a subscriber is already installed, which is exactly the case to leave alone.
    let _ = get_subscriber(filter, json, sink).try_init();
}

/// A subscriber writing to `sink`: JSON lines (one object per event, with the current span's fields) or
/// human-readable text, colored only when `sink` is a terminal-backed stdout.
pub fn get_subscriber<W>(filter: EnvFilter, json: bool, sink: W) -> impl Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let layer: Box<dyn Layer<Registry> + Send + Sync> = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            // Every enclosing span too: a line logged in a nested span (a processor call inside a request) still
            // carries the request's `request_id`.
            .with_span_list(true)
            .with_writer(sink)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer().with_ansi(std::io::stdout().is_terminal()).with_writer(sink).boxed()
    };
    Registry::default().with(layer).with(filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Collects everything written, so a test can read the log lines back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn capture(json: bool, level: &str) -> String {
        let buffer = Buffer::default();
        let subscriber = get_subscriber(EnvFilter::new(level), json, buffer.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", request_id = "r-1");
            let _entered = span.enter();
            tracing::debug!("hidden at info");
            tracing::info!(workspace_id = "ws_1", "checkout started");
            let _inner = tracing::info_span!("stripe_call", path = "/customers").entered();
            tracing::info!("inside a nested span");
        });
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn json_lines_carry_fields_and_span() {
        let out = capture(true, "info");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        let event: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(event["message"], "checkout started");
        assert_eq!(event["workspace_id"], "ws_1");
        assert_eq!(event["level"], "INFO");
        assert_eq!(event["span"]["request_id"], "r-1");
        // A nested span's line names its own span and still carries the request's id.
        let nested: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(nested["span"]["name"], "stripe_call");
        assert_eq!(nested["spans"][0]["request_id"], "r-1", "{nested}");
    }

    #[test]
    fn pretty_output_is_text_and_the_filter_applies() {
        let out = capture(false, "info");
        assert!(out.contains("checkout started"), "{out}");
        assert!(out.contains("workspace_id"), "{out}");
        assert!(serde_json::from_str::<serde_json::Value>(out.trim()).is_err());
        assert!(!out.contains("hidden at info"));
        assert!(capture(false, "debug").contains("hidden at info"));
    }
}
