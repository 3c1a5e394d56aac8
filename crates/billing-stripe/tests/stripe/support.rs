//! Shared helpers: adapters pointed at a peer, and the peers' locations.

use std::time::Duration;

use billing_stripe::{StripeConfig, StripeProcessor};
use secrecy::SecretString;

/// The webhook secret the tests' adapters verify with.
pub const WEBHOOK_SECRET: &str = "whsec_tollgate_tests";

/// localstripe's URL from `scripts/test`. Missing means the tests run outside it: fail loudly, never skip.
pub fn localstripe_url() -> String {
    std::env::var("TOLLGATE_LOCALSTRIPE_URL").unwrap_or_else(|_| {
        panic!("TOLLGATE_LOCALSTRIPE_URL is not set: run the tests with scripts/test, which starts localstripe")
    })
}

/// The venv Python with Stripe's library, from `scripts/test`.
pub fn python() -> String {
    std::env::var("TOLLGATE_PYTHON").unwrap_or_else(|_| {
        panic!("TOLLGATE_PYTHON is not set: run the tests with scripts/test, which creates the Python venv")
    })
}

/// Adapter settings for a peer at `api_base`, with quick retries so retry tests stay fast.
pub fn config(api_base: &str) -> StripeConfig {
    let mut config =
        StripeConfig::new(SecretString::from("sk_test_tollgate_secret_key"), vec![SecretString::from(WEBHOOK_SECRET)]);
    config.api_base = api_base.to_owned();
    config.timeout = Duration::from_secs(5);
    config.min_backoff = Duration::from_millis(10);
    config.max_backoff = Duration::from_millis(50);
    config
}

pub fn adapter(api_base: &str) -> StripeProcessor {
    let config = config(api_base);
    config.validate().expect("test config is valid");
    StripeProcessor::new(config).expect("adapter builds")
}

/// A fresh workspace with a unique id and email, as the store would hand it to the adapter.
pub fn workspace() -> billing_domain::workspace::Workspace {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let now = chrono::Utc::now();
    billing_domain::workspace::Workspace {
        id: billing_domain::ids::WorkspaceId::parse(format!("ws_{unique}")).unwrap(),
        name: format!("Workspace {unique}"),
        owner_email: billing_domain::email::Email::parse(format!("owner-{unique}@example.com")).unwrap(),
        billing_details: Default::default(),
        trial_ends_at: None,
        trial_plan: None,
        credit_balance: 0,
        restricted: false,
        restricted_reason: None,
        created_at: now,
        updated_at: now,
    }
}

/// Direct calls to localstripe for what a test sets up behind the adapter's back (products, cards, subscriptions
/// created "in the Stripe dashboard"), the way the processor's own state would arise.
pub struct Localstripe {
    pub url: String,
    http: reqwest::Client,
}

impl Localstripe {
    pub fn new() -> Self {
        Self { url: localstripe_url(), http: reqwest::Client::new() }
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> serde_json::Value {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth("sk_test_tollgate_setup")
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("localstripe POST {path}: {e}"));
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(status.is_success(), "localstripe POST {path} → {status}: {body}");
        body
    }

    pub async fn get(&self, path: &str) -> serde_json::Value {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth("sk_test_tollgate_setup")
            .send()
            .await
            .unwrap_or_else(|e| panic!("localstripe GET {path}: {e}"));
        response.json().await.unwrap()
    }

    /// A monthly plan (localstripe's price object) with a unique id.
    pub async fn plan(&self, amount: i64) -> String {
        let product = self.post("/v1/products", &[("name", "Tollgate test"), ("type", "service")]).await;
        let id = format!("price_{}", uuid::Uuid::new_v4().simple());
        let amount = amount.to_string();
        self.post(
            "/v1/plans",
            &[
                ("id", id.as_str()),
                ("product", product["id"].as_str().unwrap()),
                ("amount", amount.as_str()),
                ("currency", "usd"),
                ("interval", "month"),
            ],
        )
        .await;
        id
    }

    /// Gives `customer` a card that pays.
    pub async fn add_card(&self, customer: &str) {
        self.post(
            &format!("/v1/customers/{customer}/sources"),
            &[
                ("source[object]", "card"),
                ("source[number]", "4242424242424242"),
                ("source[exp_month]", "12"),
                ("source[exp_year]", "2034"),
                ("source[cvc]", "123"),
            ],
        )
        .await;
    }

    /// Pays PaymentIntent `id` with a test card, as Stripe.js would with its client secret.
    pub async fn pay_intent(&self, id: &str) {
        let card = self
            .post(
                "/v1/payment_methods",
                &[
                    ("type", "card"),
                    ("card[number]", "4242424242424242"),
                    ("card[exp_month]", "12"),
                    ("card[exp_year]", "2034"),
                    ("card[cvc]", "123"),
                ],
            )
            .await;
        let card = card["id"].as_str().expect("a payment method id").to_owned();
        self.post(&format!("/v1/payment_intents/{id}"), &[("payment_method", card.as_str())]).await;
        let confirmed = self.post(&format!("/v1/payment_intents/{id}/confirm"), &[]).await;
        assert_eq!(confirmed["status"], "succeeded", "{confirmed}");
    }

    /// An active subscription of `customer` to `plan`; returns its id.
    pub async fn subscribe(&self, customer: &str, plan: &str) -> String {
        let subscription = self.post("/v1/subscriptions", &[("customer", customer), ("items[0][plan]", plan)]).await;
        subscription["id"].as_str().unwrap().to_owned()
    }

    /// Registers a webhook endpoint; localstripe signs every later event with `secret` and POSTs it to `url`.
    pub async fn register_webhook(&self, url: &str, secret: &str) {
        let id = format!("wh_{}", uuid::Uuid::new_v4().simple());
        let response = self
            .http
            .post(format!("{}/_config/webhooks/{id}", self.url))
            .form(&[("url", url), ("secret", secret)])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "registering a localstripe webhook: {}", response.status());
    }
}
