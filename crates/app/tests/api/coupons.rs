//! Coupons: created by admins (every bad field named, codes unique case-insensitively), checked against a plan,
//! redeemed atomically at checkout with the discount on the sandbox's page and invoice; 20 concurrent checkouts
//! redeeming a 1-use coupon → exactly one redemption.

use serde_json::{Value, json};

use crate::helpers::{Backend, READ_KEY, TestApp, on_both_databases, spawn_app};

async fn create(app: &TestApp, body: Value) -> (u16, Value) {
    let response = app.post_json("/v1/coupons", body).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn manage_and_check(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, coupon) = create(&app, json!({"code": "launch-20", "percent_off": 20, "plans": ["pro"]})).await;
    assert_eq!(status, 201, "{coupon}");
    assert_eq!(
        (coupon["code"].as_str(), coupon["percent_off"].as_u64(), coupon["used_count"].as_u64()),
        (Some("LAUNCH-20"), Some(20), Some(0))
    );
    let (status, again) =
        create(&app, json!({"code": "Launch-20", "amount_off": {"minor": 500, "currency": "usd"}})).await;
    assert_eq!((status, again["code"].as_str()), (409, Some("coupon_exists")));

    for (body, field) in [
        (json!({"code": "X", "percent_off": 0}), "percent_off"),
        (json!({"code": "X", "percent_off": 101}), "percent_off"),
        (json!({"code": "X"}), "percent_off"),
        (json!({"code": "X", "percent_off": 5, "amount_off": {"minor": 1, "currency": "USD"}}), "percent_off"),
        (json!({"code": "X", "amount_off": {"minor": 0, "currency": "USD"}}), "amount_off.minor"),
        (json!({"code": "X", "amount_off": {"minor": 100, "currency": "dollars"}}), "amount_off.currency"),
        (json!({"code": "no spaces", "percent_off": 5}), "code"),
        (json!({"code": "X", "percent_off": 5, "plans": ["platinum"]}), "plans[0]"),
        (json!({"code": "X", "percent_off": 5, "plans": ["free"]}), "plans[0]"),
        (json!({"code": "X", "percent_off": 5, "max_uses": 0}), "max_uses"),
        (json!({"code": "X", "percent_off": 5, "max_uses": 2_147_483_648_u64}), "max_uses"),
        (json!({"code": "X", "amount_off": {"minor": 100_000_000, "currency": "USD"}}), "amount_off.minor"),
        (json!({"code": "X", "percent_off": 5, "valid_until": "2001-01-01T00:00:00Z"}), "valid_until"),
        (json!({"code": "X", "percent_off": 5, "stackable": true}), "stackable"),
    ] {
        let (status, problem) = create(&app, body.clone()).await;
        assert_eq!(status, 400, "{body} → {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{body} → {problem}");
    }
    let reader = app
        .client
        .post(app.url("/v1/coupons"))
        .bearer_auth(READ_KEY)
        .json(&json!({"code": "R", "percent_off": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(reader.status(), 403, "creating coupons takes the admin scope");

    let listed = app.json_of("/v1/coupons").await;
    assert_eq!(listed["coupons"].as_array().unwrap().len(), 1, "{listed}");
    let for_pro = app.json_of("/v1/coupons/launch-20?plan=pro").await;
    assert_eq!((for_pro["valid"].as_bool(), for_pro["code"].as_str()), (Some(true), Some("LAUNCH-20")));
    let for_hobby = app.json_of("/v1/coupons/LAUNCH-20?plan=hobby").await;
    assert_eq!(for_hobby["valid"], false);
    assert!(for_hobby["reason"].as_str().unwrap().contains("hobby"), "{for_hobby}");
    assert_eq!(app.get("/v1/coupons/NOPE").await.status(), 404);
}
on_both_databases!(coupons_are_created_by_admins_and_checked_against_plans, manage_and_check);

async fn discount_at_checkout(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    assert_eq!(create(&app, json!({"code": "LAUNCH", "percent_off": 20})).await.0, 201);
    let unknown = app.post_json("/v1/workspaces/acme/checkout", json!({"plan": "pro", "coupon": "NOPE"})).await;
    assert_eq!(unknown.status(), 400);
    assert_eq!(unknown.json::<Value>().await.unwrap()["errors"][0]["field"], "coupon");

    let response = app.post_json("/v1/workspaces/acme/checkout", json!({"plan": "pro", "coupon": "launch"})).await;
    assert_eq!(response.status(), 201);
    let session: Value = response.json().await.unwrap();
    let page = app.client.get(session["url"].as_str().unwrap()).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("39.20 USD"), "20% off 49.00 on the page: {page}");
    assert_eq!(app.press(session["session_id"].as_str().unwrap(), "pay").await.status(), 200);
    let invoices = app.json_of("/v1/workspaces/acme/invoices").await;
    assert_eq!(invoices["invoices"][0]["amount_paid"], json!({"minor": 3920, "currency": "USD"}), "{invoices}");
    assert_eq!(app.json_of("/v1/coupons/LAUNCH").await["used_count"], 1);
    let audit = app.json_of("/v1/workspaces/acme/audit").await;
    let started = audit["entries"].as_array().unwrap().iter().find(|e| e["action"] == "checkout.started").unwrap();
    assert_eq!(started["after"]["coupon"], "LAUNCH");
    // Once per workspace: its next checkout is refused the coupon and takes no use.
    let again = app.post_json("/v1/workspaces/acme/checkout", json!({"plan": "hobby", "coupon": "LAUNCH"})).await;
    assert_eq!(again.status(), 409);
    assert_eq!(again.json::<Value>().await.unwrap()["code"], "coupon_already_redeemed");
    assert_eq!(app.json_of("/v1/coupons/LAUNCH").await["used_count"], 1);
}
on_both_databases!(a_coupon_discounts_the_sandbox_checkout_and_its_invoice, discount_at_checkout);

async fn last_use_race(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(
        create(&app, json!({"code": "ONCE", "amount_off": {"minor": 1000, "currency": "USD"}, "max_uses": 1})).await.0,
        201
    );
    for i in 0..20 {
        assert_eq!(app.put_workspace(&format!("team-{i}")).await.status(), 201);
    }
    let checkouts = (0..20).map(|i| {
        let app = &app;
        async move {
            let body = json!({"plan": "pro", "coupon": "once"});
            let response = app.post_json(&format!("/v1/workspaces/team-{i}/checkout"), body).await;
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    });
    let answers = futures::future::join_all(checkouts).await;
    let started = answers.iter().filter(|(status, _)| *status == 201).count();
    let refused = answers.iter().filter(|(s, body)| *s == 409 && body["code"] == "coupon_exhausted").count();
    assert_eq!((started, refused), (1, 19), "{answers:?}");
    assert_eq!(app.count("coupon_redemptions").await, 1);
    assert_eq!(app.json_of("/v1/coupons/ONCE").await["used_count"], 1);
}
on_both_databases!(twenty_concurrent_checkouts_redeem_a_one_use_coupon_once, last_use_race);
