//! `tollgate`: loads and validates the configuration, then runs one command. Exit codes: 0 success, 1 runtime
//! error (with its cause chain), 2 configuration error (one `config error:` line per problem).

mod cli;

use billing_app::{catalog_file, settings, startup, telemetry};

use std::io::Write as _;
use std::process::ExitCode;

use billing_domain::catalog::Catalog;
use clap::Parser;

use crate::cli::{Cli, Command};
use crate::settings::Settings;

/// mimalloc instead of glibc's allocator: a usage batch allocates and frees thousands of small strings per
/// request across threads, where glibc's arenas spent a fifth of the request threads' time (perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for a configuration problem, distinct from runtime failures.
const CONFIG_ERROR: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let (settings, catalog) = match configuration() {
        Ok(loaded) => loaded,
        Err(problems) => {
            for problem in problems {
                eprintln!("config error: {problem}");
            }
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    match run(cli.command(), settings, catalog).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "tollgate failed");
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Settings, then the catalog they point at, then the settings that refer into the catalog. Every command
/// needs a valid configuration, so nothing runs before this succeeds.
fn configuration() -> Result<(Settings, Catalog), Vec<String>> {
    let settings = Settings::load()?;
    let catalog = catalog_file::load_catalog(&settings.catalog.path)?;
    let problems = check_against_catalog(&settings, &catalog);
    if problems.is_empty() { Ok((settings, catalog)) } else { Err(problems) }
}

/// The trial plan must be a subscription plan of the catalog.
fn check_against_catalog(settings: &Settings, catalog: &Catalog) -> Vec<String> {
    match catalog.require(&settings.billing.trial_plan) {
        Err(unknown) => vec![format!("billing.trial_plan: {unknown}")],
        Ok(plan) if !plan.is_subscription() => {
            vec![format!("billing.trial_plan: `{}` is a credits pack; a trial needs a subscription plan", plan.id)]
        }
        Ok(_) => Vec::new(),
    }
}

async fn run(command: Command, settings: Settings, catalog: Catalog) -> anyhow::Result<()> {
    match command {
        Command::CheckConfig => print(&format!("configuration OK\n{}\n", cli::summary(&settings, &catalog))),
        Command::Plans => print(&cli::render_plans(&catalog)),
        Command::Openapi => {
            print(&format!("{}\n", serde_json::to_string_pretty(&billing_http::openapi::document(&catalog))?))
        }
        Command::Migrate => {
            telemetry::init(&settings.telemetry);
            startup::migrate(&settings).await
        }
        Command::Reconcile => {
            telemetry::init_to_stderr(&settings.telemetry);
            let report = startup::reconcile(&settings, catalog).await?;
            print(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
            if report.failed.is_empty() {
                Ok(())
            } else {
                anyhow::bail!("{} subscription(s) could not be reconciled; see the report", report.failed.len())
            }
        }
        Command::Serve => {
            telemetry::init(&settings.telemetry);
            tracing::info!(
                configuration = %cli::summary(&settings, &catalog),
                "configuration loaded"
            );
            startup::serve(settings, catalog).await
        }
    }
}

/// Writes to stdout; a closed pipe (`tollgate plans | head`) is not an error.
fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn repo_config_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
    }

    #[test]
    fn the_trial_plan_must_be_a_subscription_in_the_catalog() {
        let catalog = catalog_file::load_catalog(&repo_config_dir().join("plans.toml")).unwrap();
        let mut settings = Settings::load_from(&repo_config_dir(), "development").unwrap();
        assert!(check_against_catalog(&settings, &catalog).is_empty());

        settings.billing.trial_plan = "gold".into();
        let problems = check_against_catalog(&settings, &catalog);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("billing.trial_plan: unknown plan `gold`; valid plans: free, hobby"));

        settings.billing.trial_plan = "credits10".into();
        assert!(check_against_catalog(&settings, &catalog)[0].contains("credits pack"));
    }
}
