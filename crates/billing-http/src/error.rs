//! The one error type of the HTTP edge: renders `application/problem+json` with a stable `code`, logs the cause of
//! our own failures and never shows internals to the caller.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use billing_domain::error::{ProcessorError, StoreError, ValidationErrors};
use serde::Serialize;

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
    pub code: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub errors: Vec<FieldProblem>,
    /// Extra members of the problem body (e.g. `valid_plans`).
    pub extra: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, title, detail: detail.into(), errors: Vec::new(), extra: None }
    }

    pub fn with_extra(mut self, extra: serde_json::Value) -> Self {
        self.extra = Some(extra);
        self
    }

    /// 400 naming each invalid field.
    pub fn validation(errors: ValidationErrors) -> Self {
        let problems: Vec<FieldProblem> =
            errors.0.into_iter().map(|e| FieldProblem { field: e.field, message: e.message }).collect();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        let detail = format!("invalid fields: {}", fields.join(", "));
        Self { errors: problems, ..Self::new(StatusCode::BAD_REQUEST, "validation_failed", "Invalid request", detail) }
    }

    /// 400 for a single invalid field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(billing_domain::error::ValidationError::new(field, message).into())
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, "Not found", detail)
    }

    pub fn workspace_not_found() -> Self {
        Self::not_found("workspace_not_found", "no workspace with this id")
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized", detail)
    }

    /// 500 for a bug or an unexpected failure: logged here with its cause, generic to the caller.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed unexpectedly");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
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
        let problem = Problem {
            kind: format!("/problems/{}", self.code.replace('_', "-")),
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
            errors: &self.errors,
        };
        let mut body = serde_json::to_value(&problem).unwrap_or_default();
        if let (Some(serde_json::Value::Object(extra)), serde_json::Value::Object(map)) = (&self.extra, &mut body) {
            map.extend(extra.clone());
        }
        HttpResponse::build(self.status)
            .insert_header((actix_web::http::header::CONTENT_TYPE, "application/problem+json"))
            .body(body.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(cause) => {
                tracing::error!(error = %cause, "storage unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "Service unavailable",
                    "the database is unavailable; retry later",
                )
            }
            StoreError::Conflict(cause) => {
                tracing::warn!(error = %cause, "concurrent update");
                Self::new(
                    StatusCode::CONFLICT,
                    "concurrent_update",
                    "Conflict",
                    "the resource changed concurrently; retry the request",
                )
            }
            other => Self::internal(other),
        }
    }
}

impl From<ProcessorError> for ApiError {
    fn from(error: ProcessorError) -> Self {
        match error {
            ProcessorError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "processor unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "processor_unavailable",
                    "Payment processor unavailable",
                    "the payment processor could not be reached; nothing was changed, retry later",
                )
            }
            ProcessorError::Unsupported(what) => Self::new(
                StatusCode::NOT_IMPLEMENTED,
                "not_supported_by_processor",
                "Not supported",
                format!("the configured payment processor does not support {what}"),
            ),
            ProcessorError::Rejected(cause) => {
                tracing::error!(error = %cause, "processor rejected a request");
                Self::new(
                    StatusCode::BAD_GATEWAY,
                    "processor_rejected",
                    "Payment processor error",
                    "the payment processor rejected the request",
                )
            }
        }
    }
}

/// Renders error responses produced outside our handlers (actix's 405, its plain-text extractor errors) as
/// problem+json too, so every error a caller sees has the same shape. HTML pages and problems pass through.
pub fn problem_details<B: 'static>() -> actix_web::middleware::ErrorHandlers<B> {
    actix_web::middleware::ErrorHandlers::new().default_handler(render_plain_error)
}

fn render_plain_error<B>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    use actix_web::http::header::{ALLOW, CONTENT_TYPE};
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
                "method_not_allowed",
                "Method not allowed",
                format!("{} is not allowed here; allowed: {allowed}", res.request().method()),
            )
        }
        StatusCode::NOT_FOUND => ("route_not_found", "Not found", format!("no route for {}", res.request().path())),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ("payload_too_large", "Payload too large", "the request body is too large".into())
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported_media_type", "Unsupported media type", "the request body must be application/json".into())
        }
        s if s.is_server_error() => ("internal_error", "Internal error", "an unexpected error occurred".into()),
        _ => ("bad_request", "Bad request", "the request could not be understood".into()),
    };
    let allow = res.headers().get(ALLOW).cloned();
    let (req, _) = res.into_parts();
    let mut response = ApiError::new(status, code, title, detail).error_response();
    if let Some(allow) = allow {
        response.headers_mut().insert(ALLOW, allow);
    }
    Ok(ErrorHandlerResponse::Response(actix_web::dev::ServiceResponse::new(req, response).map_into_right_body()))
}
