//! The `tollgate` binary with `processor = "stripe"` against localstripe and PostgreSQL: real signed webhooks
//! change a workspace's plan and entitlements, a credit pack paid at Stripe grants its credits and is refunded
//! through it, and `tollgate reconcile` repairs what no webhook announced.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_e2e::{Server, postgres_database, repo_root, tollgate_binary};

const KEY: &str = "tg_dev_local_only";
const STRIPE_KEY: &str = "sk_test_e2e_never_logged_4f1c";
const WEBHOOK_SECRET: &str = "whsec_e2e_never_logged_9b2d";
/// The catalog's Stripe price of the `pro` plan (config/plans.toml).
const PRO_PRICE: &str = "price_pro_monthly";

fn localstripe_url() -> String {
    std::env::var("TOLLGATE_LOCALSTRIPE_URL")
        .expect("TOLLGATE_LOCALSTRIPE_URL is not set: run the tests with scripts/test, which starts localstripe")
}

/// Settings of a Stripe-backed tollgate on `database`.
fn stripe_env(database: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TOLLGATE__DATABASE__URL", database.to_owned()),
        ("TOLLGATE__PROCESSOR", "stripe".to_owned()),
        ("TOLLGATE__SANDBOX__ENABLED", "false".to_owned()),
        ("TOLLGATE__STRIPE__SECRET_KEY", STRIPE_KEY.to_owned()),
        ("TOLLGATE__STRIPE__WEBHOOK_SECRETS", format!("whsec_e2e_rotated_out,{WEBHOOK_SECRET}")),
        ("TOLLGATE__STRIPE__API_BASE", localstripe_url()),
        ("TOLLGATE__RECONCILE__INTERVAL_SECS", "0".to_owned()),
        // Debug level, so a leaked secret would have every chance to show up in the log.
        ("TOLLGATE__TELEMETRY__LEVEL", "debug,sqlx=info,hyper=info,hyper_util=info".to_owned()),
    ]
}

struct Localstripe {
    url: String,
    http: reqwest::Client,
}

impl Localstripe {
    async fn call(&self, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth("sk_test_e2e_setup")
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn ok(&self, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> Value {
        let (status, body) = self.call(method, path, form).await;
        assert!((200..300).contains(&status), "localstripe {path} → {status}: {body}");
        body
    }

    /// The catalog's pro price, created once per localstripe run.
    async fn ensure_pro_price(&self) {
        if self.call(reqwest::Method::GET, &format!("/v1/plans/{PRO_PRICE}"), &[]).await.0 == 200 {
            return;
        }
        let product = self.ok(reqwest::Method::POST, "/v1/products", &[("name", "Pro"), ("type", "service")]).await;
        let form = [
            ("id", PRO_PRICE),
            ("product", product["id"].as_str().unwrap()),
            ("amount", "2900"),
            ("currency", "usd"),
            ("interval", "month"),
        ];
        let (status, body) = self.call(reqwest::Method::POST, "/v1/plans", &form).await;
        // A concurrent test may have created it first (localstripe then answers 409 or "already exists").
        let exists = self.call(reqwest::Method::GET, &format!("/v1/plans/{PRO_PRICE}"), &[]).await.0 == 200;
        assert!(status == 200 || exists, "creating {PRO_PRICE}: {status} {body}");
    }

    async fn register_webhook(&self, id: &str, url: &str) {
        let response = self
            .http
            .post(format!("{}/_config/webhooks/{id}", self.url))
            .form(&[("url", url), ("secret", WEBHOOK_SECRET)])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }
}

/// Creates `workspace` and starts a checkout, which finds or creates its Stripe customer first. localstripe has no
/// Checkout, so the session itself fails (a clean 502, nothing changed but the customer link), and the buyer
/// "subscribes in Stripe" instead. Returns the customer Tollgate created, found by its workspace metadata.
async fn workspace_with_customer(
    client: &reqwest::Client,
    server: &Server,
    stripe: &Localstripe,
    workspace: &str,
    email: &str,
) -> String {
    let created = client
        .put(format!("{}/v1/workspaces/{workspace}", server.base_url))
        .bearer_auth(KEY)
        .json(&json!({"name": "E2E Stripe", "owner_email": email}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let checkout = client
        .post(format!("{}/v1/workspaces/{workspace}/checkout", server.base_url))
        .bearer_auth(KEY)
        .json(&json!({"plan": "pro"}))
        .send()
        .await
        .unwrap();
    assert_eq!(checkout.status(), 502);
    let problem: Value = checkout.json().await.unwrap();
    assert_eq!(problem["code"], "processor_rejected", "{problem}");
    let customers = stripe.ok(reqwest::Method::GET, &format!("/v1/customers?email={email}"), &[]).await;
    let customers = customers["data"].as_array().unwrap().clone();
    assert_eq!(customers.len(), 1, "one customer per workspace: {customers:?}");
    assert_eq!(customers[0]["metadata"]["workspace_id"], workspace);
    customers[0]["id"].as_str().unwrap().to_owned()
}

impl Localstripe {
    /// Gives `customer` a card and subscribes it to pro in Stripe; returns the subscription id.
    async fn subscribe_to_pro(&self, customer: &str) -> String {
        let card = [
            ("source[object]", "card"),
            ("source[number]", "4242424242424242"),
            ("source[exp_month]", "12"),
            ("source[exp_year]", "2034"),
            ("source[cvc]", "123"),
        ];
        self.ok(reqwest::Method::POST, &format!("/v1/customers/{customer}/sources"), &card).await;
        let subscription = self
            .ok(reqwest::Method::POST, "/v1/subscriptions", &[("customer", customer), ("items[0][plan]", PRO_PRICE)])
            .await;
        subscription["id"].as_str().unwrap().to_owned()
    }
}

async fn get(client: &reqwest::Client, server: &Server, path: &str) -> Value {
    let response = client.get(format!("{}{path}", server.base_url)).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

/// Polls the workspace until `done` holds (webhooks arrive about a second after the change).
async fn wait_for(client: &reqwest::Client, server: &Server, workspace: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let view = get(client, server, &format!("/v1/workspaces/{workspace}")).await;
        if done(&view) {
            return view;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "workspace never reached the expected state: {view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `tollgate reconcile` with `env`; returns its report.
fn reconcile(env: &[(&'static str, String)]) -> Value {
    let output = Command::new(tollgate_binary())
        .arg("reconcile")
        .current_dir(repo_root())
        .env("TOLLGATE_ENV", "development")
        .env("TOLLGATE_CONFIG_DIR", repo_root().join("config"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "tollgate reconcile failed:\n{stdout}\n{stderr}");
    for secret in [STRIPE_KEY, WEBHOOK_SECRET] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "reconcile printed a secret");
    }
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("the report on stdout is JSON ({e}):\n{stdout}"))
}

#[test]
fn stripe_webhooks_from_localstripe_drive_the_plan_and_reconcile_repairs_drift() {
    let database = postgres_database();
    let env = stripe_env(&database);
    let log = std::env::temp_dir().join(format!("tollgate-e2e-stripe-{}.log", std::process::id()));
    let server = Server::start_logging(&env, Some(&log));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let workspace = format!("ws-e2e-{}", uuid::Uuid::new_v4().simple());
    let email = format!("owner-{}@e2e.test", uuid::Uuid::new_v4().simple());

    runtime.block_on(async {
        let client = reqwest::Client::new();
        let stripe = Localstripe { url: localstripe_url(), http: client.clone() };
        stripe.ensure_pro_price().await;
        let hook_id = format!("tollgate-{}", uuid::Uuid::new_v4().simple());
        stripe.register_webhook(&hook_id, &format!("{}/webhooks/stripe", server.base_url)).await;

        let customer = workspace_with_customer(&client, &server, &stripe, &workspace, &email).await;

        let before: Value = get(&client, &server, &format!("/v1/workspaces/{workspace}/entitlements")).await;
        assert_eq!(before["plan"], "free");

        let subscription = stripe.subscribe_to_pro(&customer).await;

        // customer.subscription.created and invoice.payment_succeeded, signed by localstripe, make it pro.
        let active = wait_for(&client, &server, &workspace, |v| v["plan"] == "pro").await;
        assert_eq!(active["subscription_status"], "active");
        assert_eq!(active["plan_source"], "subscription");
        let entitlements = get(&client, &server, &format!("/v1/workspaces/{workspace}/entitlements")).await;
        assert_eq!(entitlements["plan"], "pro");
        assert_ne!(entitlements, before, "entitlements follow the plan");

        // localstripe announces no `customer.subscription.updated`: a withheld webhook. Reconciliation notices.
        stripe
            .ok(
                reqwest::Method::POST,
                &format!("/v1/subscriptions/{subscription}"),
                &[("cancel_at_period_end", "true")],
            )
            .await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let drifted = get(&client, &server, &format!("/v1/workspaces/{workspace}")).await;
        assert_eq!(drifted["cancel_at_period_end"], false, "no webhook told Tollgate");
        let report = reconcile(&env);
        let repaired = report["repaired"].as_array().unwrap();
        let ours: Vec<&Value> = repaired.iter().filter(|r| r["subscription_id"] == subscription.as_str()).collect();
        assert_eq!(ours.len(), 1, "{report}");
        assert_eq!(ours[0]["fields"], json!(["cancel_at_period_end"]));
        assert_eq!(report["failed"], json!([]), "{report}");
        let repaired_view = get(&client, &server, &format!("/v1/workspaces/{workspace}")).await;
        assert_eq!(repaired_view["cancel_at_period_end"], true);
        assert_eq!(repaired_view["plan"], "pro");
        let again = reconcile(&env);
        assert!(
            !again["repaired"].as_array().unwrap().iter().any(|r| r["subscription_id"] == subscription.as_str()),
            "a second run finds nothing to repair: {again}"
        );

        // Resume and cancel at period end through Tollgate's API: Stripe is asked, and the answer shows the change
        // at once (the state comes from Stripe's reply, ingested like a webhook).
        for (command, body, scheduled) in
            [("resume", json!({}), false), ("cancel", json!({"at_period_end": true}), true)]
        {
            let response = client
                .post(format!("{}/v1/workspaces/{workspace}/subscription/{command}", server.base_url))
                .bearer_auth(KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{command}");
            let answer: Value = response.json().await.unwrap();
            assert_eq!(answer["cancel_at_period_end"], scheduled, "{command}: {answer}");
            let shown = get(&client, &server, &format!("/v1/workspaces/{workspace}")).await;
            assert_eq!(shown["cancel_at_period_end"], scheduled, "{command} shows at once");
            let at_stripe = stripe.ok(reqwest::Method::GET, &format!("/v1/subscriptions/{subscription}"), &[]).await;
            assert_eq!(at_stripe["cancel_at_period_end"], scheduled, "{command} reached Stripe");
        }

        // Deleting the subscription in Stripe sends customer.subscription.deleted: back to free.
        stripe.ok(reqwest::Method::DELETE, &format!("/v1/subscriptions/{subscription}"), &[]).await;
        let free = wait_for(&client, &server, &workspace, |v| v["plan"] == "free").await;
        assert_eq!(free["subscription_status"], "canceled");
        let entitlements = get(&client, &server, &format!("/v1/workspaces/{workspace}/entitlements")).await;
        assert_eq!(entitlements, before);

        // A forged delivery is refused and changes nothing.
        let forged = client
            .post(format!("{}/webhooks/stripe", server.base_url))
            .header("stripe-signature", "t=1,v1=00")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 400);
        let body = forged.text().await.unwrap();
        assert!(!body.contains(WEBHOOK_SECRET) && !body.contains(STRIPE_KEY), "{body}");

        // Withhold everything from now on: localstripe's registry is global, so point this hook at nothing.
        stripe.register_webhook(&hook_id, "http://127.0.0.1:9/gone").await;
    });

    assert!(server.stop().success());
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("stripe processor active"), "the log was captured:\n{logged}");
    for secret in [STRIPE_KEY, WEBHOOK_SECRET, "whsec_e2e_rotated_out"] {
        assert!(!logged.contains(secret), "a secret appeared in the server log");
    }
    let _ = std::fs::remove_file(&log);
}

#[test]
fn reconcile_finds_a_subscription_whose_every_webhook_was_lost() {
    let database = postgres_database();
    let env = stripe_env(&database);
    let server = Server::start(&env);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let workspace = format!("ws-e2e-{}", uuid::Uuid::new_v4().simple());
    let email = format!("owner-{}@e2e.test", uuid::Uuid::new_v4().simple());

    runtime.block_on(async {
        let client = reqwest::Client::new();
        let stripe = Localstripe { url: localstripe_url(), http: client.clone() };
        stripe.ensure_pro_price().await;
        // No webhook endpoint points at this server: every event of the subscription below is lost to it.
        let customer = workspace_with_customer(&client, &server, &stripe, &workspace, &email).await;
        // An old subscription that already ended: history, nothing to ingest.
        let ended = stripe.subscribe_to_pro(&customer).await;
        stripe.ok(reqwest::Method::DELETE, &format!("/v1/subscriptions/{ended}"), &[]).await;
        let subscription = stripe.subscribe_to_pro(&customer).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let unaware = get(&client, &server, &format!("/v1/workspaces/{workspace}")).await;
        assert_eq!(unaware["plan"], "free", "no webhook reached Tollgate");
        let missing = client
            .get(format!("{}/v1/workspaces/{workspace}/subscription", server.base_url))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);

        let report = reconcile(&env);
        let discovered = report["discovered"].as_array().unwrap();
        let ours: Vec<&Value> = discovered.iter().filter(|d| d["subscription_id"] == subscription.as_str()).collect();
        assert_eq!(ours.len(), 1, "{report}");
        assert_eq!(ours[0]["workspace_id"], workspace.as_str());
        assert_eq!(ours[0]["status"], "active");
        assert!(
            !discovered.iter().any(|d| d["subscription_id"] == ended.as_str()),
            "an ended one is left alone: {report}"
        );
        let repaired = get(&client, &server, &format!("/v1/workspaces/{workspace}")).await;
        assert_eq!(repaired["plan"], "pro");
        assert_eq!(repaired["subscription_status"], "active");
        let again = reconcile(&env);
        assert!(
            !again["discovered"].as_array().unwrap().iter().any(|d| d["subscription_id"] == subscription.as_str()),
            "found once, then known: {again}"
        );
    });
    assert!(server.stop().success());
}

/// A payment intent for a credit pack, created through Tollgate at localstripe and paid there (as Stripe.js would):
/// localstripe's signed `payment_intent.succeeded` grants the pack's credits once; a refund through Tollgate
/// reaches localstripe and takes back its share; more than is left is refused before Stripe is asked.
#[test]
fn a_credit_pack_paid_at_stripe_grants_its_credits_and_refunds_through_stripe() {
    let database = postgres_database();
    let env = stripe_env(&database);
    let server = Server::start(&env);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let workspace = format!("ws-e2e-{}", uuid::Uuid::new_v4().simple());
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let stripe = Localstripe { url: localstripe_url(), http: client.clone() };
        let hook_id = format!("tollgate-{}", uuid::Uuid::new_v4().simple());
        stripe.register_webhook(&hook_id, &format!("{}/webhooks/stripe", server.base_url)).await;
        let api = |method: reqwest::Method, path: &str| {
            client.request(method, format!("{}{path}", server.base_url)).bearer_auth(KEY)
        };
        let email = format!("owner-{}@e2e.test", uuid::Uuid::new_v4().simple());
        let created = api(reqwest::Method::PUT, &format!("/v1/workspaces/{workspace}"))
            .json(&json!({"name": "E2E credits", "owner_email": email}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);

        let response = api(reqwest::Method::POST, &format!("/v1/workspaces/{workspace}/payment-intents"))
            .header("Idempotency-Key", "buy-pack-1")
            .json(&json!({"plan": "credits10"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let intent: Value = response.json().await.unwrap();
        let id = intent["payment_id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("pi_") && intent["client_secret"].as_str().unwrap().starts_with(&id), "{intent}");
        let at_stripe = stripe.ok(reqwest::Method::GET, &format!("/v1/payment_intents/{id}"), &[]).await;
        assert_eq!(
            (at_stripe["amount"].as_i64(), at_stripe["metadata"]["credits_plan_id"].as_str()),
            (Some(999), Some("credits10"))
        );

        // The customer pays: a card attached and the intent confirmed.
        let card = [
            ("type", "card"),
            ("card[number]", "4242424242424242"),
            ("card[exp_month]", "12"),
            ("card[exp_year]", "2034"),
            ("card[cvc]", "123"),
        ];
        let method = stripe.ok(reqwest::Method::POST, "/v1/payment_methods", &card).await;
        let pm = method["id"].as_str().unwrap();
        stripe.ok(reqwest::Method::POST, &format!("/v1/payment_intents/{id}"), &[("payment_method", pm)]).await;
        stripe.ok(reqwest::Method::POST, &format!("/v1/payment_intents/{id}/confirm"), &[]).await;

        let credited = wait_for(&client, &server, &workspace, |v| v["credit_balance"] == 10).await;
        assert_eq!(credited["credit_balance"], 10);
        let payment = get(&client, &server, &format!("/v1/payments/{id}")).await;
        assert_eq!(payment["payment"]["status"], "succeeded");

        let refunded = api(reqwest::Method::POST, &format!("/v1/payments/{id}/refund"))
            .json(&json!({"amount": 300}))
            .send()
            .await
            .unwrap();
        assert_eq!(refunded.status(), 201);
        let refunded: Value = refunded.json().await.unwrap();
        let refund_id = refunded["refund"]["processor_refund_id"].as_str().unwrap().to_owned();
        assert!(refund_id.starts_with("re_"), "{refunded}");
        assert_eq!(refunded["credits_revoked"], 3);
        let at_stripe = stripe.ok(reqwest::Method::GET, &format!("/v1/refunds/{refund_id}"), &[]).await;
        assert_eq!(
            (at_stripe["amount"].as_i64(), at_stripe["payment_intent"].as_str()),
            (Some(300), Some(id.as_str()))
        );
        let over = api(reqwest::Method::POST, &format!("/v1/payments/{id}/refund"))
            .json(&json!({"amount": 700}))
            .send()
            .await
            .unwrap();
        assert_eq!(over.status(), 409);
        assert_eq!(get(&client, &server, &format!("/v1/workspaces/{workspace}")).await["credit_balance"], 7);

        stripe.register_webhook(&hook_id, "http://127.0.0.1:9/gone").await;
    });
    assert!(server.stop().success());
}
