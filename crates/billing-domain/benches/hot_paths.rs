//! The domain's hot decisions in process (SPEC §11): an entitlement check of a cached plan, the ingest decision
//! for one webhook event, judging a batch of 1,000 usage events, and pricing a period's usage. `just bench` runs these beside the HTTP load; `cargo bench -p billing-domain` alone.

use std::hint::black_box;

use billing_domain::entitlements::check;
use billing_domain::events::{EventPayload, ProcessorEvent, SubscriptionSnapshot};
use billing_domain::ids::{PlanId, WorkspaceId};
use billing_domain::lifecycle::{Known, decide};
use billing_domain::subscription::SubscriptionStatus;
use billing_domain::testing::test_catalog as catalog;
use billing_domain::usage::{MetricTotal, RawUsageEvent, RawValue, UsagePolicy, UsageTotals, cost_of, validate_event};
use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};

fn entitlement_check(c: &mut Criterion) {
    let catalog = catalog();
    let pro = catalog.get(&PlanId::new("pro")).expect("pro").clone();
    let metered = |_: &str| 42;
    c.bench_function("entitlement check: count limit", |b| {
        b.iter(|| check(&catalog, black_box(&pro), black_box("workspace_members"), 1, Some(4), &metered))
    });
    c.bench_function("entitlement check: usage limit", |b| {
        b.iter(|| check(&catalog, black_box(&pro), black_box("alerts_per_month"), 1, None, &metered))
    });
}

fn ingest_decision(c: &mut Criterion) {
    let catalog = catalog();
    let workspace = WorkspaceId::parse("acme").expect("an id");
    let at = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).single().expect("a time");
    let event = ProcessorEvent {
        id: "evt_1".into(),
        processor: "stripe".into(),
        event_type: "customer.subscription.created".into(),
        occurred_at: at,
        payload: EventPayload::SubscriptionChanged(SubscriptionSnapshot {
            subscription_id: "sub_1".into(),
            customer_id: "cus_1".into(),
            price_id: "price_pro".into(),
            status: SubscriptionStatus::Active,
            quantity: 1,
            cancel_at_period_end: false,
            current_period_start: Some(at),
            current_period_end: Some(at + chrono::Duration::days(30)),
            trial_end: None,
        }),
    };
    c.bench_function("ingest decision: new subscription", |b| {
        b.iter(|| {
            let known = Known { catalog: &catalog, workspace: Some(&workspace), subscription: None };
            decide(black_box(&event), known)
        })
    });
}

fn usage_batch_validation(c: &mut Criterion) {
    let catalog = catalog();
    let policy = UsagePolicy::default();
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).single().expect("a time");
    let text = |s: String| Some(RawValue::Text(s));
    let batch: Vec<RawUsageEvent> = (0..1000)
        .map(|n| RawUsageEvent {
            id: text(format!("evt_{n}")),
            workspace_id: text(format!("ws-{}", n % 100)),
            metric: text(["alerts", "compute_hours", "storage_gb"][n % 3].to_owned()),
            quantity: text(format!("{}.{}", n % 7, n % 100)),
            timestamp: Some(RawValue::Integer(i128::from(now.timestamp() - 60))),
            ..RawUsageEvent::default()
        })
        .collect();
    c.bench_function("usage: validate a batch of 1,000 events", |b| {
        b.iter(|| batch.iter().filter(|raw| validate_event(black_box(raw), &catalog, &policy, now).is_ok()).count())
    });
}

fn usage_cost(c: &mut Criterion) {
    let catalog = catalog();
    let pro = catalog.get(&PlanId::new("pro")).expect("pro").clone();
    let mut totals = UsageTotals::new();
    totals.insert("compute_hours".into(), MetricTotal::of_event("1500.123456789".parse().expect("a decimal")));
    totals.insert("storage_gb".into(), MetricTotal::of_event("120.5".parse().expect("a decimal")));
    c.bench_function("usage: cost of a period (every metric)", |b| {
        b.iter(|| cost_of(&catalog, &pro, black_box(&totals)))
    });
}

criterion_group!(benches, entitlement_check, ingest_decision, usage_batch_validation, usage_cost);
criterion_main!(benches);
