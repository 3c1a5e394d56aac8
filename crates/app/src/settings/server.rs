//! The HTTP server and the in-process read cache.

use serde::Deserialize;

use super::problems::{Problems, check_http_url, is_host};

/// The HTTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// Base URL where Tollgate is reachable, used in sandbox checkout URLs; see [`Self::public_base_url`].
    #[serde(default)]
    pub public_url: Option<String>,
    pub shutdown_timeout_secs: u64,
    /// Worker threads; `None` means one per core.
    #[serde(default)]
    pub workers: Option<usize>,
    pub max_json_bytes: usize,
    /// Milliseconds one request may run before it is stopped and answered 503 `request_timeout`.
    pub request_timeout_ms: u64,
}

impl ServerSettings {
    /// The base URL browsers reach Tollgate at: `public_url` when set, else `http://localhost:{port}` on the port
    /// actually bound, so changing only the port keeps sandbox links right. With port 0 (tests) no configured URL
    /// can know the port, so the bound loopback address is used.
    pub fn public_base_url(&self, bound_port: u16) -> String {
        match &self.public_url {
            _ if self.port == 0 => format!("http://127.0.0.1:{bound_port}"),
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://localhost:{bound_port}"),
        }
    }
}

/// The in-process cache of billing state read by entitlement checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    /// Workspaces kept in memory at most (least recently used go first).
    pub workspaces: usize,
    /// Longest time a change made by another replica may stay unseen here, in milliseconds. Changes arrive much
    /// sooner through PostgreSQL notifications; this bounds staleness even if one is lost.
    pub max_staleness_ms: u64,
}

impl CacheSettings {
    /// The store's view of these settings; `None` when they are invalid (see `validate`).
    pub fn to_store(&self) -> Option<billing_store::CacheSettings> {
        Some(billing_store::CacheSettings {
            capacity: std::num::NonZeroUsize::new(self.workspaces)?,
            max_age: std::time::Duration::from_millis(self.max_staleness_ms),
        })
    }
}

impl ServerSettings {
    pub(super) fn validate(&self, p: &mut Problems) {
        if !is_host(&self.host) {
            p.add("server.host", &format!("must be an IP address or a host name, got {:?}", self.host));
        }
        if let Some(url) = &self.public_url {
            check_http_url(p, "server.public_url", url);
        }
        if self.shutdown_timeout_secs > 3600 {
            p.add("server.shutdown_timeout_secs", "must be at most 3600");
        }
        if self.workers == Some(0) {
            p.add("server.workers", "must be at least 1 (leave it unset for one per core)");
        }
        if !(100..=600_000).contains(&self.request_timeout_ms) {
            p.add("server.request_timeout_ms", "must be between 100 and 600000 (10 minutes)");
        }
        if self.max_json_bytes < 1024 {
            p.add("server.max_json_bytes", "must be at least 1024");
        }
    }
}

impl CacheSettings {
    pub(super) fn validate(&self, p: &mut Problems) {
        if self.workspaces == 0 {
            p.add("cache.workspaces", "must be at least 1");
        }
        if !(1..=60_000).contains(&self.max_staleness_ms) {
            p.add("cache.max_staleness_ms", "must be between 1 and 60000");
        }
    }
}
