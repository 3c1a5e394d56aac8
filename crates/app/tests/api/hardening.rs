//! Response headers a browser acts on: the hosted pages cannot be framed or run script, JSON allows nothing.

use crate::helpers::*;

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers().get(name).unwrap_or_else(|| panic!("{name} missing")).to_str().unwrap()
}

#[tokio::test]
async fn pages_and_api_answers_carry_a_restrictive_policy() {
    let app = spawn_app(Backend::Sqlite).await;
    assert!(app.put_workspace("acme").await.status().is_success());
    let session = app.checkout("acme", "pro").await;
    let page = app.get(&format!("/sandbox/checkout/{}", session["session_id"].as_str().unwrap())).await;
    assert_eq!(page.status(), 200);
    assert!(header(&page, "content-type").starts_with("text/html"));
    let policy = header(&page, "content-security-policy");
    assert!(policy.contains("default-src 'none'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(policy.contains("form-action 'self'") && !policy.contains("script"), "{policy}");
    assert_eq!(header(&page, "x-frame-options"), "DENY");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script"), "the page runs no script");

    for response in [app.get("/v1/plans").await, app.get("/no/such/path").await] {
        assert_eq!(header(&response, "content-security-policy"), "default-src 'none'; frame-ancestors 'none'");
        assert_eq!(header(&response, "referrer-policy"), "no-referrer");
    }
}
