//! The OpenAPI 3.1 document, served at `GET /openapi.json`: generated from the handlers' `#[utoipa::path]` and
//! the DTOs' `ToSchema`, then completed here with what whole kinds of routes share (`problems.rs`), the rules
//! across fields (`rules.rs`), the links from one answer to the next requests (`links.rs`) and what the loaded
//! plan catalog allows (`catalog.rs`), so a schema-valid request names a plan or limit that exists.
//! A unit test holds it to the route table: a route the document lacks, or one it invents, fails the build.

mod catalog;
mod links;
pub mod params;
mod problems;
mod rules;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use billing_domain::catalog::Catalog;
use serde_json::Value;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub use problems::{
    CheckoutAnswerPages, PortalActionPages, ProblemDoc as Problem, ProcessorProblems, SubscriptionCommandProblems,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tollgate",
        description = "Billing for SaaS products: plans, checkouts, subscriptions, invoices, entitlement checks, \
            usage metering and credits, over one payment processor port. Every error is `application/problem+json` \
            with a stable `code`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        crate::routes::health::healthz,
        crate::routes::health::readyz,
        crate::telemetry::scrape,
        serve,
        crate::routes::plans::list,
        crate::routes::coupons::create,
        crate::routes::coupons::list,
        crate::routes::coupons::check,
        crate::routes::workspaces::put,
        crate::routes::workspaces::get,
        crate::routes::workspaces::subscription,
        crate::routes::subscriptions::cancel,
        crate::routes::subscriptions::resume,
        crate::routes::subscriptions::change,
        crate::routes::workspaces::start_trial,
        crate::routes::workspaces::audit,
        crate::routes::checkout::start,
        crate::routes::account::portal,
        crate::routes::account::invoices,
        crate::routes::billing_page::create_session,
        crate::routes::billing_page::open,
        crate::routes::billing_page::page,
        crate::routes::billing_page_actions::act,
        crate::routes::billing_page::stylesheet,
        crate::routes::credits::consume,
        crate::routes::payments::create,
        crate::routes::payments::list,
        crate::routes::payments::get,
        crate::routes::payments::refund,
        crate::routes::entitlements::all,
        crate::routes::entitlements::check,
        crate::routes::usage::ingest,
        crate::routes::usage::report,
        crate::routes::clock::get,
        crate::routes::clock::advance,
        crate::routes::outbox::list,
        crate::routes::outbox::retry,
        crate::routes::sandbox_controls::card,
        crate::routes::sandbox_controls::set_card,
        crate::routes::sandbox_controls::meter_events,
        crate::routes::sandbox_controls::pay_open_invoice,
        crate::routes::sandbox_controls::renew,
        crate::routes::webhooks::receive,
        crate::routes::sandbox::page,
        crate::routes::sandbox::pay,
        crate::routes::sandbox::decline,
        crate::routes::sandbox_portal::page,
        crate::routes::sandbox_invoice::page,
        crate::routes::sandbox_portal::act,
        crate::routes::sandbox_portal::change_plan,
    ),
    components(schemas(Problem)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "plans", description = "The plan catalog."),
        (name = "workspaces", description = "A product's tenants and their billing state."),
        (name = "subscriptions", description = "Cancel, resume, change plan."),
        (name = "checkout", description = "Buying a plan at the processor's hosted checkout."),
        (name = "account", description = "The processor's billing portal and the invoices."),
        (name = "billing-page", description = "The hosted billing page for workspace owners and admins: a signed \
            link minted over the API, then HTML pages in a browser."),
        (name = "entitlements", description = "What a workspace may do: the product's hot path."),
        (name = "usage", description = "Metering."),
        (name = "credits", description = "Prepaid credits."),
        (name = "payments", description = "One-time payments and refunds."),
        (name = "coupons", description = "Discounts redeemed at checkout."),
        (name = "admin", description = "Operators: the test clock and the outbox."),
        (name = "sandbox", description = "The built-in sandbox processor's pages and controls."),
        (name = "webhooks", description = "Processors' signed deliveries."),
        (name = "operations", description = "Health, metrics and this document."),
    )
)]
struct ApiDoc;

/// The two credentials of `Authorization: Bearer`, and the optional one of `/metrics`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |description: &str, format: Option<&str>| {
            let mut scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(description));
            if let Some(format) = format {
                scheme = scheme.bearer_format(format);
            }
            SecurityScheme::Http(scheme.build())
        };
        components.add_security_scheme(
            "api_key",
            bearer(
                "A service API key (`auth.api_keys`), for the product's backend. Its scopes, named on each \
                 operation, are `billing:read`, `billing:write`, `usage:write` and `admin`.",
                None,
            ),
        );
        components.add_security_scheme(
            "user_token",
            bearer(
                "An end user's token (`auth.jwt`): it reaches only the workspaces its `workspaces` claim names, \
                 any other answering 404 like a missing one. Members read; the roles named on an operation may \
                 also write.",
                Some("JWT"),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            bearer("`telemetry.metrics_token`, when set: the scraper's bearer token.", None),
        );
    }
}

/// The document for a server running `catalog`.
pub fn document(catalog: &Catalog) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
    problems::add(&mut doc, &crate::routes::idempotent_paths());
    rules::apply(&mut doc);
    links::add(&mut doc);
    catalog::constrain(&mut doc, catalog);
    doc
}

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// Every operation of `doc`: its path, its method and the operation.
fn operations(doc: &Value) -> impl Iterator<Item = (&str, &str, &Value)> {
    doc["paths"].as_object().into_iter().flatten().flat_map(|(path, item)| {
        let methods = item.as_object().into_iter().flatten().filter(|(method, _)| METHODS.contains(&method.as_str()));
        methods.map(move |(method, operation)| (path.as_str(), method.as_str(), operation))
    })
}

/// [`operations`], to change.
fn operations_mut(doc: &mut Value) -> impl Iterator<Item = (&str, &str, &mut Value)> {
    let paths = doc.get_mut("paths").and_then(Value::as_object_mut);
    paths.into_iter().flatten().flat_map(|(path, item)| {
        let methods =
            item.as_object_mut().into_iter().flatten().filter(|(method, _)| METHODS.contains(&method.as_str()));
        methods.map(move |(method, operation)| (path.as_str(), method.as_str(), operation))
    })
}

/// The document as served, rendered once when the server starts.
pub struct Served(String);

impl Served {
    pub fn new(catalog: &Catalog) -> Self {
        Self(document(catalog).to_string())
    }
}

/// The OpenAPI document of this server.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapiDocument",
    tag = "operations",
    responses((status = 200, description = "This document.", body = Object, content_type = "application/json"))
)]
pub async fn serve(document: web::Data<Served>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((CACHE_CONTROL, "public, max-age=300"))
        .body(document.0.clone())
}

#[cfg(test)]
mod tests;
