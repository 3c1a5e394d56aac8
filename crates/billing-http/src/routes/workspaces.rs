//! Workspaces, their subscription, trial and audit trail.

use actix_web::{HttpResponse, web};
use billing_domain::services::{TrialError, WorkspaceError};
use serde_json::json;
use tracing_actix_web::RequestId;

use super::workspace_id;
use crate::auth::{Caller, Scope};
use crate::dto::{AuditQuery, SubscriptionView, WorkspaceBody, WorkspaceView};
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
#[tracing::instrument(skip_all, fields(workspace_id = %path))]
pub async fn put(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    path: web::Path<String>,
    body: Json<WorkspaceBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::BillingWrite)?;
    let id = workspace_id(&path)?;
    let profile = body.into_inner().try_into_domain().map_err(ApiError::validation)?;
    let (_, created) =
        state.workspaces.upsert(id.clone(), profile, caller.actor(), Some(request_id.to_string())).await?;
    let view = WorkspaceView::from(state.workspaces.overview(&id).await?);
    Ok(if created { HttpResponse::Created().json(view) } else { HttpResponse::Ok().json(view) })
}

/// `GET /v1/workspaces/{id}`.
#[tracing::instrument(skip_all, fields(workspace_id = %path))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::BillingRead)?;
    let id = workspace_id(&path)?;
    Ok(HttpResponse::Ok().json(WorkspaceView::from(state.workspaces.overview(&id).await?)))
}

/// `GET /v1/workspaces/{id}/subscription`: the current subscription, or 404.
#[tracing::instrument(skip_all, fields(workspace_id = %path))]
pub async fn subscription(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::BillingRead)?;
    let id = workspace_id(&path)?;
    let overview = state.workspaces.overview(&id).await?;
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
#[tracing::instrument(skip_all, fields(workspace_id = %path))]
pub async fn start_trial(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::BillingWrite)?;
    let id = workspace_id(&path)?;
    state.trials.start(&id, caller.actor(), Some(request_id.to_string())).await?;
    Ok(HttpResponse::Created().json(WorkspaceView::from(state.workspaces.overview(&id).await?)))
}

/// `GET /v1/workspaces/{id}/audit?limit=&before=`: newest first.
#[tracing::instrument(skip_all, fields(workspace_id = %path))]
pub async fn audit(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::BillingRead)?;
    let id = workspace_id(&path)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 200"));
    }
    state.workspaces.overview(&id).await?;
    let entries = state.audit.list(&id, limit, query.before).await?;
    let next_before = (entries.len() == limit as usize).then(|| entries.last().map(|e| e.id)).flatten();
    Ok(HttpResponse::Ok().json(json!({"entries": entries, "next_before": next_before})))
}
