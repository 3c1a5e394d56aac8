//! Workspaces, their subscription, trial and audit trail.

use actix_web::{HttpResponse, web};
use billing_domain::services::{TrialError, WorkspaceError};

use crate::access::{Read, WorkspaceCall, Write};
use crate::dto::{AuditPage, AuditQuery, SubscriptionView, WorkspaceBody, WorkspaceView};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Json, Query};
use crate::state::AppState;

impl From<WorkspaceError> for ApiError {
    fn from(error: WorkspaceError) -> Self {
        match error {
            WorkspaceError::NotFound => ApiError::workspace_not_found(),
            WorkspaceError::Invalid(errors) => ApiError::validation(errors),
            WorkspaceError::Store(e) => e.into(),
        }
    }
}

/// `PUT /v1/workspaces/{id}`: 201 when created, 200 when updated.
#[utoipa::path(
    put,
    path = "/v1/workspaces/{id}",
    operation_id = "putWorkspace",
    tag = "workspaces",
    params(crate::openapi::params::WorkspacePath),
    request_body = crate::dto::WorkspaceBody,
    responses(
        (status = 200, description = "Updated.", body = crate::dto::WorkspaceView),
        (status = 201, description = "Created.", body = crate::dto::WorkspaceView),
        (status = 404, description = "`workspace_not_found` (an end user's token names no such workspace).", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["billing:write"]), ("user_token" = ["owner", "admin"]))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %call.workspace_id))]
pub async fn put(
    state: web::Data<AppState>,
    call: WorkspaceCall<Write>,
    body: Json<WorkspaceBody>,
) -> Result<HttpResponse, ApiError> {
    let profile = body.into_inner().try_into_domain().map_err(ApiError::validation)?;
    let id = &call.workspace_id;
    let (_, created) = state.workspaces.upsert(id.clone(), profile, call.actor(), call.request_id()).await?;
    let view = WorkspaceView::from(state.workspaces.overview(id).await?);
    Ok(if created { HttpResponse::Created().json(view) } else { HttpResponse::Ok().json(view) })
}

/// `GET /v1/workspaces/{id}`.
#[utoipa::path(
    get,
    path = "/v1/workspaces/{id}",
    operation_id = "getWorkspace",
    tag = "workspaces",
    params(crate::openapi::params::WorkspacePath),
    responses(
        (status = 200, description = "The workspace.", body = crate::dto::WorkspaceView),
        (status = 404, description = "`workspace_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["billing:read"]), ("user_token" = []))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %call.workspace_id))]
pub async fn get(state: web::Data<AppState>, call: WorkspaceCall<Read>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(WorkspaceView::from(state.workspaces.overview(&call.workspace_id).await?)))
}

/// `GET /v1/workspaces/{id}/subscription`: the current subscription, or 404.
#[utoipa::path(
    get,
    path = "/v1/workspaces/{id}/subscription",
    operation_id = "getSubscription",
    tag = "subscriptions",
    params(crate::openapi::params::WorkspacePath),
    responses(
        (status = 200, description = "The current subscription.", body = crate::dto::SubscriptionView),
        (status = 404, description = "`workspace_not_found` or `subscription_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["billing:read"]), ("user_token" = []))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %call.workspace_id))]
pub async fn subscription(state: web::Data<AppState>, call: WorkspaceCall<Read>) -> Result<HttpResponse, ApiError> {
    let overview = state.workspaces.overview(&call.workspace_id).await?;
    let subscription = overview
        .subscription
        .ok_or_else(|| ApiError::not_found(ErrorCode::SubscriptionNotFound, "this workspace has no subscription"))?;
    Ok(HttpResponse::Ok().json(SubscriptionView::from(subscription)))
}

impl From<TrialError> for ApiError {
    fn from(error: TrialError) -> Self {
        use actix_web::http::StatusCode;
        match error {
            TrialError::WorkspaceNotFound => ApiError::workspace_not_found(),
            TrialError::AlreadyUsed => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::TrialAlreadyUsed,
                "Trial already used",
                "this workspace has already had its one trial",
            ),
            TrialError::PlanMissing(plan) => ApiError::internal(format!("trial plan `{plan}` missing from catalog")),
            TrialError::Store(e) => e.into(),
        }
    }
}

/// `POST /v1/workspaces/{id}/trial`: starts the one trial; 409 the second time.
#[utoipa::path(
    post,
    path = "/v1/workspaces/{id}/trial",
    operation_id = "startTrial",
    tag = "workspaces",
    params(crate::openapi::params::WorkspacePath),
    responses(
        (status = 201, description = "The workspace, trialing.", body = crate::dto::WorkspaceView),
        (status = 404, description = "`workspace_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`trial_already_used`, or an `Idempotency-Key` in use.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["billing:write"]), ("user_token" = ["owner", "admin"]))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %call.workspace_id))]
pub async fn start_trial(state: web::Data<AppState>, call: WorkspaceCall<Write>) -> Result<HttpResponse, ApiError> {
    let id = &call.workspace_id;
    state.trials.start(id, call.actor(), call.request_id()).await?;
    Ok(HttpResponse::Created().json(WorkspaceView::from(state.workspaces.overview(id).await?)))
}

/// `GET /v1/workspaces/{id}/audit?limit=&before=`: newest first.
#[utoipa::path(
    get,
    path = "/v1/workspaces/{id}/audit",
    operation_id = "listAudit",
    tag = "workspaces",
    params(crate::openapi::params::WorkspacePath, crate::dto::AuditQuery),
    responses(
        (status = 200, description = "Newest first.", body = crate::dto::AuditPage),
        (status = 404, description = "`workspace_not_found`.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["billing:read"]), ("user_token" = []))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %call.workspace_id))]
pub async fn audit(
    state: web::Data<AppState>,
    call: WorkspaceCall<Read>,
    query: Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = &call.workspace_id;
    let limit = query.limit.unwrap_or(50);
    state.workspaces.overview(id).await?;
    let entries = state.audit.list(id, limit, query.before).await?;
    Ok(HttpResponse::Ok().json(AuditPage::new(&entries, limit)))
}
