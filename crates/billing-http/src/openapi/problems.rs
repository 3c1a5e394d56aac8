//! The error side of the document: the problem+json schema with every stable `code`, and the answers whole kinds
//! of routes share (401 on a keyed route, 413/415 on a JSON body, …), added to each operation of that kind so the
//! handlers declare only their own.

use std::collections::BTreeMap;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{Content, Ref, RefOr, Required, Response, ResponseBuilder};
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
pub struct Shared {
    pub keyed: bool,
    pub path_params: bool,
    pub workspace: bool,
    pub json_body: bool,
    pub query: bool,
    pub idempotent: bool,
}

/// The shared answers as named responses, referenced from the operations that have them.
pub fn components() -> BTreeMap<String, RefOr<Response>> {
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

/// Adds the answers and headers `shared` implies to `operation`, keeping any it declares itself.
pub fn add(operation: &mut Operation, shared: &Shared) {
    let mut add = |status: &str, name: &str| {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
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
        let key = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "1-255 visible ASCII characters. A retry with the same key and the same request gets the first \
                 answer again, and nothing happens twice, for `idempotency.ttl_secs` (24 hours by default).",
            ))
            .schema(Some(idempotency_key()))
            .build();
        operation.parameters.get_or_insert_with(Vec::new).push(RefOr::T(key));
    }
}

fn idempotency_key() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(255))
        .pattern(Some("^[!-~]+$"))
        .into()
}
