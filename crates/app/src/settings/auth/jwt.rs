//! `[auth.jwt]`: end users' tokens, verified with an HS256 secret or RS256/ES256 public keys (a PEM file, or a
//! JWKS file re-read when it changes). What a token carries is `billing_http::user_tokens`'s.

use std::path::{Path, PathBuf};

use billing_http::rate_limit::RateLimit;
use jsonwebtoken::Algorithm;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::super::problems::Problems;

/// The shortest HS256 secret accepted: as many bytes as the hash (RFC 7518 §3.2).
const MIN_SECRET_BYTES: usize = 32;
/// The most clock skew tolerated, in seconds: more would keep a revoked session alive.
const MAX_LEEWAY_SECS: u64 = 300;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    pub enabled: bool,
    /// `HS256`, `RS256` or `ES256`.
    pub algorithm: String,
    /// HS256's shared secret.
    pub secret: SecretString,
    /// RS256/ES256: one public key, PEM.
    pub public_key_file: PathBuf,
    /// RS256/ES256: a JWKS document, keys chosen by the token's `kid`; re-read when it changes.
    pub jwks_file: PathBuf,
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` every token must carry.
    pub audience: String,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_secs: u64,
    /// Requests per second each user may make (0: no limit), and the burst above it.
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
}

/// Where the verifying key is, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Secret,
    PublicKeyFile(PathBuf),
    JwksFile(PathBuf),
}

impl JwtSettings {
    /// The configured algorithm, if it is one Tollgate verifies.
    pub fn algorithm(&self) -> Option<Algorithm> {
        match self.algorithm.as_str() {
            "HS256" => Some(Algorithm::HS256),
            "RS256" => Some(Algorithm::RS256),
            "ES256" => Some(Algorithm::ES256),
            _ => None,
        }
    }

    /// Where the key comes from: the secret for HS256, else the one key file set.
    pub fn key_source(&self) -> KeySource {
        match self.algorithm() {
            Some(Algorithm::HS256) | None => KeySource::Secret,
            _ if is_set(&self.jwks_file) => KeySource::JwksFile(self.jwks_file.clone()),
            _ => KeySource::PublicKeyFile(self.public_key_file.clone()),
        }
    }

    pub fn rate_limit(&self) -> Option<RateLimit> {
        super::rate_limit(self.rate_limit_per_second, self.rate_limit_burst)
    }

    pub(in super::super) fn validate(&self, p: &mut Problems) {
        if !self.enabled {
            return;
        }
        match self.algorithm() {
            None => p.add("auth.jwt.algorithm", "must be HS256, RS256 or ES256"),
            Some(Algorithm::HS256) => {
                if self.secret.expose_secret().len() < MIN_SECRET_BYTES {
                    p.add("auth.jwt.secret", "must be at least 32 bytes for HS256 (set TOLLGATE__AUTH__JWT__SECRET)");
                }
                if is_set(&self.public_key_file) || is_set(&self.jwks_file) {
                    p.add("auth.jwt.algorithm", "HS256 verifies with auth.jwt.secret; unset the key files");
                }
            }
            Some(_) => match (is_set(&self.public_key_file), is_set(&self.jwks_file)) {
                (true, true) => p.add("auth.jwt.jwks_file", "set either public_key_file or jwks_file, not both"),
                (false, false) => p.add("auth.jwt.public_key_file", "RS256/ES256 need public_key_file or jwks_file"),
                (true, false) => require_file(p, "auth.jwt.public_key_file", &self.public_key_file),
                (false, true) => require_file(p, "auth.jwt.jwks_file", &self.jwks_file),
            },
        }
        if self.issuer.trim().is_empty() {
            p.add("auth.jwt.issuer", "must name the issuer every token carries (`iss`)");
        }
        if self.audience.trim().is_empty() {
            p.add("auth.jwt.audience", "must name this service as tokens address it (`aud`)");
        }
        if self.leeway_secs > MAX_LEEWAY_SECS {
            p.add("auth.jwt.leeway_secs", "must be at most 300");
        }
        if self.rate_limit_per_second > 0 && self.rate_limit_burst == 0 {
            p.add("auth.jwt.rate_limit_burst", "must be at least 1 when auth.jwt.rate_limit_per_second is set");
        }
    }
}

/// A path setting left empty means "not used".
fn is_set(path: &Path) -> bool {
    !path.as_os_str().is_empty()
}

fn require_file(p: &mut Problems, field: &str, path: &Path) {
    if !path.is_file() {
        p.add(field, &format!("no file at {}", path.display()));
    }
}
