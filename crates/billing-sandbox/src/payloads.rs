//! Stripe-shaped JSON for the sandbox's webhook deliveries, so a reader (and the parser shared with real Stripe
//! payloads) recognises them. The shapes follow API version [`API_VERSION`]: period on the subscription, `subscription`
//! and `lines.data[].price` on the invoice.

use billing_domain::catalog::Interval;
use billing_domain::ids::{InvoiceId, SubscriptionId};
use billing_domain::money::Money;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::payments::PaymentRecord;
use crate::state::{InvoiceRecord, SessionRecord, SubscriptionRecord};

/// The Stripe API version whose object shapes the sandbox imitates.
pub const API_VERSION: &str = "2024-06-20";

/// How long an unpaid Stripe checkout session stays open.
const SESSION_LIFETIME_HOURS: i64 = 24;

/// An `event` object wrapping `object` as `data.object`.
pub(crate) fn event(id: &str, event_type: &str, created: DateTime<Utc>, object: Value) -> Value {
    json!({
        "id": id,
        "object": "event",
        "api_version": API_VERSION,
        "created": created.timestamp(),
        "data": {"object": object},
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": event_type,
    })
}

/// Outcome of a checkout, which decides the session's payment fields.
pub(crate) enum CheckoutOutcome<'a> {
    Paid { subscription: Option<&'a SubscriptionId>, invoice: Option<&'a InvoiceId> },
    Declined { code: &'a str, message: &'a str },
}

/// A `checkout.session` object after the customer pressed Pay or Decline.
pub(crate) fn checkout_session(session: &SessionRecord, outcome: &CheckoutOutcome<'_>) -> Value {
    let mode = if session.plan.is_subscription() { "subscription" } else { "payment" };
    let (payment_status, subscription, invoice, last_payment_error) = match outcome {
        CheckoutOutcome::Paid { subscription, invoice } => {
            ("paid", subscription.map(|s| s.as_str()), invoice.map(|i| i.as_str()), Value::Null)
        }
        // Real sessions carry the decline on their PaymentIntent; inlining it keeps the sandbox event self-contained.
        CheckoutOutcome::Declined { code, message } => (
            "unpaid",
            None,
            None,
            json!({"type": "card_error", "code": code, "decline_code": "generic_decline", "message": message}),
        ),
    };
    json!({
        "id": session.id.as_str(),
        "object": "checkout.session",
        "amount_subtotal": session.plan.price.minor,
        "amount_total": session.amount.minor,
        "total_details": {"amount_discount": session.plan.price.minor - session.amount.minor},
        "cancel_url": session.cancel_url,
        "client_reference_id": session.workspace_id.as_str(),
        "created": session.created.timestamp(),
        "currency": currency(&session.plan.price),
        "customer": session.customer_id.as_str(),
        "expires_at": session
            .created
            .checked_add_signed(Duration::hours(SESSION_LIFETIME_HOURS))
            .map(|t| t.timestamp()),
        "invoice": invoice,
        "last_payment_error": last_payment_error,
        "livemode": false,
        "metadata": {
            "workspace_id": session.workspace_id.as_str(),
            "plan_id": session.plan.id.as_str(),
        },
        "mode": mode,
        "payment_method_types": ["card"],
        "payment_status": payment_status,
        "status": "complete",
        "subscription": subscription,
        "success_url": session.success_url,
        "url": null,
    })
}

/// A `subscription` object.
pub(crate) fn subscription(record: &SubscriptionRecord) -> Value {
    let s = &record.snapshot;
    let item_id = s.subscription_id.as_str().replacen("sub_", "si_", 1);
    json!({
        "id": s.subscription_id.as_str(),
        "object": "subscription",
        "billing_cycle_anchor": s.current_period_start.map(|t| t.timestamp()),
        "cancel_at": if s.cancel_at_period_end { s.current_period_end.map(|t| t.timestamp()) } else { None },
        "cancel_at_period_end": s.cancel_at_period_end,
        "canceled_at": record.canceled_at.map(|t| t.timestamp()),
        "collection_method": "charge_automatically",
        "created": record.created.timestamp(),
        "currency": currency(&record.amount),
        "current_period_end": s.current_period_end.map(|t| t.timestamp()),
        "current_period_start": s.current_period_start.map(|t| t.timestamp()),
        "customer": s.customer_id.as_str(),
        "ended_at": record.canceled_at.map(|t| t.timestamp()),
        "items": {
            "object": "list",
            "data": [{
                "id": item_id,
                "object": "subscription_item",
                "created": record.created.timestamp(),
                "price": price(s.price_id.as_str(), &record.amount, Some(record.interval)),
                "quantity": s.quantity,
                "subscription": s.subscription_id.as_str(),
            }],
            "has_more": false,
            "total_count": 1,
            "url": format!("/v1/subscription_items?subscription={}", s.subscription_id),
        },
        "latest_invoice": record.latest_invoice.as_ref().map(|i| i.as_str()),
        "livemode": false,
        "metadata": {
            "workspace_id": record.workspace_id.as_str(),
            "plan_id": record.plan_id.as_str(),
        },
        "quantity": s.quantity,
        "start_date": record.created.timestamp(),
        "status": s.status.as_str(),
        "trial_end": s.trial_end.map(|t| t.timestamp()),
        "trial_start": null,
    })
}

/// An `invoice` object with one subscription line: paid, or open after a declined charge.
pub(crate) fn invoice(record: &InvoiceRecord, interval: Option<Interval>) -> Value {
    let created = record.created.timestamp();
    let line_id = record.id.as_str().replacen("in_", "il_", 1);
    let paid = record.is_paid();
    let amount_paid = record.amount_paid().minor;
    json!({
        "id": record.id.as_str(),
        "object": "invoice",
        "account_country": "US",
        "amount_due": record.amount.minor,
        "amount_paid": amount_paid,
        "amount_remaining": record.amount.minor - amount_paid,
        "attempt_count": record.attempt_count,
        "attempted": true,
        "billing_reason": record.billing_reason,
        "collection_method": "charge_automatically",
        "created": created,
        "currency": currency(&record.amount),
        "customer": record.customer_id.as_str(),
        "hosted_invoice_url": null,
        "invoice_pdf": null,
        "lines": {
            "object": "list",
            "data": [{
                "id": line_id,
                "object": "line_item",
                "amount": record.amount.minor,
                "currency": currency(&record.amount),
                "description": record.description,
                "livemode": false,
                "period": {
                    "start": record.period_start.timestamp(),
                    "end": record.period_end.timestamp(),
                },
                "price": record.price_id.as_ref().map(|p| price(p.as_str(), &record.amount, interval)),
                "proration": false,
                "quantity": 1,
                "subscription": record.subscription_id.as_ref().map(|s| s.as_str()),
                "type": "subscription",
            }],
            "has_more": false,
            "total_count": 1,
            "url": format!("/v1/invoices/{}/lines", record.id),
        },
        "livemode": false,
        "number": record.number,
        "paid": paid,
        // The invoice's own period is the usage it bills; subscription invoices here bill none.
        "period_end": created,
        "period_start": created,
        "status": if paid { "paid" } else { "open" },
        "status_transitions": {"finalized_at": created, "paid_at": if paid { Some(created) } else { None }},
        "subscription": record.subscription_id.as_ref().map(|s| s.as_str()),
        "subtotal": record.amount.minor,
        "total": record.amount.minor,
    })
}

/// A `payment_intent` object. Its metadata names the workspace and either the credits plan an API payment intent
/// sells (`credits_plan_id`) or the plan a checkout's charge paid for (`plan_id`), as Tollgate writes them at Stripe.
pub(crate) fn payment_intent(record: &PaymentRecord) -> Value {
    let paid = record.status == billing_domain::ports::HostedCheckoutStatus::Paid;
    let mut metadata = serde_json::Map::new();
    metadata.insert("workspace_id".into(), json!(record.workspace_id.as_str()));
    if let Some(plan) = &record.credits_plan {
        metadata.insert("credits_plan_id".into(), json!(plan.as_str()));
    }
    if let Some(plan) = &record.checkout_plan {
        metadata.insert("plan_id".into(), json!(plan.as_str()));
    }
    let declined = json!({"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
        "message": "Your card was declined."});
    json!({
        "id": record.id.as_str(),
        "object": "payment_intent",
        "amount": record.amount.minor,
        "amount_received": if paid { record.amount.minor } else { 0 },
        "amount_refunded": record.refunded,
        "client_secret": record.client_secret(),
        "created": record.created.timestamp(),
        "currency": currency(&record.amount),
        "customer": record.customer_id.as_str(),
        "description": record.description,
        "last_payment_error": if paid { Value::Null } else { declined },
        "livemode": false,
        "metadata": metadata,
        "payment_method_types": ["card"],
        "status": if paid { "succeeded" } else { "requires_payment_method" },
    })
}

/// A `price` object.
fn price(id: &str, amount: &Money, interval: Option<Interval>) -> Value {
    let recurring = interval.map(|interval| {
        let word = match interval {
            Interval::Month => "month",
            Interval::Year => "year",
        };
        json!({"interval": word, "interval_count": 1, "usage_type": "licensed"})
    });
    json!({
        "id": id,
        "object": "price",
        "active": true,
        "currency": currency(amount),
        "livemode": false,
        "recurring": recurring,
        "type": if interval.is_some() { "recurring" } else { "one_time" },
        "unit_amount": amount.minor,
    })
}

/// Stripe writes currencies in lower case.
fn currency(money: &Money) -> String {
    money.currency.as_str().to_ascii_lowercase()
}
