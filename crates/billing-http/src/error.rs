//! The one error type of the HTTP edge: renders `application/problem+json` with a stable `code`, logs the cause of
//! our own failures and never shows internals to the caller.

use actix_web::http::Method;
use actix_web::http::StatusCode;
use actix_web::http::header::{ALLOW, CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use billing_domain::catalog::UnknownPlan;
use billing_domain::error::{ProcessorError, StoreError, ValidationErrors};
use serde::Serialize;

/// Declares [`ErrorCode`] and its wire names in one list, so a code cannot be used without being declared here.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $wire:literal,)*) => {
        /// Every public `code` of a problem body. Callers match on these: renaming one breaks them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every declared code.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The `code` member as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $wire,)*
                }
            }
        }
    };
}

error_codes! {
    /// One or more fields (body, query parameter, path segment or header) are invalid; `errors[]` names them.
    ValidationFailed = "validation_failed",
    /// The body is not JSON.
    MalformedJson = "malformed_json",
    /// The body could not be read (corrupt encoding, broken stream).
    InvalidBody = "invalid_body",
    /// The query string does not fit the route; `errors[]` names the parameter.
    InvalidQuery = "invalid_query",
    InvalidPath = "invalid_path",
    PayloadTooLarge = "payload_too_large",
    /// A usage batch holds more events than one request may (`limit` says how many).
    BatchTooLarge = "batch_too_large",
    UnsupportedMediaType = "unsupported_media_type",
    /// The request's header fields exceed the edge's limit.
    RequestHeadersTooLarge = "request_headers_too_large",
    RouteNotFound = "route_not_found",
    /// The API key is over its rate limit (`auth.rate_limit_per_second`); `Retry-After` says when to try again.
    RateLimited = "rate_limited",
    /// The request ran longer than the server's deadline (`server.request_timeout_ms`) and was stopped; what
    /// it had not committed was rolled back. Safe to retry (with the same `Idempotency-Key`).
    RequestTimeout = "request_timeout",
    /// The path exists but not for this method; the `Allow` header lists the methods it has.
    MethodNotAllowed = "method_not_allowed",
    BadRequest = "bad_request",
    Unauthorized = "unauthorized",
    InsufficientScope = "insufficient_scope",
    WorkspaceNotFound = "workspace_not_found",
    SubscriptionNotFound = "subscription_not_found",
    ProcessorNotFound = "processor_not_found",
    SandboxDisabled = "sandbox_disabled",
    SandboxCustomerNotFound = "sandbox_customer_not_found",
    NoOpenInvoice = "no_open_invoice",
    CheckoutSessionNotFound = "checkout_session_not_found",
    CheckoutSessionClosed = "checkout_session_closed",
    PortalSessionNotFound = "portal_session_not_found",
    InvoiceNotFound = "invoice_not_found",
    AlreadySubscribed = "already_subscribed",
    TrialAlreadyUsed = "trial_already_used",
    CouponExists = "coupon_exists",
    CouponNotFound = "coupon_not_found",
    /// The coupon's last use was taken.
    CouponExhausted = "coupon_exhausted",
    /// A coupon applies once per workspace, and this one has redeemed it.
    CouponAlreadyRedeemed = "coupon_already_redeemed",
    /// Fewer credits than asked; `balance` says how many there are.
    InsufficientCredits = "insufficient_credits",
    PaymentNotFound = "payment_not_found",
    /// Only a paid payment can be refunded; `payment_status` says what it is.
    PaymentNotRefundable = "payment_not_refundable",
    /// More than is left to refund; `refundable` says what is (minor units).
    RefundExceedsPayment = "refund_exceeds_payment",
    /// The subscription's state does not allow this command; `subscription_status` says what it is.
    SubscriptionStateConflict = "subscription_state_conflict",
    /// The subscription belongs to a processor that is not the active one.
    SubscriptionManagedElsewhere = "subscription_managed_elsewhere",
    /// The processor refused the refund (e.g. refunded there already); nothing was refunded.
    RefundRefused = "refund_refused",
    /// The payment was made through a processor that is not the active one; refund it there.
    PaymentManagedElsewhere = "payment_managed_elsewhere",
    OutboxMessageNotFound = "outbox_message_not_found",
    /// The server runs on the system clock; only a test clock moves.
    TestClockOff = "test_clock_off",
    /// A test clock moves only forward.
    ClockNotForward = "clock_not_forward",
    /// The outbox message was delivered; it is never sent again.
    OutboxMessageDelivered = "outbox_message_delivered",
    /// The `Idempotency-Key` was sent before with a different request.
    IdempotencyKeyReused = "idempotency_key_reused",
    /// A request with this `Idempotency-Key` is still running.
    IdempotencyInProgress = "idempotency_in_progress",
    ConcurrentUpdate = "concurrent_update",
    StorageUnavailable = "storage_unavailable",
    ProcessorUnavailable = "processor_unavailable",
    NotSupportedByProcessor = "not_supported_by_processor",
    ProcessorRejected = "processor_rejected",
    WebhookSignatureMissing = "webhook_signature_missing",
    WebhookSignatureMalformed = "webhook_signature_malformed",
    WebhookSignatureInvalid = "webhook_signature_invalid",
    WebhookTimestampStale = "webhook_timestamp_stale",
    WebhookPayloadInvalid = "webhook_payload_invalid",
    InternalError = "internal_error",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One invalid field in a problem body.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

/// A failed request: status, stable code, human detail and, for validation, the fields.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub title: &'static str,
    pub detail: String,
    pub errors: Vec<FieldProblem>,
    /// Extra members of the problem body (e.g. `valid_plans`); boxed, as most problems have none.
    pub extra: Option<Box<serde_json::Value>>,
    /// Response headers the problem needs (e.g. `Allow` on a 405).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, title: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, title, detail: detail.into(), errors: Vec::new(), extra: None, headers: Vec::new() }
    }

    pub fn with_extra(mut self, extra: serde_json::Value) -> Self {
        self.extra = Some(Box::new(extra));
        self
    }

    /// Names the invalid fields of a problem whose code is not `validation_failed` (e.g. `invalid_query`).
    pub fn with_errors(mut self, errors: Vec<FieldProblem>) -> Self {
        self.errors = errors;
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// 400 naming each invalid field.
    pub fn validation(errors: ValidationErrors) -> Self {
        let problems: Vec<FieldProblem> =
            errors.0.into_iter().map(|e| FieldProblem { field: e.field, message: e.message }).collect();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        let detail = format!("invalid fields: {}", fields.join(", "));
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::ValidationFailed, "Invalid request", detail).with_errors(problems)
    }

    /// 400 for a single invalid field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(billing_domain::error::ValidationError::new(field, message).into())
    }

    pub fn not_found(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, "Not found", detail)
    }

    pub fn workspace_not_found() -> Self {
        Self::not_found(ErrorCode::WorkspaceNotFound, "no workspace with this id")
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, "Unauthorized", detail)
    }

    /// 404 for a path no route has.
    pub fn route_not_found(method: &Method, path: &str) -> Self {
        Self::not_found(ErrorCode::RouteNotFound, format!("no route for {method} {path}"))
    }

    /// 405 for a known path asked with a method it does not have; `Allow` lists the ones it has.
    pub fn method_not_allowed(method: &Method, allowed: &[Method]) -> Self {
        let allow = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
        let error = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            "Method not allowed",
            format!("{method} is not allowed here; allowed: {allow}"),
        );
        match HeaderValue::from_str(&allow) {
            Ok(value) => error.with_header(ALLOW, value),
            Err(_) => error,
        }
    }

    /// 413 for a body over `limit` bytes.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            "Payload too large",
            format!("the request body exceeds {limit} bytes"),
        )
    }

    /// 415 for a body that is not JSON by its `Content-Type`.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "Unsupported media type",
            "the request body must be application/json",
        )
    }

    /// 500 for a bug or an unexpected failure: logged here with its cause, generic to the caller.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed unexpectedly");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "Internal error",
            "an unexpected error occurred; it has been logged",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.code, self.detail)
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "<[FieldProblem]>::is_empty")]
    errors: &'a [FieldProblem],
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let code = self.code.as_str();
        let problem = Problem {
            kind: format!("/problems/{}", code.replace('_', "-")),
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
            code,
            errors: &self.errors,
        };
        let mut body = serde_json::to_value(&problem).unwrap_or_default();
        if let (Some(serde_json::Value::Object(extra)), serde_json::Value::Object(map)) =
            (self.extra.as_deref(), &mut body)
        {
            map.extend(extra.clone());
        }
        let mut response = HttpResponse::build(self.status);
        response.insert_header((CONTENT_TYPE, "application/problem+json"));
        for header in &self.headers {
            response.insert_header(header.clone());
        }
        response.body(body.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(cause) => {
                tracing::error!(error = %cause, "storage unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::StorageUnavailable,
                    "Service unavailable",
                    "the database is unavailable; retry later",
                )
            }
            StoreError::Conflict(cause) => {
                tracing::warn!(error = %cause, "concurrent update");
                Self::new(
                    StatusCode::CONFLICT,
                    ErrorCode::ConcurrentUpdate,
                    "Conflict",
                    "the resource changed concurrently; retry the request",
                )
            }
            other => Self::internal(other),
        }
    }
}

/// 400 naming `plan`, with the catalog's plans as `valid_plans`.
impl From<UnknownPlan> for ApiError {
    fn from(unknown: UnknownPlan) -> Self {
        let valid = unknown.valid.clone();
        ApiError::field("plan", unknown.to_string()).with_extra(serde_json::json!({"valid_plans": valid}))
    }
}

impl From<ProcessorError> for ApiError {
    fn from(error: ProcessorError) -> Self {
        match error {
            ProcessorError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "processor unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::ProcessorUnavailable,
                    "Payment processor unavailable",
                    "the payment processor could not be reached; nothing was changed, retry later",
                )
            }
            ProcessorError::Unsupported(what) => Self::new(
                StatusCode::NOT_IMPLEMENTED,
                ErrorCode::NotSupportedByProcessor,
                "Not supported",
                format!("the configured payment processor does not support {what}"),
            ),
            ProcessorError::Rejected(cause) => {
                tracing::error!(error = %cause, "processor rejected a request");
                Self::new(
                    StatusCode::BAD_GATEWAY,
                    ErrorCode::ProcessorRejected,
                    "Payment processor error",
                    "the payment processor rejected the request",
                )
            }
        }
    }
}

/// Renders error responses produced outside our handlers (actix's plain-text errors) as problem+json too, so every
/// error a caller sees has the same shape. HTML pages and problems pass through.
pub fn problem_details<B: 'static>() -> actix_web::middleware::ErrorHandlers<B> {
    actix_web::middleware::ErrorHandlers::new().default_handler(render_plain_error)
}

fn render_plain_error<B>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    use actix_web::middleware::ErrorHandlerResponse;

    let content_type = res.headers().get(CONTENT_TYPE).map(|v| v.as_bytes().to_owned()).unwrap_or_default();
    let plain = content_type.is_empty() || content_type.starts_with(b"text/plain");
    if !plain {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (code, title, detail) = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = res.headers().get(ALLOW).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            (
                ErrorCode::MethodNotAllowed,
                "Method not allowed",
                format!("{} is not allowed here; allowed: {allowed}", res.request().method()),
            )
        }
        StatusCode::NOT_FOUND => {
            (ErrorCode::RouteNotFound, "Not found", format!("no route for {}", res.request().path()))
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            (ErrorCode::PayloadTooLarge, "Payload too large", "the request body is too large".into())
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            ErrorCode::UnsupportedMediaType,
            "Unsupported media type",
            "the request body must be application/json".into(),
        ),
        s if s.is_server_error() => (ErrorCode::InternalError, "Internal error", "an unexpected error occurred".into()),
        _ => (ErrorCode::BadRequest, "Bad request", "the request could not be understood".into()),
    };
    let allow = res.headers().get(ALLOW).cloned();
    let (req, _) = res.into_parts();
    let mut error = ApiError::new(status, code, title, detail);
    if let Some(allow) = allow {
        error = error.with_header(ALLOW, allow);
    }
    let response = error.error_response();
    Ok(ErrorHandlerResponse::Response(actix_web::dev::ServiceResponse::new(req, response).map_into_right_body()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_stable() {
        let wire: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        let unique: std::collections::BTreeSet<&str> = wire.iter().copied().collect();
        assert_eq!(unique.len(), wire.len(), "a code is declared twice");
        assert!(wire.iter().all(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_')));
        // Callers match on these; a rename is a breaking change and must show up here.
        for code in ["validation_failed", "method_not_allowed", "route_not_found", "invalid_query"] {
            assert!(unique.contains(code), "{code} is gone");
        }
    }

    #[test]
    fn a_405_lists_the_allowed_methods() {
        let error = ApiError::method_not_allowed(&Method::DELETE, &[Method::PUT, Method::GET]);
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers().get(ALLOW).unwrap(), "PUT, GET");
        assert_eq!(response.headers().get(CONTENT_TYPE).unwrap(), "application/problem+json");
    }
}
