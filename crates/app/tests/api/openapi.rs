//! `GET /openapi.json`: the document a running server answers by, for the catalog it loaded; and the two ways a
//! JSON body is read as that document describes it (a struct only from an object, `2.0` as the integer 2).

use serde_json::{Value, json};

use crate::helpers::{Backend, DEV_KEY, spawn_app};

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().expect("an array").iter().filter_map(Value::as_str).collect()
}

#[tokio::test]
async fn the_document_is_served_with_this_servers_plans_limits_and_codes() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app.client.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/workspaces/{id}/checkout"]["post"]["responses"]["201"].is_object());

    let catalog = app.json_of("/v1/plans").await;
    let plans = catalog["plans"].as_array().unwrap();
    let buyable: Vec<&str> =
        plans.iter().filter(|p| p["default"] == false).map(|p| p["id"].as_str().unwrap()).collect();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(strings(&schemas["CheckoutBody"]["properties"]["plan"]["enum"]), buyable);
    let keys = strings(&schemas["CheckBody"]["properties"]["key"]["enum"]);
    for name in catalog["limits"].as_object().unwrap().keys().chain(catalog["features"].as_object().unwrap().keys()) {
        assert!(keys.contains(&name.as_str()), "the check's keys lack {name}");
    }
    let codes = strings(&schemas["Problem"]["properties"]["code"]["enum"]);
    for code in ["validation_failed", "workspace_not_found", "idempotency_key_reused", "rate_limited"] {
        assert!(codes.contains(&code), "{code} is not documented");
    }
    // A keyed route documents its refusals; a workspace route the 404 of a workspace it cannot see.
    let get_workspace = &doc["paths"]["/v1/workspaces/{id}"]["get"];
    for status in ["401", "403", "404", "429"] {
        assert!(get_workspace["responses"][status].is_object(), "GET /v1/workspaces/{{id}} lacks {status}");
    }
}

#[tokio::test]
async fn a_struct_is_read_only_from_an_object_and_a_whole_float_is_an_integer() {
    let app = spawn_app(Backend::Sqlite).await;
    let put = |body: Value| app.client.put(app.url("/v1/workspaces/acme")).bearer_auth(DEV_KEY).json(&body).send();
    // serde would read these arrays as the fields in order; the API refuses them and stores nothing.
    let nested = put(json!({"name": "Acme", "owner_email": "a@acme.test", "billing_details": [null, "1 Main St"]}));
    let nested: Value = nested.await.unwrap().json().await.unwrap();
    assert_eq!(
        (nested["code"].as_str(), nested["errors"][0]["field"].as_str()),
        (Some("validation_failed"), Some("billing_details"))
    );
    let whole: Value = put(json!(["Acme", "a@acme.test"])).await.unwrap().json().await.unwrap();
    assert_eq!(whole["status"], 400, "{whole}");
    assert_eq!(app.get("/v1/workspaces/acme").await.status(), 404);

    assert_eq!(app.put_workspace("acme").await.status(), 201);
    let check = |body: Value| app.post_json("/v1/workspaces/acme/entitlements/check", body);
    let plain: Value =
        check(json!({"key": "workspace_members", "requested": 1, "current": 0})).await.json().await.unwrap();
    let spelled = check(json!({"key": "workspace_members", "requested": 1.0, "current": 0e0})).await;
    assert_eq!(spelled.status(), 200);
    assert_eq!(spelled.json::<Value>().await.unwrap(), plain);
    let fraction: Value = check(json!({"key": "workspace_members", "requested": 1.5})).await.json().await.unwrap();
    assert_eq!(fraction["errors"][0]["field"], "requested", "{fraction}");
}

/// PostgreSQL's text cannot hold U+0000, where SQLite stores it: a body or query naming one is the caller's
/// mistake (400 naming the field), never a failed query (500), and nothing is stored.
#[tokio::test]
async fn a_nul_character_is_refused_naming_its_field_before_it_reaches_postgres() {
    let app = spawn_app(Backend::Postgres).await;
    let body = json!({"name": "Ac\u{0}me", "owner_email": "a@acme.test", "billing_details": {"city": "Köln"}});
    let refused = app.client.put(app.url("/v1/workspaces/acme")).bearer_auth(DEV_KEY).json(&body).send().await;
    let refused = refused.unwrap();
    assert_eq!(refused.status(), 400);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["errors"][0]["field"], "name", "{refused}");
    assert_eq!(app.get("/v1/workspaces/acme").await.status(), 404);

    assert_eq!(app.put_workspace("acme").await.status(), 201);
    let query = app.get("/v1/workspaces/acme/payments?starting_after=pi_%00").await;
    assert_eq!(query.status(), 400);
    let query: Value = query.json().await.unwrap();
    assert_eq!(
        (query["code"].as_str(), query["errors"][0]["field"].as_str()),
        (Some("invalid_query"), Some("starting_after"))
    );
}
