//! The hosted checkout page of a processor whose pages Tollgate serves (the sandbox). Pay and Decline hand the
//! processor's signed events to the same verify-and-ingest step as `POST /webhooks/{processor}`, so they travel the
//! verify → inbox → apply path of a real processor's deliveries, in process.

use std::sync::Arc;

use actix_web::{HttpResponse, http::StatusCode, web};
use billing_domain::ids::CheckoutSessionId;
use billing_domain::ports::{
    CheckoutAnswer, HostedCheckout, HostedCheckoutError, HostedCheckoutOps, HostedCheckoutStatus, RawDelivery,
};
use tracing::Instrument as _;
use tracing_actix_web::RequestId;

use crate::error::{ApiError, ErrorCode};
use crate::routes::webhooks::verify_and_ingest;
use crate::state::AppState;

fn hosted(state: &AppState) -> Result<&Arc<dyn HostedCheckoutOps>, ApiError> {
    state
        .hosted_checkout
        .as_ref()
        .ok_or_else(|| ApiError::not_found(ErrorCode::SandboxDisabled, "the sandbox processor is not enabled"))
}

fn session_not_found() -> ApiError {
    ApiError::not_found(ErrorCode::CheckoutSessionNotFound, "no sandbox checkout session with this id")
}

/// `GET /sandbox/checkout/{id}`: the hosted page.
#[utoipa::path(
    get,
    path = "/sandbox/checkout/{id}",
    operation_id = "sandboxCheckoutPage",
    tag = "sandbox",
    params(crate::openapi::params::SessionPath),
    responses(
        (status = 200, description = "The page.", body = String, content_type = "text/html"),
        (status = 404, description = "`sandbox_disabled` or `checkout_session_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
)]
pub async fn page(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let hosted = hosted(&state)?;
    hosted.refresh().await;
    let session = hosted.hosted_checkout(&CheckoutSessionId::new(path.as_str())).ok_or_else(session_not_found)?;
    Ok(html(StatusCode::OK, checkout_page(&session)))
}

/// `POST /sandbox/checkout/{id}/pay`.
#[utoipa::path(
    post,
    path = "/sandbox/checkout/{id}/pay",
    operation_id = "sandboxCheckoutPay",
    tag = "sandbox",
    params(crate::openapi::params::SessionPath),
    responses(crate::openapi::CheckoutAnswerPages)
)]
pub async fn pay(
    state: web::Data<AppState>,
    path: web::Path<String>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    answer(&state, &path, CheckoutAnswer::Pay, "Payment succeeded", request_id).await
}

/// `POST /sandbox/checkout/{id}/decline`.
#[utoipa::path(
    post,
    path = "/sandbox/checkout/{id}/decline",
    operation_id = "sandboxCheckoutDecline",
    tag = "sandbox",
    params(crate::openapi::params::SessionPath),
    responses(crate::openapi::CheckoutAnswerPages)
)]
pub async fn decline(
    state: web::Data<AppState>,
    path: web::Path<String>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    answer(&state, &path, CheckoutAnswer::Decline, "Payment declined", request_id).await
}

async fn answer(
    state: &AppState,
    session_id: &str,
    answer: CheckoutAnswer,
    headline: &str,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let hosted = hosted(state)?;
    let id = CheckoutSessionId::new(session_id);
    let deliveries = hosted.answer(&id, answer).await.map_err(hosted_error)?;
    let processor = hosted.processor_id();
    let mut rows = String::new();
    let mut all_ok = true;
    for (delivery, outcome) in
        deliveries.iter().zip(deliver_all(state, processor.as_str(), &deliveries, request_id).await)
    {
        all_ok &= outcome.is_ok();
        let answer = outcome.unwrap_or_else(|code| code);
        rows.push_str(&format!(
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
            escape(&delivery.event_type),
            escape(&delivery.event_id),
            escape(&answer)
        ));
    }
    let session = hosted.hosted_checkout(&id).ok_or_else(session_not_found)?;
    let back = match session.status {
        HostedCheckoutStatus::Paid => &session.success_url,
        _ => &session.cancel_url,
    };
    let body = format!(
        "<h1>{}</h1><p>Workspace <code>{}</code>, plan <strong>{}</strong>.</p>\
         <table><tr><th>event</th><th>id</th><th>outcome</th></tr>{rows}</table>\
         <p>{}</p><p><a href=\"{}\">Return to the application</a></p>",
        escape(headline),
        escape(session.workspace_id.as_str()),
        escape(&session.plan_name),
        if all_ok { "Every event was accepted by Tollgate." } else { "Some events were not accepted; see the logs." },
        escape(back),
    );
    let status = if all_ok { StatusCode::OK } else { StatusCode::BAD_GATEWAY };
    Ok(html(status, page_shell("Sandbox checkout", &body)))
}

/// Ingests each delivery like `POST /webhooks/{processor}` would, in order: its outcome, or the error code it was
/// refused with. Those now durable in the inbox are acknowledged to the sandbox in one write, so it does not
/// deliver them again; should that write fail, the renewal job delivers them again and the inbox drops them.
/// `request_id` is the page's or control's request, which caused the deliveries.
pub(super) async fn deliver_all(
    state: &AppState,
    processor: &str,
    deliveries: &[RawDelivery],
    request_id: RequestId,
) -> Vec<Result<String, String>> {
    let mut outcomes = Vec::with_capacity(deliveries.len());
    let mut ingested = Vec::new();
    for delivery in deliveries {
        let outcome = deliver(state, processor, delivery, request_id).await;
        if outcome.is_ok() {
            ingested.push(delivery.event_id.clone());
        }
        outcomes.push(outcome);
    }
    if let Some(sandbox) = &state.sandbox
        && !ingested.is_empty()
        && let Err(error) = sandbox.controls().acknowledge(&ingested).await
    {
        tracing::warn!(%error, "sandbox deliveries not acknowledged; they will be delivered again");
    }
    outcomes
}

async fn deliver(
    state: &AppState,
    processor: &str,
    delivery: &RawDelivery,
    request_id: RequestId,
) -> Result<String, String> {
    let span = tracing::info_span!(
        "hosted_delivery",
        processor,
        event_id = tracing::field::Empty,
        event_type = tracing::field::Empty
    );
    let body = delivery.body.as_bytes();
    let ingested = verify_and_ingest(state, processor, &delivery.headers, body, Some(request_id.to_string()));
    match ingested.instrument(span).await {
        Ok(received) => Ok(received.outcome.to_owned()),
        Err(error) => {
            tracing::error!(%error, event_id = %delivery.event_id, "sandbox delivery not accepted");
            Err(error.code.as_str().to_owned())
        }
    }
}

fn hosted_error(error: HostedCheckoutError) -> ApiError {
    match error {
        HostedCheckoutError::UnknownSession => session_not_found(),
        HostedCheckoutError::NotOpen(_) => ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::CheckoutSessionClosed,
            "Checkout already finished",
            error.to_string(),
        ),
        HostedCheckoutError::Unavailable(_) | HostedCheckoutError::NotAllowed(_) => ApiError::internal(error),
    }
}

fn checkout_page(session: &HostedCheckout) -> String {
    let amount = format!("{}.{:02} {}", session.price.minor / 100, session.price.minor % 100, session.price.currency);
    let actions = if session.status == HostedCheckoutStatus::Open {
        format!(
            "<form method=\"post\" action=\"/sandbox/checkout/{id}/pay\"><button type=\"submit\">Pay {amount}</button></form>\
             <form method=\"post\" action=\"/sandbox/checkout/{id}/decline\"><button type=\"submit\">Decline</button></form>",
            id = escape(session.id.as_str()),
            amount = escape(&amount),
        )
    } else {
        format!("<p>This checkout is <strong>{}</strong>.</p>", escape(session.status.as_str()))
    };
    let body = format!(
        "<h1>Sandbox checkout</h1><p>No real money moves: this page stands in for a processor's hosted checkout.</p>\
         <dl><dt>Workspace</dt><dd><code>{}</code></dd><dt>Plan</dt><dd>{} ({})</dd><dt>Price</dt><dd>{}</dd></dl>{actions}",
        escape(session.workspace_id.as_str()),
        escape(&session.plan_name),
        escape(&session.plan_kind),
        escape(&amount),
    );
    page_shell("Sandbox checkout", &body)
}

pub(super) fn page_shell(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;max-width:40rem;margin:3rem auto}}button{{font-size:1.1rem;margin:.3rem 0;padding:.5rem 1.5rem}}td,th{{padding:.2rem .6rem;text-align:left}}</style>\
         </head><body>{body}</body></html>",
        escape(title)
    )
}

pub(super) fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body)
}

/// Minimal HTML escaping for text and attribute values.
pub(super) fn escape(raw: &str) -> String {
    raw.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(super::escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
