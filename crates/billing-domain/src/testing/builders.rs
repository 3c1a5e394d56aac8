//! Builders of the domain's values with sensible defaults; tests change the one field they are about.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration};

use crate::catalog::{Catalog, CatalogFile, Interval, Plan, PlanKind};
use crate::ids::{CustomerId, PlanId, PriceId, ProcessorId, SubscriptionId, WorkspaceId};
use crate::money::{Currency, Money};
use crate::ports::CheckoutRequest;
use crate::subscription::{Subscription, SubscriptionStatus, SubscriptionTerms, TermsSource};
use crate::workspace::{BillingDetails, Workspace, WorkspaceProfile};

use super::t0;

/// The processor the builders' prices and subscriptions belong to.
pub const SANDBOX: &str = "sandbox";

/// Workspace `id` ("Acme", owner@example.com) created at [`t0`].
pub fn workspace(id: &str) -> Workspace {
    workspace_with(id, BillingDetails::default(), t0())
}

/// Workspace `id` with these billing details, created at `at`.
pub fn workspace_with(id: &str, details: BillingDetails, at: DateTime<chrono::Utc>) -> Workspace {
    let profile = WorkspaceProfile::parse("Acme", "owner@example.com", details).expect("a valid profile");
    Workspace::create(WorkspaceId::parse(id).expect("a valid workspace id"), profile, at)
}

/// Subscription `id` of `workspace` (customer `cus_1`, plan `pro`, one seat, a 30-day period from [`t0`]) in
/// `status` since `status_at`, at version 0.
pub fn subscription(
    id: &str,
    workspace: &str,
    status: SubscriptionStatus,
    status_at: DateTime<chrono::Utc>,
) -> Subscription {
    Subscription {
        id: SubscriptionId::new(id),
        processor: ProcessorId::new(SANDBOX),
        workspace_id: WorkspaceId::parse(workspace).expect("a valid workspace id"),
        customer_id: CustomerId::new("cus_1"),
        status,
        status_at,
        canceled_at: status.is_terminal().then_some(status_at),
        terms: SubscriptionTerms {
            plan_id: PlanId::new("pro"),
            price_id: PriceId::new("price_pro"),
            quantity: 1,
            cancel_at_period_end: false,
            current_period_start: Some(t0()),
            current_period_end: Some(t0() + Duration::days(30)),
            trial_end: None,
        },
        terms_source: TermsSource::Snapshot,
        terms_at: status_at,
        version: 0,
    }
}

/// A plan priced at `minor` USD cents, sold on the sandbox as `sbx_price_{id}`.
pub fn plan(id: &str, name: &str, kind: PlanKind, minor: i64) -> Plan {
    let mut processor_prices = BTreeMap::new();
    processor_prices.insert(ProcessorId::new(SANDBOX), PriceId::new(format!("sbx_price_{id}")));
    Plan {
        id: PlanId::new(id),
        name: name.to_owned(),
        description: String::new(),
        kind,
        price: Money::new(minor, Currency::parse("USD").expect("a currency")),
        processor_prices,
        limits: BTreeMap::new(),
        features: BTreeSet::new(),
        metered: Vec::new(),
        is_default: false,
    }
}

/// `pro`, 49.00 USD a month.
pub fn pro_monthly() -> Plan {
    plan("pro", "Pro", PlanKind::Subscription { interval: Interval::Month }, 4900)
}

/// `pro_yearly`, 490.00 USD a year.
pub fn pro_yearly() -> Plan {
    plan("pro_yearly", "Pro (yearly)", PlanKind::Subscription { interval: Interval::Year }, 49000)
}

/// `credits10`, ten credits for 9.99 USD.
pub fn credits10() -> Plan {
    plan("credits10", "10 credits", PlanKind::Credits { credits: 10 }, 999)
}

/// A checkout of `plan` on the sandbox for `workspace_id`, returning to app.example.com.
pub fn checkout_request(workspace_id: &str, customer: &CustomerId, plan: Plan) -> CheckoutRequest {
    let price_id = plan.price_for(&ProcessorId::new(SANDBOX)).expect("a sandbox price").clone();
    CheckoutRequest {
        workspace: workspace(workspace_id),
        customer_id: customer.clone(),
        idempotency_key: format!("checkout:{workspace_id}:{}", plan.id),
        plan,
        price_id,
        success_url: "https://app.example.com/billing?ok=1".to_owned(),
        cancel_url: "https://app.example.com/billing?cancel=1".to_owned(),
        coupon: None,
    }
}

/// A small catalog for tests: free (default), pro (monthly, metering compute hours and peak storage) and a
/// 10-credit pack.
pub fn test_catalog() -> Catalog {
    let file: CatalogFile = serde_json::from_value(serde_json::json!({
        "limits": {
            "workspace_members": {"description": "members", "source": "count"},
            "alerts_per_month": {"description": "alerts", "source": "usage", "metric": "alerts"}
        },
        "features": {"sla_tracking": "SLA tracking"},
        "metrics": {
            "alerts": {"description": "alerts raised", "aggregation": "sum"},
            "compute_hours": {"description": "compute hours", "aggregation": "sum"},
            "storage_gb": {"description": "stored GB, the peak", "aggregation": "max"}
        },
        "plans": [
            {"id": "free", "name": "Free", "kind": "subscription", "interval": "month",
             "price": {"amount": 0, "currency": "usd"}, "default": true,
             "limits": {"workspace_members": 1, "alerts_per_month": 100}},
            {"id": "pro", "name": "Pro", "kind": "subscription", "interval": "month",
             "price": {"amount": 4900, "currency": "USD"},
             "processor_prices": {"sandbox": "sbx_price_pro", "stripe": "price_pro"},
             "limits": {"workspace_members": 10, "alerts_per_month": "unlimited"},
             "features": ["sla_tracking"],
             "metered": [
                 {"metric": "compute_hours", "unit_price": "0.01", "included": "100"},
                 {"metric": "storage_gb", "unit_price": "0.023", "included": "10"}
             ]},
            {"id": "credits10", "name": "10 credits", "kind": "credits", "credits": 10,
             "price": {"amount": 999, "currency": "USD"},
             "processor_prices": {"sandbox": "sbx_price_credits10"}}
        ]
    }))
    .unwrap();
    Catalog::from_file(file).unwrap()
}
