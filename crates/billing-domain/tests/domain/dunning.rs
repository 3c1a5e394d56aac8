//! Dunning end to end over the in-memory store: a failed invoice ingested through the webhook path opens a case,
//! the job walks the default schedule day by day (each step once, however often it runs), restricts on day 7 and
//! cancels on day 21; paying at any step closes the case and lifts the restriction at once.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use billing_domain::dunning::{CaseStatus, CloseReason, DunningAction, DunningCase, DunningSchedule};
use billing_domain::entitlements::{PlanSource, effective_plan};
use billing_domain::services::{CancelForNonPayment, DunningService, WebhookService};
use billing_domain::subscription::SubscriptionStatus;
use billing_domain::testing::{FixedClock, MemoryStore};
use chrono::Duration;

use crate::convergence::{catalog, checkout, event, fresh_store, invoice_paid, payment_failed, snapshot, t};
use billing_domain::events::{CheckoutMode, ProcessorEvent};

/// Cancels in the memory store as the processor's answer would, counting the calls.
#[derive(Clone)]
struct Canceler {
    store: MemoryStore,
    calls: Arc<Mutex<Vec<i64>>>,
    /// The processor answers that the subscription had ended already (the customer canceled it).
    ended_already: bool,
    /// The processor is down: every cancel fails.
    down: bool,
}

#[async_trait]
impl CancelForNonPayment for Canceler {
    async fn cancel_now(&self, case: &DunningCase) -> Result<bool, String> {
        self.calls.lock().unwrap().push(case.id);
        if self.down {
            return Err("processor unavailable".into());
        }
        if self.ended_already {
            return Ok(false);
        }
        let mut state = self.store.committed.lock().unwrap();
        for subscription in state.subscriptions.values_mut() {
            subscription.status = SubscriptionStatus::Canceled;
        }
        Ok(true)
    }
}

struct World {
    store: MemoryStore,
    clock: Arc<FixedClock>,
    webhooks: WebhookService,
    dunning: DunningService,
    canceler: Canceler,
}

/// acme on pro (sub_1, customer cus_1), its renewal invoice `in_2` failed at the clock's now.
fn in_dunning() -> World {
    in_dunning_with(false, false)
}

fn in_dunning_with(ended_already: bool, down: bool) -> World {
    let store = fresh_store();
    let clock = Arc::new(FixedClock::at(t(10_000)));
    let webhooks = WebhookService::new(Arc::new(store.clone()), Arc::new(catalog()), clock.clone());
    let canceler = Canceler { store: store.clone(), calls: Arc::default(), ended_already, down };
    let dunning = DunningService::new(
        Arc::new(store.clone()),
        Arc::new(canceler.clone()),
        DunningSchedule::default(),
        clock.clone(),
    );
    let world = World { store, clock, webhooks, dunning, canceler };
    let events = [
        checkout("evt_1", "cs_1", 0, CheckoutMode::Subscription, Some("sub_1"), "pro"),
        event(
            "evt_2",
            "customer.subscription.created",
            1,
            snapshot("sub_1", "price_pro", SubscriptionStatus::Active, false, 1),
        ),
        event("evt_3", "invoice.paid", 1, invoice_paid("in_1", "sub_1", Some("price_pro"), 1)),
        event("evt_4", "invoice.payment_failed", 9_000, payment_failed("in_2", "sub_1", 1)),
        event(
            "evt_5",
            "customer.subscription.updated",
            9_000,
            snapshot("sub_1", "price_pro", SubscriptionStatus::PastDue, false, 1),
        ),
        // A retry of the same invoice failing again opens no second case.
        event("evt_6", "invoice.payment_failed", 9_500, payment_failed("in_2", "sub_1", 2)),
    ];
    futures::executor::block_on(async {
        for e in &events {
            world.webhooks.ingest(e, "{}").await.unwrap();
        }
    });
    world
}

impl World {
    fn run_day(&self, day: i64) -> Vec<DunningAction> {
        self.clock.set(t(10_000) + Duration::days(day) + Duration::minutes(1));
        futures::executor::block_on(async {
            let mut ran = Vec::new();
            // Twice: the second run finds nothing left to do that day.
            for _ in 0..2 {
                let report = self.dunning.run_due(100).await.unwrap();
                assert!(report.failed.is_empty() || self.canceler.down, "{:?}", report.failed);
                ran.extend(report.steps.into_iter().map(|(_, action)| action));
            }
            ran
        })
    }

    fn case(&self) -> DunningCase {
        let state = self.store.committed.lock().unwrap();
        let cases: Vec<_> = state.dunning.values().filter(|c| c.invoice_id.as_str() == "in_2").cloned().collect();
        assert_eq!(cases.len(), 1, "one case for the failed invoice: {cases:?}");
        cases[0].clone()
    }

    fn restricted(&self) -> bool {
        self.store.committed.lock().unwrap().workspaces.values().next().unwrap().restricted
    }

    fn plan_source(&self) -> PlanSource {
        let state = self.store.committed.lock().unwrap();
        let workspace = state.workspaces.values().next().unwrap();
        let subscription = state.subscriptions.values().next();
        let catalog = catalog();
        effective_plan(&catalog, workspace, subscription, self.clock_now(), Duration::days(7)).source
    }

    fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use billing_domain::ports::Clock;
        self.clock.now()
    }

    fn outbox_keys(&self, prefix: &str) -> Vec<String> {
        let state = self.store.committed.lock().unwrap();
        state.outbox.iter().filter(|k| k.starts_with(prefix)).cloned().collect()
    }

    fn audited(&self, action: &str) -> usize {
        self.store.committed.lock().unwrap().audit.iter().filter(|a| a.action == action).count()
    }
}

#[test]
fn an_unpaid_invoice_walks_every_step_once_restricting_on_day_7_and_canceling_on_day_21() {
    let world = in_dunning();
    assert_eq!(world.case().status, CaseStatus::Open);
    assert_eq!(world.audited("dunning.opened"), 1);

    let mut ran = Vec::new();
    for day in 0..=25 {
        let today = world.run_day(day);
        match day {
            0 => assert_eq!(today, [DunningAction::Reminder]),
            3 => assert_eq!(today, [DunningAction::Urgent]),
            7 => assert_eq!(today, [DunningAction::Restrict]),
            14 => assert_eq!(today, [DunningAction::FinalWarning]),
            21 => assert_eq!(today, [DunningAction::Cancel]),
            _ => assert!(today.is_empty(), "day {day}: {today:?}"),
        }
        if (7..21).contains(&day) {
            assert!(world.restricted(), "restricted from day 7 (day {day})");
            assert_eq!(world.plan_source(), PlanSource::Restricted, "day {day}");
        }
        if day < 7 {
            assert!(!world.restricted(), "paid entitlements through the grace period (day {day})");
            assert_eq!(world.plan_source(), PlanSource::GracePeriod, "day {day}");
        }
        ran.extend(today);
    }
    assert_eq!(ran.len(), 5);
    assert_eq!(world.canceler.calls.lock().unwrap().len(), 1, "canceled at the processor once");
    let case = world.case();
    assert_eq!((case.status, case.closed_reason), (CaseStatus::Closed, Some(CloseReason::Canceled)));
    assert!(!world.restricted(), "the restriction ends with the case; no subscription grants the plan now");
    assert_eq!(world.plan_source(), PlanSource::Default, "free after day 21");
    assert_eq!(world.outbox_keys("email:dunning:").len(), 5, "one email per step");
    assert_eq!(world.outbox_keys("webhook:dunning:").len(), 5, "one announcement per step");
    assert_eq!(world.audited("dunning.step"), 5);
}

#[test]
fn paying_on_day_10_closes_the_case_and_lifts_the_restriction_at_once() {
    let world = in_dunning();
    for day in 0..=10 {
        world.run_day(day);
    }
    assert!(world.restricted());
    let paid = event("evt_7", "invoice.paid", 20_000, invoice_paid("in_2", "sub_1", Some("price_pro"), 1));
    futures::executor::block_on(world.webhooks.ingest(&paid, "{}")).unwrap();
    let recovered = event(
        "evt_8",
        "customer.subscription.updated",
        20_000,
        snapshot("sub_1", "price_pro", SubscriptionStatus::Active, false, 1),
    );
    futures::executor::block_on(world.webhooks.ingest(&recovered, "{}")).unwrap();
    assert!(!world.restricted(), "lifted with the payment, not at the next job run");
    let case = world.case();
    assert_eq!((case.status, case.closed_reason), (CaseStatus::Closed, Some(CloseReason::Paid)));
    assert_eq!(world.plan_source(), PlanSource::Subscription);
    for day in 11..=30 {
        assert!(world.run_day(day).is_empty(), "no step after payment (day {day})");
    }
    assert!(world.canceler.calls.lock().unwrap().is_empty());
    assert_eq!(world.outbox_keys("email:dunning:").len(), 3, "reminder, urgent, restrict");
    assert_eq!(world.outbox_keys("webhook:dunning_closed:").len(), 1);
}

#[test]
fn a_subscription_that_ended_elsewhere_closes_the_case_without_the_non_payment_notice() {
    let world = in_dunning_with(true, false);
    let ran: Vec<_> = (0..=25).flat_map(|day| world.run_day(day)).collect();
    assert_eq!(ran.len(), 4, "every step but cancel: {ran:?}");
    let case = world.case();
    assert_eq!((case.status, case.closed_reason), (CaseStatus::Closed, Some(CloseReason::SubscriptionEnded)));
    assert_eq!(world.outbox_keys("email:dunning:").len(), 4, "no 'canceled for non-payment' email");
    assert!(!world.restricted(), "the restriction goes with the case");
}

#[test]
fn a_cancel_that_fails_waits_an_hour_before_it_is_tried_again() {
    let world = in_dunning_with(false, true);
    for day in 0..=21 {
        world.run_day(day);
    }
    let calls = world.canceler.calls.lock().unwrap().len();
    assert_eq!(calls, 1, "the second run of day 21 found the case waiting, not due");
    let case = world.case();
    assert_eq!((case.status, case.next_step), (CaseStatus::Open, 4), "still at the cancel step");
    let retry_at = case.next_step_at.expect("a retry time");
    assert_eq!(retry_at, t(10_000) + Duration::days(21) + Duration::minutes(1) + Duration::hours(1));
    assert_eq!(world.outbox_keys("email:dunning:").len(), 4, "no cancel notice while it did not happen");
}

#[test]
fn a_payment_seen_before_its_late_failure_opens_no_case() {
    let store = fresh_store();
    let clock = Arc::new(FixedClock::at(t(10_000)));
    let webhooks = WebhookService::new(Arc::new(store.clone()), Arc::new(catalog()), clock);
    let events = [
        checkout("evt_1", "cs_1", 0, CheckoutMode::Subscription, Some("sub_1"), "pro"),
        event("evt_2", "invoice.paid", 500, invoice_paid("in_2", "sub_1", Some("price_pro"), 1)),
        event("evt_3", "invoice.payment_failed", 400, payment_failed("in_2", "sub_1", 1)),
    ];
    futures::executor::block_on(async {
        for e in &events {
            webhooks.ingest(e, "{}").await.unwrap();
        }
    });
    let state = store.committed.lock().unwrap();
    assert!(state.dunning.values().all(|c| c.status == CaseStatus::Closed), "{:?}", state.dunning);
}

/// Whether a workspace is in dunning depends only on which of its invoices are unpaid, not on the order their
/// failures and payments arrive in.
#[test]
fn being_in_dunning_depends_on_the_unpaid_invoices_not_the_order_of_events() {
    let failed_2 = event("evt_a", "invoice.payment_failed", 100, payment_failed("in_2", "sub_1", 1));
    let failed_3 = event("evt_b", "invoice.payment_failed", 200, payment_failed("in_3", "sub_1", 1));
    let paid_2 = event("evt_c", "invoice.paid", 300, invoice_paid("in_2", "sub_1", Some("price_pro"), 1));
    let paid_3 = event("evt_d", "invoice.paid", 400, invoice_paid("in_3", "sub_1", Some("price_pro"), 1));
    let in_dunning = |events: &[&ProcessorEvent]| {
        let store = fresh_store();
        let clock = Arc::new(FixedClock::at(t(10_000)));
        let webhooks = WebhookService::new(Arc::new(store.clone()), Arc::new(catalog()), clock);
        let link = checkout("evt_0", "cs_1", 0, CheckoutMode::Subscription, Some("sub_1"), "pro");
        futures::executor::block_on(async {
            webhooks.ingest(&link, "{}").await.unwrap();
            for e in events {
                webhooks.ingest(e, "{}").await.unwrap();
            }
        });
        let state = store.committed.lock().unwrap();
        let unpaid: Vec<String> =
            state.dunning.values().filter(|c| c.status == CaseStatus::Open).map(|c| c.invoice_id.to_string()).collect();
        let scheduled = state.dunning.values().filter(|c| c.status == CaseStatus::Open && c.next_step_at.is_some());
        assert_eq!(scheduled.count(), usize::from(!unpaid.is_empty()), "one schedule while anything is unpaid");
        unpaid
    };
    for order in permutations(&[&failed_2, &failed_3, &paid_2]) {
        assert_eq!(
            in_dunning(&order),
            ["in_3"],
            "in_3 is unpaid whatever the order: {:?}",
            order.iter().map(|e| e.id.as_str()).collect::<Vec<_>>()
        );
    }
    for order in permutations(&[&failed_2, &failed_3, &paid_2, &paid_3]) {
        assert!(
            in_dunning(&order).is_empty(),
            "all paid: {:?}",
            order.iter().map(|e| e.id.as_str()).collect::<Vec<_>>()
        );
    }
}

/// Every order of `events`.
fn permutations<'a>(events: &[&'a ProcessorEvent]) -> Vec<Vec<&'a ProcessorEvent>> {
    if events.len() <= 1 {
        return vec![events.to_vec()];
    }
    let mut all = Vec::new();
    for (i, first) in events.iter().enumerate() {
        let mut rest = events.to_vec();
        rest.remove(i);
        for mut order in permutations(&rest) {
            order.insert(0, first);
            all.push(order);
        }
    }
    all
}
