//! The request-head limit, enforced here so an oversized head gets a problem+json answer like every other error.
//!
//! actix-http refuses a head only once it reaches its hard-coded 128 KiB parse buffer, and then answers from inside
//! its HTTP/1 dispatcher with a bare `431` (empty body) and closes the connection: no middleware or service sees
//! that request, and neither `HttpServer` nor `HttpService` has a setting for that size or that response. Heads
//! between [`MAX_HEADER_BYTES`] and that limit are refused here instead.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::middleware::Next;

use crate::error::{ApiError, ErrorCode};

/// The largest total size of a request's header fields, counted as they travel (`name: value\r\n`).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Middleware for `actix_web::middleware::from_fn`: 431 problem+json when the header fields exceed
/// [`MAX_HEADER_BYTES`].
pub async fn limit_header_size<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let size = header_bytes(req.headers());
    if size > MAX_HEADER_BYTES {
        let error = ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::RequestHeadersTooLarge,
            "Request header fields too large",
            format!("the request's header fields take {size} bytes; at most {MAX_HEADER_BYTES} are accepted"),
        );
        return Ok(req.error_response(error).map_into_right_body());
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

fn header_bytes(headers: &HeaderMap) -> usize {
    headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum()
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::CONTENT_TYPE;
    use actix_web::test::{TestRequest, call_service, init_service, read_body_json};
    use actix_web::{App, HttpResponse, middleware::from_fn, web};

    use super::*;

    #[actix_web::test]
    async fn oversized_headers_get_a_problem_and_others_pass() {
        let app =
            init_service(App::new().wrap(from_fn(limit_header_size)).route("/", web::get().to(HttpResponse::Ok))).await;
        let fits = TestRequest::get().uri("/").insert_header(("x-big", "a".repeat(MAX_HEADER_BYTES - 64)));
        assert_eq!(call_service(&app, fits.to_request()).await.status(), StatusCode::OK);
        let big = TestRequest::get().uri("/").insert_header(("x-big", "a".repeat(MAX_HEADER_BYTES)));
        let response = call_service(&app, big.to_request()).await;
        assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert_eq!(response.headers().get(CONTENT_TYPE).unwrap(), "application/problem+json");
        let body: serde_json::Value = read_body_json(response).await;
        assert_eq!(body["code"], "request_headers_too_large");
    }
}
