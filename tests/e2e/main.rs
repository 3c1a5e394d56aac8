//! Black-box tests of the `tollgate` binary: configuration errors, and the README walkthrough on SQLite and
//! PostgreSQL against a server started exactly as an operator would start it.

use std::process::Command;

use serde_json::{Value, json};
use tollgate_e2e::{Server, repo_root, tollgate_binary};

mod browser;
mod dunning;
mod meters;
mod outbox;
mod race;
mod stripe;
mod time_travel;
mod usage;

const KEY: &str = "tg_dev_local_only";

#[test]
fn a_broken_plan_file_is_reported_line_by_line_with_exit_code_2() {
    let dir = std::env::temp_dir().join(format!("tollgate-e2e-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let plans = dir.join("plans.toml");
    std::fs::write(
        &plans,
        r#"
[[plans]]
id = "free"
name = "Free"
kind = "subscription"
interval = "month"
price = { amount = 0, currency = "USD" }
limits = { ghost_limit = 1 }

[[plans]]
id = "free"
name = "Again"
kind = "credits"
price = { amount = 5, currency = "dollars" }
"#,
    )
    .unwrap();
    let output = Command::new(tollgate_binary())
        .arg("check-config")
        .current_dir(repo_root())
        .env("TOLLGATE_CONFIG_DIR", repo_root().join("config"))
        .env("TOLLGATE__CATALOG__PATH", &plans)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("config error: ")).collect();
    assert!(lines.len() >= 4, "one line per problem expected:\n{stderr}");
    for fragment in ["ghost_limit", "duplicate plan id", "currency", "credits > 0"] {
        assert!(lines.iter().any(|l| l.contains(fragment)), "{fragment} not reported:\n{stderr}");
    }
}

#[test]
fn check_config_accepts_the_shipped_configuration() {
    let output = Command::new(tollgate_binary())
        .arg("check-config")
        .current_dir(repo_root())
        .env("TOLLGATE_CONFIG_DIR", repo_root().join("config"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let plans = Command::new(tollgate_binary()).arg("plans").current_dir(repo_root()).output().unwrap();
    let listed = String::from_utf8_lossy(&plans.stdout);
    for plan in ["free", "hobby", "pro", "credits10"] {
        assert!(listed.contains(plan), "{plan} missing from `tollgate plans`:\n{listed}");
    }
}

fn walkthrough(server: &Server) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let url = |path: &str| format!("{}{path}", server.base_url);
        let put = client
            .put(url("/v1/workspaces/acme"))
            .bearer_auth(KEY)
            .json(&json!({"name": "Acme", "owner_email": "owner@acme.test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201);
        let session: Value = client
            .post(url("/v1/workspaces/acme/checkout"))
            .bearer_auth(KEY)
            .json(&json!({"plan": "pro"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let page_url = session["url"].as_str().unwrap();
        assert!(page_url.starts_with(&server.base_url));
        assert_eq!(client.get(page_url).send().await.unwrap().status(), 200);
        let paid = client.post(format!("{page_url}/pay")).send().await.unwrap();
        assert_eq!(paid.status(), 200);
        let entitlements: Value = client
            .get(url("/v1/workspaces/acme/entitlements"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(entitlements["plan"], "pro");
        assert_eq!(entitlements["plan_source"], "subscription");
        let unauthenticated = client.get(url("/v1/workspaces/acme")).send().await.unwrap();
        assert_eq!(unauthenticated.status(), 401);
    });
}

#[test]
fn the_binary_runs_the_sandbox_lifecycle_on_sqlite_and_stops_cleanly() {
    let db = std::env::temp_dir().join(format!("tollgate-e2e-{}.db", uuid::Uuid::new_v4().simple()));
    let server = Server::start(&[("TOLLGATE__DATABASE__URL", format!("sqlite://{}?mode=rwc", db.display()))]);
    walkthrough(&server);
    let status = server.stop();
    assert!(status.success(), "graceful shutdown exits 0, got {status:?}");
    assert!(db.exists());
}

#[test]
fn the_binary_runs_the_sandbox_lifecycle_on_postgres() {
    let admin =
        std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("tollgate_e2e_{}", uuid::Uuid::new_v4().simple());
    let created = Command::new("psql")
        .args([admin.as_str(), "-v", "ON_ERROR_STOP=1", "-qc", &format!("CREATE DATABASE {name}")])
        .status()
        .expect("psql is needed to create the e2e database (scripts/test installs PostgreSQL)");
    assert!(created.success(), "PostgreSQL must be running at {admin} (scripts/test starts it)");
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap();
    let server = Server::start(&[("TOLLGATE__DATABASE__URL", format!("{base}/{name}"))]);
    walkthrough(&server);
    assert!(server.stop().success());
    let dropped = Command::new("psql")
        .args([admin.as_str(), "-qc", &format!("DROP DATABASE {name} WITH (FORCE)")])
        .status()
        .expect("psql");
    assert!(dropped.success(), "the e2e database is dropped after use");
}

/// The sandbox's own records (open checkouts, subscriptions, invoices, payments) are in the database: a `kill -9`
/// and a restart lose none of them.
#[test]
fn the_sandbox_keeps_its_records_across_a_kill_and_a_restart() {
    let db = std::env::temp_dir().join(format!("tollgate-e2e-{}.db", uuid::Uuid::new_v4().simple()));
    let env = [("TOLLGATE__DATABASE__URL", format!("sqlite://{}?mode=rwc", db.display()))];
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let call = |base: String, method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut request = client.request(method, format!("{base}{path}")).bearer_auth(KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    use reqwest::Method;

    let mut first = Server::start(&env);
    let base = first.base_url.clone();
    let (open_session, payment) = runtime.block_on(async {
        for id in ["acme", "beta"] {
            let body = json!({"name": id, "owner_email": format!("owner@{id}.test")});
            assert_eq!(call(base.clone(), Method::PUT, &format!("/v1/workspaces/{id}"), Some(body)).await.0, 201);
        }
        let (_, paid) =
            call(base.clone(), Method::POST, "/v1/workspaces/acme/checkout", Some(json!({"plan": "pro"}))).await;
        let pay = client.post(format!("{}/pay", paid["url"].as_str().unwrap())).send().await.unwrap();
        assert_eq!(pay.status(), 200);
        let (_, open) =
            call(base.clone(), Method::POST, "/v1/workspaces/beta/checkout", Some(json!({"plan": "pro"}))).await;
        let (_, payments) = call(base.clone(), Method::GET, "/v1/workspaces/acme/payments", None).await;
        let payment = payments["payments"][0]["id"].as_str().unwrap().to_owned();
        (open["session_id"].as_str().unwrap().to_owned(), payment)
    });
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let second = Server::start(&env);
    let base = second.base_url.clone();
    runtime.block_on(async {
        let (status, invoices) = call(base.clone(), Method::GET, "/v1/workspaces/acme/invoices", None).await;
        assert_eq!((status, invoices["invoices"].as_array().map(Vec::len)), (200, Some(1)), "{invoices}");
        let page = client.get(format!("{base}/sandbox/checkout/{open_session}")).send().await.unwrap();
        assert_eq!(page.status(), 200, "the open checkout survived");
        let pay = client.post(format!("{base}/sandbox/checkout/{open_session}/pay")).send().await.unwrap();
        assert_eq!(pay.status(), 200);
        let (_, beta) = call(base.clone(), Method::GET, "/v1/workspaces/beta", None).await;
        assert_eq!(beta["plan"], "pro", "{beta}");
        let refund = Some(json!({"amount": 100}));
        let (status, refunded) =
            call(base.clone(), Method::POST, &format!("/v1/payments/{payment}/refund"), refund).await;
        assert_eq!(status, 201, "the sandbox still knows the charge it took: {refunded}");
    });
    assert!(second.stop().success());
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}
