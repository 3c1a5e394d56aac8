//! What the loaded catalog allows, written into the document: the plans a checkout, a plan change, a credit pack
//! or a coupon may name, and the limits and features a check may ask about. A client generated from the document
//! then knows this server's plans, and a request the document accepts never fails for naming one that is not here.

use billing_domain::catalog::{Aggregation, Catalog, LimitSourceKind, Plan};
use serde_json::{Value, json};

pub fn constrain(doc: &mut Value, catalog: &Catalog) {
    let plans = |keep: fn(&Plan) -> bool| -> Vec<Value> {
        catalog.plans().iter().filter(|p| keep(p)).map(|p| json!(p.id.as_str())).collect()
    };
    let keys: Vec<Value> =
        catalog.limit_declarations().keys().chain(catalog.feature_declarations().keys()).map(|k| json!(k)).collect();
    let schemas = &mut doc["components"]["schemas"];
    set_enum(
        &mut schemas["CheckoutBody"]["properties"]["plan"],
        plans(|p| !p.is_default && !p.processor_prices.is_empty()),
    );
    let switchable = plans(|p| p.is_subscription() && !p.is_default && !p.processor_prices.is_empty());
    set_enum(&mut schemas["ChangeBody"]["properties"]["plan"], switchable);
    set_enum(&mut schemas["PaymentIntentBody"]["properties"]["plan"], plans(|p| !p.is_subscription()));
    set_enum(&mut schemas["CreateCouponBody"]["properties"]["plans"]["items"], plans(|p| !p.is_default));
    set_enum(&mut schemas["CheckBody"]["properties"]["key"], keys);
    // Only a usage limit whose metric sums can be consumed; `consume` then also needs its key.
    let consumable: Vec<Value> = catalog
        .limit_declarations()
        .iter()
        .filter(|(_, d)| d.source_kind == LimitSourceKind::Usage)
        .filter(|(_, d)| {
            d.metric
                .as_ref()
                .and_then(|m| catalog.metric_declarations().get(m))
                .is_some_and(|m| m.aggregation == Aggregation::Sum)
        })
        .map(|(name, _)| json!(name))
        .collect();
    schemas["CheckBody"]["if"] = json!({"properties": {"consume": {"type": "integer"}}, "required": ["consume"]});
    schemas["CheckBody"]["then"] = json!({
        "properties": {"key": {"enum": consumable}, "idempotency_key": {"type": "string"}},
        "required": ["idempotency_key"],
    });
    // The billing page shows the counts a product passes, of count limits only.
    let counts: Vec<Value> = catalog
        .limit_declarations()
        .iter()
        .filter(|(_, d)| d.source_kind == LimitSourceKind::Count)
        .map(|(name, _)| json!(name))
        .collect();
    let page_counts = &mut schemas["BillingPageSessionBody"]["properties"]["counts"];
    assert!(page_counts.is_object(), "no counts to constrain");
    page_counts["propertyNames"] = json!({"enum": counts});
    let coupon = operation_parameter(doc, "/v1/coupons/{code}", "get", "plan");
    set_enum(coupon, plans(|_| true));
    let portal_plans = plans(|p| p.is_subscription() && !p.processor_prices.is_empty());
    let change = "/sandbox/portal/{id}/subscriptions/{subscription}/change/{plan}";
    set_enum(operation_parameter(doc, change, "post", "plan"), portal_plans);
}

fn operation_parameter<'a>(doc: &'a mut Value, path: &str, method: &str, name: &str) -> &'a mut Value {
    let parameters = doc["paths"][path][method]["parameters"].as_array_mut();
    match parameters.and_then(|ps| ps.iter_mut().find(|p| p["name"] == name)) {
        Some(parameter) => &mut parameter["schema"],
        None => panic!("no parameter `{name}` on {method} {path}"),
    }
}

/// Only these values; a nullable schema keeps `null`, which the server takes as absent.
fn set_enum(schema: &mut Value, mut values: Vec<Value>) {
    assert!(schema.is_object(), "no schema to constrain");
    let nullable = schema["type"].as_array().is_some_and(|types| types.iter().any(|t| t == "null"));
    if nullable {
        values.push(Value::Null);
    }
    schema["enum"] = Value::Array(values);
}
