//! The hosted invoice page of a processor whose pages Tollgate serves (the sandbox): what Stripe's
//! `hosted_invoice_url` shows — number, status, amount, period — so the billing page's invoice links lead
//! somewhere on a machine without Stripe.

use actix_web::{HttpResponse, http::StatusCode, web};
use billing_domain::ids::InvoiceId;

use super::sandbox::{escape, html, page_shell};
use super::sandbox_portal::hosted;
use crate::billing_page::view::money;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// `GET /sandbox/invoices/{id}`.
#[utoipa::path(
    get,
    path = "/sandbox/invoices/{id}",
    operation_id = "sandboxInvoicePage",
    tag = "sandbox",
    params(("id" = String, Path, description = "The sandbox invoice's id.")),
    responses(
        (status = 200, description = "The invoice.", body = String, content_type = "text/html"),
        (status = 404, description = "`sandbox_disabled` or `invoice_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
)]
pub async fn page(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let hosted = hosted(&state)?;
    hosted.refresh().await;
    let found = hosted
        .hosted_invoice(&InvoiceId::new(path.into_inner()))
        .ok_or_else(|| ApiError::not_found(ErrorCode::InvoiceNotFound, "no sandbox invoice with this id"))?;
    let invoice = &found.invoice;
    let date = |at: chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%d").to_string();
    let body = format!(
        "<h1>Invoice {number}</h1><p>{description}</p><table>\
         <tr><th>Status</th><td>{status}</td></tr><tr><th>Date</th><td>{created}</td></tr>\
         <tr><th>Period</th><td>{start} to {end}</td></tr><tr><th>Amount due</th><td>{due}</td></tr>\
         <tr><th>Amount paid</th><td>{paid}</td></tr></table>",
        number = escape(invoice.number.as_deref().unwrap_or(invoice.id.as_str())),
        description = escape(&found.description),
        status = escape(&invoice.status),
        created = date(invoice.created_at),
        start = date(found.period_start),
        end = date(found.period_end),
        due = escape(&money(&invoice.amount_due)),
        paid = escape(&money(&invoice.amount_paid)),
    );
    Ok(html(StatusCode::OK, page_shell("Sandbox invoice", &body)))
}
