//! Reading the layers: the default file, the environment's file, then environment variables.

use std::collections::HashMap;
use std::path::Path;

use config::{Config, Environment, File, FileFormat};

use super::{ENV_VAR, Settings};

/// Reads the layers without validating. `vars` stands for the process environment, so tests pass their own.
pub(super) fn read(dir: &Path, env: &str, vars: &HashMap<String, String>) -> Result<Settings, Vec<String>> {
    if env.is_empty() || !env.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(vec![format!("{ENV_VAR}: must be letters, digits, '-' or '_', got {env:?}")]);
    }
    let default_file = dir.join("default.toml");
    let env_file = dir.join(format!("{env}.toml"));
    // DATABASE_URL is the conventional name; TOLLGATE__DATABASE__URL still wins over it.
    let aliases: config::Map<String, String> = vars
        .get("DATABASE_URL")
        .filter(|url| !url.is_empty())
        .map(|url| ("DATABASE__URL".to_owned(), url.clone()))
        .into_iter()
        .collect();
    let overrides: config::Map<String, String> = vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();

    let built = Config::builder()
        .add_source(File::new(&default_file.to_string_lossy(), FileFormat::Toml).required(true))
        .add_source(File::new(&env_file.to_string_lossy(), FileFormat::Toml).required(false))
        .add_source(Environment::default().separator("__").source(Some(aliases)))
        .add_source(
            Environment::with_prefix("TOLLGATE")
                .prefix_separator("__")
                .separator("__")
                .ignore_empty(true)
                // Parsing lets one list, the webhook secrets, come from the environment as `a,b`.
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("sandbox.webhook_secrets")
                .with_list_parse_key("stripe.webhook_secrets")
                .source(Some(overrides)),
        )
        .set_override("env", env)
        .and_then(|builder| builder.build())
        .map_err(|e| vec![config_error(e)])?;
    built.try_deserialize::<Settings>().map_err(|e| vec![config_error(e)])
}

/// One line for a configuration error. A type error on a secret setting would quote the secret: blank it out.
pub(super) fn config_error(error: config::ConfigError) -> String {
    let line = error.to_string().replace('\n', " ");
    let secret_keys = ["database.url", "webhook_secrets", "secret_key", "secrets", "password"];
    if !secret_keys.iter().any(|k| line.contains(k)) {
        return line;
    }
    let mut redacted = String::with_capacity(line.len());
    let mut inside = false;
    for c in line.chars() {
        if c == '"' {
            if inside {
                redacted.push_str("[REDACTED]\"");
            } else {
                redacted.push('"');
            }
            inside = !inside;
        } else if !inside {
            redacted.push(c);
        }
    }
    redacted
}
