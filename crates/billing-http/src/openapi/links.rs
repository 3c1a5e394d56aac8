//! Response links: how one answer supplies the ids of the next requests (the workspace a PUT made, the session a
//! checkout opened, the payment an intent created), so a client — and schemathesis's stateful phase — can follow
//! a workspace from its creation through checkout, payment and its subscription commands.

use serde_json::{Value, json};

/// (operation, status, the operations it leads to, their parameter, where its value comes from).
const LINKS: &[(&str, &str, &[&str], &str, &str)] = &[
    ("createCoupon", "201", &["checkCoupon"], "code", "$response.body#/code"),
    (
        "startCheckout",
        "201",
        &["sandboxCheckoutPage", "sandboxCheckoutPay", "sandboxCheckoutDecline"],
        "id",
        "$response.body#/session_id",
    ),
    (
        "createPaymentIntent",
        "201",
        &["getPayment", "refundPayment", "sandboxCheckoutPay", "sandboxCheckoutDecline"],
        "id",
        "$response.body#/payment_id",
    ),
    ("listPayments", "200", &["getPayment", "refundPayment"], "id", "$response.body#/payments/0/id"),
];

pub fn add(doc: &mut Value) {
    // A workspace, once put, is the `{id}` of every route of that workspace.
    let workspace_routes: Vec<String> = super::operations(doc)
        .filter(|(path, _, _)| path.contains("/workspaces/{id}"))
        .map(|(_, _, operation)| operation["operationId"].as_str().unwrap_or_default().to_owned())
        .filter(|id| id != "putWorkspace")
        .collect();
    for status in ["200", "201"] {
        let targets: Vec<&str> = workspace_routes.iter().map(String::as_str).collect();
        link(doc, "putWorkspace", status, &targets, "id", "$request.path.id");
    }
    for (source, status, targets, parameter, expression) in LINKS {
        link(doc, source, status, targets, parameter, expression);
    }
}

fn link(doc: &mut Value, source: &str, status: &str, targets: &[&str], parameter: &str, expression: &str) {
    let known: Vec<String> =
        super::operations(doc).filter_map(|(_, _, op)| op["operationId"].as_str().map(str::to_owned)).collect();
    let (_, _, operation) = super::operations_mut(doc)
        .find(|(_, _, op)| op["operationId"] == source)
        .unwrap_or_else(|| panic!("no operation {source}"));
    let response = &mut operation["responses"][status];
    assert!(response.is_object(), "{source} has no {status} answer to link from");
    for target in targets {
        assert!(known.iter().any(|id| id == target), "no operation {target}");
        response["links"][*target] = json!({"operationId": target, "parameters": {parameter: expression}});
    }
}
