//! The answers of the document: the problem+json schema with every stable `code`, the answer sets several operations
//! name (processor failures, subscription commands, the sandbox pages), and the answers whole kinds
//! of routes share (401 on a keyed route, 413/415 on a JSON body, …), added to each operation of that kind so the
//! handlers declare only their own.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};

use crate::error::ErrorCode;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem: the body of every error answer. Members beyond these carry facts of the problem
/// (`valid_plans`, `balance`, `refundable`, `limit`, `payment_status`, `subscription_status`, `processor`).
#[derive(ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)]
pub struct ProblemDoc {
    /// `/problems/{code, with dashes}`.
    #[schema(rename = "type", example = "/problems/validation-failed")]
    kind: String,
    title: String,
    /// The HTTP status, repeated.
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// What went wrong, in words; never a secret or an internal detail.
    detail: String,
    #[schema(schema_with = error_code)]
    code: String,
    /// With `validation_failed` and `invalid_query`: each invalid field (`billing_details.tax_ids[0].type`).
    #[schema(nullable = false)]
    errors: Option<Vec<FieldProblemDoc>>,
    /// With an unknown plan: the plans of the catalog.
    #[schema(nullable = false)]
    valid_plans: Option<Vec<String>>,
    /// With `insufficient_credits`: the balance.
    #[schema(nullable = false)]
    balance: Option<i64>,
    /// With `refund_exceeds_payment`: what is left to refund, in minor units.
    #[schema(nullable = false)]
    refundable: Option<i64>,
    /// With `batch_too_large`: the most events a batch holds.
    #[schema(nullable = false)]
    limit: Option<u32>,
    /// With `payment_not_refundable`.
    #[schema(nullable = false)]
    payment_status: Option<String>,
    /// With `subscription_state_conflict`.
    #[schema(nullable = false)]
    subscription_status: Option<String>,
    /// With `payment_managed_elsewhere`: the processor the payment was made through.
    #[schema(nullable = false)]
    processor: Option<String>,
}

/// What an operation that calls the payment processor may also answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ProcessorProblems {
    /// `not_supported_by_processor`: the configured processor cannot do this.
    #[response(status = 501, content_type = "application/problem+json")]
    NotSupported(ProblemDoc),
    /// `processor_rejected`: the payment processor refused the request.
    #[response(status = 502, content_type = "application/problem+json")]
    Rejected(ProblemDoc),
}

/// What cancelling, resuming and changing a subscription may also answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum SubscriptionCommandProblems {
    /// `workspace_not_found` or `subscription_not_found`.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(ProblemDoc),
    /// `subscription_state_conflict` (`subscription_status` says what it is), `subscription_managed_elsewhere`,
    /// `concurrent_update`, or an `Idempotency-Key` in use.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(ProblemDoc),
}

/// What pressing Pay or Decline on the sandbox's checkout page answers.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum CheckoutAnswerPages {
    /// The page.
    #[response(status = 200, content_type = "text/html")]
    Page(String),
    /// `sandbox_disabled` or `checkout_session_not_found`.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(ProblemDoc),
    /// `checkout_session_closed`.
    #[response(status = 409, content_type = "application/problem+json")]
    Closed(ProblemDoc),
}

/// What a button of the sandbox's portal answers.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum PortalActionPages {
    /// The page.
    #[response(status = 200, content_type = "text/html")]
    Page(String),
    /// `sandbox_disabled` or `portal_session_not_found`.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(ProblemDoc),
    /// `subscription_state_conflict`.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(ProblemDoc),
}

/// One invalid field of a problem.
#[derive(ToSchema)]
#[schema(as = FieldProblem)]
#[allow(dead_code)]
pub struct FieldProblemDoc {
    field: String,
    message: String,
}

/// Every declared code, so a client can match on an enum.
fn error_code() -> Schema {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(codes))
        .description(Some("The stable code callers match on."))
        .build()
        .into()
}

/// What a kind of route may answer besides its own answers.
struct Shared {
    keyed: bool,
    path_params: bool,
    workspace: bool,
    json_body: bool,
    query: bool,
    idempotent: bool,
}

impl Shared {
    /// What the operation at `path` is, read from its own description.
    fn of(path: &str, method: &str, operation: &Value, idempotent: &[&str]) -> Self {
        let requirements = operation.get("security").and_then(Value::as_array).into_iter().flatten();
        let mut schemes = requirements.filter_map(Value::as_object).flat_map(|requirement| requirement.keys());
        let parameters = operation.get("parameters").and_then(Value::as_array).into_iter().flatten();
        Self {
            // Refused without a credential (and so also limited and scoped).
            keyed: schemes.any(|name| name == "api_key" || name == "user_token"),
            path_params: path.contains('{'),
            workspace: path.contains("/workspaces/{id}"),
            // A webhook is read as raw bytes, never as JSON: no 415.
            json_body: operation.pointer("/requestBody/content/application~1json").is_some()
                && !path.starts_with("/webhooks/"),
            query: parameters.clone().any(|p| p["in"] == "query"),
            idempotent: method == "post" && idempotent.contains(&path),
        }
    }
}

/// Adds the shared answers to the components, and to every operation the answers and headers its kind implies,
/// keeping any it declares itself.
pub fn add(doc: &mut Value, idempotent: &[&str]) {
    let shared = serde_json::to_value(components()).expect("the shared answers serialize");
    let responses = &mut doc["components"]["responses"];
    match (responses.as_object_mut(), shared) {
        (Some(declared), Value::Object(shared)) => declared.extend(shared),
        (_, shared) => *responses = shared,
    }
    for (path, method, operation) in super::operations_mut(doc) {
        let shared = Shared::of(path, method, operation, idempotent);
        add_to(operation, &shared);
    }
}

/// The shared answers as named responses, referenced from the operations that have them.
fn components() -> BTreeMap<String, RefOr<Response>> {
    let problem = |description: &str| -> RefOr<Response> {
        ResponseBuilder::new()
            .description(description)
            .content(PROBLEM_JSON, Content::new(Some(RefOr::<Schema>::Ref(Ref::from_schema_name("Problem")))))
            .build()
            .into()
    };
    let retry_after = HeaderBuilder::new()
        .schema(Some(<u64 as PartialSchema>::schema()))
        .description(Some("Seconds until a request may succeed again."))
        .build();
    let rate_limited = ResponseBuilder::new()
        .description("`rate_limited`: over the caller's rate limit; retry after `Retry-After` seconds.")
        .header("Retry-After", retry_after)
        .content(PROBLEM_JSON, Content::new(Some(RefOr::<Schema>::Ref(Ref::from_schema_name("Problem")))))
        .build();
    BTreeMap::from([
        (
            "BadRequest".into(),
            problem(
                "`validation_failed` (`errors[]` names each field), `malformed_json`, `invalid_body`, \
                 `invalid_query`, `invalid_path` or `bad_request`.",
            ),
        ),
        ("Unauthorized".into(), problem("`unauthorized`: no credential, or one that is not valid (the reason given).")),
        ("Forbidden".into(), problem("`insufficient_scope`: the key lacks the scope, or the token's role may not.")),
        ("NotFound".into(), problem("Nothing at this path: see the codes of the operation.")),
        ("PayloadTooLarge".into(), problem("`payload_too_large`: the body exceeds the limit.")),
        ("UnsupportedMediaType".into(), problem("`unsupported_media_type`: the body must be `application/json`.")),
        ("RateLimited".into(), rate_limited.into()),
        ("HeadersTooLarge".into(), problem("`request_headers_too_large`.")),
        ("InternalError".into(), problem("`internal_error`: our fault, logged with the request id.")),
        (
            "Unavailable".into(),
            problem(
                "`storage_unavailable` (the database), `processor_unavailable` (the payment processor) or \
                 `request_timeout` (stopped at the server's deadline; what it had not committed was rolled back). \
                 Safe to retry, with the same `Idempotency-Key`.",
            ),
        ),
        (
            "IdempotencyInProgress".into(),
            problem("`idempotency_in_progress`: a request with this `Idempotency-Key` is still running."),
        ),
        (
            "IdempotencyKeyReused".into(),
            problem("`idempotency_key_reused`: this `Idempotency-Key` was sent before with a different request."),
        ),
    ])
}

fn add_to(operation: &mut Value, shared: &Shared) {
    let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { return };
    let mut add = |status: &str, name: &str| {
        responses.entry(status).or_insert_with(|| json!({"$ref": format!("#/components/responses/{name}")}));
    };
    if shared.keyed {
        add("401", "Unauthorized");
        add("403", "Forbidden");
        add("429", "RateLimited");
    }
    if shared.path_params || shared.json_body || shared.query || shared.idempotent {
        add("400", "BadRequest");
    }
    if shared.path_params || shared.workspace {
        add("404", "NotFound");
    }
    if shared.json_body {
        add("413", "PayloadTooLarge");
        add("415", "UnsupportedMediaType");
    }
    if shared.idempotent {
        add("409", "IdempotencyInProgress");
        add("422", "IdempotencyKeyReused");
    }
    add("431", "HeadersTooLarge");
    add("500", "InternalError");
    add("503", "Unavailable");
    if shared.idempotent {
        let key = json!({
            "name": "Idempotency-Key",
            "in": "header",
            "required": false,
            "description": "1-255 visible ASCII characters. A retry with the same key and the same request gets the \
                first answer again, and nothing happens twice, for `idempotency.ttl_secs` (24 hours by default).",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
        });
        match operation.get_mut("parameters").and_then(Value::as_array_mut) {
            Some(parameters) => parameters.push(key),
            None => operation["parameters"] = json!([key]),
        }
    }
}
