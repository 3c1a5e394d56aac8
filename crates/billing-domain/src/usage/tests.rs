use chrono::{Duration, TimeZone};
use proptest::prelude::*;

use super::*;
use crate::catalog::Aggregation;
use crate::ids::PlanId;
use crate::testing::test_catalog;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap()
}

fn text(s: &str) -> Option<RawValue> {
    Some(RawValue::Text(s.to_owned()))
}

fn event() -> RawUsageEvent {
    RawUsageEvent {
        id: text("evt_1"),
        workspace_id: text("acme"),
        metric: text("compute_hours"),
        quantity: text("1.5"),
        timestamp: text("2026-12-02T11:00:00Z"),
        ..RawUsageEvent::default()
    }
}

fn verdict(raw: RawUsageEvent) -> Result<UsageEvent, (&'static str, String)> {
    validate_event(&raw, &test_catalog(), &UsagePolicy::default(), now()).map_err(|r| (r.code.as_str(), r.field))
}

#[test]
fn a_valid_event_keeps_its_exact_quantity() {
    let ok = verdict(event()).unwrap();
    assert_eq!(ok.quantity, Decimal::new(15, 1));
    assert_eq!(ok.at, Utc.with_ymd_and_hms(2026, 12, 2, 11, 0, 0).unwrap());
    let float = verdict(RawUsageEvent { quantity: Some(RawValue::Float(0.1)), ..event() }).unwrap();
    assert_eq!(float.quantity, Decimal::new(1, 1), "0.1 as a JSON number is 0.1, not its binary expansion");
    let unix =
        verdict(RawUsageEvent { timestamp: Some(RawValue::Integer(now().timestamp().into())), ..event() }).unwrap();
    assert_eq!(unix.at, now());
}

#[test]
fn each_fault_has_its_code_and_field() {
    let cases: Vec<(RawUsageEvent, &str, &str)> = vec![
        (RawUsageEvent { not_an_object: true, ..RawUsageEvent::default() }, "invalid_event", ""),
        (RawUsageEvent { unknown_field: Some("qty".into()), ..event() }, "unknown_field", "qty"),
        (RawUsageEvent { id: None, ..event() }, "missing_field", "id"),
        (RawUsageEvent { id: text(""), ..event() }, "invalid_id", "id"),
        (RawUsageEvent { workspace_id: text("a b"), ..event() }, "invalid_workspace_id", "workspace_id"),
        (RawUsageEvent { metric: text("nope"), ..event() }, "unknown_metric", "metric"),
        (RawUsageEvent { quantity: text("-1"), ..event() }, "negative_quantity", "quantity"),
        (RawUsageEvent { quantity: Some(RawValue::Integer(-3)), ..event() }, "negative_quantity", "quantity"),
        (RawUsageEvent { quantity: text("abc"), ..event() }, "invalid_quantity", "quantity"),
        (RawUsageEvent { quantity: text("1e3"), ..event() }, "invalid_quantity", "quantity"),
        (RawUsageEvent { quantity: text("1."), ..event() }, "invalid_quantity", "quantity"),
        (RawUsageEvent { quantity: Some(RawValue::Other), ..event() }, "invalid_quantity", "quantity"),
        (RawUsageEvent { quantity: text("0.0000000001"), ..event() }, "quantity_scale", "quantity"),
        (RawUsageEvent { quantity: text("1000000000000000"), ..event() }, "quantity_too_large", "quantity"),
        (RawUsageEvent { timestamp: text("yesterday"), ..event() }, "invalid_timestamp", "timestamp"),
        (RawUsageEvent { timestamp: text("2026-11-25T11:59:59Z"), ..event() }, "timestamp_too_old", "timestamp"),
        (RawUsageEvent { timestamp: text("2026-12-02T12:05:01Z"), ..event() }, "timestamp_in_future", "timestamp"),
    ];
    for (raw, code, field) in cases {
        assert_eq!(verdict(raw.clone()).unwrap_err(), (code, field.to_owned()), "{raw:?}");
    }
    // The edges of the window are inside it; trailing zeros do not count as places.
    assert!(verdict(RawUsageEvent { timestamp: text("2026-11-25T12:00:00Z"), ..event() }).is_ok());
    assert!(verdict(RawUsageEvent { timestamp: text("2026-12-02T12:05:00Z"), ..event() }).is_ok());
    assert!(verdict(RawUsageEvent { quantity: text("1.123456789000"), ..event() }).is_ok());
}

#[test]
fn the_period_is_the_subscriptions_when_it_holds_the_event_else_the_calendar_month() {
    let december = calendar_month(2026, 12).unwrap();
    assert_eq!(period_at(None, now()), december);
    assert_eq!(december.end, Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
    let mut sub = crate::testing::subscription("sub_1", "acme", crate::subscription::SubscriptionStatus::Active, now());
    sub.terms.current_period_start = Some(now() - Duration::days(10));
    sub.terms.current_period_end = Some(now() + Duration::days(20));
    let current = UsageRange { start: now() - Duration::days(10), end: now() + Duration::days(20) };
    assert_eq!(period_at(Some(&sub), now()), current);
    // A late event from before the period lands in its own (calendar) period.
    let late = now() - Duration::days(11);
    assert_eq!(period_at(Some(&sub), late), calendar_month(2026, 11).unwrap());
}

#[test]
fn totals_keep_sum_and_peak() {
    let mut total = MetricTotal::default();
    for q in ["2", "7.5", "0.25"] {
        total.add(q.parse().unwrap()).unwrap();
    }
    assert_eq!(total.value(Aggregation::Sum), "9.75".parse::<Decimal>().unwrap());
    assert_eq!(total.value(Aggregation::Max), "7.5".parse::<Decimal>().unwrap());
    assert_eq!(total.events, 3);
    let mut huge = MetricTotal::of_event(Decimal::MAX);
    assert_eq!(huge.add(Decimal::MAX), Err(TotalOverflow));
}

#[test]
fn cost_bills_beyond_the_included_quantity_and_rounds_half_even_once() {
    let catalog = test_catalog();
    let pro = catalog.get(&PlanId::new("pro")).unwrap();
    let mut totals = UsageTotals::new();
    // 100.5 compute hours beyond 100 included at $0.01: 0.005 → half-even to 0 cents; storage peak 12 GB of 10.
    totals.insert("compute_hours".into(), MetricTotal::of_event("100.5".parse().unwrap()));
    let mut storage = MetricTotal::of_event("3".parse().unwrap());
    storage.add("12".parse().unwrap()).unwrap();
    totals.insert("storage_gb".into(), storage);
    let cost = cost_of(&catalog, pro, &totals).unwrap();
    let line = |m: &str| cost.lines.iter().find(|l| l.metric == m).unwrap().clone();
    assert_eq!(line("compute_hours").billable, "0.5".parse::<Decimal>().unwrap());
    assert_eq!(line("compute_hours").amount, "0.005".parse::<Decimal>().unwrap());
    assert_eq!(line("compute_hours").amount_minor, 0);
    assert_eq!(line("storage_gb").quantity, Decimal::from(12), "a gauge bills its peak");
    assert_eq!(line("storage_gb").amount_minor, 5, "2 × 0.023 = 0.046 → 5 cents");
    assert_eq!(line("alerts").included, None);
    assert_eq!(cost.total_minor, 5);
    assert_eq!(round_to_minor("0.015".parse().unwrap(), 2), Some(2));
    assert_eq!(round_to_minor("0.025".parse().unwrap(), 2), Some(2));
    assert_eq!(round_to_minor("12.5".parse().unwrap(), 0), Some(12));
}

proptest! {
    /// Against integer arithmetic: quantity q/10^9 and price p/10^6 make the amount q·p / 10^15 major units, so
    /// in cents it is q·p / 10^13 rounded half to even.
    #[test]
    fn a_line_is_the_exact_product_rounded_half_even(q in 0u64..1_000_000_000_000_000, p in 0u64..100_000_000) {
        let quantity = Decimal::from_i128_with_scale(i128::from(q), 9);
        let price = Decimal::from_i128_with_scale(i128::from(p), 6);
        let product = i128::from(q) * i128::from(p);
        let divisor: i128 = 10_i128.pow(13);
        let (whole, rest) = (product / divisor, product % divisor);
        let expected = match (2 * rest).cmp(&divisor) {
            std::cmp::Ordering::Less => whole,
            std::cmp::Ordering::Greater => whole + 1,
            std::cmp::Ordering::Equal => whole + (whole % 2),
        };
        prop_assert_eq!(round_to_minor(quantity * price, 2).map(i128::from), Some(expected));
    }
}

/// Any value a JSON field can carry, with the strings and numbers that break parsers.
fn any_raw() -> impl Strategy<Value = Option<RawValue>> {
    prop_oneof![
        Just(None),
        Just(Some(RawValue::Other)),
        any::<i128>().prop_map(|n| Some(RawValue::Integer(n))),
        any::<f64>().prop_map(|f| Some(RawValue::Float(f))),
        prop_oneof![
            ".{0,40}",
            "-?[0-9]{0,30}(\\.[0-9]{0,30})?(e-?[0-9]{1,4})?",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2})",
            Just("compute_hours".to_owned()),
            Just("acme".to_owned()),
        ]
        .prop_map(|s| Some(RawValue::Text(s))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4_000, failure_persistence: None, ..ProptestConfig::default() })]

    /// A fuzzer's stand-in over the usage batch's per-event validation: any field values give an event or a
    /// rejection naming a field — never a panic — and an accepted event is non-negative and within the window.
    #[test]
    fn any_event_is_accepted_or_rejected_with_a_field(
        id in any_raw(), workspace in any_raw(), metric in any_raw(), quantity in any_raw(), timestamp in any_raw(),
        not_an_object in any::<bool>(),
    ) {
        let raw = RawUsageEvent {
            id, workspace_id: workspace, metric, quantity, timestamp, unknown_field: None, not_an_object,
        };
        match validate_event(&raw, &test_catalog(), &UsagePolicy::default(), now()) {
            Ok(event) => {
                prop_assert!(event.quantity >= Decimal::ZERO);
                prop_assert!(event.at <= now() + Duration::minutes(5) && event.at >= now() - Duration::days(7));
            }
            Err(rejection) => prop_assert!(not_an_object || !rejection.field.is_empty(), "{rejection:?}"),
        }
    }
}
