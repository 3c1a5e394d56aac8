//! The `tollgate` command line and the text the read-only commands print.

use std::fmt::Write as _;

use billing_domain::catalog::{Catalog, Interval, Limit, Plan, PlanKind};
use billing_domain::money::Money;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::settings::{ProcessorChoice, Settings};

/// Tollgate: a self-hosted billing service.
///
/// Configuration comes from config/default.toml, config/$TOLLGATE_ENV.toml (default: development) and
/// TOLLGATE__SECTION__KEY environment variables; TOLLGATE_CONFIG_DIR moves the config directory.
/// Exit codes: 0 success, 1 runtime error, 2 configuration error.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do; `serve` when none is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Run the HTTP server and background jobs until SIGINT/SIGTERM (the default).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Load and validate the settings and the plan catalog, print a summary, then exit.
    CheckConfig,
    /// Print the plan catalog: ids, names, kinds, prices, limits and features.
    Plans,
    /// Print the OpenAPI document of the API (what `GET /openapi.json` serves) for the configured catalog.
    Openapi,
    /// Re-fetch live subscriptions from the active processor, repair drift from missed webhooks, print what
    /// changed (JSON), then exit; exit 1 when some subscription could not be checked.
    Reconcile,
}

impl Cli {
    /// The command to run, `serve` by default.
    pub fn command(&self) -> Command {
        self.command.unwrap_or(Command::Serve)
    }
}

/// The one-line summary printed by `check-config` after "configuration OK". Never prints secrets.
pub fn summary(settings: &Settings, catalog: &Catalog) -> String {
    let database = settings.database.url.expose_secret().split(':').next().unwrap_or_default().to_owned();
    let policy = settings.billing_policy();
    format!(
        "env={} listen={}:{} public_url={} database={} migrate_on_start={} catalog={} ({} plans, default {}) \
         trial={}d of {} grace={}d api_keys={} processor={} sandbox={} reconcile_every={}s",
        settings.env,
        settings.server.host,
        settings.server.port,
        settings.server.public_base_url(settings.server.port),
        database,
        settings.database.migrate_on_start,
        settings.catalog.path.display(),
        catalog.plans().len(),
        catalog.default_plan().id,
        policy.trial.days,
        policy.trial.plan,
        policy.grace_period.num_days(),
        settings.auth.api_keys.len(),
        match settings.processor {
            ProcessorChoice::Sandbox => "sandbox",
            ProcessorChoice::Stripe => "stripe",
        },
        if settings.sandbox.enabled { "on" } else { "off" },
        settings.reconcile.interval_secs,
    )
}

/// The catalog as aligned text: one block per plan.
pub fn render_plans(catalog: &Catalog) -> String {
    let mut out = String::new();
    for (i, plan) in catalog.plans().iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        render_plan(&mut out, plan);
    }
    out
}

fn render_plan(out: &mut String, plan: &Plan) {
    let default = if plan.is_default { "  (default)" } else { "" };
    let _ = writeln!(out, "{}  {}{default}", plan.id, plan.name);
    if !plan.description.is_empty() {
        row(out, "about", &plan.description);
    }
    row(out, "kind", &kind(&plan.kind));
    row(out, "price", &money(&plan.price));
    if !plan.processor_prices.is_empty() {
        let prices: Vec<String> =
            plan.processor_prices.iter().map(|(processor, price)| format!("{processor}={price}")).collect();
        row(out, "prices", &prices.join(", "));
    }
    let width = plan.limits.keys().map(String::len).max().unwrap_or(0);
    let limits: Vec<String> = plan
        .limits
        .iter()
        .map(|(name, limit)| match limit {
            Limit::Limited(n) => format!("{name:<width$}  {n}"),
            Limit::Unlimited => format!("{name:<width$}  unlimited"),
        })
        .collect();
    rows(out, "limits", &limits);
    let features: Vec<String> = plan.features.iter().cloned().collect();
    rows(out, "features", &features);
    let width = plan.metered.iter().map(|m| m.metric.len()).max().unwrap_or(0);
    let metered: Vec<String> = plan
        .metered
        .iter()
        .map(|m| {
            format!(
                "{:<width$}  {} {} per unit beyond {} included",
                m.metric, m.unit_price, plan.price.currency, m.included
            )
        })
        .collect();
    if !metered.is_empty() {
        rows(out, "metered", &metered);
    }
}

const LABEL: usize = 10;

fn row(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "  {label:<LABEL$}{value}");
}

fn rows(out: &mut String, label: &str, values: &[String]) {
    if values.is_empty() {
        row(out, label, "none");
    }
    for (i, value) in values.iter().enumerate() {
        row(out, if i == 0 { label } else { "" }, value);
    }
}

fn kind(kind: &PlanKind) -> String {
    match kind {
        PlanKind::Subscription { interval: Interval::Month } => "subscription, monthly".to_owned(),
        PlanKind::Subscription { interval: Interval::Year } => "subscription, yearly".to_owned(),
        PlanKind::Credits { credits } => format!("one-time purchase of {credits} credits"),
    }
}

/// Minor units as a decimal amount; Stripe's zero-decimal currencies have no fraction.
fn money(price: &Money) -> String {
    const ZERO_DECIMAL: [&str; 16] = [
        "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
    ];
    let currency = price.currency.as_str().to_ascii_uppercase();
    if ZERO_DECIMAL.contains(&currency.as_str()) {
        return format!("{} {currency}", price.minor);
    }
    let sign = if price.minor < 0 { "-" } else { "" };
    let minor = price.minor.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", minor / 100, minor % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog_file::load_catalog;
    use billing_domain::money::Currency;

    fn shipped_plans() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/plans.toml")
    }

    #[test]
    fn no_subcommand_means_serve() {
        let cli = Cli::try_parse_from(["tollgate"]).unwrap();
        assert_eq!(cli.command(), Command::Serve);
        for (arg, command) in [
            ("serve", Command::Serve),
            ("migrate", Command::Migrate),
            ("check-config", Command::CheckConfig),
            ("plans", Command::Plans),
        ] {
            let cli = Cli::try_parse_from(["tollgate", arg]).unwrap();
            assert_eq!(cli.command(), command);
        }
        assert!(Cli::try_parse_from(["tollgate", "frobnicate"]).is_err());
    }

    #[test]
    fn plans_are_printed_with_prices_limits_and_features() {
        let catalog = load_catalog(&shipped_plans()).unwrap();
        let text = render_plans(&catalog);
        assert!(text.starts_with("free  Free  (default)\n"), "{text}");
        assert!(text.contains("\nhobby  Hobby\n"), "{text}");
        assert!(text.contains("  price     49.00 USD\n"), "{text}");
        assert!(text.contains("  kind      one-time purchase of 10 credits\n"), "{text}");
        assert!(text.contains("alerts_per_month          unlimited"), "{text}");
        assert!(text.contains("            sla_tracking\n"), "{text}");
    }

    #[test]
    fn money_is_shown_in_major_units() {
        let usd = Currency::parse("USD").unwrap();
        assert_eq!(money(&Money::new(999, usd.clone())), "9.99 USD");
        assert_eq!(money(&Money::new(0, usd)), "0.00 USD");
        assert_eq!(money(&Money::new(500, Currency::parse("JPY").unwrap())), "500 JPY");
    }
}
