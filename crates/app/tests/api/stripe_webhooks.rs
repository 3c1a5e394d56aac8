//! Stripe webhooks end to end with `processor = "stripe"` (SPEC §3.5 convergence, §4 verification, §5 guarantees).
//!
//! The events are real-format Stripe payloads: Stripe's own example objects (crates/stripe-wire/testdata/stripe)
//! given the ids, prices and times of one workspace's lifecycle, wrapped in event envelopes, signed with the webhook
//! secret and delivered over HTTP to a freshly spawned app. Every response body read here is checked for secrets.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

use crate::helpers::{
    Backend, DEV_KEY, SANDBOX_SECRET, STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET, TestApp, now, on_both_databases,
    sign_with, spawn_stripe_app,
};

const SUBSCRIPTION_FIXTURE: &str = include_str!("../../../stripe-wire/testdata/stripe/subscription.json");
const INVOICE_FIXTURE: &str = include_str!("../../../stripe-wire/testdata/stripe/invoice.json");
const CHECKOUT_FIXTURE: &str = include_str!("../../../stripe-wire/testdata/stripe/checkout_session.json");

/// The workspace whose lifecycle the events describe.
const WORKSPACE: &str = "acme_eu";
/// Another workspace, which no event concerns.
const BYSTANDER: &str = "globex";
const CUSTOMER: &str = "cus_TgApiAcmeEu01";
const SUBSCRIPTION: &str = "sub_1TgApiAcmeEu01";
const ITEM: &str = "si_TgApiAcmeEu01";
const SESSION: &str = "cs_test_a1TgApiAcmeEu01";
/// Plan A and plan B of the lifecycle, by their `stripe` prices in config/plans.toml (`hobby` and `pro`).
const HOBBY_PRICE: &str = "price_hobby_monthly";
const PRO_PRICE: &str = "price_pro_monthly";
const FIRST_INVOICE: &str = "in_1TgApiAcmeEu01";
const RENEWAL_INVOICE: &str = "in_1TgApiAcmeEu02";
const DAY: i64 = 86_400;

// ---------------------------------------------------------------------------------------------------------------
// Responses: every body (and header) this module receives goes through `read`, which fails on a leaked secret.

/// The distinctive parts of the secrets configured by `spawn_stripe_app`, so a truncated or re-encoded leak is
/// caught too.
const SECRET_MARKERS: [&str; 4] =
    [STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET, "TollgateApiTestsFakeSecretKey", "TollgateApiTestsStripeSigningSecret"];

fn assert_no_secrets(what: &str, text: &str) {
    for secret in SECRET_MARKERS {
        assert!(!text.contains(secret), "{what}: a configured secret appears in a response: {text}");
    }
}

/// A response, read whole.
struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

async fn read(what: &str, response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    assert_no_secrets(what, &format!("{:?}", response.headers()));
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = response.text().await.expect("response body");
    assert_no_secrets(what, &body);
    Reply { status, content_type, body }
}

async fn get(app: &TestApp, path: &str) -> Reply {
    read(&format!("GET {path}"), app.get(path).await).await
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    let reply = get(app, path).await;
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
    reply.json()
}

async fn create_workspaces(app: &TestApp) {
    for id in [WORKSPACE, BYSTANDER] {
        let reply = read(&format!("PUT workspace {id}"), app.put_workspace(id).await).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Real-format Stripe events.

fn fixture(raw: &str) -> Value {
    serde_json::from_str(raw).expect("fixture is JSON")
}

/// One Stripe event and the exact bytes Stripe sends for it; a redelivery resends the same bytes, signed anew.
#[derive(Debug, Clone)]
struct StripeEvent {
    id: String,
    kind: &'static str,
    body: String,
}

fn envelope(id: &str, kind: &'static str, created: i64, object: Value, previous: Option<Value>) -> StripeEvent {
    let mut data = json!({"object": object});
    if let Some(previous) = previous {
        data["previous_attributes"] = previous;
    }
    let body = json!({
        "id": id,
        "object": "event",
        "api_version": "2025-06-30.basil",
        "created": created,
        "data": data,
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": kind,
    })
    .to_string();
    StripeEvent { id: id.to_owned(), kind, body }
}

fn amount_of(price: &str) -> i64 {
    if price == PRO_PRICE { 4900 } else { 900 }
}

fn product_of(price: &str) -> &'static str {
    if price == PRO_PRICE { "prod_TgApiPro" } else { "prod_TgApiHobby" }
}

/// A `checkout.session` of mode `subscription`, completed and paid, for plan `hobby`.
fn checkout_session(created: i64) -> Value {
    let mut o = fixture(CHECKOUT_FIXTURE);
    o["id"] = json!(SESSION);
    o["mode"] = json!("subscription");
    o["status"] = json!("complete");
    o["payment_status"] = json!("paid");
    o["client_reference_id"] = json!(WORKSPACE);
    o["customer"] = json!(CUSTOMER);
    o["customer_creation"] = json!("always");
    o["customer_details"]["email"] = json!("owner@acme.test");
    o["subscription"] = json!(SUBSCRIPTION);
    o["invoice"] = json!(FIRST_INVOICE);
    o["payment_intent"] = Value::Null;
    o["metadata"] = json!({"workspace_id": WORKSPACE, "plan_id": "hobby"});
    o["amount_subtotal"] = json!(900);
    o["amount_total"] = json!(900);
    o["currency"] = json!("usd");
    o["currency_conversion"] = Value::Null;
    o["created"] = json!(created);
    o["expires_at"] = json!(created + DAY);
    o["url"] = Value::Null;
    o["shipping_address_collection"] = Value::Null;
    o["shipping_cost"] = Value::Null;
    o["total_details"] = json!({"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0});
    o["invoice_creation"] = Value::Null;
    o["billing_address_collection"] = json!("required");
    o["allow_promotion_codes"] = json!(true);
    o["success_url"] = json!("http://localhost:3000/billing?checkout=success");
    o["cancel_url"] = json!("http://localhost:3000/billing?checkout=canceled");
    o
}

/// What a subscription snapshot says.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    status: &'static str,
    price: &'static str,
    quantity: u32,
    period: (i64, i64),
    latest_invoice: &'static str,
    ended_at: Option<i64>,
}

/// A `subscription` in the current API shape (the period on the item), started at `started`.
fn subscription(s: Snapshot, started: i64) -> Value {
    let mut o = fixture(SUBSCRIPTION_FIXTURE);
    o["id"] = json!(SUBSCRIPTION);
    o["customer"] = json!(CUSTOMER);
    o["status"] = json!(s.status);
    o["created"] = json!(started);
    o["start_date"] = json!(started);
    o["billing_cycle_anchor"] = json!(started);
    o["billing_cycle_anchor_config"] = Value::Null;
    o["cancel_at_period_end"] = json!(false);
    o["cancel_at"] = Value::Null;
    o["canceled_at"] = json!(s.ended_at);
    o["ended_at"] = json!(s.ended_at);
    o["cancellation_details"] =
        json!({"comment": null, "feedback": null, "reason": s.ended_at.map(|_| "cancellation_requested")});
    o["latest_invoice"] = json!(s.latest_invoice);
    o["metadata"] = json!({"workspace_id": WORKSPACE});
    o["trial_start"] = Value::Null;
    o["trial_end"] = Value::Null;
    o["pending_update"] = Value::Null;
    o["livemode"] = json!(false);
    o["items"]["url"] = json!(format!("/v1/subscription_items?subscription={SUBSCRIPTION}"));
    let item = &mut o["items"]["data"][0];
    item["id"] = json!(ITEM);
    item["subscription"] = json!(SUBSCRIPTION);
    item["created"] = json!(started);
    item["quantity"] = json!(s.quantity);
    item["current_period_start"] = json!(s.period.0);
    item["current_period_end"] = json!(s.period.1);
    let amount = amount_of(s.price);
    let price = &mut item["price"];
    price["id"] = json!(s.price);
    price["product"] = json!(product_of(s.price));
    price["unit_amount"] = json!(amount);
    price["unit_amount_decimal"] = json!(amount.to_string());
    price["custom_unit_amount"] = Value::Null;
    price["transform_quantity"] = Value::Null;
    price["livemode"] = json!(false);
    let plan = &mut item["plan"];
    plan["id"] = json!(s.price);
    plan["product"] = json!(product_of(s.price));
    plan["amount"] = json!(amount);
    plan["amount_decimal"] = json!(amount.to_string());
    plan["billing_scheme"] = json!("per_unit");
    plan["currency"] = json!("usd");
    plan["interval_count"] = json!(1);
    plan["livemode"] = json!(false);
    plan["transform_usage"] = Value::Null;
    o
}

/// What an invoice says.
#[derive(Debug, Clone, Copy)]
struct Bill {
    id: &'static str,
    price: &'static str,
    period: (i64, i64),
    billing_reason: &'static str,
    paid: bool,
    attempt_count: u32,
    created: i64,
}

/// An `invoice` in the current API shape: its subscription under `parent.subscription_details`, the price under
/// `lines.data[].pricing.price_details`.
fn invoice(b: Bill) -> Value {
    let amount = amount_of(b.price);
    let mut o = fixture(INVOICE_FIXTURE);
    o["id"] = json!(b.id);
    o["number"] = json!(format!("TGAPI-{}", &b.id[b.id.len() - 4..]));
    o["customer"] = json!(CUSTOMER);
    o["customer_email"] = json!("owner@acme.test");
    o["subscription"] = Value::Null;
    o["parent"] = json!({
        "type": "subscription_details",
        "quote_details": null,
        "subscription_details": {"metadata": {"workspace_id": WORKSPACE}, "subscription": SUBSCRIPTION},
    });
    o["status"] = json!(if b.paid { "paid" } else { "open" });
    o["billing_reason"] = json!(b.billing_reason);
    o["collection_method"] = json!("charge_automatically");
    o["currency"] = json!("usd");
    for field in ["amount_due", "total", "subtotal", "total_excluding_tax", "subtotal_excluding_tax"] {
        o[field] = json!(amount);
    }
    o["amount_paid"] = json!(if b.paid { amount } else { 0 });
    o["amount_remaining"] = json!(if b.paid { 0 } else { amount });
    o["attempt_count"] = json!(b.attempt_count);
    o["attempted"] = json!(true);
    o["auto_advance"] = json!(!b.paid);
    o["next_payment_attempt"] = if b.paid { Value::Null } else { json!(b.created + 3 * DAY) };
    o["created"] = json!(b.created);
    o["effective_at"] = json!(b.created);
    o["period_start"] = json!(b.created);
    o["period_end"] = json!(b.created);
    o["status_transitions"] = json!({
        "finalized_at": b.created, "marked_uncollectible_at": null,
        "paid_at": if b.paid { json!(b.created) } else { Value::Null }, "voided_at": null,
    });
    o["hosted_invoice_url"] = json!(format!("https://invoice.stripe.com/i/acct_TgApi/{}", b.id));
    o["invoice_pdf"] = json!(format!("https://pay.stripe.com/invoice/acct_TgApi/{}/pdf", b.id));
    o["lines"]["url"] = json!(format!("/v1/invoices/{}/lines", b.id));
    let line = &mut o["lines"]["data"][0];
    line["id"] = json!(format!("il_{}", &b.id[3..]));
    line["invoice"] = json!(b.id);
    line["amount"] = json!(amount);
    line["subtotal"] = json!(amount);
    line["currency"] = json!("usd");
    line["description"] = json!(format!("1 × {} (at ${}.00 / month)", product_of(b.price), amount / 100));
    line["period"] = json!({"start": b.period.0, "end": b.period.1});
    line["quantity"] = json!(1);
    line["subscription"] = Value::Null;
    line["parent"] = json!({
        "type": "subscription_item_details",
        "invoice_item_details": null,
        "subscription_item_details": {
            "invoice_item": null, "proration": false, "proration_details": {"credited_items": null},
            "subscription": SUBSCRIPTION, "subscription_item": ITEM,
        },
    });
    line["pricing"] = json!({
        "type": "price_details",
        "price_details": {"price": b.price, "product": product_of(b.price)},
        "unit_amount_decimal": amount.to_string(),
    });
    o
}

/// One workspace's subscription as Stripe reports it, in Stripe's order, starting 40 days ago (so the current period
/// contains now): checkout on plan A (hobby), the subscription and its first paid invoice, an upgrade to plan B (pro),
/// a failed renewal and past_due, the retry paid and active again in the same second (a tie), two seat changes in
/// one second (a tie of conflicting snapshots), and — when `ends_deleted` — the deletion.
fn lifecycle(ends_deleted: bool) -> Vec<StripeEvent> {
    let base = now() - 40 * DAY;
    let first_period = (base, base + 30 * DAY);
    let second_period = (base + 30 * DAY, base + 60 * DAY);
    let snap = |status, price, quantity, period, latest_invoice| Snapshot {
        status,
        price,
        quantity,
        period,
        latest_invoice,
        ended_at: None,
    };
    let hobby_active = snap("active", HOBBY_PRICE, 1, first_period, FIRST_INVOICE);
    let pro_active = snap("active", PRO_PRICE, 1, first_period, FIRST_INVOICE);
    let renewal = |status, quantity| snap(status, PRO_PRICE, quantity, second_period, RENEWAL_INVOICE);
    let first_bill = Bill {
        id: FIRST_INVOICE,
        price: HOBBY_PRICE,
        period: first_period,
        billing_reason: "subscription_create",
        paid: true,
        attempt_count: 1,
        created: base,
    };
    let renewal_bill = Bill {
        id: RENEWAL_INVOICE,
        price: PRO_PRICE,
        period: second_period,
        billing_reason: "subscription_cycle",
        paid: false,
        attempt_count: 1,
        created: base + 30 * DAY,
    };
    let sub = |s| subscription(s, base);
    let id = |n: u32| format!("evt_1TgApiAcmeEu{n:02}");
    let mut events = vec![
        envelope(&id(1), "checkout.session.completed", base, checkout_session(base), None),
        envelope(&id(2), "customer.subscription.created", base + 1, sub(hobby_active), None),
        envelope(&id(3), "invoice.paid", base + 2, invoice(first_bill), None),
        envelope(
            &id(4),
            "customer.subscription.updated",
            base + 10 * DAY,
            sub(pro_active),
            Some(json!({"items": {"data": [{"price": {"id": HOBBY_PRICE}}]}})),
        ),
        envelope(&id(5), "invoice.payment_failed", base + 30 * DAY + 5, invoice(renewal_bill), None),
        envelope(
            &id(6),
            "customer.subscription.updated",
            base + 30 * DAY + 6,
            sub(renewal("past_due", 1)),
            Some(json!({"status": "active", "items": {"data": [{"current_period_start": first_period.0}]}})),
        ),
        // The retry succeeds: the invoice is paid and the subscription active again, in the same second.
        envelope(
            &id(7),
            "invoice.paid",
            base + 33 * DAY,
            invoice(Bill { paid: true, attempt_count: 2, ..renewal_bill }),
            None,
        ),
        envelope(
            &id(8),
            "customer.subscription.updated",
            base + 33 * DAY,
            sub(renewal("active", 1)),
            Some(json!({"status": "past_due"})),
        ),
        // Two seat changes within one second: conflicting snapshots with the same processor time.
        envelope(
            &id(9),
            "customer.subscription.updated",
            base + 35 * DAY,
            sub(renewal("active", 3)),
            Some(json!({"quantity": 1})),
        ),
        envelope(
            &id(10),
            "customer.subscription.updated",
            base + 35 * DAY,
            sub(renewal("active", 5)),
            Some(json!({"quantity": 3})),
        ),
    ];
    if ends_deleted {
        let ended = base + 38 * DAY;
        let deleted = Snapshot { ended_at: Some(ended), ..renewal("canceled", 5) };
        events.push(envelope(&id(11), "customer.subscription.deleted", ended, sub(deleted), None));
    }
    events
}

// ---------------------------------------------------------------------------------------------------------------
// Delivery and observation.

fn signed_now(body: &str) -> String {
    sign_with(STRIPE_WEBHOOK_SECRET, body, now())
}

/// Delivers `events` in `order` (indices, repeats allowed), each delivery signed at the current time. Each event is
/// taken exactly once: its first delivery is applied or parked; a later one answers `duplicate`, or, for an event
/// still waiting for its link, `parked` again (a redelivery re-checks the link). Returns the outcomes in delivery
/// order.
async fn deliver_all(app: &TestApp, events: &[StripeEvent], order: &[usize], label: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut parked_first = HashSet::new();
    let mut outcomes = Vec::with_capacity(order.len());
    for &i in order {
        let event = &events[i];
        let response = app.post_stripe_webhook(&event.body, Some(&signed_now(&event.body))).await;
        let reply = read(&event.id, response).await;
        assert_eq!(reply.status, 200, "[{label}] {} ({}): {}", event.id, event.kind, reply.body);
        let answer = reply.json();
        assert_eq!(answer["event_id"], event.id.as_str(), "[{label}] {answer}");
        let outcome = answer["outcome"].as_str().unwrap_or_default();
        if seen.insert(i) {
            assert!(
                outcome == "applied" || outcome == "parked",
                "[{label}] first delivery of {} ({}) → {outcome}: {answer}",
                event.id,
                event.kind
            );
            if outcome == "parked" {
                parked_first.insert(i);
            }
        } else {
            assert!(
                outcome == "duplicate" || (outcome == "parked" && parked_first.contains(&i)),
                "[{label}] redelivery of {} ({}) → {outcome}",
                event.id,
                event.kind
            );
        }
        outcomes.push(outcome.to_owned());
    }
    outcomes
}

/// Audit entries of `workspace`, newest first.
async fn audit(app: &TestApp, workspace: &str) -> Vec<Value> {
    let audit = get_json(app, &format!("/v1/workspaces/{workspace}/audit?limit=200")).await;
    assert!(audit["next_before"].is_null(), "more than 200 audit entries: {audit}");
    audit["entries"].as_array().expect("entries").clone()
}

fn entries_with<'a>(entries: &'a [Value], action: &str) -> Vec<&'a Value> {
    entries.iter().filter(|e| e["action"] == action).collect()
}

/// What a run of deliveries ends in, minus wall-clock timestamps.
#[derive(Debug)]
struct FinalState {
    workspace: Value,
    subscription: (u16, Value),
    entitlements: Value,
    /// The actors of the plan-granting audit entries: `checkout.completed` (links the customer to the workspace) and
    /// `subscription.created` (the first record of the subscription, which grants its plan). Which event creates the
    /// record depends on the order; that there is exactly one does not.
    grants: BTreeMap<&'static str, Vec<Value>>,
    /// `after` of the newest `subscription.*` audit entry: where the audit trail ends.
    audit_ends_at: Value,
    /// Owner emails in the outbox, by dedup key (receipts, payment failures, subscription ended).
    emails: Vec<String>,
    /// `event_id|status` of every inbox row.
    inbox: Vec<String>,
    parked: i64,
    bystander_workspace: Value,
    bystander_audit: Vec<Value>,
}

impl FinalState {
    /// Fails naming the first part of the state that differs from `expected`.
    fn assert_same_as(&self, expected: &FinalState, context: &str) {
        assert_eq!(self.workspace, expected.workspace, "{context}: GET /v1/workspaces/{WORKSPACE} differs");
        assert_eq!(self.subscription, expected.subscription, "{context}: GET …/subscription differs");
        assert_eq!(self.entitlements, expected.entitlements, "{context}: GET …/entitlements differs");
        for (action, actors) in &self.grants {
            assert_eq!(actors.len(), expected.grants[action].len(), "{context}: number of {action} audit entries");
        }
        assert_eq!(self.grants["checkout.completed"], expected.grants["checkout.completed"], "{context}");
        assert_eq!(self.audit_ends_at, expected.audit_ends_at, "{context}: the audit trail ends elsewhere");
        assert_eq!(self.emails, expected.emails, "{context}: owner emails in the outbox differ");
        assert_eq!(self.inbox, expected.inbox, "{context}: inbox rows differ");
        assert_eq!(self.parked, expected.parked, "{context}: parked events differ");
        assert_eq!(self.bystander_workspace, expected.bystander_workspace, "{context}: the bystander changed");
        assert_eq!(self.bystander_audit, expected.bystander_audit, "{context}: the bystander's audit changed");
    }
}

fn without_clock_fields(mut workspace: Value) -> Value {
    if let Value::Object(map) = &mut workspace {
        map.remove("created_at");
        map.remove("updated_at");
    }
    workspace
}

async fn observe(app: &TestApp) -> FinalState {
    let subscription = get(app, &format!("/v1/workspaces/{WORKSPACE}/subscription")).await;
    let entries = audit(app, WORKSPACE).await;
    let mut grants = BTreeMap::new();
    for action in ["checkout.completed", "subscription.created"] {
        let actors = entries_with(&entries, action).into_iter().map(|e| e["actor"].clone()).collect();
        grants.insert(action, actors);
    }
    let audit_ends_at = entries
        .iter()
        .find(|e| e["action"].as_str().is_some_and(|a| a.starts_with("subscription.")))
        .map(|e| e["after"].clone())
        .unwrap_or(Value::Null);
    let bystander_audit =
        audit(app, BYSTANDER).await.into_iter().map(|e| json!({"action": e["action"], "actor": e["actor"]})).collect();
    FinalState {
        workspace: without_clock_fields(get_json(app, &format!("/v1/workspaces/{WORKSPACE}")).await),
        subscription: (subscription.status, subscription.json()),
        entitlements: get_json(app, &format!("/v1/workspaces/{WORKSPACE}/entitlements")).await,
        grants,
        audit_ends_at,
        emails: app.texts("SELECT dedup_key FROM outbox WHERE dedup_key LIKE 'email:%' ORDER BY dedup_key").await,
        inbox: app.texts("SELECT event_id || '|' || status FROM inbox_events ORDER BY event_id").await,
        parked: app.count("parked_events").await,
        bystander_workspace: without_clock_fields(get_json(app, &format!("/v1/workspaces/{BYSTANDER}")).await),
        bystander_audit,
    }
}

/// A tiny deterministic generator (Knuth's MMIX LCG), so the shuffles are the same on every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Every event 1–3 times, shuffled (Fisher–Yates).
fn shuffled_with_duplicates(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = Lcg(seed);
    let mut order: Vec<usize> = (0..n).flat_map(|i| std::iter::repeat_n(i, 1 + rng.below(3))).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}

fn describe(events: &[StripeEvent], order: &[usize]) -> String {
    order
        .iter()
        .map(|&i| format!("{}:{}", &events[i].id[events[i].id.len() - 2..], events[i].kind))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fresh app, both workspaces, `order` delivered; the state it ends in and the outcome of each delivery.
async fn run(backend: Backend, events: &[StripeEvent], order: &[usize], label: &str) -> (FinalState, Vec<String>) {
    let app = spawn_stripe_app(backend).await;
    create_workspaces(&app).await;
    let outcomes = deliver_all(&app, events, order, label).await;
    (observe(&app).await, outcomes)
}

/// Checks what must hold whatever the order: the plan granted once, to the right workspace, nothing left parked or
/// failed, the bystander untouched.
fn assert_granted_once(state: &FinalState, events: &[StripeEvent], label: &str) {
    let checkout = &state.grants["checkout.completed"];
    assert_eq!(checkout.len(), 1, "[{label}] checkout.completed audited {} times: {checkout:?}", checkout.len());
    assert_eq!(checkout[0]["event_id"], events[0].id.as_str(), "[{label}]");
    let created = &state.grants["subscription.created"];
    assert_eq!(created.len(), 1, "[{label}] subscription.created audited {} times: {created:?}", created.len());
    assert_eq!(created[0]["type"], "webhook", "[{label}]");
    assert_eq!(state.parked, 0, "[{label}] events left parked");
    let distinct: HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(state.inbox.len(), distinct.len(), "[{label}] inbox: {:?}", state.inbox);
    assert!(state.inbox.iter().all(|row| row.ends_with("|processed")), "[{label}] inbox: {:?}", state.inbox);
    assert_eq!(state.bystander_workspace["plan"], "free", "[{label}]");
    assert!(state.bystander_workspace["subscription_status"].is_null(), "[{label}]");
    assert_eq!(
        state.bystander_audit,
        vec![json!({"action": "workspace.created", "actor": {"type": "api_key", "name": "dev"}})],
        "[{label}]"
    );
}

fn count_prefixed(keys: &[String], prefix: &str) -> usize {
    keys.iter().filter(|k| k.starts_with(prefix)).count()
}

/// Delivers the lifecycle in order to one app, then reversed (each twice) and in four seeded shuffles with
/// duplicates to a fresh app each; every run must end in the in-order state.
async fn converges(backend: Backend, ends_deleted: bool) {
    let events = lifecycle(ends_deleted);
    let in_order: Vec<usize> = (0..events.len()).collect();
    let (expected, outcomes) = run(backend, &events, &in_order, "in order").await;
    assert!(outcomes.iter().all(|o| o == "applied"), "in order, every event applies at once: {outcomes:?}");
    assert_granted_once(&expected, &events, "in order");

    let workspace = &expected.workspace;
    let (status, subscription) = &expected.subscription;
    assert_eq!(*status, 200, "{subscription}");
    assert_eq!(subscription["id"], SUBSCRIPTION);
    assert_eq!(subscription["processor"], "stripe");
    assert_eq!(subscription["plan"], "pro", "plan B after the upgrade: {subscription}");
    assert_eq!(subscription["price_id"], PRO_PRICE);
    assert!(subscription["quantity"] == 3 || subscription["quantity"] == 5, "{subscription}");
    assert_eq!(workspace["credit_balance"], 0, "a subscription checkout grants no credits");
    assert_eq!(count_prefixed(&expected.emails, "email:receipt:"), 2, "{:?}", expected.emails);
    assert_eq!(count_prefixed(&expected.emails, "email:payment_failed:"), 1, "{:?}", expected.emails);
    if ends_deleted {
        assert_eq!(subscription["status"], "canceled");
        assert!(subscription["canceled_at"].is_string(), "{subscription}");
        assert_eq!(workspace["plan"], "free", "{workspace}");
        assert_eq!(workspace["subscription_status"], "canceled");
        assert_eq!(expected.entitlements["plan"], "free");
        assert_eq!(expected.entitlements["features"]["sla_tracking"], false);
        assert_eq!(count_prefixed(&expected.emails, "email:subscription_ended:"), 1, "{:?}", expected.emails);
    } else {
        assert_eq!(subscription["status"], "active");
        assert_eq!(workspace["plan"], "pro", "{workspace}");
        assert_eq!(workspace["plan_source"], "subscription");
        assert_eq!(workspace["subscription_status"], "active");
        assert_eq!(expected.entitlements["plan"], "pro");
        assert_eq!(expected.entitlements["features"]["sla_tracking"], true);
        assert_eq!(count_prefixed(&expected.emails, "email:subscription_ended:"), 0, "{:?}", expected.emails);
    }
    assert_eq!(expected.audit_ends_at["status"], subscription["status"]);
    assert_eq!(expected.audit_ends_at["plan"], "pro");

    let mut orders: Vec<(String, Vec<usize>)> =
        vec![("reversed, each twice".to_owned(), (0..events.len()).rev().flat_map(|i| [i, i]).collect())];
    for seed in [7_u64, 42, 2026, 0x5EED_CAFE] {
        orders.push((format!("seed {seed}"), shuffled_with_duplicates(events.len(), seed)));
    }
    for (label, order) in orders {
        let (state, outcomes) = run(backend, &events, &order, &label).await;
        if label.starts_with("reversed") {
            // Everything before the checkout waits for its customer link: the parking path is exercised. Each
            // redelivery re-checks the link, which is still missing, and parks again.
            let parked = outcomes.iter().filter(|o| *o == "parked").count();
            assert_eq!(parked, 2 * (events.len() - 1), "[{label}] {outcomes:?}");
        }
        assert_granted_once(&state, &events, &label);
        let context = format!("[{label}] unlike in-order delivery; order: {}", describe(&events, &order));
        state.assert_same_as(&expected, &context);
    }
}

async fn converges_active(backend: Backend) {
    converges(backend, false).await;
}
on_both_databases!(stripe_lifecycle_in_any_order_ends_active_on_plan_b, converges_active);

async fn converges_deleted(backend: Backend) {
    converges(backend, true).await;
}
on_both_databases!(stripe_lifecycle_in_any_order_ends_deleted_on_free, converges_deleted);

/// checkout.session.completed and the first invoice.paid, in either order and redelivered: one link, one
/// subscription, plan A, on the workspace the checkout names.
async fn checkout_and_invoice(backend: Backend) {
    let events = lifecycle(false);
    let pair = vec![events[0].clone(), events[2].clone()];
    let mut states = Vec::new();
    for (label, order, first_outcome) in
        [("checkout first", [0, 1, 0, 1], "applied"), ("invoice first", [1, 0, 1, 0], "parked")]
    {
        let app = spawn_stripe_app(backend).await;
        create_workspaces(&app).await;
        let outcomes = deliver_all(&app, &pair, &order, label).await;
        assert_eq!(outcomes[0], first_outcome, "[{label}] {outcomes:?}");

        let state = observe(&app).await;
        assert_granted_once(&state, &pair, label);
        assert_eq!(state.grants["subscription.created"][0]["event_id"], pair[1].id.as_str(), "[{label}]");
        assert_eq!(state.workspace["plan"], "hobby", "[{label}] {}", state.workspace);
        assert_eq!(state.workspace["subscription_status"], "active", "[{label}]");
        assert_eq!(state.subscription.0, 200, "[{label}]");
        assert_eq!(state.subscription.1["id"], SUBSCRIPTION, "[{label}]");
        assert_eq!(state.subscription.1["price_id"], HOBBY_PRICE, "[{label}]");
        assert_eq!(state.entitlements["plan"], "hobby", "[{label}]");
        assert_eq!(state.emails.len(), 1, "[{label}] one receipt: {:?}", state.emails);
        states.push(state);
    }
    states[1].assert_same_as(&states[0], "invoice-first unlike checkout-first");
}
on_both_databases!(stripe_checkout_and_first_invoice_in_either_order_grant_the_plan_once, checkout_and_invoice);

// ---------------------------------------------------------------------------------------------------------------
// Rejected deliveries.

/// Everything a rejected delivery must leave alone, read from the same app (so timestamps included).
#[derive(Debug, PartialEq)]
struct Untouched {
    workspace: Value,
    subscription: Value,
    entitlements: Value,
    audit: Vec<Value>,
    counts: Vec<i64>,
}

async fn untouched(app: &TestApp) -> Untouched {
    let mut counts = Vec::new();
    for table in ["inbox_events", "parked_events", "subscriptions", "audit_log", "outbox"] {
        counts.push(app.count(table).await);
    }
    Untouched {
        workspace: get_json(app, &format!("/v1/workspaces/{WORKSPACE}")).await,
        subscription: get_json(app, &format!("/v1/workspaces/{WORKSPACE}/subscription")).await,
        entitlements: get_json(app, &format!("/v1/workspaces/{WORKSPACE}/entitlements")).await,
        audit: audit(app, WORKSPACE).await,
        counts,
    }
}

async fn rejected(backend: Backend) {
    let app = spawn_stripe_app(backend).await;
    create_workspaces(&app).await;
    let events = lifecycle(true);
    deliver_all(&app, &events, &[0, 1], "setup").await;
    let before = untouched(&app).await;
    assert_eq!(before.subscription["status"], "active");

    let deletion = events.last().unwrap();
    let tampered = deletion.body.replacen("\"status\":\"canceled\"", "\"status\":\"active\"", 1);
    assert_ne!(tampered, deletion.body);
    let cases: Vec<(&str, String, Option<String>, &str)> = vec![
        ("tampered after signing", tampered, Some(signed_now(&deletion.body)), "webhook_signature_invalid"),
        (
            "stale (t = now - 301 s)",
            deletion.body.clone(),
            Some(sign_with(STRIPE_WEBHOOK_SECRET, &deletion.body, now() - 301)),
            "webhook_timestamp_stale",
        ),
        ("no Stripe-Signature header", deletion.body.clone(), None, "webhook_signature_missing"),
        (
            "signed with another secret",
            deletion.body.clone(),
            Some(sign_with(SANDBOX_SECRET, &deletion.body, now())),
            "webhook_signature_invalid",
        ),
        ("malformed header", deletion.body.clone(), Some("t=soon,v1=zz".to_owned()), "webhook_signature_malformed"),
    ];
    for (case, body, signature, code) in cases {
        let reply = read(case, app.post_stripe_webhook(&body, signature.as_deref()).await).await;
        assert!((400..500).contains(&reply.status), "{case}: {} {}", reply.status, reply.body);
        assert_eq!(reply.content_type, "application/problem+json", "{case}");
        let problem = reply.json();
        assert_eq!(problem["code"], code, "{case}: {problem}");
        assert_eq!(problem["status"], reply.status, "{case}: {problem}");
        assert_eq!(untouched(&app).await, before, "{case} changed state");
    }

    // Nothing of the rejected deliveries was recorded: the genuine delivery of the same event is new and applies.
    deliver_all(&app, &events, &[events.len() - 1], "genuine").await;
    assert_eq!(get_json(&app, &format!("/v1/workspaces/{WORKSPACE}")).await["plan"], "free");
    assert_eq!(get_json(&app, &format!("/v1/workspaces/{WORKSPACE}/subscription")).await["status"], "canceled");
}
on_both_databases!(stripe_tampered_stale_and_unsigned_deliveries_get_4xx_and_change_nothing, rejected);

/// Stripe cannot be reached: every subscription command answers 503 with a retryable code and changes nothing.
async fn commands_while_stripe_is_down(backend: Backend) {
    let app = spawn_stripe_app(backend).await;
    create_workspaces(&app).await;
    let events = lifecycle(false);
    deliver_all(&app, &events, &[0, 1], "setup").await;
    let before = untouched(&app).await;
    assert_eq!(before.subscription["status"], "active");
    for (what, body) in [
        ("cancel", serde_json::json!({"at_period_end": true})),
        ("resume", serde_json::json!({})),
        ("change", serde_json::json!({"plan": "pro"})),
    ] {
        let path = format!("/v1/workspaces/{WORKSPACE}/subscription/{what}");
        let response = app.client.post(app.url(&path)).bearer_auth(DEV_KEY).json(&body).send().await.unwrap();
        let reply = read(what, response).await;
        // Resume of a subscription not scheduled to cancel is refused before Stripe is asked.
        let (status, code) =
            if what == "resume" { (409, "subscription_state_conflict") } else { (503, "processor_unavailable") };
        assert_eq!((reply.status, reply.json()["code"].as_str()), (status, Some(code)), "{what}: {}", reply.body);
        assert_eq!(untouched(&app).await, before, "{what} changed state");
    }
}
on_both_databases!(
    subscription_commands_while_stripe_is_down_answer_503_and_change_nothing,
    commands_while_stripe_is_down
);

// ---------------------------------------------------------------------------------------------------------------
// Secrets.

/// Besides every response of this module, the paths most likely to echo configuration: a checkout that cannot reach
/// Stripe, rejected and malformed webhooks, unknown routes, health and the catalog.
async fn no_secrets(backend: Backend) {
    let app = spawn_stripe_app(backend).await;
    create_workspaces(&app).await;

    let checkout = app.post_json(&format!("/v1/workspaces/{WORKSPACE}/checkout"), json!({"plan": "pro"})).await;
    let reply = read("checkout with Stripe unreachable", checkout).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.json()["code"], "processor_unavailable", "{}", reply.body);
    let actions: Vec<Value> = audit(&app, WORKSPACE).await.into_iter().map(|e| e["action"].clone()).collect();
    assert_eq!(actions, vec![json!("workspace.created")], "a failed checkout changes nothing");

    let malformed = "{\"id\": \"evt_1\", \"type\": ";
    let reply = read("malformed JSON", app.post_stripe_webhook(malformed, Some(&signed_now(malformed))).await).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    let unhandled = envelope("evt_1TgApiIgnored", "customer.created", now(), json!({"id": CUSTOMER}), None);
    let reply =
        read("unhandled type", app.post_stripe_webhook(&unhandled.body, Some(&signed_now(&unhandled.body))).await)
            .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["outcome"], "ignored");
    let bad = sign_with("whsec_wrong", malformed, now());
    assert_eq!(read("bad signature", app.post_stripe_webhook(malformed, Some(&bad)).await).await.status, 400);

    for path in ["/healthz", "/readyz", "/v1/plans", "/v1/workspaces/acme_eu", "/v1/workspaces/nobody", "/nope"] {
        get(&app, path).await;
    }
    let sandbox = app.client.post(app.url("/webhooks/sandbox")).body("{}").send().await.unwrap();
    assert_eq!(read("sandbox webhooks while off", sandbox).await.status, 404);
    let unauthenticated = app.client.get(app.url("/v1/plans")).bearer_auth("sk_test_not_a_tollgate_key").send().await;
    read("wrong API key", unauthenticated.unwrap()).await;
}
on_both_databases!(stripe_secrets_never_appear_in_responses, no_secrets);

// ---------------------------------------------------------------------------------------------------------------
// A convergence bug this suite found, now fixed: `canceled_at` was the first terminal observation *seen*.

/// An incomplete subscription that expires: Stripe reports `incomplete_expired` in a `customer.subscription.updated`
/// and then the `customer.subscription.deleted`, at two different times. Both are terminal; whichever arrives first
/// must not decide `canceled_at` (it is the earliest terminal observation, whatever the order).
async fn two_terminal_snapshots(backend: Backend) {
    let base = now() - 3 * DAY;
    let incomplete = Snapshot {
        status: "incomplete",
        price: HOBBY_PRICE,
        quantity: 1,
        period: (base, base + 30 * DAY),
        latest_invoice: FIRST_INVOICE,
        ended_at: None,
    };
    let expired_at = base + DAY;
    let expired = Snapshot { status: "incomplete_expired", ended_at: Some(expired_at), ..incomplete };
    let id = |n: u32| format!("evt_1TgApiExpire{n:02}");
    let events = vec![
        envelope(&id(1), "checkout.session.completed", base, checkout_session(base), None),
        envelope(&id(2), "customer.subscription.created", base + 1, subscription(incomplete, base), None),
        envelope(
            &id(3),
            "customer.subscription.updated",
            expired_at,
            subscription(expired, base),
            Some(json!({"status": "incomplete"})),
        ),
        envelope(&id(4), "customer.subscription.deleted", expired_at + 1, subscription(expired, base), None),
    ];
    let (in_order, _) = run(backend, &events, &[0, 1, 2, 3], "in order").await;
    let (swapped, _) = run(backend, &events, &[0, 1, 3, 2], "deleted before updated").await;
    assert_eq!(in_order.subscription.1["status"], "canceled");
    swapped.assert_same_as(&in_order, "[deleted before updated] unlike in-order delivery");
}

mod stripe_two_terminal_snapshots_in_either_order_agree_on_canceled_at {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        two_terminal_snapshots(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        two_terminal_snapshots(Backend::Postgres).await;
    }
}
