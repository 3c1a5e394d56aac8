//! `GET /healthz` and `GET /readyz`.

use serde::Serialize;

/// `{status: "ok"}`, or `{status: "ready", database: "ok"}`.
#[derive(Debug, Serialize)]
pub struct HealthView {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
}
