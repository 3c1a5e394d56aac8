//! Translation of Stripe-shaped event bodies into domain [`ProcessorEvent`]s. Works on the sandbox's own payloads and
//! on real Stripe payloads of old and new API versions, and never panics on any input.

pub mod views;

#[cfg(test)]
mod tests;

use billing_domain::events::{CheckoutMode, EventPayload, PaymentActivityKind, ProcessorEvent, SubscriptionSnapshot};
use billing_domain::ids::{
    CheckoutSessionId, CustomerId, EventId, InvoiceId, PaymentId, PlanId, PriceId, ProcessorId, SubscriptionId,
    WorkspaceId,
};
use billing_domain::money::{Currency, Money};
use billing_domain::ports::WebhookError;
use billing_domain::subscription::SubscriptionStatus;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;

use views::{
    ChargeView, CheckoutView, EnvelopeView, IdRef, InvoiceLineView, InvoiceView, PaymentIntentView, SubscriptionView,
};

/// Parses an already verified event body of `processor`. Unknown event types become [`EventPayload::Ignored`]; invalid
/// JSON or a handled type without a field Tollgate needs is [`WebhookError::MalformedPayload`].
pub fn parse_event(processor: &ProcessorId, body: &[u8]) -> Result<ProcessorEvent, WebhookError> {
    let envelope: EnvelopeView = serde_json::from_slice(body).map_err(|e| json_error("event", &e))?;
    let id = required("id", envelope.id)?;
    let event_type = required("type", envelope.event_type)?;
    let created = envelope.created.ok_or_else(|| missing("created"))?;
    let occurred_at = timestamp("created", created)?;
    let object = envelope.data.and_then(|d| d.object);
    let payload = translate(&event_type, object).map_err(|error| match error {
        // Name the event type so the reason says which translation failed.
        WebhookError::MalformedPayload(reason) => WebhookError::MalformedPayload(format!("{event_type}: {reason}")),
        other => other,
    })?;
    Ok(ProcessorEvent { id: EventId::new(id), processor: processor.clone(), event_type, occurred_at, payload })
}

/// The payload of one event type; the object is only read for the types Tollgate handles.
fn translate(event_type: &str, object: Option<Value>) -> Result<EventPayload, WebhookError> {
    let object = || object.ok_or_else(|| missing("data.object"));
    match event_type {
        "checkout.session.completed" => checkout_completed(view(object()?)?, false),
        // Completes a checkout whose `completed` event arrived unpaid (bank debits, vouchers).
        "checkout.session.async_payment_succeeded" => checkout_completed(view(object()?)?, true),
        "checkout.session.async_payment_failed" => checkout_failed(view(object()?)?),
        "customer.subscription.created" | "customer.subscription.updated" => {
            Ok(EventPayload::SubscriptionChanged(snapshot(view(object()?)?)?))
        }
        "customer.subscription.deleted" => {
            let mut snapshot = snapshot(view(object()?)?)?;
            snapshot.status = SubscriptionStatus::Canceled;
            Ok(EventPayload::SubscriptionChanged(snapshot))
        }
        "invoice.paid" | "invoice.payment_succeeded" => invoice_paid(view(object()?)?),
        "invoice.payment_failed" => invoice_payment_failed(view(object()?)?),
        "customer.subscription.trial_will_end" => trial_will_end(view(object()?)?),
        "invoice.upcoming" => invoice_upcoming(view(object()?)?),
        "payment_intent.succeeded" => payment_intent(view(object()?)?, PaymentActivityKind::PaymentSucceeded),
        "payment_intent.payment_failed" => payment_intent(view(object()?)?, PaymentActivityKind::PaymentFailed),
        "charge.refunded" => charge_refunded(view(object()?)?),
        _ => Ok(EventPayload::Ignored),
    }
}

fn checkout_completed(session: CheckoutView, settled: bool) -> Result<EventPayload, WebhookError> {
    let mode = match session.mode.as_deref() {
        Some("subscription") => CheckoutMode::Subscription,
        Some("payment") => CheckoutMode::Payment,
        // A setup session sells nothing.
        Some("setup") => return Ok(EventPayload::Ignored),
        Some(_) => return Err(malformed("unknown mode")),
        None => return Err(missing("mode")),
    };
    // An unpaid one-time payment grants nothing until `async_payment_succeeded` settles it.
    let unpaid = session.payment_status.as_deref() == Some("unpaid");
    if mode == CheckoutMode::Payment && unpaid && !settled {
        return Ok(EventPayload::Ignored);
    }
    let metadata = session.metadata.unwrap_or_default();
    Ok(EventPayload::CheckoutCompleted {
        session_id: CheckoutSessionId::new(required("id", session.id)?),
        workspace_id: workspace_id(session.client_reference_id, metadata.workspace_id)?,
        customer_id: CustomerId::new(required_ref("customer", session.customer)?),
        mode,
        subscription_id: optional_ref(session.subscription).map(SubscriptionId::new),
        plan_id: non_empty(metadata.plan_id).map(PlanId::new),
    })
}

fn checkout_failed(session: CheckoutView) -> Result<EventPayload, WebhookError> {
    let metadata = session.metadata.unwrap_or_default();
    let error = session.last_payment_error;
    let reason = error
        .and_then(|e| non_empty(e.code).or(non_empty(e.decline_code)))
        .unwrap_or_else(|| "payment_failed".to_owned());
    Ok(EventPayload::CheckoutFailed {
        session_id: CheckoutSessionId::new(required("id", session.id)?),
        workspace_id: workspace_id(session.client_reference_id, metadata.workspace_id)?,
        plan_id: non_empty(metadata.plan_id).map(PlanId::new),
        reason,
    })
}

/// Translates a subscription object, as an API response or an event's `data.object` carries it.
pub fn subscription_snapshot(object: &[u8]) -> Result<SubscriptionSnapshot, WebhookError> {
    let object: Value = serde_json::from_slice(object).map_err(|e| json_error("subscription", &e))?;
    snapshot(view(object)?)
}

fn snapshot(subscription: SubscriptionView) -> Result<SubscriptionSnapshot, WebhookError> {
    let item = subscription.items.and_then(|items| items.data.into_iter().next());
    let (item_price, item_plan, item_quantity, item_start, item_end) = match item {
        Some(i) => (i.price, i.plan, i.quantity, i.current_period_start, i.current_period_end),
        None => (None, None, None, None, None),
    };
    let status_word = required("status", subscription.status)?;
    let status = SubscriptionStatus::parse(&status_word).ok_or_else(|| malformed("unknown subscription status"))?;
    let price = item_price.or(item_plan).or(subscription.plan);
    let quantity = item_quantity.or(subscription.quantity).unwrap_or(1);
    Ok(SubscriptionSnapshot {
        subscription_id: SubscriptionId::new(required("id", subscription.id)?),
        customer_id: CustomerId::new(required_ref("customer", subscription.customer)?),
        price_id: PriceId::new(required_ref("items.data[0].price", price)?),
        status,
        quantity: u32::try_from(quantity).unwrap_or(u32::MAX),
        cancel_at_period_end: subscription.cancel_at_period_end.unwrap_or(false),
        current_period_start: optional_timestamp(
            "current_period_start",
            subscription.current_period_start.or(item_start),
        )?,
        current_period_end: optional_timestamp("current_period_end", subscription.current_period_end.or(item_end))?,
        trial_end: optional_timestamp("trial_end", subscription.trial_end)?,
    })
}

/// Invoice fields shared by the paid and failed translations.
struct InvoiceParts {
    invoice_id: InvoiceId,
    customer_id: CustomerId,
    subscription_id: Option<SubscriptionId>,
    currency: Currency,
    main_line: Option<InvoiceLineView>,
}

fn invoice_parts(invoice: &mut InvoiceView) -> Result<InvoiceParts, WebhookError> {
    let lines = invoice.lines.take().map(|l| l.data).unwrap_or_default();
    // The period's own charge, not a proration adjustment for a previous price, names the current price.
    let (main, prorations): (Vec<_>, Vec<_>) = lines.into_iter().partition(|l| !l.is_proration());
    let main_line = main.into_iter().chain(prorations).next();
    let from_parent = invoice.parent.take().and_then(|p| p.subscription_details).and_then(|d| d.subscription);
    let from_line = main_line.as_ref().and_then(InvoiceLineView::subscription_id).map(str::to_owned);
    let subscription = optional_ref(invoice.subscription.take().or(from_parent)).or_else(|| non_empty(from_line));
    let currency_word = required("currency", invoice.currency.take())?;
    Ok(InvoiceParts {
        invoice_id: InvoiceId::new(required("id", invoice.id.take())?),
        customer_id: CustomerId::new(required_ref("customer", invoice.customer.take())?),
        subscription_id: subscription.map(SubscriptionId::new),
        currency: Currency::parse(&currency_word).map_err(|_| malformed("invalid currency"))?,
        main_line,
    })
}

fn invoice_paid(mut invoice: InvoiceView) -> Result<EventPayload, WebhookError> {
    let parts = invoice_parts(&mut invoice)?;
    let amount = invoice.amount_paid.ok_or_else(|| missing("amount_paid"))?;
    let line = parts.main_line.as_ref();
    let price_id = line.and_then(InvoiceLineView::price_id).map(str::to_owned);
    let period = line.and_then(|l| l.period.as_ref());
    let (start, end) = period.map_or((None, None), |p| (p.start, p.end));
    Ok(EventPayload::InvoicePaid {
        invoice_id: parts.invoice_id,
        customer_id: parts.customer_id,
        subscription_id: parts.subscription_id,
        price_id: non_empty(price_id).map(PriceId::new),
        amount: Money::new(amount, parts.currency),
        period_start: optional_timestamp("lines.data[0].period.start", start)?,
        period_end: optional_timestamp("lines.data[0].period.end", end)?,
        // Only a web link goes into the owner's receipt.
        invoice_url: invoice.hosted_invoice_url.filter(|url| url.starts_with("https://") || url.starts_with("http://")),
    })
}

fn invoice_payment_failed(mut invoice: InvoiceView) -> Result<EventPayload, WebhookError> {
    let parts = invoice_parts(&mut invoice)?;
    let amount = invoice.amount_due.ok_or_else(|| missing("amount_due"))?;
    let attempts = invoice.attempt_count.unwrap_or(1);
    Ok(EventPayload::InvoicePaymentFailed {
        invoice_id: parts.invoice_id,
        customer_id: parts.customer_id,
        subscription_id: parts.subscription_id,
        amount: Money::new(amount, parts.currency),
        attempt_count: u32::try_from(attempts).unwrap_or(u32::MAX),
    })
}

fn trial_will_end(subscription: SubscriptionView) -> Result<EventPayload, WebhookError> {
    Ok(EventPayload::TrialWillEnd {
        customer_id: CustomerId::new(required_ref("customer", subscription.customer)?),
        subscription_id: SubscriptionId::new(required("id", subscription.id)?),
        trial_end: optional_timestamp("trial_end", subscription.trial_end)?,
    })
}

/// An invoice the processor will charge soon. Upcoming invoices have no id; the subscription and the charge time
/// name it instead, so each renewal is announced once.
fn invoice_upcoming(mut invoice: InvoiceView) -> Result<EventPayload, WebhookError> {
    let subscription = optional_ref(invoice.subscription.take()).or_else(|| {
        optional_ref(invoice.parent.take().and_then(|p| p.subscription_details).and_then(|d| d.subscription))
    });
    let customer_id = CustomerId::new(required_ref("customer", invoice.customer.take())?);
    let amount = invoice.amount_due.ok_or_else(|| missing("amount_due"))?;
    let currency = currency(invoice.currency.take())?;
    let when = invoice.next_payment_attempt.or(invoice.period_end).unwrap_or_default();
    let object_id = format!("upcoming:{}:{when}", subscription.as_deref().unwrap_or(customer_id.as_str()));
    Ok(EventPayload::PaymentActivity {
        activity: PaymentActivityKind::InvoiceUpcoming,
        customer_id,
        object_id,
        amount: Money::new(amount, currency),
        subscription_id: subscription.map(SubscriptionId::new),
        detail: None,
        payment_id: None,
        plan_id: None,
        paid_for: None,
        refunded: None,
    })
}

/// A PaymentIntent's outcome; one without a customer (a guest payment) belongs to no workspace and is ignored.
fn payment_intent(intent: PaymentIntentView, activity: PaymentActivityKind) -> Result<EventPayload, WebhookError> {
    let Some(customer) = optional_ref(intent.customer) else { return Ok(EventPayload::Ignored) };
    let amount = match activity {
        PaymentActivityKind::PaymentSucceeded => intent.amount_received.or(intent.amount),
        _ => intent.amount,
    }
    .ok_or_else(|| missing("amount"))?;
    let detail = intent.last_payment_error.and_then(|e| non_empty(e.decline_code).or(non_empty(e.code)));
    let id = required("id", intent.id)?;
    let metadata = intent.metadata.unwrap_or_default();
    let plan = non_empty(metadata.credits_plan_id);
    let paid_for = non_empty(metadata.plan_id);
    Ok(EventPayload::PaymentActivity {
        activity,
        customer_id: CustomerId::new(customer),
        payment_id: Some(PaymentId::new(id.clone())),
        object_id: id,
        amount: Money::new(amount, currency(intent.currency)?),
        subscription_id: None,
        detail,
        plan_id: plan.map(PlanId::new),
        paid_for: paid_for.map(PlanId::new),
        refunded: None,
    })
}

/// A refunded charge: its amount, the total refunded so far and the PaymentIntent it belongs to.
fn charge_refunded(charge: ChargeView) -> Result<EventPayload, WebhookError> {
    let Some(customer) = optional_ref(charge.customer) else { return Ok(EventPayload::Ignored) };
    let currency = currency(charge.currency)?;
    let refunded = charge.amount_refunded.ok_or_else(|| missing("amount_refunded"))?;
    Ok(EventPayload::PaymentActivity {
        activity: PaymentActivityKind::ChargeRefunded,
        customer_id: CustomerId::new(customer),
        object_id: required("id", charge.id)?,
        amount: Money::new(charge.amount.ok_or_else(|| missing("amount"))?, currency.clone()),
        subscription_id: None,
        detail: None,
        payment_id: optional_ref(charge.payment_intent).map(PaymentId::new),
        plan_id: None,
        paid_for: None,
        refunded: Some(Money::new(refunded, currency)),
    })
}

fn currency(raw: Option<String>) -> Result<Currency, WebhookError> {
    Currency::parse(&required("currency", raw)?).map_err(|_| malformed("invalid currency"))
}

/// Reads `object` through the view `T`, reporting a wrong shape without echoing the payload.
fn view<T: DeserializeOwned>(object: Value) -> Result<T, WebhookError> {
    if !object.is_object() {
        return Err(malformed("data.object is not an object"));
    }
    serde_json::from_value(object).map_err(|e| json_error("data.object", &e))
}

/// The workspace from `client_reference_id`, else from `metadata.workspace_id`.
fn workspace_id(client_reference_id: Option<String>, metadata: Option<String>) -> Result<WorkspaceId, WebhookError> {
    let raw = non_empty(client_reference_id).or(non_empty(metadata)).ok_or_else(|| missing("client_reference_id"))?;
    WorkspaceId::parse(raw).map_err(|_| malformed("client_reference_id is not a valid workspace id"))
}

fn required(field: &str, value: Option<String>) -> Result<String, WebhookError> {
    non_empty(value).ok_or_else(|| missing(field))
}

fn required_ref(field: &str, value: Option<IdRef>) -> Result<String, WebhookError> {
    optional_ref(value).ok_or_else(|| missing(field))
}

fn optional_ref(value: Option<IdRef>) -> Option<String> {
    non_empty(value.map(IdRef::into_id))
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

fn timestamp(field: &str, unix: i64) -> Result<DateTime<Utc>, WebhookError> {
    DateTime::from_timestamp(unix, 0).ok_or_else(|| malformed(&format!("{field} is out of range")))
}

fn optional_timestamp(field: &str, unix: Option<i64>) -> Result<Option<DateTime<Utc>>, WebhookError> {
    unix.map(|t| timestamp(field, t)).transpose()
}

fn missing(field: &str) -> WebhookError {
    malformed(&format!("missing `{field}`"))
}

fn malformed(reason: &str) -> WebhookError {
    WebhookError::MalformedPayload(reason.to_owned())
}

/// A short reason for a serde failure: its category and position, never the offending value.
fn json_error(what: &str, error: &serde_json::Error) -> WebhookError {
    use serde_json::error::Category;
    let problem = match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => "is not valid JSON",
        Category::Data => "has a field of an unexpected type",
    };
    if error.line() == 0 {
        malformed(&format!("{what} {problem}"))
    } else {
        malformed(&format!("{what} {problem} (line {}, column {})", error.line(), error.column()))
    }
}
