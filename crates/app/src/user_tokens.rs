//! End-user tokens as configured (`[auth.jwt]`): the verifier built from its key file or secret, and the watch
//! that re-reads a JWKS file when it changes, so keys rotate without a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use billing_http::user_tokens::{KeyMaterial, TokenPolicy, TokenVerifier};
use secrecy::ExposeSecret;
use tokio::task::JoinHandle;

use crate::settings::{JwtSettings, KeySource};

/// How often the JWKS file's modification time is looked at: a rotated key is in use within this long.
pub const JWKS_POLL: Duration = Duration::from_secs(1);

/// The verifier, and the watch on its JWKS file (stopped when this is dropped).
pub struct UserTokens {
    pub verifier: Arc<TokenVerifier>,
    watch: Option<JoinHandle<()>>,
}

impl Drop for UserTokens {
    fn drop(&mut self) {
        if let Some(watch) = &self.watch {
            watch.abort();
        }
    }
}

/// The verifier `settings` describe, `None` when end-user tokens are off. Must run inside the runtime (the JWKS
/// watch is a task).
pub fn start(settings: &JwtSettings) -> anyhow::Result<Option<UserTokens>> {
    if !settings.enabled {
        return Ok(None);
    }
    let algorithm = settings.algorithm().context("auth.jwt.algorithm must be HS256, RS256 or ES256")?;
    let policy = TokenPolicy {
        algorithm,
        issuer: settings.issuer.clone(),
        audience: settings.audience.clone(),
        leeway_secs: settings.leeway_secs,
        rate_limit: settings.rate_limit(),
    };
    let source = settings.key_source();
    let material = match &source {
        KeySource::Secret => KeyMaterial::Secret(settings.secret.expose_secret().as_bytes().to_vec()),
        KeySource::PublicKeyFile(path) => KeyMaterial::PublicKeyPem(read(path)?),
        KeySource::JwksFile(path) => KeyMaterial::Jwks(read(path)?),
    };
    let verifier = Arc::new(TokenVerifier::new(policy, &material).map_err(|why| anyhow::anyhow!("auth.jwt: {why}"))?);
    let watch = match source {
        KeySource::JwksFile(path) => Some(tokio::spawn(watch_jwks(path, verifier.clone()))),
        _ => None,
    };
    tracing::info!(algorithm = settings.algorithm, issuer = settings.issuer, "end-user tokens accepted");
    Ok(Some(UserTokens { verifier, watch }))
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("auth.jwt: cannot read {}", path.display()))
}

/// What tells a changed file: its modification time and length (a rewrite within one timestamp tick that keeps the
/// length is the case this misses, and the next write catches it).
fn modified(path: &Path) -> Option<(SystemTime, u64)> {
    std::fs::metadata(path).and_then(|m| Ok((m.modified()?, m.len()))).ok()
}

/// Re-reads `path` whenever its modification time or length changes. A file that does not parse (caught mid-write, or
/// broken) leaves the keys in use and is looked at again on its next change.
async fn watch_jwks(path: PathBuf, verifier: Arc<TokenVerifier>) {
    let mut seen = modified(&path);
    let mut tick = tokio::time::interval(JWKS_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = modified(&path);
        if now == seen {
            continue;
        }
        seen = now;
        let reloaded = tokio::fs::read(&path)
            .await
            .map_err(|e| e.to_string())
            .and_then(|json| verifier.reload(&KeyMaterial::Jwks(json)));
        match reloaded {
            Ok(()) => tracing::info!(path = %path.display(), "JWKS reloaded"),
            Err(why) => tracing::warn!(path = %path.display(), %why, "JWKS not reloaded; the keys in use stay"),
        }
    }
}
