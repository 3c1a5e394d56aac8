//! The billing page over HTTP as a browser without JavaScript meets it: a link minted over the API, opened once into
//! a cookie session, the page, and its forms. (A real Chromium drives it in the browser tests.)

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::helpers::{Backend, DEV_KEY, READ_KEY, TestApp, on_both_databases, spawn_app, spawn_app_with};
use crate::transcript::Client;

/// A browser: no redirects followed (the tests look at each one), one cookie kept by hand.
struct Browser {
    client: Client,
    cookie: Option<String>,
}

impl Browser {
    fn new() -> Self {
        let inner = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
        Self { client: Client::new(inner), cookie: None }
    }

    /// Opens a minted link: the answer, and the session cookie it set (kept for later requests).
    async fn open(&mut self, url: &str) -> reqwest::Response {
        let response = self.client.get(url).send().await.unwrap();
        if let Some(set) = response.headers().get("set-cookie") {
            let set = set.to_str().unwrap().to_owned();
            self.cookie = Some(set.split(';').next().unwrap().to_owned());
        }
        response
    }

    async fn get(&self, app: &TestApp, path: &str) -> reqwest::Response {
        let mut request = self.client.get(app.url(path));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap()
    }

    /// The page's HTML, checked to be a 200.
    async fn page(&self, app: &TestApp, workspace: &str) -> String {
        let response = self.get(app, &format!("/billing/{workspace}")).await;
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// The page a redirect led to (its flash message in the query), checked to be a 200.
    async fn follow(&self, app: &TestApp, location: &str) -> String {
        let response = self.get(app, location).await;
        assert_eq!(response.status(), 200, "{location}");
        response.text().await.unwrap()
    }

    /// Posts a form of the page (its fields as `name=value` pairs) and returns where it redirects.
    async fn post(&self, app: &TestApp, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let body: Vec<String> = fields.iter().map(|(name, value)| format!("{name}={}", encode(value))).collect();
        let mut request = self
            .client
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap()
    }

    /// Submits the page's form for `action` as rendered (its CSRF token and attempt), plus `extra` fields.
    async fn submit(&self, app: &TestApp, workspace: &str, action: &str, extra: &[(&str, &str)]) -> String {
        let html = self.page(app, workspace).await;
        let path = format!("/billing/{workspace}/actions/{action}");
        assert!(html.contains(&format!("action=\"{path}\"")), "no {action} form on the page");
        let (csrf, attempt) = (hidden(&html, "csrf"), hidden(&html, "attempt"));
        let mut fields = vec![("csrf", csrf.as_str()), ("attempt", attempt.as_str())];
        fields.extend_from_slice(extra);
        let response = self.post(app, &path, &fields).await;
        assert_eq!(response.status(), 303, "{action}: {}", response.text().await.unwrap());
        location(&response)
    }
}

/// Percent-encodes a form value (RFC 3986 unreserved characters pass).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of the first hidden input named `name`.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} field")) + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

fn location(response: &reqwest::Response) -> String {
    response.headers().get("location").expect("a Location").to_str().unwrap().to_owned()
}

/// The text of the element marked `data-testid="{id}"`.
fn testid(html: &str, id: &str) -> String {
    let marker = format!("data-testid=\"{id}\">");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {id} on the page")) + marker.len();
    html[start..].split('<').next().unwrap().trim().to_owned()
}

/// Mints a link for `workspace` with `key` and `body`: the answer's status and JSON.
async fn mint(app: &TestApp, key: &str, workspace: &str, body: Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(&format!("/v1/workspaces/{workspace}/billing-page-sessions")))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn owner_link(app: &TestApp, workspace: &str) -> String {
    let (status, minted) = mint(app, DEV_KEY, workspace, json!({"user": {"id": "u-owner", "role": "owner"}})).await;
    assert_eq!(status, 201, "{minted}");
    minted["url"].as_str().unwrap().to_owned()
}

async fn an_owner_opens_the_page_once_and_upgrades_cancels_and_resumes_there(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.put_workspace("acme").await.status(), 201);
    let (status, minted) = mint(&app, DEV_KEY, "acme", json!({"user": {"id": "u-owner", "role": "owner"}})).await;
    assert_eq!(status, 201, "{minted}");
    let url = minted["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/billing/open/", app.address)), "{url}");
    let expires_at = chrono::DateTime::parse_from_rfc3339(minted["expires_at"].as_str().unwrap()).unwrap();
    let ttl = expires_at.signed_duration_since(chrono::Utc::now());
    assert!(ttl > chrono::Duration::minutes(14) && ttl <= chrono::Duration::minutes(15), "{ttl}");

    let mut browser = Browser::new();
    let opened = browser.open(url).await;
    assert_eq!(opened.status(), 303);
    assert_eq!(location(&opened), "/billing/acme");
    let cookie = opened.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/billing/acme"] {
        assert!(cookie.contains(attribute), "{attribute} missing from {cookie}");
    }
    assert!(!cookie.contains("Secure"), "an http public_url cannot keep a Secure cookie: {cookie}");

    let response = browser.get(&app, "/billing/acme").await;
    assert_eq!(response.status(), 200);
    let policy = response.headers().get("content-security-policy").unwrap().to_str().unwrap().to_owned();
    assert!(policy.contains("default-src 'none'") && !policy.contains("script-src"), "{policy}");
    let html = response.text().await.unwrap();
    assert!(!html.contains("<script"), "the page needs no script");
    assert_eq!(testid(&html, "plan-name"), "Free");
    assert!(html.contains("Acme"), "the workspace's name is shown");

    // The link was single use.
    let reused = Browser::new().open(url).await;
    assert_eq!(reused.status(), 410);
    assert!(reused.text().await.unwrap().contains("already been used"));

    // Upgrade: the form goes to the sandbox checkout, paying there makes the workspace pro.
    let checkout = browser.submit(&app, "acme", "checkout", &[("plan", "pro"), ("coupon", "")]).await;
    let session_id = checkout.rsplit('/').next().unwrap().to_owned();
    assert!(checkout.contains("/sandbox/checkout/"), "{checkout}");
    assert_eq!(app.press(&session_id, "pay").await.status(), 200);
    let html = browser.page(&app, "acme").await;
    assert_eq!(testid(&html, "plan-name"), "Pro");
    assert!(testid(&html, "plan-status").starts_with("Active"), "{}", testid(&html, "plan-status"));

    // Cancel at period end, then resume.
    let canceled = browser.submit(&app, "acme", "cancel", &[]).await;
    assert_eq!(canceled, "/billing/acme?notice=canceled");
    assert_eq!(app.json_of("/v1/workspaces/acme/subscription").await["cancel_at_period_end"], true);
    let html = browser.page(&app, "acme").await;
    assert!(testid(&html, "plan-status").ends_with("then canceled"), "{}", testid(&html, "plan-status"));
    assert!(html.contains("/actions/resume"), "a canceled subscription offers resume");
    let resumed = browser.submit(&app, "acme", "resume", &[]).await;
    assert_eq!(resumed, "/billing/acme?notice=resumed");
    assert_eq!(app.json_of("/v1/workspaces/acme/subscription").await["cancel_at_period_end"], false);

    // Each action is audited as the page's user.
    let audit = app.json_of("/v1/workspaces/acme/audit?limit=200").await;
    let entries = audit["entries"].as_array().unwrap();
    for action in ["checkout.started", "subscription.cancel_scheduled", "subscription.resumed"] {
        let entry = entries.iter().find(|e| e["action"] == action).unwrap_or_else(|| panic!("{action}: {audit}"));
        assert_eq!(entry["actor"], json!({"type": "user", "id": "u-owner"}), "{action}");
    }
}
on_both_databases!(
    an_owner_opens_the_page_once_and_upgrades_cancels_and_resumes_there,
    an_owner_opens_the_page_once_and_upgrades_cancels_and_resumes_there
);

async fn forged_and_foreign_requests_change_and_show_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    for id in ["acme", "globex"] {
        app.put_workspace(id).await;
    }
    let body = json!({"name": "Globex Secret", "owner_email": "owner@globex.test"});
    let renamed = app.client.put(app.url("/v1/workspaces/globex")).bearer_auth(DEV_KEY).json(&body).send().await;
    assert!(renamed.unwrap().status().is_success());
    // An active subscription, so that a cancel that got through would show.
    let session = app.checkout("acme", "pro").await;
    assert_eq!(app.press(session["session_id"].as_str().unwrap(), "pay").await.status(), 200);
    let mut browser = Browser::new();
    assert_eq!(browser.open(&owner_link(&app, "acme").await).await.status(), 303);
    let audited = app.audit_actions("acme").await.len();

    // A form posted without the session's token (a forged one) is refused and changes nothing.
    for csrf in ["", "forged-token"] {
        let refused = browser.post(&app, "/billing/acme/actions/cancel", &[("csrf", csrf), ("attempt", "a1")]).await;
        assert_eq!(refused.status(), 403);
        assert!(refused.text().await.unwrap().contains("expired"), "the customer is told to reload");
    }
    // Without the cookie, a form with the right token is refused as well.
    let html = browser.page(&app, "acme").await;
    let stranger = Browser::new();
    let (csrf, attempt) = (hidden(&html, "csrf"), hidden(&html, "attempt"));
    let fields = [("csrf", csrf.as_str()), ("attempt", attempt.as_str())];
    assert_eq!(stranger.post(&app, "/billing/acme/actions/cancel", &fields).await.status(), 401);
    assert_eq!(app.json_of("/v1/workspaces/acme/subscription").await["cancel_at_period_end"], false);
    assert_eq!(app.audit_actions("acme").await.len(), audited, "nothing was audited");

    // Acme's session never shows globex, and globex's page looks like no page at all.
    let theirs = browser.get(&app, "/billing/globex").await;
    assert_eq!(theirs.status(), 404);
    assert!(!theirs.text().await.unwrap().contains("Globex"));
    let nobody = browser.get(&app, "/billing/no-such-workspace").await;
    assert_eq!(nobody.status(), 404);
    let forged = browser.post(&app, "/billing/globex/actions/cancel", &fields).await;
    assert_eq!(forged.status(), 404);
    assert!(!browser.page(&app, "acme").await.contains("Globex"));

    // A tampered cookie, or none, opens nothing.
    let mut tampered = Browser::new();
    tampered.cookie = browser.cookie.as_ref().map(|c| format!("{c}x"));
    assert_eq!(tampered.get(&app, "/billing/acme").await.status(), 401);
    assert_eq!(Browser::new().get(&app, "/billing/acme").await.status(), 401);
    // A link that is not one.
    assert_eq!(Browser::new().open(&app.url("/billing/open/not-a-link")).await.status(), 404);
}
on_both_databases!(
    forged_and_foreign_requests_change_and_show_nothing,
    forged_and_foreign_requests_change_and_show_nothing
);

async fn a_member_sees_the_page_read_only(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    assert_eq!(app.post_json("/v1/workspaces/acme/trial", json!({})).await.status(), 201);
    let before = app.json_of("/v1/workspaces/acme").await;
    let audited = app.audit_actions("acme").await.len();
    // A read-only key opens it for a member; so does any key naming a member.
    let (status, by_reader) = mint(&app, READ_KEY, "acme", json!({})).await;
    assert_eq!(status, 201, "{by_reader}");
    let (_, named) = mint(&app, DEV_KEY, "acme", json!({"user": {"id": "u-member", "role": "member"}})).await;
    for minted in [by_reader, named] {
        let mut browser = Browser::new();
        assert_eq!(browser.open(minted["url"].as_str().unwrap()).await.status(), 303);
        let html = browser.page(&app, "acme").await;
        assert!(!html.contains("<form"), "a member sees no buttons");
        assert!(html.contains("Ask an owner or admin to change it."), "and is told why");
        // A post all the same (the token is the session's, the page just had no form) changes nothing.
        let csrf = session_csrf(&browser);
        let refused = browser.post(&app, "/billing/acme/actions/cancel", &[("csrf", &csrf), ("attempt", "a1")]).await;
        assert_eq!(refused.status(), 303);
        assert_eq!(location(&refused), "/billing/acme?problem=read_only");
    }
    assert_eq!(app.json_of("/v1/workspaces/acme").await, before);
    assert_eq!(app.audit_actions("acme").await.len(), audited, "nothing was done, so nothing audited");
}
on_both_databases!(a_member_sees_the_page_read_only, a_member_sees_the_page_read_only);

/// The form token a session carries (a member's page renders no form to read it from). The cookie is HttpOnly, so
/// no script of any page reads it; the test does, to post as a member's hand-written form could.
fn session_csrf(browser: &Browser) -> String {
    let cookie = browser.cookie.as_ref().unwrap();
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(cookie.split_once('=').unwrap().1).unwrap();
    claims["csrf"].as_str().expect("the session carries its form token").to_owned()
}

async fn links_are_checked_when_minted(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    let cases = [
        (json!({"locale": "fr"}), "locale"),
        (json!({"return_url": "javascript:alert(1)"}), "return_url"),
        (json!({"counts": {"storage_gb": 3}}), "counts.storage_gb"),
        (json!({"counts": {"teleports": 3}}), "counts.teleports"),
        (json!({"user": {"id": "", "role": "owner"}}), "user.id"),
        (json!({"user": {"id": "u", "role": "emperor"}}), "user.role"),
        (json!({"surprise": true}), "surprise"),
    ];
    for (body, field) in cases {
        let (status, problem) = mint(&app, DEV_KEY, "acme", body.clone()).await;
        assert!(matches!(status, 400 | 422), "{body}: {status} {problem}");
        let named = problem["errors"].as_array().unwrap().iter().any(|e| e["field"] == field);
        assert!(named, "{body}: {field} not named in {problem}");
    }
    let (status, problem) = mint(&app, DEV_KEY, "nobody", json!({})).await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("workspace_not_found")));
    // A read-only key cannot open the page for someone who may change the plan.
    let (status, problem) = mint(&app, READ_KEY, "acme", json!({"user": {"id": "u", "role": "owner"}})).await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("insufficient_scope")), "{problem}");
}
on_both_databases!(links_are_checked_when_minted, links_are_checked_when_minted);

async fn usage_and_counts_show_as_bars(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    let (status, minted) = mint(&app, DEV_KEY, "acme", json!({"counts": {"workspace_members": 1}})).await;
    assert_eq!(status, 201, "{minted}");
    let mut browser = Browser::new();
    browser.open(minted["url"].as_str().unwrap()).await;
    let html = browser.page(&app, "acme").await;
    assert!(html.contains("0 of 500"), "no alerts yet on the free plan's 500");
    assert!(html.contains("1 of 1"), "the member count given at minting, at its limit");

    let timestamp = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let events: Vec<Value> = (0..420)
        .map(|i| json!({"id": format!("a{i}"), "workspace_id": "acme", "metric": "alerts", "quantity": 1, "timestamp": timestamp}))
        .collect();
    let ingested: Value = app.post_json("/v1/usage", json!({"events": events})).await.json().await.unwrap();
    assert_eq!(ingested["accepted"], 420, "{ingested}");
    let html = browser.page(&app, "acme").await;
    assert!(html.contains("420 of 500"), "the bar moved");
    assert!(html.contains("width=\"84.0\""), "the bar is 84% full");
    assert!(html.contains("level-warn"), "from 80% the bar warns");
}
on_both_databases!(usage_and_counts_show_as_bars, usage_and_counts_show_as_bars);

#[tokio::test]
async fn an_expired_link_is_refused() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.clock.mode = billing_app::settings::ClockMode::Test).await;
    app.put_workspace("acme").await;
    let url = owner_link(&app, "acme").await;
    let advanced = app.post_json("/v1/admin/clock/advance", json!({"hours": 1})).await;
    assert_eq!(advanced.status(), 200);
    let expired = Browser::new().open(&url).await;
    assert_eq!(expired.status(), StatusCode::GONE);
    assert!(expired.text().await.unwrap().contains("expired"));
}

/// Ten browsers open one link at once: exactly one gets the session (PostgreSQL, where the redemptions race).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_opened_at_once_by_ten_browsers_opens_one_session() {
    let app = spawn_app(Backend::Postgres).await;
    app.put_workspace("acme").await;
    let url = owner_link(&app, "acme").await;
    let opens = (0..10).map(|_| {
        let url = url.clone();
        async move { Browser::new().open(&url).await.status().as_u16() }
    });
    let mut statuses = futures::future::join_all(opens).await;
    statuses.sort_unstable();
    assert_eq!(statuses, [303, 410, 410, 410, 410, 410, 410, 410, 410, 410]);
}

/// An owner's session on `workspace`, opened.
async fn owner_session(app: &TestApp, workspace: &str) -> Browser {
    let mut browser = Browser::new();
    assert_eq!(browser.open(&owner_link(app, workspace).await).await.status(), 303);
    browser
}

async fn pay_for(app: &TestApp, workspace: &str, plan: &str) {
    let session = app.checkout(workspace, plan).await;
    assert_eq!(app.press(session["session_id"].as_str().unwrap(), "pay").await.status(), 200);
}

async fn each_state_is_told_in_the_customers_words(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.clock.mode = billing_app::settings::ClockMode::Test).await;
    for id in ["trying", "paying", "late"] {
        app.put_workspace(id).await;
    }
    // Free: the trial is offered once, and starting it says how long it lasts.
    let browser = owner_session(&app, "trying").await;
    let free = browser.page(&app, "trying").await;
    assert_eq!(testid(&free, "plan-status"), "Free plan");
    assert!(!free.contains("prorated"), "a first checkout prorates nothing, so no proration words");
    assert!(!free.contains("/actions/portal"), "no card to manage before a first checkout");
    assert!(free.contains("No usage in either period: "), "unused metrics in one line, not as empty charts");
    assert!(!free.contains("<svg class=\"chart\""));
    let started = browser.submit(&app, "trying", "start-trial", &[]).await;
    assert_eq!(started, "/billing/trying?notice=trial_started");
    let html = browser.follow(&app, &started).await;
    assert_eq!(testid(&html, "plan-status"), "Trial: 14 days left");
    assert!(html.contains("Your trial has started."));
    assert!(!html.contains("/actions/start-trial"), "the trial is offered once");

    // Pro: unlimited limits say so, and the paid invoice is listed with its amount.
    pay_for(&app, "paying", "pro").await;
    let html = owner_session(&app, "paying").await.page(&app, "paying").await;
    assert!(testid(&html, "plan-status").starts_with("Active"));
    assert!(html.contains("<span class=\"value\">Unlimited</span>"), "pro's unlimited limits");
    assert!(html.contains("49.00 USD"), "the paid invoice");
    // What switching would bill, as the processor previews it: the sandbox prorates nothing.
    let preview = testid(&html, "preview-hobby");
    assert_eq!(preview, "Switching now costs nothing extra; the new price applies from your next invoice.");
    assert!(!html.contains("the difference is prorated"), "no general words to contradict the preview");

    // Past due: the next charge declines at renewal; the page says what is owed and what happens next.
    pay_for(&app, "late", "pro").await;
    let card = json!({"decline_next_charge": true});
    let declined = app.client.put(app.url("/v1/admin/sandbox/workspaces/late/card")).bearer_auth(DEV_KEY).json(&card);
    assert_eq!(declined.send().await.unwrap().status(), 200);
    let period_end = app.json_of("/v1/workspaces/late/subscription").await["current_period_end"].clone();
    let advanced = app.post_json("/v1/admin/clock/advance", json!({"to": period_end})).await;
    assert_eq!(advanced.status(), 200, "{}", advanced.text().await.unwrap());
    // Advanced to exactly the period end the API shows, the renewal ran (and declined) before the answer.
    assert_eq!(app.json_of("/v1/workspaces/late").await["subscription_status"], "past_due");
    let html = owner_session(&app, "late").await.page(&app, "late").await;
    assert_eq!(testid(&html, "plan-status"), "Payment failed: past due");
    assert!(html.contains("Amount due: 49.00 USD"), "what is owed");
    assert!(html.contains(": we send"), "what happens next, and when");
}
on_both_databases!(each_state_is_told_in_the_customers_words, each_state_is_told_in_the_customers_words);

async fn credits_and_coupons_go_through_the_page(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    let coupon = json!({"code": "LAUNCH", "percent_off": 20, "max_uses": 100});
    assert_eq!(app.post_json("/v1/coupons", coupon).await.status(), 201);
    let browser = owner_session(&app, "acme").await;

    // A coupon that does not exist is told as such, and no checkout starts.
    let refused = browser.submit(&app, "acme", "checkout", &[("plan", "hobby"), ("coupon", "NOPE")]).await;
    assert_eq!(refused, "/billing/acme?problem=coupon_invalid");
    assert!(browser.follow(&app, &refused).await.contains("That coupon code is not valid for this plan."));
    assert!(!app.audit_actions("acme").await.iter().any(|a| a == "checkout.started"));
    // A real one discounts the checkout.
    let checkout = browser.submit(&app, "acme", "checkout", &[("plan", "hobby"), ("coupon", "launch")]).await;
    let sandbox = app.client.get(&checkout).send().await.unwrap().text().await.unwrap();
    assert!(sandbox.contains("7.20"), "20% off 9.00: {sandbox}");

    // A credit pack bought on the page shows in the balance and the ledger.
    let pack = browser.submit(&app, "acme", "buy-credits", &[("plan", "credits10")]).await;
    let session_id = pack.rsplit('/').next().unwrap();
    assert_eq!(app.press(session_id, "pay").await.status(), 200);
    let html = browser.page(&app, "acme").await;
    assert_eq!(testid(&html, "credit-balance"), "10 credits");
    assert!(html.contains("<td class=\"num\">+10</td>"), "the grant in the ledger");
}
on_both_databases!(credits_and_coupons_go_through_the_page, credits_and_coupons_go_through_the_page);

/// Stripe unreachable: the page still shows what Tollgate knows, and an action says, in words, that nothing changed.
#[tokio::test]
async fn a_processor_outage_is_told_in_words_and_changes_nothing() {
    let app = crate::helpers::spawn_stripe_app(Backend::Sqlite).await;
    app.put_workspace("acme").await;
    let browser = owner_session(&app, "acme").await;
    let refused = browser.submit(&app, "acme", "checkout", &[("plan", "pro"), ("coupon", "")]).await;
    assert_eq!(refused, "/billing/acme?problem=processor");
    let html = browser.follow(&app, &refused).await;
    assert!(html.contains("The payment provider could not be reached, so nothing was changed."));
    assert!(!html.contains("panicked") && !html.contains("Error("), "no internals on the page");
    assert_eq!(testid(&html, "plan-name"), "Free");
}

#[tokio::test]
async fn a_disabled_page_is_not_there() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.billing_page.enabled = false).await;
    app.put_workspace("acme").await;
    let (status, problem) = mint(&app, DEV_KEY, "acme", json!({})).await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("route_not_found")), "{problem}");
    assert_eq!(Browser::new().get(&app, "/billing/acme").await.status(), 404);
    assert_eq!(Browser::new().get(&app, "/assets/billing-page.css").await.status(), 404);
}

/// The product's name, logo and accent colour come from `[billing_page]`, and the page's language from the link.
#[tokio::test]
async fn the_product_brands_the_page_and_the_link_picks_its_language() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.billing_page.product_name = "Acme Cloud".into();
        s.billing_page.logo_url = Some("https://cdn.acme.test/logo.svg".into());
        s.billing_page.accent_color = "#0F766E".into();
    })
    .await;
    app.put_workspace("acme").await;
    let (_, minted) =
        mint(&app, DEV_KEY, "acme", json!({"locale": "es", "return_url": "https://app.acme.test/"})).await;
    let mut browser = Browser::new();
    browser.open(minted["url"].as_str().unwrap()).await;
    let html = browser.page(&app, "acme").await;
    assert!(html.contains("<html lang=\"es\""), "the link's language");
    assert!(html.contains("<img src=\"https://cdn.acme.test/logo.svg\" alt=\"Acme Cloud\""), "the logo");
    assert!(html.contains("<title>Facturación · Acme Cloud</title>"), "{}", &html[..html.find("</title>").unwrap()]);
    assert!(html.contains("href=\"https://app.acme.test/\">Volver a Acme Cloud</a>"), "the way back");
    let css = browser.get(&app, "/assets/billing-page.css").await.text().await.unwrap();
    assert!(css.contains("--accent: #0f766e;"), "the accent colour");
}

/// A form posted twice — at once, and again later — does its work once; every post is answered with where the
/// first went. Concurrent posts race on PostgreSQL.
async fn a_form_posted_twice_does_its_work_once(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    pay_for(&app, "acme", "pro").await;
    let browser = owner_session(&app, "acme").await;
    let html = browser.page(&app, "acme").await;
    let (csrf, attempt) = (hidden(&html, "csrf"), hidden(&html, "attempt"));
    let fields = [("csrf", csrf.as_str()), ("attempt", attempt.as_str())];
    let posts = (0..4).map(|_| browser.post(&app, "/billing/acme/actions/cancel", &fields));
    let answers = futures::future::join_all(posts).await;
    let mut locations: Vec<String> = answers.iter().map(location).collect();
    locations.push(location(&browser.post(&app, "/billing/acme/actions/cancel", &fields).await));
    for answer in &answers {
        assert_eq!(answer.status(), 303);
    }
    // One post ran; the others, at once or after, either replayed it or (while it ran) were told it is under way.
    let done = locations.iter().filter(|l| *l == "/billing/acme?notice=canceled").count();
    let waiting = locations.iter().filter(|l| *l == "/billing/acme?problem=in_progress").count();
    assert_eq!(done + waiting, locations.len(), "{locations:?}");
    assert_eq!(locations.last().unwrap(), "/billing/acme?notice=canceled", "the first answer, replayed");
    let cancels = app.audit_actions("acme").await.iter().filter(|a| *a == "subscription.cancel_scheduled").count();
    assert_eq!(cancels, 1, "canceled once");
    // The same attempt with a changed form is not taken for the first.
    let changed = [("csrf", csrf.as_str()), ("attempt", attempt.as_str()), ("coupon", "OTHER")];
    let refused = browser.post(&app, "/billing/acme/actions/cancel", &changed).await;
    assert_eq!(location(&refused), "/billing/acme?problem=form_expired");
}
on_both_databases!(a_form_posted_twice_does_its_work_once, a_form_posted_twice_does_its_work_once);

/// The card is the processor's to manage: the page's button opens its portal, returning to the page.
async fn the_portal_button_opens_the_processors_portal(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    pay_for(&app, "acme", "pro").await;
    let browser = owner_session(&app, "acme").await;
    let portal = browser.submit(&app, "acme", "portal", &[]).await;
    assert!(portal.starts_with(&format!("{}/sandbox/portal/", app.address)), "{portal}");
    let page = app.client.get(&portal).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(&format!("{}/billing/acme", app.address)), "the portal returns to the page: {page}");
    let audit = app.json_of("/v1/workspaces/acme/audit?limit=200").await;
    let opened = audit["entries"].as_array().unwrap().iter().find(|e| e["action"] == "portal.opened");
    assert_eq!(opened.map(|e| e["actor"].clone()), Some(json!({"type": "user", "id": "u-owner"})), "{audit}");
}
on_both_databases!(the_portal_button_opens_the_processors_portal, the_portal_button_opens_the_processors_portal);
