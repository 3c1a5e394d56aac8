//! The request-head limit, enforced here so an oversized head gets a problem+json answer like every other error,
//! and the deadline every request runs under.
//!
//! actix-http refuses a head only once it reaches its hard-coded 128 KiB parse buffer, and then answers from inside
//! its HTTP/1 dispatcher with a bare `431` (empty body) and closes the connection: no middleware or service sees
//! that request, and neither `HttpServer` nor `HttpService` has a setting for that size or that response. Heads
//! between [`MAX_HEADER_BYTES`] and that limit are refused here instead.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use actix_web::middleware::Next;
use std::time::Duration;

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

/// How long a request may run, from its head being read to its answer (app data of every `App`).
#[derive(Debug, Clone, Copy)]
pub struct RequestDeadline(pub Duration);

/// Middleware for `actix_web::middleware::from_fn`, on a resource (it keeps a handle on the routed request to
/// answer with): a request still running at its [`RequestDeadline`] is dropped — a transaction it held rolls
/// back — and answered 503 `request_timeout` with `Retry-After`.
pub async fn limit_duration<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let Some(&RequestDeadline(deadline)) = req.app_data::<RequestDeadline>() else {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    };
    let head = req.request().clone();
    match tokio::time::timeout(deadline, next.call(req)).await {
        Ok(answered) => answered.map(ServiceResponse::map_into_left_body),
        Err(_) => {
            tracing::warn!(deadline_ms = deadline.as_millis() as u64, "request stopped at its deadline");
            let error = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::RequestTimeout,
                "Request timeout",
                format!("the request did not finish within {} ms and was stopped; retry it", deadline.as_millis()),
            );
            let mut response = actix_web::ResponseError::error_response(&error);
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
            Ok(ServiceResponse::new(head, response).map_into_right_body())
        }
    }
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
    async fn a_request_past_its_deadline_is_stopped_with_a_problem() {
        async fn slow() -> HttpResponse {
            tokio::time::sleep(Duration::from_secs(30)).await;
            HttpResponse::Ok().finish()
        }
        let app = init_service(
            App::new()
                .app_data(RequestDeadline(Duration::from_millis(50)))
                .service(web::resource("/slow").wrap(from_fn(limit_duration)).route(web::get().to(slow)))
                .service(web::resource("/fast").wrap(from_fn(limit_duration)).route(web::get().to(HttpResponse::Ok))),
        )
        .await;
        let fast = call_service(&app, TestRequest::get().uri("/fast").to_request()).await;
        assert_eq!(fast.status(), StatusCode::OK);
        let response = call_service(&app, TestRequest::get().uri("/slow").to_request()).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get(RETRY_AFTER).unwrap(), "1");
        assert_eq!(response.headers().get(CONTENT_TYPE).unwrap(), "application/problem+json");
        let body: serde_json::Value = read_body_json(response).await;
        assert_eq!(body["code"], "request_timeout");
    }

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
