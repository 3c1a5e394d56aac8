//! The billing page's routes: minting a link (the API), opening it, the page and its stylesheet. Its forms post to
//! `billing_page_actions.rs`. Browser answers are HTML pages in the viewer's language, never problem+json.

use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template as _;
use billing_domain::catalog::LimitSource;
use billing_domain::ids::WorkspaceId;

use crate::access::{Read, WorkspaceCall};
use crate::auth::{Caller, Scope};
use crate::billing_page::tokens::{Refused, Session, Viewer};
use crate::billing_page::view::{self, Flash};
use crate::billing_page::{BillingPage, Locale, templates};
use crate::dto::{BillingPageSessionBody, BillingPageSessionView};
use crate::error::{ApiError, ErrorCode};
use crate::extract::Json;
use crate::state::AppState;
use crate::user_tokens::Role;

/// The session cookie; its path is the workspace's page, so one browser holds a session per workspace.
pub(crate) const COOKIE: &str = "tollgate_billing";

/// No script at all, styles and images from Tollgate (and a logo over https), forms to Tollgate or, through its
/// redirects, the processor's https pages.
const POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' https: data:; form-action 'self' https:; \
                      frame-ancestors 'none'; base-uri 'none'";

pub(crate) fn enabled(state: &AppState) -> Result<&BillingPage, ApiError> {
    state
        .billing_page
        .as_deref()
        .ok_or_else(|| ApiError::not_found(ErrorCode::RouteNotFound, "the billing page is not enabled"))
}

/// `POST /v1/workspaces/{id}/billing-page-sessions` → `{url, expires_at}`.
#[utoipa::path(
    post,
    path = "/v1/workspaces/{id}/billing-page-sessions",
    operation_id = "createBillingPageSession",
    tag = "billing-page",
    params(crate::openapi::params::WorkspacePath),
    request_body = crate::dto::BillingPageSessionBody,
    responses(
        (status = 201, description = "Send the user's browser to `url`, once, before `expires_at`.", body = crate::dto::BillingPageSessionView),
        (status = 404, description = "`workspace_not_found`, or the billing page is off (`route_not_found`).", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "An `Idempotency-Key` in use.", body = crate::openapi::Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["billing:read"]), ("user_token" = []))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %call.workspace_id))]
pub async fn create_session(
    state: web::Data<AppState>,
    call: WorkspaceCall<Read>,
    body: Json<BillingPageSessionBody>,
) -> Result<HttpResponse, ApiError> {
    let page = enabled(&state)?;
    let body = body.into_inner();
    let ws = &call.workspace_id;
    let (role, user, key) = viewer_of(&call.access.caller, ws, body.user)?;
    for name in body.counts.iter().flat_map(|c| c.keys()) {
        let source = state.catalog.limit_declarations().get(name).and_then(|d| d.source());
        if source != Some(LimitSource::Count) {
            return Err(ApiError::field(&format!("counts.{name}"), "not a count limit of the plan catalog"));
        }
    }
    // The workspace must exist: a link to nothing is a mistake of the caller's, told now, not in the browser.
    state.workspaces.overview(ws).await?;
    let locale = body.locale.as_deref().and_then(Locale::parse).unwrap_or(page.settings.default_locale);
    let viewer = Viewer {
        sub: ws.to_string(),
        role,
        user,
        key,
        return_url: body.return_url,
        locale: locale.tag().to_owned(),
        counts: body.counts.unwrap_or_default(),
    };
    let expires_at = state.clock.now() + page.settings.link_ttl;
    let token = page.signer.link(&uuid::Uuid::new_v4().simple().to_string(), expires_at, &viewer);
    let url = format!("{}/billing/open/{token}", page.settings.public_url);
    // The link is a credential until it is opened: no cache keeps it.
    Ok(HttpResponse::Created()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(BillingPageSessionView { url, expires_at }))
}

/// Who the page opens for. A key names the user (or opens it as itself: admin with `billing:write`, else
/// member); an end user opens it as themselves, with their role in the workspace.
fn viewer_of(
    caller: &Caller,
    ws: &WorkspaceId,
    user: Option<crate::dto::PageUser>,
) -> Result<(Role, Option<String>, Option<String>), ApiError> {
    match (caller, user) {
        (Caller::User(_), Some(_)) => {
            Err(ApiError::field("user", "an end-user token opens the page as its own user; omit `user`"))
        }
        (Caller::User(end_user), None) => {
            let role = end_user.role_in(ws).ok_or_else(ApiError::workspace_not_found)?;
            Ok((role, Some(end_user.id.clone()), None))
        }
        (Caller::Service(_), Some(named)) => {
            if named.role.may_act() {
                caller.require(Scope::BillingWrite)?;
            }
            Ok((named.role, Some(named.id), None))
        }
        (Caller::Service(_), None) => {
            let role = if caller.require(Scope::BillingWrite).is_ok() { Role::Admin } else { Role::Member };
            Ok((role, None, Some(caller.owner())))
        }
    }
}

/// `GET /billing/open/{token}`: redeems the link and opens the page's session.
#[utoipa::path(
    get,
    path = "/billing/open/{token}",
    operation_id = "openBillingPage",
    tag = "billing-page",
    params(("token" = String, Path, description = "The signed link of `createBillingPageSession`.")),
    responses(
        (status = 303, description = "To the page, with its session cookie set."),
        (status = 404, description = "Not a link of this Tollgate.", body = String, content_type = "text/html"),
        (status = 410, description = "The link expired or was used before.", body = String, content_type = "text/html"),
    ),
)]
pub async fn open(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let page = enabled(&state)?;
    let now = state.clock.now();
    let t = page.settings.default_locale.strings();
    let link = match page.signer.verify_link(&path, now) {
        Ok(link) => link,
        Err(Refused::Expired) => return closed(page, StatusCode::GONE, None, t.closed_link_expired, None),
        Err(Refused::Invalid) => return closed(page, StatusCode::NOT_FOUND, None, t.closed_not_found, None),
    };
    let locale = Locale::parse(&link.viewer.locale);
    let t = locale.unwrap_or(page.settings.default_locale).strings();
    let Ok(ws) = WorkspaceId::parse(&link.viewer.sub) else {
        return closed(page, StatusCode::NOT_FOUND, locale, t.closed_not_found, None);
    };
    if !page.links.redeem(&link.nonce, &ws, link.expires_at, now).await? {
        return closed(page, StatusCode::GONE, locale, t.closed_link_used, link.viewer.return_url.as_deref());
    }
    let session_id = uuid::Uuid::new_v4().simple().to_string();
    let csrf = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let expires_at = now + page.settings.session_ttl;
    let token = page.signer.session(&session_id, &csrf, expires_at, &link.viewer);
    let cookie = Cookie::build(COOKIE, token)
        .path(format!("/billing/{ws}"))
        .http_only(true)
        .secure(page.secure_cookie())
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(page.settings.session_ttl.num_seconds()))
        .finish();
    Ok(HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((LOCATION, format!("/billing/{ws}")))
        .insert_header((CACHE_CONTROL, "no-store"))
        .finish())
}

/// `GET /billing/{id}`: the page.
#[utoipa::path(
    get,
    path = "/billing/{id}",
    operation_id = "billingPage",
    tag = "billing-page",
    params(crate::openapi::params::WorkspacePath),
    responses(
        (status = 200, description = "The page, for the session's cookie.", body = String, content_type = "text/html"),
        (status = 401, description = "No session, or it ended: open a new link.", body = String, content_type = "text/html"),
        (status = 404, description = "Not this session's workspace.", body = String, content_type = "text/html"),
    ),
)]
pub async fn page(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let billing_page = enabled(&state)?;
    let (ws, session) = match session_of(&state, billing_page, &req)? {
        Ok(found) => found,
        Err(refused) => return Ok(refused),
    };
    let gathered = match view::gather(&state, billing_page, &ws).await {
        Ok(gathered) => gathered,
        // A browser gets a page in words, never problem+json; the log has the cause.
        Err(error) => {
            let locale = Locale::parse(&session.viewer.locale);
            let t = locale.unwrap_or(billing_page.settings.default_locale).strings();
            if error.status == StatusCode::NOT_FOUND {
                return closed(billing_page, StatusCode::NOT_FOUND, locale, t.closed_not_found, None);
            }
            tracing::error!(code = error.code.as_str(), "the billing page could not be gathered");
            return closed(billing_page, StatusCode::SERVICE_UNAVAILABLE, locale, t.closed_unavailable, None);
        }
    };
    let flash = Flash::from_query(req.query_string());
    let attempt = uuid::Uuid::new_v4().simple().to_string();
    let v = view::build(billing_page, &state.catalog, &session, &ws, &gathered, flash, attempt);
    let body = templates::Page { lang: v.lang, v: &v }.render().map_err(ApiError::internal)?;
    Ok(html(StatusCode::OK, body))
}

/// The session of the request's cookie, for the path's workspace; else (`Ok(Err(page))`) the page that says why not.
pub(crate) fn session_of(
    state: &AppState,
    page: &BillingPage,
    req: &HttpRequest,
) -> Result<Result<(WorkspaceId, Session), HttpResponse>, ApiError> {
    let t = page.settings.default_locale.strings();
    let not_found = || closed(page, StatusCode::NOT_FOUND, None, t.closed_not_found, None);
    let Some(ws) = req.match_info().get("id").and_then(|raw| WorkspaceId::parse(raw).ok()) else {
        return Ok(Err(not_found()?));
    };
    let Some(session) =
        req.cookie(COOKIE).and_then(|cookie| page.signer.verify_session(cookie.value(), state.clock.now()).ok())
    else {
        return Ok(Err(closed(page, StatusCode::UNAUTHORIZED, None, t.closed_session, None)?));
    };
    // The cookie's path already keeps it to its workspace; a session shows only the workspace it was opened for.
    if session.viewer.sub != ws.as_str() {
        return Ok(Err(not_found()?));
    }
    Ok(Ok((ws, session)))
}

/// A page in place of the billing page, saying why; `back` leads to the product (the link's `return_url`).
pub(crate) fn closed(
    page: &BillingPage,
    status: StatusCode,
    locale: Option<Locale>,
    message: &str,
    back: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let t = locale.unwrap_or(page.settings.default_locale).strings();
    let back_label = crate::billing_page::strings::fill(t.back, &[("product", &page.settings.branding.product_name)]);
    say(page, status, locale, (t.closed_heading, message), back.map(|url| (url, back_label)))
}

/// A form refused while the session lives: what went wrong, and the way back to the page.
pub(crate) fn refused(
    page: &BillingPage,
    status: StatusCode,
    locale: Option<Locale>,
    message: &str,
    page_url: &str,
) -> Result<HttpResponse, ApiError> {
    let t = locale.unwrap_or(page.settings.default_locale).strings();
    say(page, status, locale, (t.error_heading, message), Some((page_url, t.back_to_page.to_owned())))
}

fn say(
    page: &BillingPage,
    status: StatusCode,
    locale: Option<Locale>,
    (heading, message): (&str, &str),
    back: Option<(&str, String)>,
) -> Result<HttpResponse, ApiError> {
    let locale = locale.unwrap_or(page.settings.default_locale);
    let (back, back_label) = match &back {
        Some((url, label)) => (Some(*url), label.as_str()),
        None => (None, ""),
    };
    let body = templates::Closed { lang: locale.tag(), heading, message, back, back_label }
        .render()
        .map_err(ApiError::internal)?;
    Ok(html(status, body))
}

pub(crate) fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((CONTENT_SECURITY_POLICY, POLICY))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(body)
}

/// `GET /assets/billing-page.css`.
#[utoipa::path(
    get,
    path = "/assets/billing-page.css",
    operation_id = "billingPageStylesheet",
    tag = "billing-page",
    responses((status = 200, description = "The page's stylesheet, in the configured accent.", body = String, content_type = "text/css")),
)]
pub async fn stylesheet(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let page = enabled(&state)?;
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(page.stylesheet.clone()))
}
