//! SPEC §6: every route of the router, walked with every kind of credential — none, a wrong key, a key of each
//! scope, an expired token, another tenant's token, a member's and an owner's — against a table of expected
//! answers. The routes come from `billing_http::route_table()`, and a route without a row in the table fails the
//! test: a new route cannot ship without saying who may call it.

use std::collections::{BTreeMap, BTreeSet};

use billing_app::settings::Settings;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::{Backend, DEV_KEY, READ_KEY, TestApp, api_key, spawn_app_with};

const JWT_SECRET: &str = "tenant-access-test-secret-0123456789abcdef";
const ISSUER: &str = "https://app.test";
const AUDIENCE: &str = "tollgate";
const WRITE_KEY: &str = "tg_test_write_only";
const USAGE_KEY: &str = "tg_test_usage_only";
const TENANT_A: &str = "tenant-a";
const TENANT_B: &str = "tenant-b";

/// Who a route lets in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// No credential needed (health, metrics without a token, webhooks, the sandbox's hosted pages).
    Public,
    /// `billing:read`; end users too (the plan catalog).
    Catalog,
    /// `billing:read` keys only (the coupon check).
    Read,
    /// `admin` keys only.
    Admin,
    /// `usage:write` keys only.
    UsageWrite,
    /// `billing:read` on the workspace; its members.
    WorkspaceRead,
    /// `billing:write` on the workspace; its owners and admins.
    WorkspaceWrite,
    /// The billing page's own session cookie: no API credential opens it (an HTML 401 to all of them).
    PageSession,
}

/// The expected access of every route, by method and pattern.
fn expected_access() -> BTreeMap<(&'static str, &'static str), Access> {
    use Access::*;
    BTreeMap::from([
        (("GET", "/healthz"), Public),
        (("GET", "/readyz"), Public),
        (("GET", "/metrics"), Public),
        (("GET", "/openapi.json"), Public),
        (("GET", "/v1/plans"), Catalog),
        (("POST", "/v1/coupons"), Admin),
        (("GET", "/v1/coupons"), Admin),
        (("GET", "/v1/coupons/{code}"), Read),
        (("PUT", "/v1/workspaces/{id}"), WorkspaceWrite),
        (("GET", "/v1/workspaces/{id}"), WorkspaceRead),
        (("GET", "/v1/workspaces/{id}/subscription"), WorkspaceRead),
        (("POST", "/v1/workspaces/{id}/subscription/cancel"), WorkspaceWrite),
        (("POST", "/v1/workspaces/{id}/subscription/resume"), WorkspaceWrite),
        (("POST", "/v1/workspaces/{id}/subscription/change"), WorkspaceWrite),
        (("POST", "/v1/workspaces/{id}/trial"), WorkspaceWrite),
        (("GET", "/v1/workspaces/{id}/audit"), WorkspaceRead),
        (("POST", "/v1/workspaces/{id}/checkout"), WorkspaceWrite),
        (("POST", "/v1/workspaces/{id}/portal"), WorkspaceWrite),
        (("GET", "/v1/workspaces/{id}/invoices"), WorkspaceRead),
        (("POST", "/v1/workspaces/{id}/credits/consume"), WorkspaceWrite),
        (("POST", "/v1/workspaces/{id}/payment-intents"), WorkspaceWrite),
        (("GET", "/v1/workspaces/{id}/payments"), WorkspaceRead),
        (("GET", "/v1/payments/{id}"), Admin),
        (("POST", "/v1/payments/{id}/refund"), Admin),
        (("GET", "/v1/workspaces/{id}/entitlements"), WorkspaceRead),
        (("POST", "/v1/workspaces/{id}/entitlements/check"), WorkspaceRead),
        (("POST", "/v1/usage"), UsageWrite),
        (("GET", "/v1/workspaces/{id}/usage"), WorkspaceRead),
        (("GET", "/v1/admin/clock"), Admin),
        (("POST", "/v1/admin/clock/advance"), Admin),
        (("GET", "/v1/admin/outbox"), Admin),
        (("POST", "/v1/admin/outbox/{id}/retry"), Admin),
        (("GET", "/v1/admin/sandbox/workspaces/{id}/card"), Admin),
        (("PUT", "/v1/admin/sandbox/workspaces/{id}/card"), Admin),
        (("GET", "/v1/admin/sandbox/workspaces/{id}/meter-events"), Admin),
        (("POST", "/v1/admin/sandbox/workspaces/{id}/pay-open-invoice"), Admin),
        (("POST", "/v1/admin/sandbox/renew"), Admin),
        (("POST", "/v1/workspaces/{id}/billing-page-sessions"), WorkspaceRead),
        (("GET", "/billing/open/{token}"), Public),
        (("GET", "/billing/{id}"), PageSession),
        (("POST", "/billing/{id}/actions/{action}"), PageSession),
        (("GET", "/assets/billing-page.css"), Public),
        (("POST", "/webhooks/{processor}"), Public),
        (("GET", "/sandbox/checkout/{id}"), Public),
        (("POST", "/sandbox/checkout/{id}/pay"), Public),
        (("POST", "/sandbox/checkout/{id}/decline"), Public),
        (("GET", "/sandbox/portal/{id}"), Public),
        (("GET", "/sandbox/invoices/{id}"), Public),
        (("POST", "/sandbox/portal/{id}/subscriptions/{subscription}/{action}"), Public),
        (("POST", "/sandbox/portal/{id}/subscriptions/{subscription}/change/{plan}"), Public),
    ])
}

/// A credential a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credential {
    None,
    WrongKey,
    ReadKey,
    WriteKey,
    UsageKey,
    AdminKey,
    ExpiredToken,
    OtherTenantToken,
    MemberToken,
    AdminRoleToken,
    OwnerToken,
}

const CREDENTIALS: [Credential; 11] = [
    Credential::None,
    Credential::WrongKey,
    Credential::ReadKey,
    Credential::WriteKey,
    Credential::UsageKey,
    Credential::AdminKey,
    Credential::ExpiredToken,
    Credential::OtherTenantToken,
    Credential::MemberToken,
    Credential::AdminRoleToken,
    Credential::OwnerToken,
];

/// The answer a credential should get from a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Past authorization: whatever the route answers, never 401, 403 or the 404 of an unknown workspace.
    Passes,
    Unauthorized,
    Forbidden,
    /// The 404 of a workspace that does not exist.
    NoSuchWorkspace,
    /// The billing page's HTML 401: open a link first.
    NoPageSession,
}

fn expected(access: Access, credential: Credential) -> Answer {
    use Access as A;
    use Answer::*;
    use Credential as C;
    match (access, credential) {
        (A::Public, _) => Passes,
        (A::PageSession, _) => NoPageSession,
        (_, C::None | C::WrongKey | C::ExpiredToken) => Unauthorized,
        (_, C::AdminKey) => Passes,
        (A::Catalog, C::ReadKey | C::OtherTenantToken | C::MemberToken | C::AdminRoleToken | C::OwnerToken) => Passes,
        (A::Catalog | A::Read, C::WriteKey | C::UsageKey) => Forbidden,
        (A::Read, C::ReadKey) => Passes,
        (A::Read, _) => Forbidden,
        (A::Admin, _) => Forbidden,
        (A::UsageWrite, C::UsageKey) => Passes,
        (A::UsageWrite, _) => Forbidden,
        // Another tenant's token learns nothing, not even that the workspace exists.
        (A::WorkspaceRead | A::WorkspaceWrite, C::OtherTenantToken) => NoSuchWorkspace,
        (A::WorkspaceRead, C::ReadKey | C::MemberToken | C::AdminRoleToken | C::OwnerToken) => Passes,
        (A::WorkspaceRead, C::WriteKey | C::UsageKey) => Forbidden,
        (A::WorkspaceWrite, C::WriteKey | C::AdminRoleToken | C::OwnerToken) => Passes,
        (A::WorkspaceWrite, C::ReadKey | C::UsageKey | C::MemberToken) => Forbidden,
    }
}

/// End-user tokens on (HS256), a write-only and a usage-only key beside the read and admin ones.
fn with_tokens(settings: &mut Settings) {
    settings.auth.api_keys.push(api_key("writer", WRITE_KEY, "billing:write"));
    settings.auth.api_keys.push(api_key("usage", USAGE_KEY, "usage:write"));
    let jwt = &mut settings.auth.jwt;
    jwt.enabled = true;
    jwt.algorithm = "HS256".into();
    jwt.secret = SecretString::from(JWT_SECRET);
    jwt.issuer = ISSUER.into();
    jwt.audience = AUDIENCE.into();
    // The walk makes more requests per user than the default burst; the limit has its own test.
    jwt.rate_limit_per_second = 0;
}

fn token(sub: &str, memberships: Value, exp: u64) -> String {
    let claims = json!({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": exp, "workspaces": memberships});
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(JWT_SECRET.as_bytes()).unwrap()).unwrap()
}

fn bearer(credential: Credential) -> Option<String> {
    let later = get_current_timestamp() + 600;
    let tenant = |role: &str| json!([{"id": TENANT_A, "role": role}]);
    Some(match credential {
        Credential::None => return None,
        Credential::WrongKey => "tg_wrong_key".into(),
        Credential::ReadKey => READ_KEY.into(),
        Credential::WriteKey => WRITE_KEY.into(),
        Credential::UsageKey => USAGE_KEY.into(),
        Credential::AdminKey => DEV_KEY.into(),
        Credential::ExpiredToken => token("owner-a", tenant("owner"), get_current_timestamp() - 3600),
        Credential::OtherTenantToken => token("owner-b", json!([{"id": TENANT_B, "role": "owner"}]), later),
        Credential::MemberToken => token("member-a", tenant("member"), later),
        Credential::AdminRoleToken => token("admin-a", tenant("admin"), later),
        Credential::OwnerToken => token("owner-a", tenant("owner"), later),
    })
}

/// A concrete path for `pattern`: tenant A's workspace for `{id}` of workspace routes, a placeholder elsewhere.
fn concrete(pattern: &str) -> String {
    let segment = |s: &str| match s {
        "{id}" if pattern.contains("/workspaces/") || pattern.starts_with("/billing/") => TENANT_A.to_owned(),
        "{processor}" => "sandbox".into(),
        "{code}" => "NOSUCHCODE".into(),
        "{id}" if pattern.contains("/outbox/") => "1".into(),
        s if s.starts_with('{') => "placeholder".into(),
        s => s.to_owned(),
    };
    pattern.split('/').map(segment).collect::<Vec<_>>().join("/")
}

async fn send(app: &TestApp, method: &Method, path: &str, bearer: Option<&str>) -> reqwest::Response {
    let mut request = app.client.request(method.clone(), app.url(path));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if *method == Method::POST || *method == Method::PUT {
        request = request.json(&json!({}));
    }
    request.send().await.unwrap()
}

/// The problem body of a refusal, checked to be problem+json.
async fn refusal(response: reqwest::Response, context: &str) -> Value {
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(content_type.as_deref(), Some("application/problem+json"), "{context}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn every_route_answers_every_credential_as_the_table_says() {
    let app = spawn_app_with(Backend::Sqlite, with_tokens).await;
    for tenant in [TENANT_A, TENANT_B] {
        assert!(app.put_workspace(tenant).await.status().is_success(), "{tenant}");
    }
    let table = expected_access();
    let routes: BTreeSet<(String, &str)> = billing_http::route_table()
        .into_iter()
        .flat_map(|(pattern, methods)| methods.into_iter().map(move |m| (m.as_str().to_owned(), pattern)))
        .collect();
    let unlisted: Vec<_> = routes.iter().filter(|(m, p)| !table.contains_key(&(m.as_str(), *p))).collect();
    assert!(unlisted.is_empty(), "routes without an expected access (add them to the table): {unlisted:?}");
    let stale: Vec<_> = table.keys().filter(|(m, p)| !routes.contains(&((*m).to_owned(), *p))).collect();
    assert!(stale.is_empty(), "table rows for routes that no longer exist: {stale:?}");

    let mut walked = 0;
    for ((method, pattern), access) in &table {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let path = concrete(pattern);
        for credential in CREDENTIALS {
            let response = send(&app, &method, &path, bearer(credential).as_deref()).await;
            let status = response.status().as_u16();
            let context = format!("{method} {pattern} with {credential:?} ({access:?}): {status}");
            match expected(*access, credential) {
                Answer::Passes => {
                    // Past authorization: the route's own answer, a client error at most (the body is `{}`).
                    assert!(![401, 403, 429].contains(&status) && status < 500, "{context}");
                    if status == 404 {
                        let body: Value = response.json().await.unwrap_or_default();
                        assert_ne!(body["code"], "workspace_not_found", "{context}");
                    }
                }
                Answer::Unauthorized => {
                    assert_eq!(status, 401, "{context}");
                    assert_eq!(refusal(response, &context).await["code"], "unauthorized", "{context}");
                }
                Answer::Forbidden => {
                    assert_eq!(status, 403, "{context}");
                    assert_eq!(refusal(response, &context).await["code"], "insufficient_scope", "{context}");
                }
                Answer::NoPageSession => {
                    assert_eq!(status, 401, "{context}");
                    let content_type = response.headers().get("content-type").unwrap().to_str().unwrap();
                    assert!(content_type.starts_with("text/html"), "{context}: {content_type}");
                }
                Answer::NoSuchWorkspace => {
                    assert_eq!(status, 404, "{context}");
                    let body = refusal(response, &context).await;
                    assert_eq!(body["code"], "workspace_not_found", "{context}");
                    assert_eq!(body["detail"], "no workspace with this id", "{context}: as for a missing one");
                }
            }
            walked += 1;
        }
    }
    assert_eq!(walked, table.len() * CREDENTIALS.len());
}

/// The body of a refusal, without what differs between any two requests.
async fn comparable(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let mut body: Value = response.json().await.unwrap();
    body.as_object_mut().unwrap().remove("instance");
    body.as_object_mut().unwrap().remove("request_id");
    (status, body)
}

#[tokio::test]
async fn another_tenants_workspace_looks_exactly_like_a_missing_one() {
    let app = spawn_app_with(Backend::Sqlite, with_tokens).await;
    for tenant in [TENANT_A, TENANT_B] {
        app.put_workspace(tenant).await;
    }
    let owner_b = bearer(Credential::OtherTenantToken).unwrap();
    for suffix in ["", "/audit", "/invoices", "/payments", "/usage", "/entitlements", "/subscription"] {
        let theirs = app.client.get(app.url(&format!("/v1/workspaces/{TENANT_A}{suffix}"))).bearer_auth(&owner_b);
        let missing = app.client.get(app.url(&format!("/v1/workspaces/nobody-here{suffix}"))).bearer_auth(&owner_b);
        let (theirs, missing) =
            (comparable(theirs.send().await.unwrap()).await, comparable(missing.send().await.unwrap()).await);
        assert_eq!(theirs.0, 404, "{suffix}: {theirs:?}");
        assert_eq!(theirs.1["detail"], missing.1["detail"], "{suffix}");
        assert_eq!(theirs.1["code"], missing.1["code"], "{suffix}");
    }
    // Tenant B's own reads show B and nothing of A.
    let own = app.client.get(app.url(&format!("/v1/workspaces/{TENANT_B}/audit"))).bearer_auth(&owner_b);
    let own = own.send().await.unwrap();
    assert_eq!(own.status(), 200);
    let text = own.text().await.unwrap();
    assert!(text.contains(TENANT_B) && !text.contains(TENANT_A), "{text}");
}

#[tokio::test]
async fn an_owners_change_is_audited_as_that_user_and_a_member_changes_nothing() {
    let app = spawn_app_with(Backend::Sqlite, with_tokens).await;
    app.put_workspace(TENANT_A).await;
    let member = bearer(Credential::MemberToken).unwrap();
    let refused = app.client.post(app.url(&format!("/v1/workspaces/{TENANT_A}/trial"))).bearer_auth(&member);
    assert_eq!(refused.send().await.unwrap().status(), 403);
    let owner = bearer(Credential::OwnerToken).unwrap();
    let started = app.client.post(app.url(&format!("/v1/workspaces/{TENANT_A}/trial"))).bearer_auth(&owner);
    let started = started.send().await.unwrap();
    assert!(started.status().is_success(), "{}", started.text().await.unwrap());
    let audit = app.client.get(app.url(&format!("/v1/workspaces/{TENANT_A}/audit"))).bearer_auth(&member);
    let audit: Value = audit.send().await.unwrap().json().await.unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let by_user: Vec<&Value> = entries.iter().filter(|e| e["actor"]["type"] == "user").collect();
    assert_eq!(by_user.len(), 1, "{audit}");
    assert_eq!(by_user[0]["actor"]["id"], "owner-a");

    // Consuming usage is the product backend's (usage:write), even for an owner.
    let consume = json!({"key": "seats", "consume": 1, "idempotency_key": "c-1"});
    let check = app.client.post(app.url(&format!("/v1/workspaces/{TENANT_A}/entitlements/check"))).bearer_auth(&owner);
    assert_eq!(check.json(&consume).send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn a_demoted_user_gets_no_stored_answer_back() {
    let app = spawn_app_with(Backend::Sqlite, with_tokens).await;
    app.put_workspace(TENANT_A).await;
    let url = app.url(&format!("/v1/workspaces/{TENANT_A}/trial"));
    let owner = bearer(Credential::OwnerToken).unwrap();
    let first = app.client.post(&url).bearer_auth(&owner).header("idempotency-key", "trial-1").send().await.unwrap();
    assert!(first.status().is_success());
    let again = app.client.post(&url).bearer_auth(&owner).header("idempotency-key", "trial-1").send().await.unwrap();
    assert_eq!(again.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    // The same user, now a member: the key's stored answer is not replayed to them.
    let demoted = token("owner-a", json!([{"id": TENANT_A, "role": "member"}]), get_current_timestamp() + 600);
    let refused =
        app.client.post(&url).bearer_auth(&demoted).header("idempotency-key", "trial-1").send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let removed = token("owner-a", json!([]), get_current_timestamp() + 600);
    let refused =
        app.client.post(&url).bearer_auth(&removed).header("idempotency-key", "trial-1").send().await.unwrap();
    assert_eq!(refused.status(), 404);
}

#[tokio::test]
async fn each_user_is_rate_limited_alone() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        with_tokens(settings);
        settings.auth.jwt.rate_limit_per_second = 1;
        settings.auth.jwt.rate_limit_burst = 3;
    })
    .await;
    app.put_workspace(TENANT_A).await;
    let owner = bearer(Credential::OwnerToken).unwrap();
    let member = bearer(Credential::MemberToken).unwrap();
    let url = app.url(&format!("/v1/workspaces/{TENANT_A}"));
    for _ in 0..3 {
        assert_eq!(app.client.get(&url).bearer_auth(&owner).send().await.unwrap().status(), 200);
    }
    let limited = app.client.get(&url).bearer_auth(&owner).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(refusal(limited, "429").await["code"], "rate_limited");
    // Another user of the same workspace, and the service keys, have their own budgets.
    assert_eq!(app.client.get(&url).bearer_auth(&member).send().await.unwrap().status(), 200);
    assert_eq!(app.client.get(&url).bearer_auth(DEV_KEY).send().await.unwrap().status(), 200);
}

/// The ES256 key of billing-http's token tests, for a JWKS the app reads from a file.
const ES256_PRIVATE: &[u8] = include_bytes!("../../../billing-http/src/user_tokens/testdata/es256-private.pem");

fn jwks_with(kid: &str) -> String {
    use jsonwebtoken::jwk::{Jwk, JwkSet};
    let mut jwk = Jwk::from_encoding_key(&EncodingKey::from_ec_pem(ES256_PRIVATE).unwrap(), Algorithm::ES256).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap()
}

fn es256_token(kid: &str) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    let claims = json!({"sub": "owner-a", "iss": ISSUER, "aud": AUDIENCE, "exp": get_current_timestamp() + 600,
        "workspaces": [{"id": TENANT_A, "role": "owner"}]});
    encode(&header, &claims, &EncodingKey::from_ec_pem(ES256_PRIVATE).unwrap()).unwrap()
}

#[tokio::test]
async fn a_rotated_jwks_file_is_picked_up_without_a_restart() {
    let dir = std::env::temp_dir().join(format!("tollgate-jwks-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jwks.json");
    std::fs::write(&path, jwks_with("k1")).unwrap();
    let jwks_path = path.clone();
    let app = spawn_app_with(Backend::Sqlite, move |settings| {
        with_tokens(settings);
        let jwt = &mut settings.auth.jwt;
        jwt.algorithm = "ES256".into();
        jwt.secret = SecretString::from("");
        jwt.jwks_file = jwks_path;
    })
    .await;
    app.put_workspace(TENANT_A).await;
    let url = app.url(&format!("/v1/workspaces/{TENANT_A}"));
    let status = |token: String| {
        let request = app.client.get(&url).bearer_auth(token);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(es256_token("k1")).await, 200);
    assert_eq!(status(es256_token("k2")).await, 401);
    std::fs::write(&path, jwks_with("k2")).unwrap();
    // The file is looked at every second (user_tokens::JWKS_POLL); allow a few.
    let mut waited = 0;
    while status(es256_token("k2")).await != 200 {
        assert!(waited < 50, "the rotated JWKS was not picked up within 5 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(status(es256_token("k1")).await, 401, "the retired key no longer verifies");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Minting a billing-page link is the one idempotent workspace route a member may call: with an
/// `Idempotency-Key` too, and the retry gets the same link back.
#[tokio::test]
async fn a_member_mints_a_billing_page_link_with_an_idempotency_key() {
    let app = spawn_app_with(Backend::Sqlite, with_tokens).await;
    app.put_workspace(TENANT_A).await;
    let member = bearer(Credential::MemberToken).unwrap();
    let mut links = Vec::new();
    for _ in 0..2 {
        let mint = app
            .client
            .post(app.url(&format!("/v1/workspaces/{TENANT_A}/billing-page-sessions")))
            .bearer_auth(&member)
            .header("Idempotency-Key", "page-1")
            .json(&json!({}));
        let minted = mint.send().await.unwrap();
        assert_eq!(minted.status(), 201);
        assert_eq!(minted.headers().get("cache-control").unwrap(), "no-store");
        links.push(minted.json::<Value>().await.unwrap()["url"].clone());
    }
    assert_eq!(links[0], links[1], "the retry replays the first link");
}
