//! Who may call a route: the one extractor every workspace route takes ([`WorkspaceCall`]), and [`Authorized`] for
//! routes outside a workspace. [`Authorized`] checks the credential (401), then the route's scope (403).
//! [`WorkspaceCall`] checks the credential (401), the workspace id of the path (400 naming `id`), then access to
//! that workspace: a service key by its scopes (403); an end user's token by its memberships — a workspace it
//! does not name answers the 404 of a missing one — and its role there (members read, owners and admins also
//! write; 403).

use std::future::{Ready, ready};
use std::marker::PhantomData;

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload};
use billing_domain::ids::WorkspaceId;
use billing_domain::records::Actor;
use tracing_actix_web::RequestId;

use crate::auth::{Caller, Scope, authenticate};
use crate::error::ApiError;

/// The scope a route requires, as a type parameter of its extractor.
pub trait RequiredScope {
    const SCOPE: Scope;
    /// Outside a workspace, whether any end user may call it too (what it answers is the same for everyone).
    const END_USERS: bool = false;
}

/// `billing:read`, and any end user: the public plan catalog.
pub struct Catalog;

impl RequiredScope for Catalog {
    const SCOPE: Scope = Scope::BillingRead;
    const END_USERS: bool = true;
}

/// `billing:read`.
pub struct Read;
/// `billing:write`.
pub struct Write;
/// `usage:write`.
pub struct UsageWrite;
/// `admin`.
pub struct Admin;

impl RequiredScope for Read {
    const SCOPE: Scope = Scope::BillingRead;
}

impl RequiredScope for Write {
    const SCOPE: Scope = Scope::BillingWrite;
}

impl RequiredScope for UsageWrite {
    const SCOPE: Scope = Scope::UsageWrite;
}

impl RequiredScope for Admin {
    const SCOPE: Scope = Scope::Admin;
}

/// A caller holding scope `S`.
pub struct Authorized<S> {
    pub caller: Caller,
    request_id: Option<RequestId>,
    _scope: PhantomData<S>,
}

impl<S> Authorized<S> {
    /// The audit actor for this caller.
    pub fn actor(&self) -> Actor {
        self.caller.actor()
    }

    /// The request id, carried into audit entries.
    pub fn request_id(&self) -> Option<String> {
        self.request_id.map(|id| id.to_string())
    }
}

impl<S: RequiredScope> FromRequest for Authorized<S> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authorize::<S>(req))
    }
}

impl<S> Authorized<S> {
    /// `caller`, admitted to a route of scope `S` by `req`.
    fn admitted(caller: Caller, req: &HttpRequest) -> Self {
        let request_id = req.extensions().get::<RequestId>().copied();
        Self { caller, request_id, _scope: PhantomData }
    }
}

fn authorize<S: RequiredScope>(req: &HttpRequest) -> Result<Authorized<S>, ApiError> {
    let caller = authenticate(req)?;
    if !(S::END_USERS && caller.is_end_user()) {
        caller.require(S::SCOPE)?;
    }
    Ok(Authorized::admitted(caller, req))
}

fn authorize_on<S: RequiredScope>(req: &HttpRequest) -> Result<WorkspaceCall<S>, ApiError> {
    let caller = authenticate(req)?;
    let workspace_id = path_workspace(req)?;
    caller.require_on(&workspace_id, S::SCOPE)?;
    Ok(WorkspaceCall { workspace_id, access: Authorized::admitted(caller, req) })
}

/// The workspace a workspace route's path names (`{id}`); 400 naming `id` when it is not a workspace id.
pub(crate) fn path_workspace(req: &HttpRequest) -> Result<WorkspaceId, ApiError> {
    let raw = req.match_info().get("id").ok_or_else(|| ApiError::internal("workspace route without {id}"))?;
    WorkspaceId::parse(raw).map_err(|e| ApiError::validation(e.into()))
}

/// A caller holding scope `S`, on the workspace named by the path's `{id}`.
pub struct WorkspaceCall<S> {
    pub workspace_id: WorkspaceId,
    pub access: Authorized<S>,
}

impl<S> WorkspaceCall<S> {
    pub fn actor(&self) -> Actor {
        self.access.actor()
    }

    pub fn request_id(&self) -> Option<String> {
        self.access.request_id()
    }
}

impl<S: RequiredScope> FromRequest for WorkspaceCall<S> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authorize_on::<S>(req))
    }
}
