//! What localstripe lacks, against wiremock: Checkout and Billing Portal sessions, prices and proration on plan
//! changes, meter events, the idempotency keys and metadata of payment intents and refunds, and Stripe's error and
//! retry behaviour (429, `Stripe-Should-Retry`, timeouts, a refused refund).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use billing_domain::catalog::{Interval, Plan, PlanKind};
use billing_domain::error::ProcessorError;
use billing_domain::ids::{CustomerId, PaymentId, PlanId, PriceId, SubscriptionId};
use billing_domain::money::{Currency, Money};
use billing_domain::ports::{
    CheckoutOps, CheckoutRequest, CustomerOps, PaymentIntentRequest, PaymentOps, PortalOps, Proration, SubscriptionOps,
    UsageReportingOps,
};
use billing_domain::subscription::SubscriptionStatus;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{adapter, config, workspace};

/// The form fields of a request, decoded.
fn form(request: &Request) -> HashMap<String, String> {
    url_pairs(&String::from_utf8_lossy(&request.body))
}

fn url_pairs(encoded: &str) -> HashMap<String, String> {
    reqwest::Url::parse(&format!("http://x/?{encoded}")).unwrap().query_pairs().into_owned().collect()
}

fn header_of(request: &Request, name: &str) -> Option<String> {
    request.headers.get(name).map(|v| v.to_str().unwrap().to_owned())
}

fn plan(kind: PlanKind) -> Plan {
    Plan {
        id: PlanId::new("pro"),
        name: "Pro".into(),
        description: String::new(),
        kind,
        price: Money::new(2900, Currency::parse("usd").unwrap()),
        processor_prices: BTreeMap::new(),
        limits: BTreeMap::new(),
        features: Default::default(),
        metered: Vec::new(),
        is_default: false,
    }
}

fn checkout_request(kind: PlanKind) -> CheckoutRequest {
    CheckoutRequest {
        workspace: workspace(),
        customer_id: CustomerId::new("cus_123"),
        plan: plan(kind),
        price_id: PriceId::new("price_pro_monthly"),
        success_url: "https://app.example.com/billing?ok=1".into(),
        cancel_url: "https://app.example.com/billing?canceled=1".into(),
        idempotency_key: "checkout:ws:pro:client-key-1".into(),
        coupon: None,
    }
}

async fn session_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "cs_test_1", "url": "https://checkout.stripe.com/c/cs_test_1"})),
        )
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn checkout_sends_everything_a_subscription_checkout_needs() {
    let server = session_server().await;
    let stripe = adapter(&server.uri());
    let request = checkout_request(PlanKind::Subscription { interval: Interval::Month });

    let session = stripe.create_checkout(&request).await.unwrap();
    assert_eq!(session.id.as_str(), "cs_test_1");
    assert_eq!(session.url, "https://checkout.stripe.com/c/cs_test_1");

    let sent = &server.received_requests().await.unwrap()[0];
    let fields = form(sent);
    let ws = request.workspace.id.as_str();
    let expected = [
        ("mode", "subscription"),
        ("customer", "cus_123"),
        ("client_reference_id", ws),
        ("line_items[0][price]", "price_pro_monthly"),
        ("line_items[0][quantity]", "1"),
        ("success_url", "https://app.example.com/billing?ok=1"),
        ("cancel_url", "https://app.example.com/billing?canceled=1"),
        ("allow_promotion_codes", "true"),
        ("automatic_tax[enabled]", "true"),
        ("billing_address_collection", "required"),
        ("customer_update[address]", "auto"),
        ("metadata[workspace_id]", ws),
        ("metadata[plan_id]", "pro"),
        ("subscription_data[metadata][workspace_id]", ws),
    ];
    for (key, value) in expected {
        assert_eq!(fields.get(key).map(String::as_str), Some(value), "{key} in {fields:?}");
    }
    assert_eq!(header_of(sent, "idempotency-key").as_deref(), Some("tollgate:checkout:ws:pro:client-key-1"));
    assert_eq!(header_of(sent, "stripe-version").as_deref(), Some(billing_stripe::api::api_version()));
    assert_eq!(header_of(sent, "authorization").as_deref(), Some("Bearer sk_test_tollgate_secret_key"));
}

#[tokio::test]
async fn a_credits_pack_checks_out_as_a_one_time_payment() {
    let server = session_server().await;
    let stripe = adapter(&server.uri());
    stripe.create_checkout(&checkout_request(PlanKind::Credits { credits: 10 })).await.unwrap();
    let fields = form(&server.received_requests().await.unwrap()[0]);
    assert_eq!(fields.get("mode").map(String::as_str), Some("payment"));
    assert!(fields.contains_key("payment_intent_data[metadata][workspace_id]"), "{fields:?}");
    assert!(!fields.keys().any(|k| k.starts_with("subscription_data")), "{fields:?}");
}

/// A redeemed coupon rides along as a Stripe coupon of the same discount, created once ("already exists" from an
/// earlier checkout is success), in the session's `discounts` — and then without promotion codes, which Stripe
/// refuses beside a discount.
#[tokio::test]
async fn a_coupon_becomes_a_stripe_coupon_in_the_sessions_discounts() {
    for coupon_answer in [
        ResponseTemplate::new(200).set_body_json(json!({"id": "tollgate_LAUNCH", "object": "coupon"})),
        ResponseTemplate::new(400).set_body_json(
            json!({"error": {"type": "invalid_request_error", "code": "resource_already_exists", "message": "exists"}}),
        ),
    ] {
        let server = session_server().await;
        Mock::given(method("POST")).and(path("/v1/coupons")).respond_with(coupon_answer).expect(1).mount(&server).await;
        let stripe = adapter(&server.uri());
        let coupon = billing_domain::coupon::Coupon {
            code: "LAUNCH".into(),
            discount: billing_domain::coupon::Discount::Percent { percent: 20 },
            valid_until: None,
            max_uses: Some(10),
            used_count: 1,
            plans: Vec::new(),
            created_at: chrono::Utc::now(),
        };
        let request = CheckoutRequest {
            coupon: Some(coupon),
            ..checkout_request(PlanKind::Subscription { interval: Interval::Month })
        };
        stripe.create_checkout(&request).await.unwrap();

        let received = server.received_requests().await.unwrap();
        let created = received.iter().find(|r| r.url.path() == "/v1/coupons").unwrap();
        let coupon_fields = form(created);
        let percent: Option<f64> = coupon_fields.get("percent_off").and_then(|p| p.parse().ok());
        assert_eq!(percent, Some(20.0), "{coupon_fields:?}");
        for (key, value) in [("id", "tollgate_LAUNCH"), ("duration", "once"), ("name", "LAUNCH")] {
            assert_eq!(coupon_fields.get(key).map(String::as_str), Some(value), "{key} in {coupon_fields:?}");
        }
        assert!(header_of(created, "idempotency-key").is_some_and(|k| k.contains("tollgate_LAUNCH")));
        let session = received.iter().find(|r| r.url.path() == "/v1/checkout/sessions").unwrap();
        let fields = form(session);
        assert_eq!(fields.get("discounts[0][coupon]").map(String::as_str), Some("tollgate_LAUNCH"), "{fields:?}");
        assert!(!fields.contains_key("allow_promotion_codes"), "{fields:?}");
    }
}

#[tokio::test]
async fn portal_sessions_return_to_the_product() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "bps_1", "url": "https://billing.stripe.com/p/session/x"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let url = adapter(&server.uri())
        .create_portal(&CustomerId::new("cus_9"), "https://app.example.com/billing")
        .await
        .unwrap();
    assert_eq!(url, "https://billing.stripe.com/p/session/x");
    let fields = form(&server.received_requests().await.unwrap()[0]);
    assert_eq!(fields.get("customer").map(String::as_str), Some("cus_9"));
    assert_eq!(fields.get("return_url").map(String::as_str), Some("https://app.example.com/billing"));
}

/// A subscription object in a recent API version (the period lives on the item).
fn subscription_json(price: &str, cancel_at_period_end: bool) -> Value {
    json!({
        "id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "active",
        "cancel_at_period_end": cancel_at_period_end,
        "items": {"object": "list", "data": [{
            "id": "si_1", "price": {"id": price}, "quantity": 1,
            "current_period_start": 1_767_225_600, "current_period_end": 1_769_904_000
        }]}
    })
}

#[tokio::test]
async fn changing_the_plan_swaps_the_item_price_with_the_configured_proration() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions/sub_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(subscription_json("price_basic", false)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/subscriptions/sub_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(subscription_json("price_pro", false)))
        .mount(&server)
        .await;
    let stripe = adapter(&server.uri());
    let snapshot = stripe
        .change_price(&SubscriptionId::new("sub_1"), &PriceId::new("price_pro"), Proration::AlwaysInvoice, "change:1")
        .await
        .unwrap();
    assert_eq!(snapshot.price_id, PriceId::new("price_pro"));
    assert_eq!(snapshot.status, SubscriptionStatus::Active);
    assert_eq!(snapshot.current_period_end.unwrap().timestamp(), 1_769_904_000);

    let requests = server.received_requests().await.unwrap();
    let update = requests.iter().find(|r| r.method.as_str() == "POST").unwrap();
    let fields = form(update);
    assert_eq!(fields.get("items[0][id]").map(String::as_str), Some("si_1"));
    assert_eq!(fields.get("items[0][price]").map(String::as_str), Some("price_pro"));
    assert_eq!(fields.get("proration_behavior").map(String::as_str), Some("always_invoice"));
    assert_eq!(header_of(update, "idempotency-key").as_deref(), Some("tollgate:change:1"));
}

/// localstripe previews only legacy `plan` items, so the preview's request and Stripe's answer are checked here:
/// the item swapped to the new price under the proration asked, and the proration lines summed — marked in the
/// line (older API versions) or in its parent (2025-03-31 on) — leaving out the next period's regular line.
#[tokio::test]
async fn a_plan_change_preview_sums_the_proration_lines_stripe_previews() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions/sub_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(subscription_json("price_basic", false)))
        .mount(&server)
        .await;
    let preview = json!({
        "object": "invoice", "currency": "usd", "amount_due": 5_250,
        "lines": {"object": "list", "data": [
            {"amount": -450, "proration": true, "description": "Unused time on Hobby"},
            {"amount": 2_450, "parent": {"type": "subscription_item_details",
                "subscription_item_details": {"proration": true, "subscription_item": "si_1"}}},
            {"amount": 4_900, "proration": false, "description": "Pro (next period)"}
        ]}
    });
    Mock::given(method("POST"))
        .and(path("/v1/invoices/create_preview"))
        .respond_with(ResponseTemplate::new(200).set_body_json(preview))
        .expect(1)
        .mount(&server)
        .await;
    let stripe = adapter(&server.uri());
    let previewed = stripe
        .preview_price_change(&SubscriptionId::new("sub_1"), &PriceId::new("price_pro"), Proration::CreateProrations)
        .await
        .unwrap();
    assert_eq!(previewed.prorated, Money::new(2_000, Currency::parse("usd").unwrap()));

    let requests = server.received_requests().await.unwrap();
    let asked = requests.iter().find(|r| r.url.path() == "/v1/invoices/create_preview").unwrap();
    let fields = form(asked);
    assert_eq!(fields.get("customer").map(String::as_str), Some("cus_1"));
    assert_eq!(fields.get("subscription").map(String::as_str), Some("sub_1"));
    assert_eq!(fields.get("subscription_details[items][0][id]").map(String::as_str), Some("si_1"));
    assert_eq!(fields.get("subscription_details[items][0][price]").map(String::as_str), Some("price_pro"));
    assert_eq!(fields.get("subscription_details[proration_behavior]").map(String::as_str), Some("create_prorations"));
    assert!(header_of(asked, "idempotency-key").is_none(), "a preview changes nothing: no key");
    assert_eq!(requests.iter().filter(|r| r.method.as_str() == "POST").count(), 1, "nothing else was sent");
}

#[tokio::test]
async fn usage_is_reported_as_a_meter_event_keyed_for_deduplication() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/billing/meter_events"))
        .and(header("idempotency-key", "tollgate:usage:ws_1:evt_42"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"object": "billing.meter_event", "identifier": "x"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let at = chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap();
    adapter(&server.uri())
        .report_usage(&CustomerId::new("cus_7"), "api_calls", "12.50".parse().unwrap(), at, "usage:ws_1:evt_42")
        .await
        .unwrap();
    let fields = form(&server.received_requests().await.unwrap()[0]);
    assert_eq!(fields.get("event_name").map(String::as_str), Some("api_calls"));
    assert_eq!(fields.get("payload[stripe_customer_id]").map(String::as_str), Some("cus_7"));
    assert_eq!(fields.get("payload[value]").map(String::as_str), Some("12.5"));
    assert_eq!(fields.get("identifier").map(String::as_str), Some("tollgate:usage:ws_1:evt_42"));
    assert_eq!(fields.get("timestamp").map(String::as_str), Some("1767225600"));
}

/// Answers each request with the next of `responses`, repeating the last.
struct Sequence {
    responses: Vec<ResponseTemplate>,
    served: Mutex<usize>,
}

impl Respond for Sequence {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut served = self.served.lock().unwrap();
        let index = (*served).min(self.responses.len() - 1);
        *served += 1;
        self.responses[index].clone()
    }
}

fn stripe_error(status: u16, should_retry: Option<bool>) -> ResponseTemplate {
    let mut response = ResponseTemplate::new(status).set_body_json(json!({"error": {
        "type": "api_error",
        "message": "Something broke; key sk_test_tollgate_secret_key and card 4242 are in this message",
    }}));
    if let Some(answer) = should_retry {
        response = response.insert_header("Stripe-Should-Retry", answer.to_string());
    }
    response
}

/// Mounts `responses` for portal sessions and returns the outcome and the requests Stripe saw.
async fn portal_with(responses: Vec<ResponseTemplate>) -> (Result<String, ProcessorError>, Vec<Request>) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .respond_with(Sequence { responses, served: Mutex::new(0) })
        .mount(&server)
        .await;
    let outcome = adapter(&server.uri()).create_portal(&CustomerId::new("cus_1"), "https://app.example.com").await;
    (outcome, server.received_requests().await.unwrap())
}

fn portal_ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"url": "https://billing.stripe.com/p/ok"}))
}

#[tokio::test]
async fn rate_limits_are_retried() {
    let (outcome, requests) = portal_with(vec![stripe_error(429, None), portal_ok()]).await;
    assert_eq!(outcome.unwrap(), "https://billing.stripe.com/p/ok");
    assert_eq!(requests.len(), 2);
}

#[tokio::test]
async fn server_errors_are_retried_only_when_stripe_allows() {
    let (outcome, requests) = portal_with(vec![stripe_error(500, Some(true)), portal_ok()]).await;
    assert_eq!(outcome.unwrap(), "https://billing.stripe.com/p/ok");
    assert_eq!(requests.len(), 2);

    let (outcome, requests) = portal_with(vec![stripe_error(500, None), portal_ok()]).await;
    assert!(matches!(outcome, Err(ProcessorError::Unavailable(_))), "{outcome:?}");
    assert_eq!(requests.len(), 1, "a 500 without Stripe-Should-Retry is not retried");

    let (outcome, requests) = portal_with(vec![stripe_error(429, Some(false)), portal_ok()]).await;
    assert!(matches!(outcome, Err(ProcessorError::Unavailable(_))), "{outcome:?}");
    assert_eq!(requests.len(), 1, "Stripe-Should-Retry: false forbids even a 429 retry");
}

#[tokio::test]
async fn retries_are_bounded() {
    let (outcome, requests) = portal_with(vec![stripe_error(503, Some(true))]).await;
    assert!(matches!(outcome, Err(ProcessorError::Unavailable(_))), "{outcome:?}");
    assert_eq!(requests.len(), 1 + config("http://unused").max_retries);
}

#[tokio::test]
async fn invalid_requests_are_rejected_with_a_safe_message() {
    let (outcome, requests) = portal_with(vec![stripe_error(400, None)]).await;
    assert_eq!(requests.len(), 1);
    let Err(ProcessorError::Rejected(reason)) = outcome else { panic!("{outcome:?}") };
    assert!(reason.contains("HTTP 400") && reason.contains("api_error"), "{reason}");
    for leak in ["sk_test", "Something broke", "4242"] {
        assert!(!reason.contains(leak), "the reason repeats Stripe's message: {reason}");
    }
}

#[tokio::test]
async fn an_unreachable_stripe_is_unavailable_after_retries() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let error = adapter(&format!("http://127.0.0.1:{port}"))
        .create_portal(&CustomerId::new("cus_1"), "https://app.example.com")
        .await
        .unwrap_err();
    let ProcessorError::Unavailable(reason) = error else { panic!("{error:?}") };
    assert!(reason.contains("connection failed"), "{reason}");
    assert!(!reason.contains("sk_test"), "{reason}");
}

/// Stripe's idempotency, emulated: the first request with a key creates an object, later ones replay it. The
/// first reply is slower than the client's timeout, as when a response is lost after Stripe acted.
#[derive(Clone)]
struct IdempotentCreate {
    prefix: &'static str,
    created: Arc<Mutex<HashMap<String, Value>>>,
    requests: Arc<Mutex<Vec<Option<String>>>>,
}

impl IdempotentCreate {
    fn new(prefix: &'static str) -> Self {
        Self { prefix, created: Arc::default(), requests: Arc::default() }
    }
}

impl Respond for IdempotentCreate {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let key = header_of(request, "idempotency-key");
        let mut requests = self.requests.lock().unwrap();
        requests.push(key.clone());
        let first_attempt = requests.len() == 1;
        let mut created = self.created.lock().unwrap();
        let next = created.len() + 1;
        let object = created
            .entry(key.unwrap_or_else(|| format!("no-key-{next}")))
            .or_insert_with(|| {
                json!({"id": format!("{}{next}", self.prefix), "url": "https://checkout.stripe.com/c/x", "metadata": {}})
            })
            .clone();
        let response = ResponseTemplate::new(200).set_body_json(object);
        if first_attempt { response.set_delay(Duration::from_secs(3)) } else { response }
    }
}

#[tokio::test]
async fn a_checkout_retried_after_a_timeout_creates_one_session() {
    let server = MockServer::start().await;
    let stripe_side = IdempotentCreate::new("cs_test_");
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(stripe_side.clone())
        .mount(&server)
        .await;
    let mut settings = config(&server.uri());
    settings.timeout = Duration::from_millis(300);
    let stripe = billing_stripe::StripeProcessor::new(settings).unwrap();

    let session =
        stripe.create_checkout(&checkout_request(PlanKind::Subscription { interval: Interval::Month })).await.unwrap();
    assert_eq!(session.id.as_str(), "cs_test_1");
    let keys = stripe_side.requests.lock().unwrap().clone();
    assert_eq!(keys.len(), 2, "the timed-out attempt was retried once");
    assert!(keys.iter().all(|k| k.as_deref() == Some("tollgate:checkout:ws:pro:client-key-1")), "{keys:?}");
    assert_eq!(stripe_side.created.lock().unwrap().len(), 1, "one Stripe object");
}

#[tokio::test]
async fn a_customer_creation_retried_after_a_timeout_creates_one_customer() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"object": "list", "data": [], "has_more": false})),
        )
        .mount(&server)
        .await;
    let stripe_side = IdempotentCreate::new("cus_");
    Mock::given(method("POST")).and(path("/v1/customers")).respond_with(stripe_side.clone()).mount(&server).await;
    let mut settings = config(&server.uri());
    settings.timeout = Duration::from_millis(300);
    let stripe = billing_stripe::StripeProcessor::new(settings).unwrap();
    let ws = workspace();

    let customer = stripe.ensure_customer(&ws, None).await.unwrap();
    assert_eq!(customer.as_str(), "cus_1");
    // The whole operation again, as after a crash before the link was stored: the same key, the same customer.
    let again = stripe.ensure_customer(&ws, None).await.unwrap();
    assert_eq!(again, customer);
    let keys = stripe_side.requests.lock().unwrap().clone();
    let expected = format!("tollgate:customer:{}", ws.id);
    assert!(keys.len() >= 2 && keys.iter().all(|k| k.as_deref() == Some(expected.as_str())), "{keys:?}");
    assert_eq!(stripe_side.created.lock().unwrap().len(), 1, "one Stripe customer");
}

/// A subscription object of `cus_1` with `id` and `status`.
fn listed_subscription(id: &str, status: &str) -> Value {
    let mut object = subscription_json("price_pro", false);
    object["id"] = json!(id);
    object["status"] = json!(status);
    object
}

#[tokio::test]
async fn a_customers_subscriptions_are_listed_in_every_status_page_after_page() {
    use wiremock::matchers::query_param;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions"))
        .and(query_param("starting_after", "sub_2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "has_more": false, "data": [listed_subscription("sub_3", "active")]
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "has_more": true,
            "data": [listed_subscription("sub_1", "canceled"), listed_subscription("sub_2", "past_due")]
        })))
        .mount(&server)
        .await;
    let stripe = adapter(&server.uri());
    let listed = stripe.list_for_customer(&CustomerId::new("cus_1")).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|s| s.subscription_id.as_str()).collect();
    assert_eq!(ids, ["sub_1", "sub_2", "sub_3"]);
    assert_eq!(listed[0].status, SubscriptionStatus::Canceled);

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let first = url_pairs(requests[0].url.query().unwrap_or_default());
    assert_eq!(first.get("customer").map(String::as_str), Some("cus_1"));
    assert_eq!(first.get("status").map(String::as_str), Some("all"), "canceled ones are listed too");
    assert!(!first.contains_key("starting_after"));
}

#[tokio::test]
async fn payment_intents_carry_their_key_metadata_and_description() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "pi_1", "object": "payment_intent", "client_secret": "pi_1_secret_x",
            "status": "requires_payment_method", "amount": 999, "currency": "usd"
        })))
        .mount(&server)
        .await;
    let ws = workspace();
    let request = PaymentIntentRequest {
        workspace_id: ws.id.clone(),
        customer_id: CustomerId::new("cus_123"),
        amount: Money::new(999, Currency::parse("USD").unwrap()),
        plan_id: Some(PlanId::new("credits10")),
        description: Some("Ten credits".into()),
        return_url: "https://app.example.com/billing".into(),
        idempotency_key: "payment:ws:key:backend:k1".into(),
    };
    let intent = adapter(&server.uri()).create_payment_intent(&request).await.unwrap();
    assert_eq!((intent.id.as_str(), intent.client_secret.as_str()), ("pi_1", "pi_1_secret_x"));
    let requests = server.received_requests().await.unwrap();
    let sent = &requests[0];
    let fields = form(sent);
    assert_eq!(header_of(sent, "idempotency-key").as_deref(), Some("tollgate:payment:ws:key:backend:k1"));
    assert_eq!(fields.get("amount").map(String::as_str), Some("999"));
    assert_eq!(fields.get("currency").map(String::as_str), Some("usd"));
    assert_eq!(fields.get("customer").map(String::as_str), Some("cus_123"));
    assert_eq!(fields.get("description").map(String::as_str), Some("Ten credits"));
    assert_eq!(fields.get("metadata[credits_plan_id]").map(String::as_str), Some("credits10"));
    assert_eq!(fields.get("metadata[workspace_id]").map(String::as_str), Some(ws.id.as_str()));
}

#[tokio::test]
async fn a_refund_stripe_refuses_is_rejected_and_keyed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "type": "invalid_request_error", "code": "amount_too_large",
            "message": "Refund amount ($12.00) is greater than unrefunded amount on charge ($10.00)"
        }})))
        .mount(&server)
        .await;
    let usd = Money::new(1200, Currency::parse("usd").unwrap());
    let refused = adapter(&server.uri()).refund(&PaymentId::new("pi_1"), Some(usd), "refund:rf_1").await;
    assert!(matches!(refused, Err(ProcessorError::Rejected(_))), "{refused:?}");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "a 400 is not retried");
    assert_eq!(header_of(&requests[0], "idempotency-key").as_deref(), Some("tollgate:refund:rf_1"));
    let fields = form(&requests[0]);
    assert_eq!(
        (fields.get("payment_intent").map(String::as_str), fields.get("amount").map(String::as_str)),
        (Some("pi_1"), Some("1200"))
    );
}
