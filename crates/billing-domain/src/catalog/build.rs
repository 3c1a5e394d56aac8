//! Validating a catalog file into a [`Catalog`]: every problem is found and reported once, one line each.

use std::collections::HashMap;
use std::fmt;

use super::*;

/// One problem in the catalog file, printed as one line at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogProblem(pub String);

impl fmt::Display for CatalogProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Catalog {
    /// Validates the whole file and returns every problem found, one per line, or the catalog.
    pub fn from_file(file: CatalogFile) -> Result<Self, Vec<CatalogProblem>> {
        let mut problems = Vec::new();
        let mut problem = |text: String| problems.push(CatalogProblem(text));
        for (name, declaration) in &file.limits {
            match declaration.source() {
                Some(LimitSource::Usage { metric }) if !file.metrics.contains_key(&metric) => {
                    problem(format!("limit `{name}` reads metric `{metric}`, which is not declared under [metrics]"));
                }
                None => problem(format!("limit `{name}` has source = \"usage\" but no metric")),
                _ => {}
            }
        }

        let mut plans = Vec::new();
        let mut by_id = HashMap::new();
        let mut by_price = HashMap::new();
        let mut defaults = Vec::new();
        let mut meters = BTreeMap::new();
        for (index, entry) in file.plans.into_iter().enumerate() {
            let at = format!("plans[{index}] (`{}`)", entry.id);
            let id_ok = !entry.id.is_empty()
                && entry.id.len() <= 64
                && entry.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
            if !id_ok {
                problem(format!("{at}: id must be 1-64 characters of a-z, 0-9, '_' or '-'"));
            }
            if entry.name.trim().is_empty() {
                problem(format!("{at}: name must not be empty"));
            }
            let kind = match (entry.kind.as_str(), entry.interval, entry.credits) {
                ("subscription", Some(interval), None) => Some(PlanKind::Subscription { interval }),
                ("subscription", None, _) => {
                    problem(format!("{at}: a subscription plan needs interval = \"month\" or \"year\""));
                    None
                }
                ("subscription", Some(_), Some(_)) => {
                    problem(format!("{at}: a subscription plan cannot grant credits; use kind = \"credits\""));
                    None
                }
                ("credits", None, Some(credits)) if credits > 0 => Some(PlanKind::Credits { credits }),
                ("credits", _, _) => {
                    problem(format!("{at}: a credits plan needs credits > 0 and no interval"));
                    None
                }
                (other, _, _) => {
                    problem(format!("{at}: kind must be \"subscription\" or \"credits\", not {other:?}"));
                    None
                }
            };
            let currency = match Currency::parse(&entry.price.currency) {
                Ok(c) => Some(c),
                Err(_) => {
                    problem(format!("{at}: price.currency must be a three-letter ISO 4217 code"));
                    None
                }
            };
            if entry.price.amount < 0 {
                problem(format!("{at}: price.amount must not be negative"));
            }
            for name in entry.limits.keys() {
                if !file.limits.contains_key(name) {
                    problem(format!("{at}: limit `{name}` is not declared under [limits]"));
                }
            }
            for name in &entry.features {
                if !file.features.contains_key(name) {
                    problem(format!("{at}: feature `{name}` is not declared under [features]"));
                }
            }
            for component in &entry.metered {
                if !file.metrics.contains_key(&component.metric) {
                    problem(format!("{at}: metered metric `{}` is not declared under [metrics]", component.metric));
                }
                if component.unit_price.is_sign_negative() || component.included.is_sign_negative() {
                    problem(format!("{at}: metered `{}` prices and quantities must not be negative", component.metric));
                }
                if let Some(event) = &component.meter_event {
                    let valid = event.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
                    if event.is_empty() || event.len() > 100 || !valid {
                        problem(format!(
                            "{at}: metered `{}` meter_event must be 1-100 characters of A-Z, a-z, 0-9, '_', '-', '.'",
                            component.metric
                        ));
                    } else if let Some(other) = meters.insert(component.metric.clone(), event.clone())
                        && &other != event
                    {
                        problem(format!(
                            "{at}: metric `{}` reports to meter `{event}` here and to `{other}` in another plan; a metric has one meter",
                            component.metric
                        ));
                    }
                }
            }
            let plan_id = PlanId::new(entry.id.clone());
            if by_id.insert(plan_id.clone(), index).is_some() {
                problem(format!("{at}: duplicate plan id `{}`", entry.id));
            }
            let mut processor_prices = BTreeMap::new();
            for (processor, price) in entry.processor_prices {
                let key = (ProcessorId::new(processor.clone()), PriceId::new(price.clone()));
                if price.trim().is_empty() {
                    problem(format!("{at}: processor_prices.{processor} must not be empty"));
                } else if let Some(&other) = by_price.get(&key) {
                    problem(format!("{at}: {processor} price `{price}` is already used by plans[{other}]"));
                } else {
                    by_price.insert(key.clone(), index);
                }
                processor_prices.insert(key.0, key.1);
            }
            if entry.default {
                defaults.push(index);
                if entry.price.amount != 0 || !matches!(kind, Some(PlanKind::Subscription { .. })) {
                    problem(format!("{at}: the default plan must be a free (amount = 0) subscription plan"));
                }
            }
            if let (Some(kind), Some(currency)) = (kind, currency) {
                plans.push(Plan {
                    id: plan_id,
                    name: entry.name,
                    description: entry.description,
                    kind,
                    price: Money::new(entry.price.amount, currency),
                    processor_prices,
                    limits: entry.limits,
                    features: entry.features.into_iter().collect(),
                    metered: entry.metered,
                    is_default: entry.default,
                });
            }
        }
        if defaults.len() != 1 {
            problem(format!("exactly one plan must have default = true (the free plan); found {}", defaults.len()));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            plans,
            by_id,
            by_price,
            default_plan: defaults[0],
            limits: file.limits,
            features: file.features,
            metrics: file.metrics,
            meters,
        })
    }
}
