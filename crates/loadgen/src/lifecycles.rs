//! Generated Stripe-format lifecycles: per workspace a short history of checkout, subscription, invoice and payment
//! events, in the order Stripe would send them. The harness shuffles, duplicates and races them;
//! the load client replays them at full speed.

use serde_json::{Value, json};

/// The catalog's Stripe prices (config/plans.toml).
const HOBBY_PRICE: &str = "price_hobby_monthly";
const PRO_PRICE: &str = "price_pro_monthly";
const DAY: i64 = 86_400;

/// One webhook event: its id and the exact body Stripe sends (a redelivery resends the same bytes).
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub body: String,
}

/// What a workspace goes through; every kind is a real billing story.
#[derive(Debug, Clone, Copy)]
enum Story {
    /// Subscribes to pro, buys a credit pack, then schedules the cancellation.
    SubscribeThenScheduleCancel,
    /// Buys two credit packs and pays a one-off invoice; never subscribes.
    CreditsOnly,
    /// Starts on hobby and upgrades to pro, with the proration invoice.
    PlanChange,
    /// Subscribes, schedules the cancellation, and the subscription is deleted at period end.
    Deletion,
    /// Subscribes; the renewal fails, the subscription goes past due, then the retry pays and it recovers.
    FailureAndRecovery,
}

const STORIES: [Story; 5] = [
    Story::SubscribeThenScheduleCancel,
    Story::CreditsOnly,
    Story::PlanChange,
    Story::Deletion,
    Story::FailureAndRecovery,
];

/// The workspace ids of `count` lifecycles: `{prefix}_000`, `{prefix}_001`, …; every other id (customer,
/// subscription, invoice, event) is derived from the workspace id, so two prefixes never share an object.
pub fn workspace_ids(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}_{i:03}")).collect()
}

/// Every event of `count` lifecycles, each lifecycle in causal order, lifecycles one after another. `base` is the
/// processor time of the first event (so periods run over the real now and entitlements stay stable).
pub fn generate(prefix: &str, count: usize, base: i64) -> Vec<Event> {
    workspace_ids(prefix, count)
        .iter()
        .enumerate()
        .flat_map(|(i, ws)| lifecycle(ws, STORIES[i % STORIES.len()], base))
        .collect()
}

/// Builds one workspace's events; times advance a minute per event so no two share a second.
struct Builder<'a> {
    workspace: &'a str,
    customer: String,
    subscription: String,
    clock: i64,
    period_start: i64,
    events: Vec<Event>,
}

impl Builder<'_> {
    fn tick(&mut self) -> i64 {
        self.clock += 60;
        self.clock
    }

    fn push(&mut self, kind: &str, object: Value) {
        let created = self.tick();
        let id = format!("evt_{}_{:02}", self.workspace, self.events.len());
        let body = json!({
            "id": id, "object": "event", "api_version": "2025-06-30.basil", "created": created,
            "data": {"object": object}, "livemode": false, "pending_webhooks": 1, "type": kind,
        })
        .to_string();
        self.events.push(Event { id, body });
    }

    fn checkout(&mut self, session: &str, mode: &str, plan: &str) {
        let mut object = json!({
            "id": session, "object": "checkout.session", "mode": mode, "payment_status": "paid", "status": "complete",
            "customer": self.customer, "client_reference_id": self.workspace,
            "metadata": {"workspace_id": self.workspace, "plan_id": plan},
        });
        if mode == "subscription" {
            object["subscription"] = json!(self.subscription);
        }
        self.push("checkout.session.completed", object);
    }

    fn subscription(&mut self, kind: &str, status: &str, price: &str, cancel_at_period_end: bool) {
        let object = json!({
            "id": self.subscription, "object": "subscription", "customer": self.customer, "status": status,
            "cancel_at_period_end": cancel_at_period_end,
            "current_period_start": self.period_start, "current_period_end": self.period_start + 30 * DAY,
            "items": {"object": "list", "data": [{"id": format!("si_{}", self.workspace), "object": "subscription_item",
                "quantity": 1, "price": {"id": price, "object": "price"}}]},
        });
        self.push(kind, object);
    }

    fn invoice(&mut self, kind: &str, number: u32, price: &str, amount: i64, attempt: u32) {
        let (paid, due) = if kind == "invoice.payment_failed" { (0, amount) } else { (amount, 0) };
        let object = json!({
            "id": format!("in_{}_{number}", self.workspace), "object": "invoice", "customer": self.customer,
            "subscription": self.subscription, "currency": "usd", "amount_paid": paid, "amount_due": due,
            "attempt_count": attempt, "status": if paid > 0 { "paid" } else { "open" },
            "lines": {"object": "list", "data": [{"object": "line_item", "price": {"id": price, "object": "price"},
                "period": {"start": self.period_start, "end": self.period_start + 30 * DAY}}]},
        });
        self.push(kind, object);
    }

    fn payment_intent(&mut self, number: u32, amount: i64) {
        let object = json!({
            "id": format!("pi_{}_{number}", self.workspace), "object": "payment_intent", "customer": self.customer,
            "amount": amount, "amount_received": amount, "currency": "usd", "status": "succeeded",
        });
        self.push("payment_intent.succeeded", object);
    }
}

fn lifecycle(workspace: &str, story: Story, base: i64) -> Vec<Event> {
    let mut b = Builder {
        workspace,
        customer: format!("cus_{workspace}"),
        subscription: format!("sub_{workspace}"),
        clock: base,
        period_start: base,
        events: Vec::new(),
    };
    let session = |n: u32| format!("cs_{workspace}_{n}");
    match story {
        Story::SubscribeThenScheduleCancel => {
            b.checkout(&session(1), "subscription", "pro");
            b.subscription("customer.subscription.created", "active", PRO_PRICE, false);
            b.invoice("invoice.paid", 1, PRO_PRICE, 2900, 1);
            b.checkout(&session(2), "payment", "credits10");
            b.subscription("customer.subscription.updated", "active", PRO_PRICE, true);
        }
        Story::CreditsOnly => {
            b.checkout(&session(1), "payment", "credits10");
            b.payment_intent(1, 900);
            b.checkout(&session(2), "payment", "credits10");
            b.payment_intent(2, 900);
        }
        Story::PlanChange => {
            b.checkout(&session(1), "subscription", "hobby");
            b.subscription("customer.subscription.created", "active", HOBBY_PRICE, false);
            b.invoice("invoice.paid", 1, HOBBY_PRICE, 900, 1);
            b.subscription("customer.subscription.updated", "active", PRO_PRICE, false);
            b.invoice("invoice.paid", 2, PRO_PRICE, 2000, 1);
        }
        Story::Deletion => {
            b.checkout(&session(1), "subscription", "pro");
            b.subscription("customer.subscription.created", "active", PRO_PRICE, false);
            b.invoice("invoice.paid", 1, PRO_PRICE, 2900, 1);
            b.subscription("customer.subscription.updated", "active", PRO_PRICE, true);
            b.subscription("customer.subscription.deleted", "canceled", PRO_PRICE, true);
        }
        Story::FailureAndRecovery => {
            b.checkout(&session(1), "subscription", "pro");
            b.subscription("customer.subscription.created", "active", PRO_PRICE, false);
            b.invoice("invoice.paid", 1, PRO_PRICE, 2900, 1);
            b.invoice("invoice.payment_failed", 2, PRO_PRICE, 2900, 1);
            b.subscription("customer.subscription.updated", "past_due", PRO_PRICE, false);
            b.invoice("invoice.paid", 2, PRO_PRICE, 2900, 2);
            b.subscription("customer.subscription.updated", "active", PRO_PRICE, false);
        }
    }
    b.events
}
