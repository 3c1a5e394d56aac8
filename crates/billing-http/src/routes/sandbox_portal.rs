//! The hosted billing portal of a processor whose pages Tollgate serves (the sandbox): the customer's
//! subscriptions with Cancel at period end, Resume, End now and a switch to each other subscription plan of the
//! catalog. Each button hands the processor's signed event to the same verify-and-ingest step as
//! `POST /webhooks/{processor}`.

use std::sync::Arc;

use actix_web::{HttpResponse, http::StatusCode, web};
use billing_domain::catalog::{Catalog, PlanKind};
use billing_domain::ids::{ProcessorId, SubscriptionId};
use billing_domain::ports::{HostedCheckoutError, HostedPortal, HostedPortalOps, PortalAction, PortalPlan};
use tracing_actix_web::RequestId;

use super::sandbox::{deliver_all, escape, html, page_shell};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

pub(super) fn hosted(state: &AppState) -> Result<&Arc<dyn HostedPortalOps>, ApiError> {
    state
        .hosted_portal
        .as_ref()
        .ok_or_else(|| ApiError::not_found(ErrorCode::SandboxDisabled, "the sandbox processor is not enabled"))
}

fn portal_not_found() -> ApiError {
    ApiError::not_found(ErrorCode::PortalSessionNotFound, "no sandbox portal session with this id")
}

/// `GET /sandbox/portal/{id}`.
#[utoipa::path(
    get,
    path = "/sandbox/portal/{id}",
    operation_id = "sandboxPortalPage",
    tag = "sandbox",
    params(crate::openapi::params::SessionPath),
    responses(
        (status = 200, description = "The page.", body = String, content_type = "text/html"),
        (status = 404, description = "`sandbox_disabled` or `portal_session_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
)]
pub async fn page(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let hosted = hosted(&state)?;
    hosted.refresh().await;
    let portal = hosted.hosted_portal(&path).ok_or_else(portal_not_found)?;
    let plans = portal_plans(&state.catalog, &hosted.processor_id());
    Ok(html(StatusCode::OK, portal_page(&portal, &plans, None)))
}

/// The subscription plans of the catalog the processor has a price for: what the portal offers to switch to.
fn portal_plans(catalog: &Catalog, processor: &ProcessorId) -> Vec<PortalPlan> {
    catalog
        .plans()
        .iter()
        .filter_map(|plan| match plan.kind {
            PlanKind::Subscription { interval } => Some(PortalPlan {
                id: plan.id.clone(),
                name: plan.name.clone(),
                price: plan.price_for(processor)?.clone(),
                amount: plan.price.clone(),
                interval,
            }),
            PlanKind::Credits { .. } => None,
        })
        .collect()
}

/// `POST /sandbox/portal/{id}/subscriptions/{subscription}/change/{plan}`: switch to another subscription plan.
#[utoipa::path(
    post,
    path = "/sandbox/portal/{id}/subscriptions/{subscription}/change/{plan}",
    operation_id = "sandboxPortalChangePlan",
    tag = "sandbox",
    params(crate::openapi::params::PortalChangePath),
    responses(crate::openapi::PortalActionPages)
)]
pub async fn change_plan(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let (id, subscription, plan) = path.into_inner();
    let processor = hosted(&state)?.processor_id();
    let plan = portal_plans(&state.catalog, &processor)
        .into_iter()
        .find(|p| p.id.as_str() == plan)
        .ok_or_else(|| ApiError::field("plan", "must be a subscription plan of the catalog with a sandbox price"))?;
    carry_out(&state, &id, subscription, PortalAction::ChangePlan(plan), request_id).await
}

/// `POST /sandbox/portal/{id}/subscriptions/{subscription}/{action}` with `action` one of `cancel`, `resume`, `end`.
#[utoipa::path(
    post,
    path = "/sandbox/portal/{id}/subscriptions/{subscription}/{action}",
    operation_id = "sandboxPortalAct",
    tag = "sandbox",
    params(crate::openapi::params::PortalActionPath),
    responses(crate::openapi::PortalActionPages)
)]
pub async fn act(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let (id, subscription, action) = path.into_inner();
    let action = match action.as_str() {
        "cancel" => PortalAction::CancelAtPeriodEnd,
        "resume" => PortalAction::Resume,
        "end" => PortalAction::CancelNow,
        _ => return Err(ApiError::route_not_found(&actix_web::http::Method::POST, &format!("/sandbox/portal/{id}"))),
    };
    carry_out(&state, &id, subscription, action, request_id).await
}

/// Has the processor carry out `action`, ingests what it sends, and shows the portal as it now stands.
async fn carry_out(
    state: &AppState,
    id: &str,
    subscription: String,
    action: PortalAction,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let hosted = hosted(state)?;
    let deliveries =
        hosted.portal_action(id, &SubscriptionId::new(subscription), action).await.map_err(|e| match e {
            HostedCheckoutError::UnknownSession => portal_not_found(),
            HostedCheckoutError::NotAllowed(why) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::SubscriptionStateConflict, "Not allowed", why)
            }
            other => ApiError::internal(other),
        })?;
    let processor = hosted.processor_id();
    let mut all_ok = true;
    let mut outcomes = Vec::new();
    for (delivery, outcome) in
        deliveries.iter().zip(deliver_all(state, processor.as_str(), &deliveries, request_id).await)
    {
        all_ok &= outcome.is_ok();
        outcomes.push(format!("{}: {}", delivery.event_type, outcome.unwrap_or_else(|code| code)));
    }
    let portal = hosted.hosted_portal(id).ok_or_else(portal_not_found)?;
    let plans = portal_plans(&state.catalog, &processor);
    let status = if all_ok { StatusCode::OK } else { StatusCode::BAD_GATEWAY };
    Ok(html(status, portal_page(&portal, &plans, Some(&outcomes))))
}

fn portal_page(portal: &HostedPortal, plans: &[PortalPlan], outcomes: Option<&[String]>) -> String {
    let mut rows = String::new();
    for s in &portal.subscriptions {
        let base = format!("/sandbox/portal/{}/subscriptions/{}", escape(&portal.id), escape(s.id.as_str()));
        let button = |action: &str, label: &str| {
            format!("<form method=\"post\" action=\"{base}/{action}\"><button type=\"submit\">{label}</button></form>")
        };
        let actions = if s.status.is_terminal() {
            String::new()
        } else if s.cancel_at_period_end {
            button("resume", "Resume") + &button("end", "End now")
        } else {
            let switches: String = plans
                .iter()
                .filter(|p| p.price != s.price_id)
                .map(|p| {
                    button(&format!("change/{}", escape(p.id.as_str())), &format!("Switch to {}", escape(&p.name)))
                })
                .collect();
            button("cancel", "Cancel at period end") + &button("end", "End now") + &switches
        };
        let ends = s.current_period_end.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default();
        let note = if s.cancel_at_period_end { format!(" (ends {ends})") } else { String::new() };
        rows.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td><td>{}{}</td><td>{actions}</td></tr>",
            escape(s.id.as_str()),
            escape(&s.plan_name),
            escape(s.status.as_str()),
            escape(&note),
        ));
    }
    let done = match outcomes {
        Some(lines) => {
            let items: String = lines.iter().map(|l| format!("<li>{}</li>", escape(l))).collect();
            format!("<p>Sent to Tollgate:</p><ul>{items}</ul>")
        }
        None => String::new(),
    };
    let body = format!(
        "<h1>Sandbox billing portal</h1><p>Customer <code>{}</code>. No real money moves.</p>{done}\
         <table><tr><th>subscription</th><th>plan</th><th>status</th><th></th></tr>{rows}</table>\
         <p><a href=\"{}\">Return to the application</a></p>",
        escape(portal.customer_id.as_str()),
        escape(&portal.return_url),
    );
    page_shell("Sandbox billing portal", &body)
}
