//! The billing page's forms: each checks the session and its form token, then calls the same service, with the
//! same rules, as the API route that does the same, audited as the page's user. The answer is always a redirect:
//! back to the page with a notice or a problem in words (`view::Flash`), or on to the processor's pages.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use billing_domain::commands::SubscriptionCommand;
use billing_domain::ids::{PlanId, WorkspaceId};
use billing_domain::records::Actor;
use billing_domain::services::{RunCommand, StartCheckout};
use subtle::ConstantTimeEq as _;
use tracing_actix_web::RequestId;

use super::billing_page::{enabled, refused, session_of};
use super::billing_page_once::{self as once, Once};
use crate::billing_page::Locale;
use crate::billing_page::tokens::Session;
use crate::billing_page::view::Flash;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// What a form posts.
#[derive(Debug, Default)]
struct Form {
    csrf: String,
    attempt: String,
    plan: Option<String>,
    coupon: Option<String>,
}

/// The longest plan id or coupon code the API takes; a longer one is no plan or coupon of ours.
const MAX_FIELD_CHARS: usize = 64;

impl Form {
    fn parse(body: &[u8]) -> Self {
        let mut form = Self::default();
        for (name, value) in form_urlencoded::parse(body) {
            let value = value.trim().to_owned();
            match name.as_ref() {
                "csrf" => form.csrf = value,
                // The attempt is part of keys: its letters and digits only, bounded.
                "attempt" => form.attempt = value.chars().filter(char::is_ascii_alphanumeric).take(64).collect(),
                "plan" if !value.is_empty() => form.plan = Some(value),
                "coupon" if !value.is_empty() => form.coupon = Some(value),
                _ => {}
            }
        }
        form
    }

    fn oversized(&self) -> bool {
        [&self.plan, &self.coupon].into_iter().flatten().any(|v| v.chars().count() > MAX_FIELD_CHARS)
    }
}

/// `POST /billing/{id}/actions/{action}`.
#[utoipa::path(
    post,
    path = "/billing/{id}/actions/{action}",
    operation_id = "billingPageAction",
    tag = "billing-page",
    params(
        crate::openapi::params::WorkspacePath,
        ("action" = String, Path, description = "`change-plan`, `checkout`, `buy-credits`, `cancel`, `resume`, `start-trial` or `portal`."),
    ),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "The page's form: `csrf`, `attempt`, and `plan` or `coupon` where the action takes them."),
    responses(
        (status = 303, description = "Back to the page with a notice or problem, or on to the processor's checkout or portal."),
        (status = 401, description = "No session, or it ended.", body = String, content_type = "text/html"),
        (status = 403, description = "The form token is missing or not this session's: nothing changed.", body = String, content_type = "text/html"),
        (status = 404, description = "Not this session's workspace, or no such action.", body = String, content_type = "text/html"),
    ),
)]
pub async fn act(
    state: web::Data<AppState>,
    req: HttpRequest,
    request_id: RequestId,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let page = enabled(&state)?;
    let (ws, session) = match session_of(&state, page, &req)? {
        Ok(found) => found,
        Err(refused) => return Ok(refused),
    };
    let locale = Locale::parse(&session.viewer.locale);
    let t = locale.unwrap_or(page.settings.default_locale).strings();
    let form = Form::parse(&body);
    let page_url = format!("/billing/{ws}");
    // Cross-site posts carry no cookie (SameSite=Lax); the token refuses the rest of forged forms.
    if !bool::from(form.csrf.as_bytes().ct_eq(session.csrf.as_bytes())) || form.attempt.is_empty() {
        return refused(page, StatusCode::FORBIDDEN, locale, t.error_form_expired, &page_url);
    }
    let action = req.match_info().get("action").unwrap_or_default();
    if !ACTIONS.contains(&action) {
        return refused(page, StatusCode::NOT_FOUND, locale, t.error_no_such_action, &page_url);
    }
    let back = |flash: Flash| format!("{page_url}?{}", flash.query());
    if !session.viewer.role.may_act() {
        return Ok(see_other(back(Flash::ReadOnly)));
    }
    if form.oversized() {
        return Ok(see_other(back(Flash::NotAllowed)));
    }
    let request = (action, form.plan.as_deref(), form.attempt.as_str());
    let location = match once::claim(&state, &session, request, &[form.coupon.as_deref()]).await? {
        Once::Again(location) => location,
        Once::Refused(flash) => back(flash),
        Once::First(claim) => {
            let call =
                Call { state: &state, ws, session: &session, action, form, request_id: Some(request_id.to_string()) };
            let outcome = call.run().await;
            let retryable = matches!(outcome, Err(Flash::Ours | Flash::Processor));
            let location = match outcome {
                Ok(Next::Page(flash)) | Err(flash) => back(flash),
                Ok(Next::Away(url)) => url,
            };
            once::finish(&state, &claim, &location, retryable).await?;
            location
        }
    };
    Ok(see_other(location))
}

const ACTIONS: [&str; 7] = ["change-plan", "checkout", "buy-credits", "cancel", "resume", "start-trial", "portal"];

fn see_other(location: String) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((LOCATION, location)).insert_header((CACHE_CONTROL, "no-store")).finish()
}

/// Where the browser goes after an action that worked.
enum Next {
    Page(Flash),
    Away(String),
}

struct Call<'a> {
    state: &'a AppState,
    ws: WorkspaceId,
    session: &'a Session,
    action: &'a str,
    form: Form,
    request_id: Option<String>,
}

impl Call<'_> {
    async fn run(&self) -> Result<Next, Flash> {
        match self.action {
            "change-plan" => self.change_plan().await,
            "cancel" => self.command(SubscriptionCommand::Cancel { at_period_end: true }, Flash::Canceled).await,
            "resume" => self.command(SubscriptionCommand::Resume, Flash::Resumed).await,
            "start-trial" => self.start_trial().await,
            "checkout" => self.checkout(true).await,
            "buy-credits" => self.checkout(false).await,
            "portal" => self.portal().await,
            _ => Err(Flash::NotAllowed),
        }
    }

    /// The page's user, or the key that opened the page for nobody named.
    fn actor(&self) -> Actor {
        match (&self.session.viewer.user, &self.session.viewer.key) {
            (Some(id), _) => Actor::User { id: id.clone() },
            (None, Some(name)) => Actor::ApiKey { name: name.clone() },
            (None, None) => Actor::ApiKey { name: "billing-page".into() },
        }
    }

    /// The processor's key for this form's post: the session, the action, its plan and the rendered attempt.
    fn idempotency_key(&self) -> Option<String> {
        let plan = self.form.plan.as_deref().unwrap_or_default();
        Some(format!("billing-page:{}:{}:{plan}:{}", self.session.id, self.action, self.form.attempt))
    }

    fn page_url(&self, query: &str) -> String {
        let public = &self.state.billing_page.as_ref().map(|p| p.settings.public_url.clone()).unwrap_or_default();
        format!("{public}/billing/{}?{query}", self.ws)
    }

    async fn change_plan(&self) -> Result<Next, Flash> {
        let plan = self.form.plan.clone().ok_or(Flash::NotAllowed)?;
        self.command(SubscriptionCommand::ChangePlan { plan: PlanId::new(plan) }, Flash::PlanChanged).await
    }

    async fn command(&self, command: SubscriptionCommand, done: Flash) -> Result<Next, Flash> {
        self.state
            .subscription_commands
            .run(RunCommand {
                workspace_id: self.ws.clone(),
                command,
                proration: None,
                idempotency_key: self.idempotency_key(),
                actor: self.actor(),
                request_id: self.request_id.clone(),
            })
            .await
            .map_err(|e| flash_of(&e.into()))?;
        Ok(Next::Page(done))
    }

    async fn start_trial(&self) -> Result<Next, Flash> {
        self.state
            .trials
            .start(&self.ws, self.actor(), self.request_id.clone())
            .await
            .map_err(|e| flash_of(&e.into()))?;
        Ok(Next::Page(Flash::TrialStarted))
    }

    async fn checkout(&self, coupon: bool) -> Result<Next, Flash> {
        let plan = self.form.plan.clone().ok_or(Flash::NotAllowed)?;
        let session = self
            .state
            .checkout
            .start(StartCheckout {
                workspace_id: self.ws.clone(),
                plan,
                success_url: self.page_url(&Flash::CheckoutSuccess.query()),
                cancel_url: self.page_url(&Flash::CheckoutCanceled.query()),
                idempotency_key: self.idempotency_key(),
                coupon: if coupon { self.form.coupon.clone() } else { None },
                actor: self.actor(),
                request_id: self.request_id.clone(),
            })
            .await
            .map_err(|e| flash_of(&e.into()))?;
        Ok(Next::Away(session.url))
    }

    async fn portal(&self) -> Result<Next, Flash> {
        let return_url = self.page_url("");
        let url = self
            .state
            .account
            .open_portal(&self.ws, return_url.trim_end_matches('?'), self.actor(), self.request_id.clone())
            .await
            .map_err(|e| flash_of(&e.into()))?;
        Ok(Next::Away(url))
    }
}

/// The customer's words for what the API would have answered.
fn flash_of(error: &ApiError) -> Flash {
    match error.code {
        ErrorCode::SubscriptionNotFound => Flash::NoSubscription,
        ErrorCode::AlreadySubscribed => Flash::AlreadySubscribed,
        ErrorCode::TrialAlreadyUsed => Flash::TrialUsed,
        ErrorCode::CouponExhausted => Flash::CouponExhausted,
        ErrorCode::CouponAlreadyRedeemed => Flash::CouponRedeemed,
        ErrorCode::CouponNotFound => Flash::CouponInvalid,
        _ if error.errors.iter().any(|e| e.field.starts_with("coupon")) => Flash::CouponInvalid,
        ErrorCode::ProcessorUnavailable | ErrorCode::ProcessorRejected | ErrorCode::NotSupportedByProcessor => {
            Flash::Processor
        }
        _ if error.status.is_server_error() => Flash::Ours,
        _ => Flash::NotAllowed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_parse_trimmed_and_blank_fields_count_as_absent() {
        let form = Form::parse(b"csrf=abc&attempt=1&plan=pro_monthly&coupon=+&extra=x");
        assert_eq!((form.csrf.as_str(), form.attempt.as_str()), ("abc", "1"));
        assert_eq!(form.plan.as_deref(), Some("pro_monthly"));
        assert_eq!(form.coupon, None);
    }

    #[test]
    fn errors_become_the_customers_words() {
        let conflict = ApiError::new(StatusCode::CONFLICT, ErrorCode::TrialAlreadyUsed, "x", "y");
        assert_eq!(flash_of(&conflict), Flash::TrialUsed);
        assert_eq!(flash_of(&ApiError::field("coupon", "no coupon `X`")), Flash::CouponInvalid);
        assert_eq!(flash_of(&ApiError::internal("boom")), Flash::Ours);
        assert_eq!(flash_of(&ApiError::field("plan", "nope")), Flash::NotAllowed);
    }
}
