//! Error handlers for actix's own extractors, so malformed bodies, oversized payloads and wrong content types get
//! problem+json answers naming the problem.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};

use crate::error::ApiError;

/// Maps JSON body failures: too large → 413, wrong content type → 415, bad JSON or fields → 400 naming the field.
pub fn json_error(error: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    let api_error = match &error {
        JsonPayloadError::Overflow { limit } | JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Payload too large",
            format!("the request body exceeds {limit} bytes"),
        ),
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type",
            "the request body must be application/json",
        ),
        JsonPayloadError::Deserialize(e) => body_problem(e),
        other => ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", "Invalid request body", other.to_string()),
    };
    api_error.into()
}

/// A serde error as a field problem where the message names the field, else a generic malformed-JSON problem.
fn body_problem(error: &serde_json::Error) -> ApiError {
    let message = error.to_string();
    if error.is_syntax() || error.is_eof() {
        return ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", "Malformed JSON", message);
    }
    let named = |marker: &str| {
        message.find(marker).and_then(|start| {
            let rest = &message[start + marker.len()..];
            rest.find('`').map(|end| rest[..end].to_owned())
        })
    };
    let field = named("unknown field `").or_else(|| named("missing field `")).unwrap_or_else(|| "body".to_owned());
    let clean = message.split(" at line").next().unwrap_or(&message).to_owned();
    ApiError::field(&field, clean)
}

/// Query-string failures → 400.
pub fn query_error(error: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", "Invalid query string", error.to_string()).into()
}

/// Path failures → 400.
pub fn path_error(error: PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", "Invalid path", error.to_string()).into()
}

/// The extractor configurations of every JSON API route.
pub fn json_config(max_bytes: usize) -> web::JsonConfig {
    web::JsonConfig::default().limit(max_bytes).error_handler(json_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        plan: String,
    }

    #[test]
    fn serde_errors_name_the_field() {
        let unknown = serde_json::from_str::<Body>(r#"{"plan":"pro","coupon_code":"X"}"#).unwrap_err();
        let problem = body_problem(&unknown);
        assert_eq!(problem.code, "validation_failed");
        assert_eq!(problem.errors[0].field, "coupon_code");
        let missing = serde_json::from_str::<Body>("{}").unwrap_err();
        assert_eq!(body_problem(&missing).errors[0].field, "plan");
        let syntax = serde_json::from_str::<Body>("{\"plan\":").unwrap_err();
        assert_eq!(body_problem(&syntax).code, "malformed_json");
    }
}
