//! The catalog's validation and lookups, and the small catalog other tests of the crate use.
use super::*;
use crate::testing::test_catalog;

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
