//! The actix-web server: one `App` per worker with the edge's middleware in a fixed order (request id and
//! tracing outermost, then problem details for actix's own errors, then the request-head limit), and the routes.
//! The binary hands it a bound listener and awaits the returned [`Server`].

use std::net::TcpListener;

use actix_web::dev::Service as _;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{App, HttpMessage as _, HttpServer};
use tracing_actix_web::{RequestId, TracingLogger};

use crate::Edge;
use crate::request_span::RequestSpan;

pub use actix_web::dev::{Server, ServerHandle};

/// How the server runs.
#[derive(Debug, Clone, Copy)]
pub struct ServerSettings {
    /// HTTP workers; `None` is one per core.
    pub workers: Option<usize>,
    /// How long in-flight requests may finish after SIGINT/SIGTERM.
    pub shutdown_timeout_secs: u64,
    /// How long one request may run before it is stopped (503 `request_timeout`).
    pub request_timeout: std::time::Duration,
}

/// Starts serving `edge` on `listener`; the returned future resolves once the server has stopped.
pub fn serve(edge: Edge, listener: TcpListener, settings: ServerSettings) -> std::io::Result<Server> {
    let deadline = crate::limits::RequestDeadline(settings.request_timeout);
    let mut server = HttpServer::new(move || {
        let edge = edge.clone();
        App::new()
            // Read by each route's deadline (`limits::limit_duration`).
            .app_data(deadline)
            // Innermost, so an oversized head's 431 still carries the request id and is traced.
            .wrap(actix_web::middleware::from_fn(crate::limits::limit_header_size))
            .wrap_fn(|req, srv| {
                let response = srv.call(req);
                async move {
                    let mut response = response.await?;
                    let id = response.request().extensions().get::<RequestId>().map(ToString::to_string);
                    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                        response.headers_mut().insert(HeaderName::from_static("x-request-id"), value);
                    }
                    crate::security_headers::apply(response.headers_mut());
                    Ok(response)
                }
            })
            .wrap(crate::error::problem_details())
            .wrap(TracingLogger::<RequestSpan>::new())
            // Outermost: the duration and status as the client sees them, errors of every layer included.
            .wrap(actix_web::middleware::from_fn(crate::telemetry::record_request))
            .configure(|cfg| edge.configure(cfg))
    })
    .shutdown_timeout(settings.shutdown_timeout_secs);
    if let Some(workers) = settings.workers {
        server = server.workers(workers);
    }
    Ok(server.listen(listener)?.run())
}
