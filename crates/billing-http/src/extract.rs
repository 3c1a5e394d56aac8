//! Our own body and query extractors, so every malformed input is a problem+json naming what was wrong: the field
//! (`billing_details.tax_ids[0].type`, `limit`) where serde can say which, 413 for an oversized body, 415 for a
//! body that is not JSON.
//!
//! actix's `web::Json` and `web::Query` only hand their error handlers serde's message, which names the field of a
//! missing or unknown key but never that of a wrongly typed value; deserializing through `serde_path_to_error`
//! gives the path of every failure. Then the DTO's `validator` rules run, each failure named by its path too.

use std::ops::Deref;

use actix_web::error::{PathError, PayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev};
use futures::future::LocalBoxFuture;
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_path_to_error::{Path, Segment};
use validator::{Validate, ValidationErrorsKind};

use billing_domain::error::{ValidationError, ValidationErrors};

use crate::error::{ApiError, ErrorCode, FieldProblem};
use crate::objects_only::ObjectsOnly;

/// The largest JSON body accepted when the app registers no [`JsonLimit`].
const DEFAULT_JSON_LIMIT: usize = 64 * 1024;

/// App data: the largest JSON request body, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct JsonLimit(pub usize);

/// A JSON request body (`Content-Type: application/json` or `*/*+json`) deserialized into `T`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + Validate + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut dev::Payload) -> Self::Future {
        let limit = json_limit(req);
        if !is_json(req) {
            return Box::pin(async { Err(ApiError::unsupported_media_type()) });
        }
        // Decoded as actix's own `Json` does, so a gzip body is limited by its decoded size.
        let stream = dev::Decompress::from_headers(payload.take(), req.headers());
        let declared = declared_length(req);
        Box::pin(async move {
            let bytes = read_limited(stream, declared, limit).await?;
            refuse_nul(&bytes)?;
            let value: T = parse_json(&bytes)?;
            validate(&value)?;
            Ok(Json(value))
        })
    }
}

/// A JSON body read as [`Json`] reads it, but up to `limit` bytes: for a route whose body is a batch. Its own
/// rules are the handler's to check.
pub(crate) async fn json_body<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: dev::Payload,
    limit: usize,
) -> Result<T, ApiError> {
    if !is_json(req) {
        return Err(ApiError::unsupported_media_type());
    }
    let stream = dev::Decompress::from_headers(payload, req.headers());
    let bytes = read_limited(stream, declared_length(req), limit.max(json_limit(req))).await?;
    parse_json(&bytes)
}

/// A JSON body like [`Json`], or `T::default()` when the request has no body at all: for routes whose every field
/// is optional (`POST …/portal`). A body that is sent is read and validated
/// like any other — a bad one is never taken for an absent one.
#[derive(Debug)]
pub struct JsonOrEmpty<T>(pub T);

impl<T> JsonOrEmpty<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + Validate + Default + 'static> FromRequest for JsonOrEmpty<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut dev::Payload) -> Self::Future {
        // No body: a declared length of 0 (whatever the content type, as `curl -X POST -H 'content-type: …'`
        // sends), or neither a length nor a chunked body.
        let chunked = req.headers().contains_key(actix_web::http::header::TRANSFER_ENCODING);
        let empty = match declared_length(req) {
            Some(length) => length == 0,
            None => !chunked,
        };
        if empty {
            return Box::pin(async { Ok(JsonOrEmpty(T::default())) });
        }
        let json = Json::<T>::from_request(req, payload);
        Box::pin(async move { json.await.map(|Json(value)| JsonOrEmpty(value)) })
    }
}

/// The largest JSON body this app accepts ([`JsonLimit`], else the default).
pub(crate) fn json_limit(req: &HttpRequest) -> usize {
    req.app_data::<JsonLimit>().map_or(DEFAULT_JSON_LIMIT, |l| l.0)
}

/// Whether the request declares a JSON body, by the same rule as actix's `Json`.
fn is_json(req: &HttpRequest) -> bool {
    match req.mime_type() {
        Ok(Some(mime)) => mime.subtype() == actix_web::mime::JSON || mime.suffix() == Some(actix_web::mime::JSON),
        _ => false,
    }
}

/// The `Content-Length` the request declares, if any.
pub(crate) fn declared_length(req: &HttpRequest) -> Option<usize> {
    req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

/// Reads a body, refusing it with 413 as soon as it exceeds `limit` (by its declared length or by bytes read).
pub(crate) async fn read_limited<S>(mut stream: S, declared: Option<usize>, limit: usize) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::payload_too_large(limit));
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(8192).min(limit));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidBody, "Invalid request body", e.to_string())
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

const NUL_MESSAGE: &str = "must not contain the NUL character (U+0000)";

/// No field of the API means U+0000, and PostgreSQL's text cannot hold it: a body that spells one (`\u0000` is
/// the only way JSON can) is refused naming the field, before any of it reaches a query. Only a body holding
/// that escape is looked at twice.
fn refuse_nul(bytes: &[u8]) -> Result<(), ApiError> {
    use serde_json::Value;
    fn nul_at(value: &Value, path: &str) -> Option<String> {
        match value {
            Value::String(text) => text.contains('\0').then(|| path.to_owned()),
            Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| nul_at(item, &format!("{path}[{i}]"))),
            Value::Object(map) => map.iter().find_map(|(key, item)| {
                let field =
                    if path.is_empty() { key.replace('\0', "") } else { format!("{path}.{}", key.replace('\0', "")) };
                if key.contains('\0') { Some(field) } else { nul_at(item, &field) }
            }),
            _ => None,
        }
    }
    if !bytes.windows(6).any(|window| window == b"\\u0000") {
        return Ok(());
    }
    // Not JSON: the read that follows says so.
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else { return Ok(()) };
    match nul_at(&value, "") {
        Some(field) if field.is_empty() => Err(ApiError::field("body", NUL_MESSAGE)),
        Some(field) => Err(ApiError::field(&field, NUL_MESSAGE)),
        None => Ok(()),
    }
}

/// Deserializes a JSON body, naming the field of any failure; text after the value is malformed JSON.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let error = match serde_path_to_error::deserialize(ObjectsOnly(&mut deserializer)) {
        Ok(value) => {
            deserializer.end().map_err(malformed_json)?;
            return Ok(value);
        }
        Err(error) => error,
    };
    // JSON (and JSON Schema) count `2.0` as the integer 2, which serde refuses for an integer field: a body
    // that fails is read once more with its whole floats written as integers. Only a failed read pays for it.
    if !error.inner().is_syntax()
        && let Some(value) = whole_floats_as_integers(bytes)
        && let Ok(read) = serde_path_to_error::deserialize(ObjectsOnly(value))
    {
        return Ok(read);
    }
    Err(json_problem(error))
}

/// The body as a value with every whole float (`2.0`, `1e3`) within f64's exact integers made an integer;
/// `None` when it is not JSON or has no such float.
fn whole_floats_as_integers(bytes: &[u8]) -> Option<serde_json::Value> {
    use serde_json::Value;
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    fn walk(value: &mut Value) -> bool {
        match value {
            Value::Number(n) if n.is_f64() => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() <= EXACT => {
                    *value = Value::from(f as i64);
                    true
                }
                _ => false,
            },
            Value::Array(items) => items.iter_mut().fold(false, |any, item| walk(item) | any),
            Value::Object(map) => map.values_mut().fold(false, |any, item| walk(item) | any),
            _ => false,
        }
    }
    let mut value: Value = serde_json::from_slice(bytes).ok()?;
    walk(&mut value).then_some(value)
}

fn malformed_json(error: serde_json::Error) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::MalformedJson, "Malformed JSON", error.to_string())
}

/// A syntax error is malformed JSON; a value that does not fit the DTO is a validation problem naming its field.
fn json_problem(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().clone();
    let inner = error.into_inner();
    if inner.is_syntax() || inner.is_eof() || inner.is_io() {
        return malformed_json(inner);
    }
    let message = inner.to_string();
    // serde_json appends the position; the field name says more, and the caller sent no lines.
    let position = format!(" at line {} column {}", inner.line(), inner.column());
    let message = message.strip_suffix(&position).unwrap_or(&message);
    ApiError::field(&field_name(&path, message).unwrap_or_else(|| "body".to_owned()), message)
}

/// Query-string deserialization failures → 400 `invalid_query` naming the parameter.
fn query_problem(error: serde_path_to_error::Error<serde_urlencoded::de::Error>) -> ApiError {
    let message = error.inner().to_string();
    let field = field_name(error.path(), &message);
    let detail = match &field {
        Some(field) => format!("query parameter `{field}`: {message}"),
        None => message.clone(),
    };
    let errors = field.into_iter().map(|field| FieldProblem { field, message: message.clone() }).collect();
    ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidQuery, "Invalid query string", detail).with_errors(errors)
}

/// The dotted, indexed name of the failing field (`billing_details.tax_ids[0].type`), or `None` at the root.
///
/// A missing field fails at the struct that lacks it, so its name is known only from serde's message
/// (`missing field `x``), the one place serde puts it.
fn field_name(path: &Path, message: &str) -> Option<String> {
    let mut name = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => name.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !name.is_empty() {
                    name.push('.');
                }
                name.push_str(key);
            }
            Segment::Unknown => {
                if !name.is_empty() {
                    name.push('.');
                }
                name.push('?');
            }
        }
    }
    if let Some(missing) = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()) {
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(missing);
    }
    (!name.is_empty()).then_some(name)
}

/// A query string deserialized into `T`; failures name the parameter.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> Deref for Query<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + Validate> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut dev::Payload) -> Self::Future {
        std::future::ready(parse_query(req.query_string()).and_then(|value: T| {
            validate(&value)?;
            Ok(Query(value))
        }))
    }
}

fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    if query.contains("%00") {
        let pairs = form_urlencoded::parse(query.as_bytes());
        if let Some((key, _)) = pairs.into_iter().find(|(key, value)| key.contains('\0') || value.contains('\0')) {
            let field = FieldProblem { field: key.replace('\0', ""), message: NUL_MESSAGE.to_owned() };
            let detail = format!("query parameter `{}`: {NUL_MESSAGE}", field.field);
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidQuery,
                "Invalid query string",
                detail,
            )
            .with_errors(vec![field]));
        }
    }
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(query_problem)
}

/// Runs the DTO's `validator` rules: 400 `validation_failed` naming every failing field by its path.
fn validate<T: Validate>(value: &T) -> Result<(), ApiError> {
    let Err(errors) = value.validate() else { return Ok(()) };
    let mut problems = Vec::new();
    collect_problems("", &errors, &mut problems);
    problems.sort_by(|a: &ValidationError, b| a.field.cmp(&b.field));
    Err(ApiError::validation(ValidationErrors(problems)))
}

fn collect_problems(prefix: &str, errors: &validator::ValidationErrors, out: &mut Vec<ValidationError>) {
    for (field, kind) in errors.errors() {
        let name = match (prefix, field.as_ref()) {
            ("", "__all__") => "body".to_owned(),
            ("", field) => field.to_owned(),
            (prefix, "__all__") => prefix.to_owned(),
            (prefix, field) => format!("{prefix}.{field}"),
        };
        match kind {
            ValidationErrorsKind::Field(failures) => {
                for failure in failures {
                    let message = failure
                        .message
                        .as_deref()
                        .map_or_else(|| format!("is invalid ({})", failure.code), str::to_owned);
                    out.push(ValidationError::new(&name, message));
                }
            }
            ValidationErrorsKind::Struct(inner) => collect_problems(&name, inner, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    collect_problems(&format!("{name}[{index}]"), inner, out);
                }
            }
        }
    }
}

/// Path failures → 400.
pub fn path_error(error: PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidPath, "Invalid path", error.to_string()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dto::{AuditQuery, CheckoutBody, WorkspaceBody};

    #[derive(Debug, serde::Deserialize, Validate)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        plan: String,
    }

    #[test]
    fn a_nul_character_is_refused_naming_its_field_and_an_escaped_backslash_is_not_one() {
        let nested =
            br#"{"name":"A","owner_email":"a@b.c","billing_details":{"tax_ids":[{"type":"a","value":"1\u0000"}]}}"#;
        let error = refuse_nul(nested).unwrap_err();
        assert_eq!(field_of(&error), "billing_details.tax_ids[0].value");
        assert_eq!(field_of(&refuse_nul(br#"{"na\u0000me": 1}"#).unwrap_err()), "name");
        assert!(refuse_nul(br#"{"name":"a\\u0000b"}"#).is_ok(), "a backslash, then u0000");
        assert!(refuse_nul(br#"{"name":"plain"}"#).is_ok());
        let query = parse_query::<AuditQuery>("limit=5&before=%00").unwrap_err();
        assert_eq!((query.code, field_of(&query)), (ErrorCode::InvalidQuery, "before"));
    }

    #[test]
    fn an_integer_spelled_as_a_whole_float_is_that_integer() {
        #[derive(Debug, serde::Deserialize, PartialEq)]
        #[serde(deny_unknown_fields)]
        struct Counts {
            days: u32,
            nested: Vec<i64>,
        }
        let read: Counts = parse_json(br#"{"days": 87.0, "nested": [1e3, -2.0]}"#).unwrap();
        assert_eq!(read, Counts { days: 87, nested: vec![1000, -2] });
        // A fraction stays a type error naming its field; so does a float past f64's exact integers.
        assert_eq!(field_of(&parse_json::<Counts>(br#"{"days": 87.5, "nested": []}"#).unwrap_err()), "days");
        assert_eq!(field_of(&parse_json::<Counts>(br#"{"days": 1, "nested": [1e300]}"#).unwrap_err()), "nested[0]");
        // Text after the value is still refused, however the value spells its numbers.
        assert!(parse_json::<Counts>(br#"{"days": 1.0, "nested": []} x"#).is_err());
    }

    #[test]
    fn validator_rules_name_their_fields_and_paths() {
        let bad: WorkspaceBody = parse_json(
            br#"{"name":"A","owner_email":"a@b.c","billing_details":{"tax_ids":[
                {"type":"a","value":"1"},{"type":"a","value":"1"},{"type":"a","value":"1"},{"type":"a","value":"1"},
                {"type":"a","value":"1"},{"type":"a","value":"1"},{"type":"a","value":"1"},{"type":"a","value":"1"},
                {"type":"a","value":"1"},{"type":"a","value":"1"},{"type":"a","value":"1"},{"type":"a","value":"1"},
                {"type":"a","value":"1"},{"type":"a","value":"1"},{"type":"a","value":"1"},{"type":"a","value":"1"},
                {"type":"a","value":"1"}]}}"#,
        )
        .unwrap();
        let error = validate(&bad).unwrap_err();
        assert_eq!(error.code, ErrorCode::ValidationFailed);
        assert_eq!(field_of(&error), "billing_details.tax_ids");
        assert_eq!(error.errors[0].message, "must list at most 16 tax ids");
        let query = parse_query::<AuditQuery>("limit=0").unwrap();
        let error = validate(&query).unwrap_err();
        assert_eq!((field_of(&error), error.errors[0].message.as_str()), ("limit", "must be between 1 and 200"));
        let checkout: CheckoutBody =
            parse_json(br#"{"plan":"pro","success_url":"ftp://x","cancel_url":"https://ok"}"#).unwrap();
        assert_eq!(field_of(&validate(&checkout).unwrap_err()), "success_url");
    }

    fn field_of(error: &ApiError) -> &str {
        error.errors[0].field.as_str()
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        let unknown = parse_json::<Body>(br#"{"plan":"pro","coupon_code":"X"}"#).unwrap_err();
        assert_eq!(unknown.code, ErrorCode::ValidationFailed);
        assert_eq!(field_of(&unknown), "coupon_code");
        assert_eq!(field_of(&parse_json::<Body>(b"{}").unwrap_err()), "plan");
    }

    #[test]
    fn wrongly_typed_values_are_named_by_their_path() {
        let top = parse_json::<WorkspaceBody>(br#"{"name":123,"owner_email":"a@b.c"}"#).unwrap_err();
        assert_eq!(field_of(&top), "name");
        assert!(top.errors[0].message.starts_with("invalid type: integer `123`"), "{}", top.errors[0].message);
        assert!(!top.errors[0].message.contains("at line"));
        let nested = parse_json::<WorkspaceBody>(
            br#"{"name":"A","owner_email":"a@b.c","billing_details":{"tax_ids":[{"type":5,"value":"DE1"}]}}"#,
        )
        .unwrap_err();
        assert_eq!(field_of(&nested), "billing_details.tax_ids[0].type");
        let nested_missing = parse_json::<WorkspaceBody>(
            br#"{"name":"A","owner_email":"a@b.c","billing_details":{"tax_ids":[{"type":"eu_vat"}]}}"#,
        )
        .unwrap_err();
        assert_eq!(field_of(&nested_missing), "billing_details.tax_ids[0].value");
        let nested_unknown =
            parse_json::<WorkspaceBody>(br#"{"name":"A","owner_email":"a@b.c","billing_details":{"vat":"x"}}"#)
                .unwrap_err();
        assert_eq!(field_of(&nested_unknown), "billing_details.vat");
    }

    #[test]
    fn a_body_that_is_not_an_object_or_not_json_is_said_so() {
        assert_eq!(field_of(&parse_json::<Body>(b"5").unwrap_err()), "body");
        assert_eq!(parse_json::<Body>(b"{\"plan\":").unwrap_err().code, ErrorCode::MalformedJson);
        assert_eq!(parse_json::<Body>(br#"{"plan":"a"} x"#).unwrap_err().code, ErrorCode::MalformedJson);
        assert_eq!(parse_json::<Body>(b"").unwrap_err().code, ErrorCode::MalformedJson);
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let bad = parse_query::<AuditQuery>("limit=abc").unwrap_err();
        assert_eq!(bad.code, ErrorCode::InvalidQuery);
        assert_eq!(field_of(&bad), "limit");
        assert_eq!(field_of(&parse_query::<AuditQuery>("limit=5&before=x").unwrap_err()), "before");
        assert_eq!(field_of(&parse_query::<AuditQuery>("limit=5&page=2").unwrap_err()), "page");
        let ok = parse_query::<AuditQuery>("limit=5").unwrap();
        assert_eq!((ok.limit, ok.before), (Some(5), None));
    }
}
