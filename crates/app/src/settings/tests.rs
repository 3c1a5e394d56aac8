//! Loading and validating the settings.
use super::layers::read;
use super::*;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The repository's `config/` directory.
pub(crate) fn repo_config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

/// A fresh, empty directory under the system temp dir.
pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tollgate-{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn no_vars() -> HashMap<String, String> {
    HashMap::new()
}

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn development() -> Settings {
    read(&repo_config_dir(), "development", &no_vars()).unwrap()
}

/// A config dir holding the repository's defaults plus `{env}.toml` with `text`.
fn dir_with(env: &str, text: &str) -> PathBuf {
    let dir = scratch_dir("settings");
    std::fs::copy(repo_config_dir().join("default.toml"), dir.join("default.toml")).unwrap();
    std::fs::write(dir.join(format!("{env}.toml")), text).unwrap();
    dir
}

#[test]
fn defaults_are_production_safe_and_fail_fast_without_keys() {
    // No `production.toml` in the repository: only default.toml applies.
    let s = read(&repo_config_dir(), "production", &no_vars()).unwrap();
    assert_eq!(s.env, "production");
    assert_eq!((s.server.host.as_str(), s.server.port), ("127.0.0.1", 8080));
    assert_eq!(s.server.workers, None);
    assert_eq!(s.server.max_json_bytes, 65536);
    assert_eq!(s.database.url.expose_secret(), "sqlite://data/tollgate.db?mode=rwc");
    assert!(s.database.migrate_on_start);
    assert_eq!(s.catalog.path, Path::new("config/plans.toml"));
    assert_eq!((s.billing.trial_days, s.billing.trial_plan.as_str()), (14, "pro"));
    assert_eq!(s.billing.grace_period_days, 7);
    assert!(s.sandbox.enabled && s.sandbox.webhook_secrets.is_empty());
    assert_eq!(s.sandbox.tolerance_secs, 300);
    assert!(s.auth.api_keys.is_empty());
    assert_eq!(s.telemetry.format, LogFormat::Auto);

    let problems = s.validate();
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems[0].starts_with("billing_page.secret: must be set when TOLLGATE_ENV=production"));
    assert!(problems[1].starts_with("sandbox.webhook_secrets: "));
    assert!(problems[2].starts_with("auth.api_keys: "));
    assert!(problems[3].starts_with("sandbox.enabled: must be false when TOLLGATE_ENV=production"));
}

#[test]
fn production_refuses_the_sandbox_the_test_clock_and_published_keys() {
    let dev_hash = format!("sha256:{}", hex::encode(Sha256::digest(b"tg_dev_local_only")));
    let own_hash = format!("sha256:{}", hex::encode(Sha256::digest(b"tg_live_a_key_of_our_own_0123456789")));
    let text = format!(
        "[sandbox]\nwebhook_secrets = [\"whsec_x\"]\n[clock]\nmode = \"test\"\n\
         [[auth.api_keys]]\nname = \"ours\"\nhash = \"{own_hash}\"\nscopes = [\"admin\"]\n\
         [[auth.api_keys]]\nname = \"dev\"\nhash = \"{}\"\nscopes = [\"admin\"]\n",
        dev_hash.to_uppercase().replace("SHA256:", "sha256:")
    );
    let s = read(&dir_with("production", &text), "production", &no_vars()).unwrap();
    let problems = s.validate();
    assert!(problems.iter().any(|p| p.starts_with("clock.mode: ")), "{problems:#?}");
    assert!(problems.iter().any(|p| p.starts_with("sandbox.enabled: ")), "{problems:#?}");
    let keys: Vec<&String> = problems.iter().filter(|p| p.starts_with("auth.api_keys[")).collect();
    assert_eq!(keys.len(), 1, "only the published key, whatever its hex case: {problems:#?}");
    assert!(keys[0].starts_with("auth.api_keys[1].hash: is the hash of a key published"), "{keys:?}");

    // The same file outside production: the development key and the sandbox are fine there.
    let staging =
        read(&dir_with("staging", &text.replace("mode = \"test\"", "mode = \"system\"")), "staging", &no_vars());
    assert_eq!(staging.unwrap().validate(), Vec::<String>::new());
}

#[test]
fn development_has_the_dev_key_and_validates() {
    let s = development();
    assert_eq!(s.validate(), Vec::<String>::new());
    let key = &s.auth.api_keys[0];
    assert_eq!(key.name, "dev");
    let expected = format!("sha256:{}", hex::encode(Sha256::digest(b"tg_dev_local_only")));
    assert_eq!(key.hash, expected);
    let all: Vec<&str> = billing_http::auth::Scope::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(key.scopes, all);
    assert_eq!(s.sandbox.webhook_secrets[0].expose_secret(), "whsec_sandbox_dev_only");
    assert_eq!(s.telemetry.format, LogFormat::Pretty);
    let policy = s.billing_policy();
    assert_eq!((policy.trial.days, policy.trial.plan.as_str()), (14, "pro"));
    assert_eq!(policy.grace_period, chrono::Duration::days(7));
}

#[test]
fn the_test_environment_validates() {
    let s = read(&repo_config_dir(), "test", &no_vars()).unwrap();
    assert_eq!(s.validate(), Vec::<String>::new());
}

#[test]
fn environment_variables_override_files() {
    let s = read(
        &repo_config_dir(),
        "development",
        &vars(&[
            ("TOLLGATE__SERVER__PORT", "9123"),
            ("TOLLGATE__SERVER__WORKERS", "3"),
            ("TOLLGATE__SERVER__PUBLIC_URL", "https://billing.example.com"),
            ("TOLLGATE__DATABASE__MIGRATE_ON_START", "false"),
            ("TOLLGATE__TELEMETRY__FORMAT", "json"),
            ("TOLLGATE__SANDBOX__WEBHOOK_SECRETS", "whsec_new,whsec_old"),
            ("TOLLGATE__BILLING__TRIAL_PLAN", "hobby"),
            ("TOLLGATE__SERVER__SHUTDOWN_TIMEOUT_SECS", ""),
            ("TOLLGATE_UNRELATED", "ignored"),
        ]),
    )
    .unwrap();
    assert_eq!(s.server.port, 9123);
    assert_eq!(s.server.workers, Some(3));
    assert_eq!(s.server.public_base_url(9123), "https://billing.example.com");
    assert_eq!(s.server.shutdown_timeout_secs, 30, "empty values are unset");
    assert!(!s.database.migrate_on_start);
    assert_eq!(s.telemetry.format, LogFormat::Json);
    assert_eq!(s.billing.trial_plan, "hobby");
    let secrets: Vec<&str> = s.sandbox.webhook_secrets.iter().map(|s| s.expose_secret()).collect();
    assert_eq!(secrets, ["whsec_new", "whsec_old"]);
}

#[test]
fn the_public_url_follows_the_port_unless_it_is_set() {
    let s = read(&repo_config_dir(), "development", &vars(&[("TOLLGATE__SERVER__PORT", "9000")])).unwrap();
    assert_eq!(s.server.public_base_url(9000), "http://localhost:9000");
    let s = read(
        &repo_config_dir(),
        "development",
        &vars(&[("TOLLGATE__SERVER__PORT", "9000"), ("TOLLGATE__SERVER__PUBLIC_URL", "https://pay.example.com/")]),
    )
    .unwrap();
    assert_eq!(s.server.public_base_url(9000), "https://pay.example.com");
}

#[test]
fn database_url_comes_from_database_url_unless_tollgate_sets_it() {
    let pg = "postgres://postgres@127.0.0.1:5432/postgres";
    let s = read(&repo_config_dir(), "development", &vars(&[("DATABASE_URL", pg)])).unwrap();
    assert_eq!(s.database.url.expose_secret(), pg);
    let s = read(
        &repo_config_dir(),
        "development",
        &vars(&[("DATABASE_URL", pg), ("TOLLGATE__DATABASE__URL", "sqlite::memory:")]),
    )
    .unwrap();
    assert_eq!(s.database.url.expose_secret(), "sqlite::memory:");
}

#[test]
fn validate_names_each_bad_setting_on_its_own_line() {
    let mut s = development();
    s.server.host = "bad host".into();
    s.server.public_url = Some("localhost:8080".into());
    s.server.workers = Some(0);
    s.webhooks.max_batch = 65;
    s.webhooks.max_wait_us = 2_000_000;
    s.database.max_connections = Some(0);
    s.database.url = SecretString::from("mysql://root:hunter2@db/tollgate");
    s.billing.trial_days = 0;
    s.checkout.cancel_url = "/cancel".into();
    s.sandbox.webhook_secrets = vec![SecretString::from("")];
    s.sandbox.tolerance_secs = 0;
    s.auth.api_keys.push(ApiKeySettings {
        name: "dev".into(),
        hash: "sha256:abc".into(),
        scopes: vec!["billing:delete".into()],
    });
    s.telemetry.level = "inf".into();
    let problems = s.validate();
    let expected = [
        "server.host: ",
        "server.public_url: ",
        "server.workers: ",
        "database.url: ",
        "database.max_connections: ",
        "webhooks.max_batch: ",
        "webhooks.max_wait_us: ",
        "billing.trial_days: ",
        "checkout.cancel_url: ",
        "sandbox.webhook_secrets[0]: ",
        "sandbox.tolerance_secs: ",
        "auth.api_keys[1].name: duplicate key name `dev`",
        "auth.api_keys[1].hash: ",
        "auth.api_keys[1].scopes: unknown scope \"billing:delete\"",
        "telemetry.level: ",
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (line, prefix) in problems.iter().zip(expected) {
        assert!(line.starts_with(prefix), "{line:?} should start with {prefix:?}");
        assert!(!line.contains('\n'));
    }
    assert!(problems.iter().all(|line| !line.contains("hunter2")));
}

#[test]
fn secrets_never_show_in_debug() {
    let mut s = development();
    s.database.url = SecretString::from("postgres://tollgate:hunter2@db/tollgate");
    let debug = format!("{s:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(!debug.contains("whsec_sandbox_dev_only"), "{debug}");
    assert!(debug.contains("REDACTED"));
}

#[test]
fn unknown_keys_are_rejected() {
    let dir = dir_with("staging", "[server]\nprot = 9000\n");
    let problems = read(&dir, "staging", &no_vars()).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("prot"), "{problems:?}");

    let problems = read(&repo_config_dir(), "development", &vars(&[("TOLLGATE__SERVER__TYPO", "1")])).unwrap_err();
    assert!(problems[0].contains("typo"), "{problems:?}");
}

#[test]
fn type_errors_on_secrets_do_not_quote_them() {
    let dir = dir_with("staging", "[sandbox]\nwebhook_secrets = \"whsec_leaked\"\n");
    let problems = read(&dir, "staging", &no_vars()).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("webhook_secrets"), "{problems:?}");
    assert!(!problems[0].contains("whsec_leaked"), "{problems:?}");
}

#[test]
fn a_missing_directory_or_bad_env_name_is_one_line() {
    let problems = read(Path::new("/nonexistent/tollgate"), "development", &no_vars()).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("/nonexistent/tollgate/default"), "{problems:?}");

    let problems = read(&repo_config_dir(), "../etc", &no_vars()).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].starts_with("TOLLGATE_ENV: "));
}

#[test]
fn lanes_and_the_pool_follow_the_workers_unless_set() {
    let mut s = development();
    s.database.url = SecretString::from("postgres://postgres@127.0.0.1/tollgate");
    s.server.workers = Some(3);
    s.webhooks.lanes = 5;
    assert_eq!(s.webhook_lanes(), 5);
    assert_eq!(s.pool_size(), 2 * 3 + 5 + 2);
    s.database.max_connections = Some(7);
    assert_eq!(s.pool_size(), 7);
    s.webhooks.lanes = 0;
    assert_eq!(s.webhook_lanes(), 4 * cores());
    s.database.url = SecretString::from("sqlite://data/t.db?mode=rwc");
    assert_eq!(s.webhook_lanes(), 1, "SQLite has one writer");
}

#[test]
fn end_user_tokens_are_off_by_default_and_validated_when_on() {
    let mut s = development();
    assert!(!s.auth.jwt.enabled);
    s.auth.jwt.enabled = true;
    s.auth.jwt.secret = SecretString::from("too-short-hunter2");
    s.auth.jwt.leeway_secs = 3600;
    let problems = s.validate();
    let expected = ["auth.jwt.secret: ", "auth.jwt.issuer: ", "auth.jwt.audience: ", "auth.jwt.leeway_secs: "];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (line, prefix) in problems.iter().zip(expected) {
        assert!(line.starts_with(prefix), "{line:?} should start with {prefix:?}");
    }
    assert!(problems.iter().all(|line| !line.contains("hunter2")));

    s.auth.jwt.secret = SecretString::from("x".repeat(32));
    s.auth.jwt.issuer = "https://app.test".into();
    s.auth.jwt.audience = "tollgate".into();
    s.auth.jwt.leeway_secs = 30;
    assert!(s.validate().is_empty(), "{:?}", s.validate());
    assert_eq!(s.auth.jwt.key_source(), KeySource::Secret);

    s.auth.jwt.algorithm = "ES256".into();
    assert!(s.validate()[0].starts_with("auth.jwt.public_key_file: RS256/ES256 need"), "{:?}", s.validate());
    s.auth.jwt.jwks_file = scratch_dir("jwks").join("missing.json");
    assert!(s.validate()[0].starts_with("auth.jwt.jwks_file: no file at"), "{:?}", s.validate());
    s.auth.jwt.public_key_file = "key.pem".into();
    assert!(s.validate()[0].contains("not both"), "{:?}", s.validate());
    s.auth.jwt.algorithm = "none".into();
    assert!(s.validate()[0].starts_with("auth.jwt.algorithm: "), "{:?}", s.validate());
}

#[test]
fn a_jwks_file_is_the_key_source_when_set() {
    let mut s = development();
    let path = scratch_dir("jwks").join("keys.json");
    std::fs::write(&path, "{}").unwrap();
    s.auth.jwt.algorithm = "RS256".into();
    s.auth.jwt.jwks_file = path.clone();
    assert_eq!(s.auth.jwt.key_source(), KeySource::JwksFile(path));
}

#[test]
fn a_key_name_cannot_pose_as_an_end_user() {
    let mut s = development();
    let hash = format!("sha256:{}", billing_http::auth::hash_key("another-key"));
    s.auth.api_keys.push(ApiKeySettings { name: "user:alice".into(), hash, scopes: vec!["billing:read".into()] });
    let problems = s.validate();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("auth.api_keys[1].name: must not start with `user:`"), "{problems:?}");
}
