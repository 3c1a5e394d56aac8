//! Route table. Handlers are thin: their extractors authorize (`access.rs`) and validate (`extract.rs`); the
//! handler calls one service and renders a DTO.

pub(crate) mod account;
pub(crate) mod billing_page;
pub(crate) mod billing_page_actions;
mod billing_page_once;
pub(crate) mod checkout;
pub(crate) mod clock;
pub(crate) mod coupons;
pub(crate) mod credits;
pub(crate) mod entitlements;
pub(crate) mod health;
pub(crate) mod outbox;
pub(crate) mod payments;
pub(crate) mod plans;
pub(crate) mod sandbox;
pub(crate) mod sandbox_controls;
pub(crate) mod sandbox_invoice;
pub(crate) mod sandbox_portal;
pub(crate) mod subscriptions;
pub(crate) mod usage;
pub(crate) mod webhooks;
pub(crate) mod workspaces;

use actix_web::dev::HttpServiceFactory;
use actix_web::http::Method;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder, web};

use crate::error::ApiError;

/// Every path with its handlers, in registration order. A state-changing POST is marked `idempotent()`: it then
/// honours `Idempotency-Key` (`idempotency.rs`).
fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new("/healthz").on(Method::GET, health::healthz),
        Endpoint::new("/readyz").on(Method::GET, health::readyz),
        Endpoint::new("/metrics").on(Method::GET, crate::telemetry::scrape),
        Endpoint::new("/openapi.json").on(Method::GET, crate::openapi::serve),
        Endpoint::new("/v1/plans").on(Method::GET, plans::list),
        Endpoint::new("/v1/coupons").on(Method::POST, coupons::create).on(Method::GET, coupons::list).idempotent(),
        Endpoint::new("/v1/coupons/{code}").on(Method::GET, coupons::check),
        Endpoint::new("/v1/workspaces/{id}").on(Method::PUT, workspaces::put).on(Method::GET, workspaces::get),
        Endpoint::new("/v1/workspaces/{id}/subscription").on(Method::GET, workspaces::subscription),
        Endpoint::new("/v1/workspaces/{id}/subscription/cancel").on(Method::POST, subscriptions::cancel).idempotent(),
        Endpoint::new("/v1/workspaces/{id}/subscription/resume").on(Method::POST, subscriptions::resume).idempotent(),
        Endpoint::new("/v1/workspaces/{id}/subscription/change").on(Method::POST, subscriptions::change).idempotent(),
        Endpoint::new("/v1/workspaces/{id}/trial").on(Method::POST, workspaces::start_trial).idempotent(),
        Endpoint::new("/v1/workspaces/{id}/audit").on(Method::GET, workspaces::audit),
        Endpoint::new("/v1/workspaces/{id}/checkout").on(Method::POST, checkout::start).idempotent(),
        Endpoint::new("/v1/workspaces/{id}/portal").on(Method::POST, account::portal).idempotent(),
        Endpoint::new("/v1/workspaces/{id}/invoices").on(Method::GET, account::invoices),
        Endpoint::new("/v1/workspaces/{id}/billing-page-sessions")
            .on(Method::POST, billing_page::create_session)
            .idempotent(),
        Endpoint::new("/v1/workspaces/{id}/credits/consume").on(Method::POST, credits::consume).idempotent(),
        Endpoint::new("/v1/workspaces/{id}/payment-intents").on(Method::POST, payments::create).idempotent(),
        Endpoint::new("/v1/workspaces/{id}/payments").on(Method::GET, payments::list),
        Endpoint::new("/v1/payments/{id}").on(Method::GET, payments::get),
        Endpoint::new("/v1/payments/{id}/refund").on(Method::POST, payments::refund).idempotent(),
        Endpoint::new("/v1/workspaces/{id}/entitlements").on(Method::GET, entitlements::all),
        Endpoint::new("/v1/workspaces/{id}/entitlements/check").on(Method::POST, entitlements::check),
        Endpoint::new("/v1/usage").on(Method::POST, usage::ingest),
        Endpoint::new("/v1/workspaces/{id}/usage").on(Method::GET, usage::report),
        Endpoint::new("/v1/admin/clock").on(Method::GET, clock::get),
        Endpoint::new("/v1/admin/clock/advance").on(Method::POST, clock::advance),
        Endpoint::new("/v1/admin/outbox").on(Method::GET, outbox::list),
        Endpoint::new("/v1/admin/outbox/{id}/retry").on(Method::POST, outbox::retry),
        Endpoint::new("/v1/admin/sandbox/workspaces/{id}/card")
            .on(Method::GET, sandbox_controls::card)
            .on(Method::PUT, sandbox_controls::set_card),
        Endpoint::new("/v1/admin/sandbox/workspaces/{id}/meter-events").on(Method::GET, sandbox_controls::meter_events),
        Endpoint::new("/v1/admin/sandbox/workspaces/{id}/pay-open-invoice")
            .on(Method::POST, sandbox_controls::pay_open_invoice),
        Endpoint::new("/v1/admin/sandbox/renew").on(Method::POST, sandbox_controls::renew),
        Endpoint::new("/webhooks/{processor}").on(Method::POST, webhooks::receive),
        Endpoint::new("/billing/open/{token}").on(Method::GET, billing_page::open),
        Endpoint::new("/billing/{id}").on(Method::GET, billing_page::page),
        Endpoint::new("/billing/{id}/actions/{action}").on(Method::POST, billing_page_actions::act),
        Endpoint::new("/assets/billing-page.css").on(Method::GET, billing_page::stylesheet),
        Endpoint::new("/sandbox/checkout/{id}").on(Method::GET, sandbox::page),
        Endpoint::new("/sandbox/checkout/{id}/pay").on(Method::POST, sandbox::pay),
        Endpoint::new("/sandbox/checkout/{id}/decline").on(Method::POST, sandbox::decline),
        Endpoint::new("/sandbox/portal/{id}").on(Method::GET, sandbox_portal::page),
        Endpoint::new("/sandbox/invoices/{id}").on(Method::GET, sandbox_invoice::page),
        Endpoint::new("/sandbox/portal/{id}/subscriptions/{subscription}/{action}")
            .on(Method::POST, sandbox_portal::act),
        Endpoint::new("/sandbox/portal/{id}/subscriptions/{subscription}/change/{plan}")
            .on(Method::POST, sandbox_portal::change_plan),
    ]
}

/// Registers every route under `cfg`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    for endpoint in endpoints() {
        cfg.service(endpoint.into_resource());
    }
}

/// Every path pattern with the methods it answers, as registered.
pub fn table() -> Vec<(&'static str, Vec<Method>)> {
    endpoints().into_iter().map(|e| (e.path, e.methods)).collect()
}

/// The paths whose POST honours `Idempotency-Key`.
pub fn idempotent_paths() -> Vec<&'static str> {
    endpoints().into_iter().filter(|e| e.idempotent).map(|e| e.path).collect()
}

/// One path and its methods. Registering a path through here is what makes any other method answer 405 with an
/// `Allow` header: `cfg.route(path, web::get()...)` instead puts the method guard on the resource itself, so a
/// wrong method falls through to the 404 of unknown paths.
struct Endpoint {
    path: &'static str,
    methods: Vec<Method>,
    resource: Resource,
    idempotent: bool,
}

impl Endpoint {
    fn new(path: &'static str) -> Self {
        Self { path, methods: Vec::new(), resource: web::resource(path), idempotent: false }
    }

    /// Its POST honours `Idempotency-Key`.
    fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    fn on<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::method(method.clone()).to(handler));
        self.methods.push(method);
        self
    }

    fn into_resource(self) -> impl HttpServiceFactory {
        let allowed = self.methods;
        self.resource
            .default_service(web::to(move |req: HttpRequest| {
                let error = ApiError::method_not_allowed(req.method(), &allowed);
                async move { Err::<HttpResponse, _>(error) }
            }))
            // Only where marked: the other routes (the entitlement check above all) pay nothing for it.
            .wrap(Condition::new(self.idempotent, from_fn(crate::idempotency::guard)))
            // On the resource, not the app: the answer to a stopped request needs the routed request's head.
            .wrap(from_fn(crate::limits::limit_duration))
    }
}

/// Unknown routes answer problem+json too.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::route_not_found(req.method(), req.path()))
}
