//! The sandbox processor's hosted checkout page. Pay and Decline emit signed events that are POSTed to
//! `/webhooks/sandbox`, so they travel the same verify → inbox → apply path as a real processor's.

use actix_web::{HttpResponse, http::StatusCode, web};
use billing_sandbox::{SandboxError, SessionStatus, SessionView, SignedDelivery};

use crate::error::{ApiError, ErrorCode};
use crate::state::SandboxPages;

fn pages(sandbox: Option<web::Data<SandboxPages>>) -> Result<web::Data<SandboxPages>, ApiError> {
    sandbox.ok_or_else(|| ApiError::not_found(ErrorCode::SandboxDisabled, "the sandbox processor is not enabled"))
}

fn session_not_found() -> ApiError {
    ApiError::not_found(ErrorCode::CheckoutSessionNotFound, "no sandbox checkout session with this id")
}

/// `GET /sandbox/checkout/{id}`: the hosted page.
pub async fn page(sandbox: Option<web::Data<SandboxPages>>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let sandbox = pages(sandbox)?;
    let session = sandbox.processor.session(&path).ok_or_else(session_not_found)?;
    Ok(html(StatusCode::OK, checkout_page(&session)))
}

/// `POST /sandbox/checkout/{id}/pay`.
pub async fn pay(sandbox: Option<web::Data<SandboxPages>>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let sandbox = pages(sandbox)?;
    let deliveries = sandbox.processor.pay(&path).map_err(sandbox_error)?;
    finish(&sandbox, &path, deliveries, "Payment succeeded").await
}

/// `POST /sandbox/checkout/{id}/decline`.
pub async fn decline(
    sandbox: Option<web::Data<SandboxPages>>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let sandbox = pages(sandbox)?;
    let deliveries = sandbox.processor.decline(&path).map_err(sandbox_error)?;
    finish(&sandbox, &path, deliveries, "Payment declined").await
}

fn sandbox_error(error: SandboxError) -> ApiError {
    match error {
        SandboxError::UnknownSession => session_not_found(),
        SandboxError::NotOpen(_) => ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::CheckoutSessionClosed,
            "Checkout already finished",
            error.to_string(),
        ),
        other => ApiError::internal(other),
    }
}

/// Delivers each event in order and shows what the webhook endpoint answered.
async fn finish(
    sandbox: &SandboxPages,
    session_id: &str,
    deliveries: Vec<SignedDelivery>,
    headline: &str,
) -> Result<HttpResponse, ApiError> {
    let mut rows = String::new();
    let mut all_ok = true;
    for delivery in &deliveries {
        let answer = match sandbox.delivery.deliver(&delivery.body, &delivery.signature).await {
            Ok(status) => {
                all_ok &= (200..300).contains(&status);
                status.to_string()
            }
            Err(error) => {
                all_ok = false;
                tracing::error!(%error, event_id = %delivery.event_id, "sandbox webhook delivery failed");
                "not delivered".to_owned()
            }
        };
        rows.push_str(&format!(
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
            escape(&delivery.event_type),
            escape(&delivery.event_id),
            escape(&answer)
        ));
    }
    let session = sandbox.processor.session(session_id).ok_or_else(session_not_found)?;
    let back = match session.status {
        SessionStatus::Paid => &session.success_url,
        _ => &session.cancel_url,
    };
    let body = format!(
        "<h1>{}</h1><p>Workspace <code>{}</code>, plan <strong>{}</strong>.</p>\
         <table><tr><th>event</th><th>id</th><th>webhook answer</th></tr>{rows}</table>\
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

fn checkout_page(session: &SessionView) -> String {
    let amount = format!("{}.{:02} {}", session.price.minor / 100, session.price.minor % 100, session.price.currency);
    let actions = if session.status == SessionStatus::Open {
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

fn page_shell(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;max-width:40rem;margin:3rem auto}}button{{font-size:1.1rem;margin:.3rem 0;padding:.5rem 1.5rem}}td,th{{padding:.2rem .6rem;text-align:left}}</style>\
         </head><body>{body}</body></html>",
        escape(title)
    )
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body)
}

/// Minimal HTML escaping for text and attribute values.
fn escape(raw: &str) -> String {
    raw.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(super::escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
