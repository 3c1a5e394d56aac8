//! The catalog's validation and lookups, and the small catalog other tests of the crate use.
use super::*;

/// A small catalog for tests across the crate: free (default), pro (monthly) and a 10-credit pack.
pub(crate) fn test_catalog() -> Catalog {
    let file: CatalogFile = serde_json::from_value(serde_json::json!({
        "limits": {
            "workspace_members": {"description": "members", "source": "count"},
            "alerts_per_month": {"description": "alerts", "source": "usage", "metric": "alerts"}
        },
        "features": {"sla_tracking": "SLA tracking"},
        "metrics": {"alerts": {"description": "alerts raised", "aggregation": "sum"}},
        "plans": [
            {"id": "free", "name": "Free", "kind": "subscription", "interval": "month",
             "price": {"amount": 0, "currency": "usd"}, "default": true,
             "limits": {"workspace_members": 1, "alerts_per_month": 100}},
            {"id": "pro", "name": "Pro", "kind": "subscription", "interval": "month",
             "price": {"amount": 4900, "currency": "USD"},
             "processor_prices": {"sandbox": "sbx_price_pro", "stripe": "price_pro"},
             "limits": {"workspace_members": 10, "alerts_per_month": "unlimited"},
             "features": ["sla_tracking"]},
            {"id": "credits10", "name": "10 credits", "kind": "credits", "credits": 10,
             "price": {"amount": 999, "currency": "USD"},
             "processor_prices": {"sandbox": "sbx_price_credits10"}}
        ]
    }))
    .unwrap();
    Catalog::from_file(file).unwrap()
}

#[test]
fn looks_plans_up_by_id_and_price() {
    let catalog = test_catalog();
    assert_eq!(catalog.default_plan().id.as_str(), "free");
    let pro = catalog.by_price(&ProcessorId::new("sandbox"), &PriceId::new("sbx_price_pro")).unwrap();
    assert_eq!(pro.id.as_str(), "pro");
    assert_eq!(pro.limits["alerts_per_month"], Limit::Unlimited);
    let unknown = catalog.require("gold").unwrap_err();
    assert_eq!(unknown.valid, ["free", "pro", "credits10"]);
}

#[test]
fn reports_every_problem_once() {
    let file: CatalogFile = serde_json::from_value(serde_json::json!({
        "limits": {"seats": {"description": "s", "source": "usage", "metric": "nope"}},
        "plans": [
            {"id": "a", "name": "A", "kind": "subscription", "interval": "month",
             "price": {"amount": 0, "currency": "USD"}, "limits": {"ghost": 1},
             "features": ["ghost_feature"], "processor_prices": {"stripe": "price_x"}},
            {"id": "a", "name": "", "kind": "credits", "price": {"amount": -1, "currency": "dollars"},
             "processor_prices": {"stripe": "price_x"}}
        ]
    }))
    .unwrap();
    let problems: Vec<String> = Catalog::from_file(file).unwrap_err().iter().map(|p| p.to_string()).collect();
    let expected = [
        "limit `seats` reads metric `nope`",
        "limit `ghost` is not declared",
        "feature `ghost_feature` is not declared",
        "name must not be empty",
        "a credits plan needs credits > 0",
        "price.currency must be",
        "price.amount must not be negative",
        "duplicate plan id `a`",
        "price `price_x` is already used by plans[0]",
        "exactly one plan must have default = true",
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (line, fragment) in problems.iter().zip(expected) {
        assert!(line.contains(fragment), "{line} should contain {fragment}");
    }
}

#[test]
fn limits_reject_negative_numbers_and_other_words() {
    assert_eq!(serde_json::from_str::<Limit>("\"unlimited\"").unwrap(), Limit::Unlimited);
    assert_eq!(serde_json::from_str::<Limit>("5").unwrap(), Limit::Limited(5));
    assert!(serde_json::from_str::<Limit>("-1").is_err());
    assert!(serde_json::from_str::<Limit>("\"lots\"").is_err());
    assert!(Limit::Limited(5).allows(4, 1));
    assert!(!Limit::Limited(5).allows(5, 1));
    assert!(Limit::Unlimited.allows(u64::MAX, u64::MAX));
}
