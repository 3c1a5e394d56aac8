//! Reads the plan catalog (`config/plans.toml`) into the domain's validated [`Catalog`].

use std::path::Path;

use billing_domain::catalog::{Catalog, CatalogFile};

/// Reads, parses and validates the catalog at `path`; every problem is one line naming the file.
pub fn load_catalog(path: &Path) -> Result<Catalog, Vec<String>> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("catalog {shown}: cannot read the plan catalog: {e}")])?;
    let file: CatalogFile =
        toml::from_str(&text).map_err(|e| vec![format!("catalog {shown}: {}", toml_error(&text, &e))])?;
    Catalog::from_file(file)
        .map_err(|problems| problems.into_iter().map(|problem| format!("catalog {shown}: {problem}")).collect())
}

/// The TOML error as one line with its position (the `Display` form is a multi-line snippet).
fn toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', " ");
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::tests::{repo_config_dir, scratch_dir};
    use billing_domain::catalog::{Limit, PlanKind};
    use billing_domain::ids::{PlanId, PriceId, ProcessorId};

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let path = scratch_dir("catalog").join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_shipped_catalog_loads() {
        let catalog = load_catalog(&repo_config_dir().join("plans.toml")).unwrap();
        let ids: Vec<&str> = catalog.plans().iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["free", "hobby", "pro", "credits10"]);
        assert_eq!(catalog.default_plan().id.as_str(), "free");
        assert_eq!(catalog.default_plan().price.minor, 0);

        let price = |id: &str| catalog.get(&PlanId::new(id)).unwrap().price.minor;
        assert_eq!([price("hobby"), price("pro"), price("credits10")], [900, 4900, 999]);
        let pro = catalog.by_price(&ProcessorId::new("sandbox"), &PriceId::new("sbx_price_pro")).unwrap();
        assert_eq!(pro.id.as_str(), "pro");
        assert_eq!(pro.limits["alerts_per_month"], Limit::Unlimited);
        assert!(pro.features.contains("sla_tracking"));
        let credits = catalog.require("credits10").unwrap();
        assert_eq!(credits.kind, PlanKind::Credits { credits: 10 });

        for name in [
            "workspace_members",
            "storage_gb",
            "alerts_per_month",
            "incidents_per_month",
            "api_rate_limit",
            "audit_log_retention_days",
        ] {
            assert!(catalog.limit_declarations().contains_key(name), "{name}");
        }
        for name in ["sla_tracking", "custom_webhooks", "custom_branding", "advanced_analytics", "custom_reports"] {
            assert!(catalog.feature_declarations().contains_key(name), "{name}");
        }
    }

    #[test]
    fn every_catalog_problem_is_its_own_line() {
        let path = write(
            "plans.toml",
            r#"
[limits.seats]
description = "Seats"
source = "count"

[[plans]]
id = "free"
name = "Free"
kind = "subscription"
interval = "month"
price = { amount = 0, currency = "USD" }
limits = { ghost = 1 }
features = ["ghost_feature"]

[[plans]]
id = "free"
name = "Again"
kind = "credits"
price = { amount = 100, currency = "USD" }
"#,
        );
        let problems = load_catalog(&path).unwrap_err();
        assert_eq!(problems.len(), 5, "{problems:#?}");
        let prefix = format!("catalog {}: ", path.display());
        assert!(problems.iter().all(|line| line.starts_with(&prefix)));
        assert!(problems[0].contains("limit `ghost` is not declared"));
        assert!(problems[4].contains("exactly one plan must have default = true"));
    }

    #[test]
    fn a_toml_error_is_one_line_with_its_position() {
        let path = write("plans.toml", "[[plans]]\nid = \"free\"\nprise = 3\n");
        let problems = load_catalog(&path).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("line 3"), "{problems:?}");
        assert!(problems[0].contains("prise"), "{problems:?}");
        assert!(!problems[0].contains('\n'));

        let path = write("broken.toml", "[[plans]\n");
        let problems = load_catalog(&path).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("line 1"), "{problems:?}");
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let problems = load_catalog(Path::new("/nonexistent/plans.toml")).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("/nonexistent/plans.toml"));
    }
}
