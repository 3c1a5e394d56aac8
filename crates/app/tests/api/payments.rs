//! Payments and refunds on the sandbox: a payment intent for an amount or a credits plan (paid on the sandbox's
//! payment page, which grants the plan's credits once), every charge of a checkout recorded and refundable, refunds
//! full or partial within what was paid (409 beyond it, also under concurrency), `charge.refunded` webhooks merged
//! in, every bad input named with nothing changed, and Stripe down → 503 with nothing recorded.

use serde_json::{Value, json};

use crate::helpers::{Backend, DEV_KEY, READ_KEY, TestApp, now, on_both_databases, sign, spawn_app, spawn_stripe_app};

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn create_intent(app: &TestApp, body: Value) -> (u16, Value) {
    answer(app.post_json("/v1/workspaces/acme/payment-intents", body).await).await
}

async fn refund(app: &TestApp, payment: &str, body: Value) -> (u16, Value) {
    answer(app.post_json(&format!("/v1/payments/{payment}/refund"), body).await).await
}

async fn payment(app: &TestApp, id: &str) -> Value {
    app.json_of(&format!("/v1/payments/{id}")).await["payment"].clone()
}

/// Opens the sandbox payment page the API pointed to and presses `button` on it.
async fn confirm(app: &TestApp, intent: &Value, button: &str) {
    let page = app.client.get(intent["confirm_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("One-time payment"));
    let id = intent["payment_id"].as_str().unwrap();
    assert_eq!(app.press(id, button).await.status(), 200, "{button}");
}

async fn intents_and_refunds(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;

    let (status, intent) = create_intent(&app, json!({"plan": "credits10", "description": "Ten credits"})).await;
    assert_eq!(status, 201, "{intent}");
    let id = intent["payment_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("pi_sbx_") && intent["client_secret"].as_str().unwrap().starts_with(&id), "{intent}");
    assert_eq!(intent["payment"]["status"], "pending");
    assert_eq!(intent["payment"]["amount"], json!({"minor": 999, "currency": "USD"}));
    assert_eq!(intent["payment"]["plan"], "credits10");
    let (status, problem) = refund(&app, &id, json!({})).await;
    assert_eq!(
        (status, problem["code"].as_str(), problem["payment_status"].as_str()),
        (409, Some("payment_not_refundable"), Some("pending"))
    );

    confirm(&app, &intent, "pay").await;
    assert_eq!(app.json_of("/v1/workspaces/acme").await["credit_balance"], 10, "the plan's credits, once");
    assert_eq!(payment(&app, &id).await["status"], "succeeded");

    let (status, partial) = refund(&app, &id, json!({"amount": 300, "reason": "requested_by_customer"})).await;
    assert_eq!(status, 201, "{partial}");
    assert_eq!(
        (partial["refund"]["status"].as_str(), partial["refund"]["amount"]["minor"].as_i64()),
        (Some("succeeded"), Some(300))
    );
    assert!(partial["refund"]["processor_refund_id"].as_str().unwrap().starts_with("re_sbx_"));
    assert_eq!(partial["payment"]["refundable"]["minor"], 699);
    // 300 of 999 covers 3 of the pack's 10 credits: taken back.
    assert_eq!(partial["credits_revoked"], 3);
    assert_eq!(app.json_of("/v1/workspaces/acme").await["credit_balance"], 7);
    let (status, problem) = refund(&app, &id, json!({"amount": 700})).await;
    assert_eq!(
        (status, problem["code"].as_str(), problem["refundable"].as_i64()),
        (409, Some("refund_exceeds_payment"), Some(699))
    );
    // No body at all: all that is left.
    let bare = app.client.post(app.url(&format!("/v1/payments/{id}/refund"))).bearer_auth(DEV_KEY).send().await;
    let (status, rest) = answer(bare.unwrap()).await;
    assert_eq!((status, rest["refund"]["amount"]["minor"].as_i64()), (201, Some(699)), "{rest}");
    assert_eq!(rest["credits_revoked"], 7, "the whole pack is refunded: all its credits");
    let (status, problem) = refund(&app, &id, json!({})).await;
    assert_eq!((status, problem["refundable"].as_i64()), (409, Some(0)));
    let detail = app.json_of(&format!("/v1/payments/{id}")).await;
    assert_eq!(detail["payment"]["refunded"]["minor"], 999);
    assert_eq!(detail["refunds"].as_array().unwrap().len(), 2, "{detail}");

    // An amount, declined once and then paid: no credits, one payment.
    let (status, plain) = create_intent(&app, json!({"amount": {"minor": 2500, "currency": "EUR"}})).await;
    assert_eq!(status, 201, "{plain}");
    confirm(&app, &plain, "decline").await;
    assert_eq!(payment(&app, plain["payment_id"].as_str().unwrap()).await["status"], "failed");
    confirm(&app, &plain, "pay").await;
    assert_eq!(payment(&app, plain["payment_id"].as_str().unwrap()).await["status"], "succeeded");
    assert_eq!(app.json_of("/v1/workspaces/acme").await["credit_balance"], 0, "granted nothing; the pack is gone");

    // A subscription checkout's charge is a payment too, refundable like any other.
    let session = app.checkout("acme", "pro").await;
    assert_eq!(app.press(session["session_id"].as_str().unwrap(), "pay").await.status(), 200);
    let listed = app.json_of("/v1/workspaces/acme/payments").await;
    let payments = listed["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 3, "{listed}");
    let charge = &payments[0];
    assert_eq!((charge["status"].as_str(), charge["plan"].as_str()), (Some("succeeded"), Some("pro")), "{charge}");
    assert_eq!(refund(&app, charge["id"].as_str().unwrap(), json!({"amount": 100})).await.0, 201);
    let first_page = app.json_of("/v1/workspaces/acme/payments?limit=2").await;
    assert_eq!(first_page["has_more"], true);
    let after = first_page["payments"][1]["id"].as_str().unwrap();
    let second = app.json_of(&format!("/v1/workspaces/acme/payments?limit=2&starting_after={after}")).await;
    assert_eq!((second["payments"].as_array().unwrap().len(), &second["has_more"]), (1, &json!(false)));

    let audit = app.audit_actions("acme").await;
    for action in ["payment.created", "payment.refunded", "payment_intent.succeeded", "payment_intent.failed"] {
        assert!(audit.iter().any(|a| a == action), "{action} in {audit:?}");
    }
    assert_eq!(audit.iter().filter(|a| *a == "payment.refunded").count(), 3);
}
on_both_databases!(payment_intents_are_paid_once_and_refunded_within_what_was_paid, intents_and_refunds);

async fn bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    let long = "x".repeat(501);
    for (body, field) in [
        (json!({}), "amount"),
        (json!({"amount": {"minor": 100, "currency": "USD"}, "plan": "credits10"}), "amount"),
        (json!({"amount": {"minor": 0, "currency": "USD"}}), "amount"),
        (json!({"amount": {"minor": -5, "currency": "USD"}}), "amount"),
        (json!({"amount": {"minor": 100_000_000, "currency": "USD"}}), "amount"),
        (json!({"amount": {"minor": 100, "currency": "dollars"}}), "amount.currency"),
        (json!({"plan": "pro"}), "plan"),
        (json!({"plan": "nope"}), "plan"),
        (json!({"plan": "credits10", "description": long}), "description"),
        (json!({"plan": "credits10", "return_url": "javascript:alert(1)"}), "return_url"),
        (json!({"plan": "credits10", "tip": 1}), "tip"),
    ] {
        let (status, problem) = create_intent(&app, body.clone()).await;
        assert_eq!(status, 400, "{body} → {problem}");
        let named =
            problem["errors"].as_array().map(|e| e.iter().any(|e| e["field"].as_str().unwrap_or("").contains(field)));
        assert!(
            named.unwrap_or(false) || problem["detail"].as_str().unwrap_or("").contains(field),
            "{body} → {problem}"
        );
    }
    assert_eq!(app.count("payments").await, 0, "nothing recorded");
    let ghost = app.post_json("/v1/workspaces/ghost/payment-intents", json!({"plan": "credits10"})).await;
    assert_eq!(ghost.status(), 404);

    let (_, intent) = create_intent(&app, json!({"plan": "credits10"})).await;
    let id = intent["payment_id"].as_str().unwrap().to_owned();
    confirm(&app, &intent, "pay").await;
    for (body, field) in [
        (json!({"amount": 0}), "amount"),
        (json!({"amount": -1}), "amount"),
        (json!({"amount": "5"}), "amount"),
        (json!({"reason": "bored"}), "reason"),
        (json!({"amount": 5, "note": "x"}), "note"),
    ] {
        let (status, problem) = refund(&app, &id, body.clone()).await;
        assert_eq!(status, 400, "{body} → {problem}");
        let text = problem.to_string();
        assert!(text.contains(field), "{body} → {problem}");
    }
    assert_eq!(refund(&app, "pi_sbx_unknown", json!({})).await.1["code"], "payment_not_found");
    assert_eq!(refund(&app, "not%20an%20id", json!({})).await.0, 400);
    let reader = app
        .client
        .post(app.url(&format!("/v1/payments/{id}/refund")))
        .bearer_auth(READ_KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(reader.status(), 403, "refunds take the admin scope");
    assert_eq!(payment(&app, &id).await["refunded"]["minor"], 0, "nothing refunded");
    assert_eq!(app.count("refunds").await, 0);
}
on_both_databases!(bad_payment_and_refund_input_is_named_and_changes_nothing, bad_input);

async fn charge_refunded(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    let (_, intent) = create_intent(&app, json!({"amount": {"minor": 2000, "currency": "USD"}})).await;
    let id = intent["payment_id"].as_str().unwrap().to_owned();
    confirm(&app, &intent, "pay").await;
    let customer = app.texts("SELECT customer_id FROM processor_customers WHERE workspace_id = 'acme'").await.remove(0);
    let event = |event_id: &str, refunded: i64| {
        json!({
            "id": event_id, "object": "event", "type": "charge.refunded", "created": now(),
            "data": {"object": {"id": "ch_sbx_1", "object": "charge", "customer": customer, "amount": 2000,
                "amount_refunded": refunded, "currency": "usd", "payment_intent": id}}
        })
        .to_string()
    };
    // A refund made at the processor directly (its dashboard), then an older, smaller total arriving late.
    for (event_id, refunded) in [("evt_refund_2", 1500), ("evt_refund_1", 500)] {
        let body = event(event_id, refunded);
        assert_eq!(app.post_webhook(&body, Some(&sign(&body, now()))).await.status(), 200);
    }
    let merged = payment(&app, &id).await;
    assert_eq!((merged["refunded"]["minor"].as_i64(), merged["refundable"]["minor"].as_i64()), (Some(1500), Some(500)));
    let (status, problem) = refund(&app, &id, json!({"amount": 501})).await;
    assert_eq!((status, problem["refundable"].as_i64()), (409, Some(500)));
}
on_both_databases!(charge_refunded_webhooks_merge_into_the_payment, charge_refunded);

async fn concurrent(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    // Ten requests with one Idempotency-Key: one payment, one answer.
    let requests = (0..10).map(|_| {
        let app = &app;
        async move {
            let response = app
                .client
                .post(app.url("/v1/workspaces/acme/payment-intents"))
                .bearer_auth(DEV_KEY)
                .header("Idempotency-Key", "buy-once")
                .json(&json!({"amount": {"minor": 1000, "currency": "USD"}}))
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    });
    let answers = futures::future::join_all(requests).await;
    let created: Vec<&String> = answers.iter().filter(|(s, _)| *s == 201).map(|(_, b)| b).collect();
    assert!(!created.is_empty() && created.iter().all(|b| *b == created[0]), "{answers:?}");
    assert!(answers.iter().all(|(s, _)| *s == 201 || *s == 409), "{answers:?}");
    assert_eq!(app.count("payments").await, 1);

    let intent: Value = serde_json::from_str(created[0]).unwrap();
    confirm(&app, &intent, "pay").await;
    let id = intent["payment_id"].as_str().unwrap().to_owned();
    // Ten refunds of 300 race for 1000: exactly three are made.
    let racers = (0..10).map(|_| {
        let (app, id) = (&app, &id);
        async move { refund(app, id, json!({"amount": 300})).await }
    });
    let outcomes = futures::future::join_all(racers).await;
    let made = outcomes.iter().filter(|(s, _)| *s == 201).count();
    let refused = outcomes.iter().filter(|(s, b)| *s == 409 && b["code"] == "refund_exceeds_payment").count();
    assert_eq!((made, refused), (3, 7), "{outcomes:?}");
    let settled = app.json_of(&format!("/v1/payments/{id}")).await;
    assert_eq!(settled["payment"]["refunded"]["minor"], 900);
    assert_eq!(settled["refunds"].as_array().unwrap().len(), 3);
}
on_both_databases!(concurrent_refunds_and_duplicate_intents_take_effect_once, concurrent);

#[tokio::test]
async fn payment_intents_while_stripe_is_down_answer_503_and_record_nothing() {
    let app = spawn_stripe_app(Backend::Sqlite).await;
    app.put_workspace("acme").await;
    let (status, problem) = create_intent(&app, json!({"plan": "credits10"})).await;
    assert_eq!((status, problem["code"].as_str()), (503, Some("processor_unavailable")), "{problem}");
    assert_eq!(app.count("payments").await, 0);
    assert_eq!(refund(&app, "pi_unknown", json!({})).await.0, 404);
}

async fn credit_pack_refund(backend: Backend) {
    let app = spawn_app(backend).await;
    app.put_workspace("acme").await;
    let session = app.checkout("acme", "credits10").await;
    assert_eq!(app.press(session["session_id"].as_str().unwrap(), "pay").await.status(), 200);
    let consumed =
        app.post_json("/v1/workspaces/acme/credits/consume", json!({"amount": 8, "idempotency_key": "job-1"})).await;
    assert_eq!(consumed.status(), 200);
    let listed = app.json_of("/v1/workspaces/acme/payments").await;
    let pack = &listed["payments"][0];
    assert_eq!(pack["plan"], "credits10", "the checkout's charge knows what it paid for: {listed}");
    let (status, refunded) = refund(&app, pack["id"].as_str().unwrap(), json!({})).await;
    assert_eq!((status, refunded["credits_revoked"].as_i64()), (201, Some(2)), "only the 2 left: {refunded}");
    assert_eq!(app.json_of("/v1/workspaces/acme").await["credit_balance"], 0, "never below zero");
    let ledger =
        app.texts("SELECT CAST(COALESCE(SUM(amount), 0) AS TEXT) FROM credit_ledger WHERE workspace_id = 'acme'").await;
    assert_eq!(ledger[0], "0", "the balance is the sum of the ledger");
}
on_both_databases!(a_refunded_credit_pack_takes_back_only_the_credits_left, credit_pack_refund);
