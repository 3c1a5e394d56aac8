//! Service API keys as configured: names, hashes and scopes. The rules of a hash and of a scope are the edge's
//! (`billing_http::auth`), so a key that validates here is one the edge accepts. End-user tokens (`[auth.jwt]`)
//! are in `auth/jwt.rs`.

mod jwt;

pub use jwt::{JwtSettings, KeySource};

use std::collections::HashSet;
use std::num::NonZeroU32;

use billing_http::auth::{Scope, parse_key_hash};
use billing_http::rate_limit::RateLimit;
use serde::Deserialize;

use super::problems::Problems;

/// Service authentication.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub api_keys: Vec<ApiKeySettings>,
    /// Requests per second each key may make (0: no limit); over it, 429 `rate_limited` with `Retry-After`.
    pub rate_limit_per_second: u32,
    /// Requests a key may make at once above its rate (a burst after a quiet spell).
    pub rate_limit_burst: u32,
    /// End users' tokens, beside the keys.
    pub jwt: JwtSettings,
}

/// One service API key, stored as a hash.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySettings {
    pub name: String,
    /// `sha256:<64 hex>` of the key.
    pub hash: String,
    /// Any of `billing_http::auth::Scope::ALL` by name (`billing:read`, …).
    pub scopes: Vec<String>,
}

/// A limit of `per_second` (0: off) with `burst`.
fn rate_limit(per_second: u32, burst: u32) -> Option<RateLimit> {
    let per_second = NonZeroU32::new(per_second)?;
    Some(RateLimit { per_second, burst: NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN) })
}

impl AuthSettings {
    /// Each key's limit; `None` when off.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        rate_limit(self.rate_limit_per_second, self.rate_limit_burst)
    }

    pub(super) fn validate(&self, p: &mut Problems) {
        self.jwt.validate(p);
        if self.rate_limit_per_second > 0 && self.rate_limit_burst == 0 {
            p.add("auth.rate_limit_burst", "must be at least 1 when auth.rate_limit_per_second is set");
        }
        let keys = &self.api_keys;
        if keys.is_empty() {
            p.add("auth.api_keys", "at least one API key is required (see config/default.toml)");
        }
        let mut names = HashSet::new();
        let mut hashes = HashSet::new();
        for (i, key) in keys.iter().enumerate() {
            let at = format!("auth.api_keys[{i}]");
            if key.name.trim().is_empty() || key.name.len() > 100 {
                p.add(&format!("{at}.name"), "must be 1-100 characters");
            } else if key.name.starts_with("user:") {
                // `user:<id>` owns an end user's idempotency keys; a key so named would share them.
                p.add(&format!("{at}.name"), "must not start with `user:` (reserved for end users)");
            } else if !names.insert(key.name.as_str()) {
                p.add(&format!("{at}.name"), &format!("duplicate key name `{}`", key.name));
            }
            match parse_key_hash(&key.hash) {
                Err(why) => p.add(&format!("{at}.hash"), why),
                Ok(digest) if !hashes.insert(digest) => {
                    p.add(&format!("{at}.hash"), "the same key is configured twice")
                }
                Ok(_) => {}
            }
            if key.scopes.is_empty() {
                p.add(&format!("{at}.scopes"), "must list at least one scope");
            }
            for scope in &key.scopes {
                if Scope::parse(scope).is_none() {
                    let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                    p.add(&format!("{at}.scopes"), &format!("unknown scope {scope:?} (known: {})", known.join(", ")));
                }
            }
        }
    }
}
