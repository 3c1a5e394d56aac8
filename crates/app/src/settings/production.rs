//! What `TOLLGATE_ENV=production` refuses at startup: settings that let someone other than a paying customer move
//! billing state. The test clock is refused in `clock.rs`; here the sandbox and the API keys this repository
//! publishes.

use billing_http::auth::{hash_key, parse_key_hash};

use super::Settings;
use super::problems::Problems;

/// Keys whose plaintext is in this repository's configuration files and docs.
const PUBLISHED_KEYS: [&str; 2] = ["tg_dev_local_only", "tg_test_local_only"];

pub(super) fn validate(settings: &Settings, p: &mut Problems) {
    if settings.env != "production" {
        return;
    }
    if settings.sandbox.enabled {
        p.add(
            "sandbox.enabled",
            "must be false when TOLLGATE_ENV=production: anyone who reaches the sandbox's pages can complete a checkout",
        );
    }
    let published: Vec<[u8; 32]> =
        PUBLISHED_KEYS.iter().filter_map(|key| parse_key_hash(&format!("sha256:{}", hash_key(key))).ok()).collect();
    for (i, key) in settings.auth.api_keys.iter().enumerate() {
        if parse_key_hash(&key.hash).is_ok_and(|digest| published.contains(&digest)) {
            p.add(
                &format!("auth.api_keys[{i}].hash"),
                "is the hash of a key published with Tollgate (tg_dev_local_only or tg_test_local_only); \
                 generate your own when TOLLGATE_ENV=production",
            );
        }
    }
}
