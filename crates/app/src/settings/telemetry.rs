//! Logging.

use secrecy::SecretString;
use serde::Deserialize;
use tracing_subscriber::EnvFilter;

use super::problems::Problems;

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// A level (`info`) or an `EnvFilter` directive; `RUST_LOG` overrides it.
    pub level: String,
    pub format: LogFormat,
    /// `GET /metrics` (Prometheus text format) is served.
    pub metrics: bool,
    /// When set, a scrape must send `Authorization: Bearer <token>`.
    #[serde(default)]
    pub metrics_token: Option<SecretString>,
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

impl TelemetrySettings {
    pub(super) fn validate(&self, p: &mut Problems) {
        check_log_level(p, &self.level);
        if let Some(token) = &self.metrics_token {
            use secrecy::ExposeSecret;
            if token.expose_secret().trim().len() < 16 {
                p.add("telemetry.metrics_token", "must be at least 16 characters (or left unset)");
            }
        }
    }
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
