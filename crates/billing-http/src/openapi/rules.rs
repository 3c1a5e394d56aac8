//! The request rules a field-by-field schema cannot state, added as JSON Schema keywords: the bodies that take
//! exactly one of some fields, the bodies that may be left out altogether, and path parameters as required.

use serde_json::{Value, json};

/// Components whose requests name exactly one of these fields (a `null` counts as absent, as the server reads it).
const EXACTLY_ONE_OF: [(&str, &[&str]); 3] = [
    ("AdvanceBody", &["days", "hours", "to"]),
    ("CreateCouponBody", &["percent_off", "amount_off"]),
    ("PaymentIntentBody", &["amount", "plan"]),
];

pub fn apply(doc: &mut Value) {
    for (component, fields) in EXACTLY_ONE_OF {
        let schema = &mut doc["components"]["schemas"][component];
        assert!(schema.is_object(), "no component {component}");
        let branches: Vec<Value> = fields
            .iter()
            .map(|field| json!({"required": [field], "properties": {*field: {"not": {"type": "null"}}}}))
            .collect();
        schema["oneOf"] = Value::Array(branches);
    }
    let paths = doc["paths"].as_object_mut().into_iter().flat_map(|paths| paths.values_mut());
    for operation in paths.flat_map(|item| item.as_object_mut().into_iter().flat_map(|ops| ops.values_mut())) {
        not_nullable_when_optional(operation);
        path_parameters_required(operation);
    }
}

/// OpenAPI requires every path parameter; utoipa leaves `required` false on one whose schema is `schema_with`.
fn path_parameters_required(operation: &mut Value) {
    let Some(parameters) = operation.get_mut("parameters").and_then(Value::as_array_mut) else { return };
    for parameter in parameters.iter_mut().filter(|p| p["in"] == "path") {
        parameter["required"] = Value::Bool(true);
    }
}

/// An optional body is generated as `oneOf [T, null]`; the server takes an empty body, not a JSON `null`.
fn not_nullable_when_optional(operation: &mut Value) {
    let Some(body) = operation.get_mut("requestBody") else { return };
    if body["required"] == true {
        return;
    }
    let Some(content) = body["content"].as_object_mut() else { return };
    for media in content.values_mut() {
        let branches = media["schema"]["oneOf"].as_array().cloned().unwrap_or_default();
        let not_null: Vec<&Value> = branches.iter().filter(|b| b["type"] != "null").collect();
        if branches.len() == 2 && not_null.len() == 1 {
            media["schema"] = not_null[0].clone();
        }
    }
}
