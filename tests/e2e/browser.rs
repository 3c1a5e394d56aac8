//! The billing page in a real, headless Chromium (Debian's `chromium` and `chromium-driver`, which scripts/test
//! installs), driven over WebDriver: a link minted over the API, an upgrade paid on the sandbox, a downgrade,
//! cancel and resume by keyboard, usage moving a bar, a member's read-only page, reused and expired links, a phone
//! width — each state checked with axe-core (scripts/test fetches it with npm) and saved as a screenshot under
//! `target/browser-screenshots/`. Without Chromium, chromedriver or axe-core the test fails, saying how to get them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tollgate_e2e::{Server, free_port, repo_root};

use crate::KEY;

const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);

/// A chromedriver of this test, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Self {
        let binary = tool("TOLLGATE_CHROMEDRIVER", "/usr/bin/chromedriver");
        let port = free_port();
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("chromedriver at {} did not start: {e}", binary.display()));
        let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "chromedriver did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    /// A fresh headless Chromium window of `width` × `height` CSS pixels.
    async fn browser(&self, (width, height): (u32, u32)) -> Client {
        let chromium = tool("TOLLGATE_CHROMIUM", "/usr/bin/chromium");
        let options = json!({
            "binary": chromium,
            // Root in CI containers needs --no-sandbox; /dev/shm is small there.
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--hide-scrollbars", "--force-device-scale-factor=1", format!("--window-size={width},{height}")],
        });
        let capabilities = serde_json::Map::from_iter([("goog:chromeOptions".to_owned(), options)]);
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("Chromium ({}) could not start under chromedriver: {e}", chromium.display()));
        client.set_window_size(width, height).await.expect("window size");
        client
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of a tool from its environment variable or default, which must exist.
fn tool(variable: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(variable).map(PathBuf::from).unwrap_or_else(|| default.into());
    assert!(
        path.is_file(),
        "{} is missing: the browser tests need Chromium and chromedriver (scripts/test installs the Debian packages \
         chromium and chromium-driver; or set {variable})",
        path.display()
    );
    path
}

/// axe-core's browser bundle, fetched by scripts/test.
fn axe_source() -> String {
    let path = std::env::var_os("TOLLGATE_AXE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache/axe-core/axe.min.js"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("axe-core is missing at {} ({e}): scripts/test fetches it with npm", path.display()))
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"));
    let dir = target.join("browser-screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshot directory");
    dir
}

/// A browser window and what the test checks on every state it reaches.
struct Tab<'a> {
    client: Client,
    axe: &'a str,
    shots: &'a Path,
}

impl Tab<'_> {
    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap().trim().to_owned()
    }

    async fn find(&self, css: &str) -> Element {
        match self.client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await {
            Ok(element) => element,
            Err(e) => panic!("no `{css}` on {}: {e}", self.path().await),
        }
    }

    async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("clicking `{css}`: {e}"));
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits for the browser to arrive at a path (and query) starting with `prefix`, and returns it.
    async fn arrive(&self, prefix: &str) -> String {
        let started = Instant::now();
        loop {
            let path = self.path().await;
            if path.starts_with(prefix) {
                return path;
            }
            if started.elapsed() > Duration::from_secs(10) {
                let shown = self.client.source().await.unwrap_or_default();
                panic!("still at {path}, not {prefix}…:\n{}", &shown[..shown.len().min(4000)]);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The state as a customer sees it: no accessibility violation (WCAG 2.1 A and AA, contrast among them), no
    /// horizontal scrolling, and a full-page screenshot named `name`.
    async fn check(&self, name: &str) {
        self.assert_accessible(name).await;
        let widths = self
            .client
            .execute("return [document.documentElement.scrollWidth, window.innerWidth];", vec![])
            .await
            .unwrap();
        let (page, window) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
        assert!(page <= window, "{name}: the page is {page}px wide in a {window}px window");
        self.screenshot(name).await;
    }

    async fn assert_accessible(&self, name: &str) {
        let loaded = format!("{};\nreturn typeof axe;", self.axe);
        assert_eq!(self.client.execute(&loaded, vec![]).await.unwrap(), json!("object"), "axe-core loads");
        let run = r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
               .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                                       nodes: v.nodes.map(n => n.target.join(' '))}))))
               .catch(e => done('axe failed: ' + e));
        "#;
        let violations = self.client.execute_async(run, vec![]).await.unwrap();
        assert_eq!(violations, json!([]), "{name}: accessibility violations");
    }

    /// The whole page, however long: the window grows to the document's height for the shot, then shrinks back.
    /// A phone's shot is its screen, as a phone shows it.
    async fn screenshot(&self, name: &str) {
        let (width, height) = self.client.get_window_size().await.unwrap();
        if width <= u64::from(PHONE.0) {
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
            return;
        }
        let full = self.client.execute("return document.documentElement.scrollHeight;", vec![]).await.unwrap();
        let full = full.as_u64().unwrap().clamp(u64::from(height as u32), 6000) as u32;
        self.client.set_window_size(width as u32, full).await.unwrap();
        let png = self.client.screenshot().await.unwrap();
        self.client.set_window_size(width as u32, height as u32).await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }
}

async fn api(client: &reqwest::Client, method: reqwest::Method, url: String, body: Value) -> (u16, Value) {
    let response = client.request(method, url).bearer_auth(KEY).json(&body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or_default())
}

/// Mints a link to acme's page for `body`.
async fn link(server: &Server, body: Value) -> String {
    let client = reqwest::Client::new();
    let url = format!("{}/v1/workspaces/acme/billing-page-sessions", server.base_url);
    let (status, minted) = api(&client, reqwest::Method::POST, url, body).await;
    assert_eq!(status, 201, "{minted}");
    minted["url"].as_str().unwrap().to_owned()
}

#[test]
fn the_billing_page_in_chromium() {
    let (driver, axe, shots) = (Driver::start(), axe_source(), screenshot_dir());
    let dir = std::env::temp_dir().join(format!("tollgate-e2e-browser-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let server = Server::start(&[
        ("TOLLGATE__DATABASE__URL", format!("sqlite://{}?mode=rwc", dir.join("tollgate.db").display())),
        ("TOLLGATE__CLOCK__MODE", "test".into()),
        ("TOLLGATE__BILLING_PAGE__PRODUCT_NAME", "Acme Cloud".into()),
    ]);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let api_client = reqwest::Client::new();
        let url = |path: &str| format!("{}{path}", server.base_url);
        let body = json!({"name": "Acme Inc.", "owner_email": "owner@acme.test"});
        assert_eq!(api(&api_client, reqwest::Method::PUT, url("/v1/workspaces/acme"), body).await.0, 201);
        let owner = json!({"user": {"id": "u-owner", "role": "owner"}, "return_url": "https://app.acme.test/settings",
                           "counts": {"workspace_members": 1}});
        let owner_link = link(&server, owner.clone()).await;

        let tab = Tab { client: driver.browser(DESKTOP).await, axe: &axe, shots: &shots };
        tab.client.goto(&owner_link).await.unwrap();
        assert_eq!(tab.path().await, "/billing/acme");
        assert_eq!(tab.text("[data-testid=plan-name]").await, "Free");
        assert!(tab.client.source().await.unwrap().contains("Acme Cloud"), "the product's name from config");
        tab.check("01-free-desktop").await;

        // Upgrade: the Pro plan's form goes to the sandbox checkout; paying there and returning shows Pro.
        tab.click("form[action$='/actions/checkout']:has(input[name=plan][value=pro]) button").await;
        tab.arrive("/sandbox/checkout/").await;
        tab.click("form[action$='/pay'] button").await;
        tab.click("a[href*='/billing/acme']").await;
        tab.arrive("/billing/acme?notice=checkout_success").await;
        assert_eq!(tab.text("[data-testid=plan-name]").await, "Pro");
        assert!(tab.text("[data-testid=plan-status]").await.starts_with("Active"));
        let invoice = tab.text("section[aria-labelledby=invoices-heading] tbody tr").await;
        assert!(invoice.contains("paid") && invoice.contains("49.00 USD"), "the paid invoice, its amount: {invoice}");
        assert!(tab.text("[data-testid=preview-hobby]").await.contains("costs nothing extra"), "the sandbox's preview");
        tab.check("02-pro-desktop").await;
        // Its link opens the processor's invoice page (the sandbox's), and Back returns to the page.
        tab.click("section[aria-labelledby=invoices-heading] tbody a").await;
        tab.arrive("/sandbox/invoices/").await;
        assert!(tab.text("h1").await.starts_with("Invoice SBX-"), "{}", tab.text("h1").await);
        tab.client.back().await.unwrap();
        tab.arrive("/billing/acme?notice=checkout_success").await;

        // Downgrade through a plan change, on the page itself.
        tab.click("form[action$='/actions/change-plan']:has(input[name=plan][value=hobby]) button").await;
        tab.arrive("/billing/acme?notice=plan_changed").await;
        assert_eq!(tab.text("[data-testid=plan-name]").await, "Hobby");

        // Cancel at period end with the keyboard alone: Tab to the button, Enter.
        let cancel = tab.find("form[action$='/actions/cancel'] button").await;
        let mut reached = false;
        for _ in 0..40 {
            tab.client.active_element().await.unwrap().send_keys(&Key::Tab.to_string()).await.unwrap();
            if tab.client.active_element().await.unwrap().element_id() == cancel.element_id() {
                reached = true;
                break;
            }
        }
        assert!(reached, "the cancel button is reachable by Tab");
        tab.client.active_element().await.unwrap().send_keys(&Key::Enter.to_string()).await.unwrap();
        tab.arrive("/billing/acme?notice=canceled").await;
        assert!(tab.text("[data-testid=plan-status]").await.ends_with("then canceled"));
        tab.check("03-canceling-desktop").await;
        tab.click("form[action$='/actions/resume'] button").await;
        tab.arrive("/billing/acme?notice=resumed").await;
        assert!(tab.text("[data-testid=plan-status]").await.starts_with("Active"));

        // Usage metered by the product moves its bar, into the warning colour past 80%.
        // Now: the subscription and its period began only seconds ago.
        let timestamp = chrono::Utc::now().to_rfc3339();
        for batch in 0..5 {
            let events: Vec<Value> = (0..850)
                .map(|i| {
                    json!({"id": format!("alert-{batch}-{i}"), "workspace_id": "acme", "metric": "alerts",
                                 "quantity": 1, "timestamp": timestamp})
                })
                .collect();
            let (status, ingested) =
                api(&api_client, reqwest::Method::POST, url("/v1/usage"), json!({"events": events})).await;
            assert_eq!((status, ingested["accepted"].as_u64()), (200, Some(850)), "{ingested}");
        }
        tab.client.refresh().await.unwrap();
        let limits = tab.text(".limits").await;
        assert!(limits.contains("4250 of 5000"), "the Hobby plan's alerts, 85% used: {limits}");
        assert_eq!(tab.text(".limit.level-warn .value").await, "4250 of 5000", "in the warning colour");
        tab.check("04-usage-desktop").await;

        // The owner's link was used: opening it again is refused.
        let again = Tab { client: driver.browser(DESKTOP).await, axe: &axe, shots: &shots };
        again.client.goto(&owner_link).await.unwrap();
        assert!(again.text("main").await.contains("already been used"));
        again.check("05-reused-link").await;

        // An expired link: the test clock moves past its 15 minutes.
        let late_link = link(&server, owner.clone()).await;
        let (status, _) =
            api(&api_client, reqwest::Method::POST, url("/v1/admin/clock/advance"), json!({"hours": 1})).await;
        assert_eq!(status, 200);
        again.client.goto(&late_link).await.unwrap();
        assert!(again.text("main").await.contains("expired"));
        again.check("06-expired-link").await;
        again.client.close().await.unwrap();

        // A member sees everything and no button.
        let member = Tab { client: driver.browser(DESKTOP).await, axe: &axe, shots: &shots };
        member.client.goto(&link(&server, json!({"user": {"id": "u-member", "role": "member"}})).await).await.unwrap();
        assert_eq!(member.text("[data-testid=plan-name]").await, "Hobby");
        assert_eq!(member.count("form").await, 0, "a member has no buttons");
        assert_eq!(member.count("button").await, 0);
        member.check("07-member-desktop").await;
        member.client.close().await.unwrap();

        // At a phone's width, in Portuguese.
        let phone = Tab { client: driver.browser(PHONE).await, axe: &axe, shots: &shots };
        let mut in_portuguese = owner;
        in_portuguese["locale"] = json!("pt-BR");
        phone.client.goto(&link(&server, in_portuguese).await).await.unwrap();
        assert_eq!(phone.text("h1").await, "Cobrança");
        phone.check("08-phone-pt-BR").await;
        phone.client.execute("document.getElementById('usage-heading').scrollIntoView();", vec![]).await.unwrap();
        phone.screenshot("08-phone-pt-BR-usage").await;
        phone.client.close().await.unwrap();

        // The clock moved an hour: the owner's session (an hour long) has ended too.
        tab.client.refresh().await.unwrap();
        assert!(tab.text("main").await.contains("session has ended"));
        assert_eq!(tab.count("form").await, 0);
        tab.check("09-session-ended").await;
        tab.client.close().await.unwrap();
    });
    eprintln!("billing page screenshots: {}", shots.display());
    let _ = std::fs::remove_dir_all(&dir);
}
