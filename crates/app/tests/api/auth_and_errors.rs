//! Auth and SPEC §9: every error is problem+json naming what was wrong, 4xx for the caller's mistakes.

use serde_json::{Value, json};

use crate::helpers::{Backend, DEV_KEY, READ_KEY, on_both_databases, spawn_app};

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: Value = response.json().await.unwrap();
    for member in ["type", "title", "status", "detail", "code"] {
        assert!(body.get(member).is_some(), "problem without {member}: {body}");
    }
    assert_eq!(body["status"], status);
    body
}

#[tokio::test]
async fn requests_without_a_valid_key_get_401() {
    let app = spawn_app(Backend::Sqlite).await;
    let url = app.url("/v1/plans");
    let missing = problem(app.client.get(&url).send().await.unwrap(), 401).await;
    assert_eq!(missing["code"], "unauthorized");
    let wrong = problem(app.client.get(&url).bearer_auth("tg_wrong").send().await.unwrap(), 401).await;
    assert!(wrong["detail"].as_str().unwrap().contains("not valid"));
    let basic = app.client.get(&url).header("authorization", "Basic abc").send().await.unwrap();
    problem(basic, 401).await;
    for path in ["/v1/workspaces/acme", "/v1/workspaces/acme/entitlements", "/v1/workspaces/acme/audit"] {
        assert_eq!(app.client.get(app.url(path)).send().await.unwrap().status(), 401, "{path}");
    }
}

#[tokio::test]
async fn a_read_only_key_cannot_write() {
    let app = spawn_app(Backend::Sqlite).await;
    let body = json!({"name": "Acme", "owner_email": "a@acme.test"});
    let response =
        app.client.put(app.url("/v1/workspaces/acme")).bearer_auth(READ_KEY).json(&body).send().await.unwrap();
    let body = problem(response, 403).await;
    assert_eq!(body["code"], "insufficient_scope");
    assert_eq!(app.client.get(app.url("/v1/plans")).bearer_auth(READ_KEY).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn bad_input_is_named_and_changes_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let put = |id: &str, body: String, content_type: &str| {
        app.client
            .put(app.url(&format!("/v1/workspaces/{id}")))
            .bearer_auth(DEV_KEY)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let invalid = problem(
        put("acme", json!({"name": "", "owner_email": "nope"}).to_string(), "application/json").await.unwrap(),
        400,
    )
    .await;
    let fields: Vec<&str> =
        invalid["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "owner_email"]);
    let unknown = problem(
        put("acme", json!({"name": "A", "owner_email": "a@b.co", "plan": "pro"}).to_string(), "application/json")
            .await
            .unwrap(),
        400,
    )
    .await;
    assert_eq!(unknown["errors"][0]["field"], "plan");
    let bad_id = problem(
        put("a%2Fb", json!({"name": "A", "owner_email": "a@b.co"}).to_string(), "application/json").await.unwrap(),
        400,
    )
    .await;
    assert_eq!(bad_id["errors"][0]["field"], "id");
    problem(put("acme", "{\"name\":".into(), "application/json").await.unwrap(), 400).await;
    problem(put("acme", "name=A".into(), "application/x-www-form-urlencoded").await.unwrap(), 415).await;
    let big = json!({"name": "x".repeat(70_000), "owner_email": "a@b.co"}).to_string();
    problem(put("acme", big, "application/json").await.unwrap(), 413).await;
    assert_eq!(app.count("workspaces").await, 0, "nothing was stored");

    let missing = problem(app.get("/v1/workspaces/ghost").await, 404).await;
    assert_eq!(missing["code"], "workspace_not_found");
    problem(app.get("/v1/nothing-here").await, 404).await;
    let delete = app.client.delete(app.url("/v1/workspaces/acme")).bearer_auth(DEV_KEY).send().await.unwrap();
    assert_eq!(delete.headers()["allow"], "PUT, GET");
    let not_allowed = problem(delete, 405).await;
    assert_eq!(not_allowed["code"], "method_not_allowed");

    app.put_workspace("acme").await;
    let unknown_plan = problem(app.post_json("/v1/workspaces/acme/checkout", json!({"plan": "gold"})).await, 400).await;
    assert_eq!(unknown_plan["valid_plans"], json!(["free", "hobby", "pro", "credits10"]));
    assert_eq!(unknown_plan["errors"][0]["field"], "plan");
    let bad_url = problem(
        app.post_json("/v1/workspaces/acme/checkout", json!({"plan": "pro", "success_url": "javascript:alert(1)"}))
            .await,
        400,
    )
    .await;
    assert_eq!(bad_url["errors"][0]["field"], "success_url");
    let free = problem(app.post_json("/v1/workspaces/acme/checkout", json!({"plan": "free"})).await, 400).await;
    assert_eq!(free["errors"][0]["field"], "plan");
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app(Backend::Sqlite).await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"));
    let ready: Value = app.client.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["database"], "ok");
}

/// The `field` of every entry of a problem's `errors[]`.
fn fields(problem: &Value) -> Vec<&str> {
    problem["errors"].as_array().map(|e| e.iter().filter_map(|e| e["field"].as_str()).collect()).unwrap_or_default()
}

async fn body_errors_name_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let put = |body: Value| app.client.put(app.url("/v1/workspaces/acme")).bearer_auth(DEV_KEY).json(&body).send();
    let wrong_type = problem(put(json!({"name": 123, "owner_email": "a@b.c"})).await.unwrap(), 400).await;
    assert_eq!(wrong_type["code"], "validation_failed");
    assert_eq!(fields(&wrong_type), ["name"]);
    assert!(wrong_type["errors"][0]["message"].as_str().unwrap().contains("expected a string"), "{wrong_type}");
    let nested = json!({"name": "Acme", "owner_email": "a@b.c",
        "billing_details": {"country": "DE", "tax_ids": [{"type": 5, "value": "DE123456789"}]}});
    assert_eq!(fields(&problem(put(nested).await.unwrap(), 400).await), ["billing_details.tax_ids[0].type"]);
    let nested_missing = json!({"name": "Acme", "owner_email": "a@b.c",
        "billing_details": {"tax_ids": [{"type": "eu_vat", "value": "DE1"}, {"type": "eu_vat"}]}});
    assert_eq!(fields(&problem(put(nested_missing).await.unwrap(), 400).await), ["billing_details.tax_ids[1].value"]);
    let missing = problem(put(json!({"name": "Acme"})).await.unwrap(), 400).await;
    assert_eq!(fields(&missing), ["owner_email"]);
    let unknown = json!({"name": "Acme", "owner_email": "a@b.c", "billing_details": {"vat_id": "x"}});
    assert_eq!(fields(&problem(put(unknown).await.unwrap(), 400).await), ["billing_details.vat_id"]);
    let check = app.post_json("/v1/workspaces/acme/entitlements/check", json!({"key": "seats", "requested": -1}));
    assert_eq!(fields(&problem(check.await, 400).await), ["requested"]);
    assert_eq!(app.count("workspaces").await, 0, "nothing was stored");
}

on_both_databases!(a_wrongly_typed_body_field_is_named_by_its_path, body_errors_name_the_field);

async fn query_errors_name_the_parameter(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    let not_a_number = problem(app.get("/v1/workspaces/acme/audit?limit=abc").await, 400).await;
    assert_eq!(not_a_number["code"], "invalid_query");
    assert_eq!(fields(&not_a_number), ["limit"]);
    assert!(not_a_number["detail"].as_str().unwrap().contains("limit"), "{not_a_number}");
    let unknown = problem(app.get("/v1/workspaces/acme/audit?limit=5&page=2").await, 400).await;
    assert_eq!(fields(&unknown), ["page"]);
    let out_of_range = problem(app.get("/v1/workspaces/acme/audit?limit=500").await, 400).await;
    assert_eq!(fields(&out_of_range), ["limit"]);
    assert_eq!(app.get("/v1/workspaces/acme/audit?limit=5").await.status(), 200);
}

on_both_databases!(a_bad_query_parameter_is_named, query_errors_name_the_parameter);

#[tokio::test]
async fn a_known_path_with_a_wrong_method_answers_405_with_allow() {
    let app = spawn_app(Backend::Sqlite).await;
    let post_plans = app.client.post(app.url("/v1/plans")).bearer_auth(DEV_KEY).send().await.unwrap();
    let allow = post_plans.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.split(", ").any(|m| m == "GET"), "Allow: {allow}");
    assert_eq!(problem(post_plans, 405).await["code"], "method_not_allowed");

    // Every registered path, with every common method it lacks; no key, since the method is judged first.
    let routes = billing_http::route_table();
    assert!(routes.len() >= 14, "the route table lists every route: {routes:?}");
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];
    for (pattern, allowed) in routes {
        let path: Vec<&str> = pattern.split('/').map(|s| if s.starts_with('{') { "sandbox" } else { s }).collect();
        let url = app.url(&path.join("/"));
        let expected: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
        for method in methods.iter().filter(|m| !expected.contains(m)) {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let response = app.client.request(method.clone(), &url).send().await.unwrap();
            assert_eq!(response.headers()["allow"], expected.join(", ").as_str(), "{method} {pattern}");
            let body = problem(response, 405).await;
            assert_eq!(body["code"], "method_not_allowed", "{method} {pattern}");
        }
    }
    // An unknown path is still a 404.
    let unknown = app.client.post(app.url("/v1/nothing-here")).send().await.unwrap();
    assert_eq!(problem(unknown, 404).await["code"], "route_not_found");
}

#[tokio::test]
async fn an_oversized_request_head_answers_431_problem() {
    let app = spawn_app(Backend::Sqlite).await;
    let big = app.client.get(app.url("/healthz")).header("x-padding", "a".repeat(64 * 1024)).send().await.unwrap();
    assert!(big.headers().contains_key("x-request-id"));
    let body = problem(big, 431).await;
    assert_eq!(body["code"], "request_headers_too_large");
    let fits = app.client.get(app.url("/healthz")).header("x-padding", "a".repeat(8 * 1024)).send().await.unwrap();
    assert_eq!(fits.status(), 200);
}
