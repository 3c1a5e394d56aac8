//! The request rules a field-by-field schema cannot state, added as JSON Schema keywords: the bodies that take
//! exactly one of some fields, the bodies that may be left out altogether, path parameters as required, and no
//! U+0000 in any string a request sends (the extractors refuse it: PostgreSQL's text cannot hold it).

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
    let mut requested = Vec::new();
    for (_, _, operation) in super::operations_mut(doc) {
        not_nullable_when_optional(operation);
        path_parameters_required(operation);
        for parameter in operation.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
            no_nul(&mut parameter["schema"], &mut requested);
        }
        if let Some(content) = operation.pointer_mut("/requestBody/content").and_then(Value::as_object_mut) {
            for media in content.values_mut() {
                no_nul(&mut media["schema"], &mut requested);
            }
        }
    }
    // The components request bodies name, and those they name in turn.
    let mut done: Vec<String> = Vec::new();
    while let Some(name) = requested.pop() {
        if done.contains(&name) {
            continue;
        }
        no_nul(&mut doc["components"]["schemas"][&name], &mut requested);
        done.push(name);
    }
}

/// Every string of `schema` that no pattern, enum or format already bounds refuses U+0000; components it refers
/// to are added to `refs`.
fn no_nul(schema: &mut Value, refs: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(name) = map.get("$ref").and_then(Value::as_str).and_then(|r| r.rsplit('/').next()) {
                refs.push(name.to_owned());
            }
            let is_string = match map.get("type") {
                Some(Value::String(t)) => t == "string",
                Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
                _ => false,
            };
            let bounded = ["pattern", "enum", "format", "const"].iter().any(|k| map.contains_key(*k));
            if is_string && !bounded {
                map.insert("pattern".into(), json!(NO_NUL));
            }
            for value in map.values_mut() {
                no_nul(value, refs);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| no_nul(item, refs)),
        _ => {}
    }
}

/// Any string without U+0000.
const NO_NUL: &str = r"^[^\x00]*$";

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
