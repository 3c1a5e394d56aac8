//! Builders shared by the crate's tests: a fixed clock, counting ids, plans, workspaces and a ready processor.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use billing_domain::catalog::{Interval, Plan, PlanKind};
use billing_domain::ids::{CustomerId, PlanId, PriceId, ProcessorId, WorkspaceId};
use billing_domain::money::{Currency, Money};
use billing_domain::ports::{CheckoutRequest, Clock, IdGenerator};
use billing_domain::workspace::{BillingDetails, Workspace, WorkspaceProfile};
use chrono::{DateTime, TimeZone, Utc};
use secrecy::SecretString;

use crate::{SandboxConfig, SandboxProcessor};

/// 2024-01-31 12:00:00 UTC: a month end, so period arithmetic has to clamp.
pub const NOW_UNIX: i64 = 1_706_702_400;

pub const SECRET: &str = "whsec_sandbox_test";

pub fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(NOW_UNIX, 0).unwrap()
}

/// A clock stuck at [`now`].
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// Ids `prefix1`, `prefix2`, … from one counter.
#[derive(Default)]
pub struct CountingIds(AtomicU64);

impl IdGenerator for CountingIds {
    fn new_id(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.0.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

pub fn config() -> SandboxConfig {
    SandboxConfig {
        public_base_url: "http://localhost:8080/".to_owned(),
        webhook_secrets: vec![SecretString::from(SECRET)],
        tolerance_secs: 300,
    }
}

pub fn processor() -> SandboxProcessor {
    SandboxProcessor::new(config(), Arc::new(CountingIds::default()), Arc::new(FixedClock(now())))
}

fn plan(id: &str, name: &str, kind: PlanKind, minor: i64) -> Plan {
    let mut processor_prices = BTreeMap::new();
    processor_prices.insert(ProcessorId::new("sandbox"), PriceId::new(format!("sbx_price_{id}")));
    Plan {
        id: PlanId::new(id),
        name: name.to_owned(),
        description: String::new(),
        kind,
        price: Money::new(minor, Currency::parse("USD").unwrap()),
        processor_prices,
        limits: BTreeMap::new(),
        features: BTreeSet::new(),
        metered: Vec::new(),
        is_default: false,
    }
}

pub fn pro_monthly() -> Plan {
    plan("pro", "Pro", PlanKind::Subscription { interval: Interval::Month }, 4900)
}

pub fn pro_yearly() -> Plan {
    plan("pro_yearly", "Pro (yearly)", PlanKind::Subscription { interval: Interval::Year }, 49000)
}

pub fn credits10() -> Plan {
    plan("credits10", "10 credits", PlanKind::Credits { credits: 10 }, 999)
}

pub fn workspace(id: &str) -> Workspace {
    let profile = WorkspaceProfile::parse("Acme", "owner@example.com", BillingDetails::default()).unwrap();
    Workspace::create(WorkspaceId::parse(id).unwrap(), profile, now())
}

pub fn checkout_request(workspace_id: &str, customer: &CustomerId, plan: Plan) -> CheckoutRequest {
    let price_id = plan.price_for(&ProcessorId::new("sandbox")).unwrap().clone();
    CheckoutRequest {
        workspace: workspace(workspace_id),
        customer_id: customer.clone(),
        idempotency_key: format!("checkout:{workspace_id}:{}", plan.id),
        plan,
        price_id,
        success_url: "https://app.example.com/billing?ok=1".to_owned(),
        cancel_url: "https://app.example.com/billing?cancel=1".to_owned(),
    }
}
