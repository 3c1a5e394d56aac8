//! Subscription commands: cancel, resume, change plan. Each answers with the subscription as it now stands.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use billing_domain::commands::SubscriptionCommand;
use billing_domain::ids::PlanId;
use billing_domain::services::{RunCommand, SubscriptionError};
use serde_json::json;

use crate::access::{WorkspaceCall, Write};
use crate::dto::{CancelBody, ChangeBody, SubscriptionView};
use crate::error::{ApiError, ErrorCode};
use crate::extract::Json;
use crate::state::AppState;

impl From<SubscriptionError> for ApiError {
    fn from(error: SubscriptionError) -> Self {
        match error {
            SubscriptionError::WorkspaceNotFound => ApiError::workspace_not_found(),
            SubscriptionError::NoSubscription => {
                ApiError::not_found(ErrorCode::SubscriptionNotFound, "this workspace has no subscription")
            }
            SubscriptionError::UnknownPlan(unknown) => unknown.into(),
            SubscriptionError::BadPlan(reason) => ApiError::field("plan", reason.to_string()),
            SubscriptionError::Conflict { status, reason } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::SubscriptionStateConflict,
                "Not allowed in this state",
                reason.to_string(),
            )
            .with_extra(json!({"subscription_status": status.as_str()})),
            SubscriptionError::OtherProcessor(_) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::SubscriptionManagedElsewhere,
                "Managed by another processor",
                error.to_string(),
            ),
            SubscriptionError::Processor(e) => e.into(),
            SubscriptionError::Store(e) => e.into(),
            SubscriptionError::NotApplied(reason) => {
                ApiError::internal(format!("subscription command answer: {reason}"))
            }
            SubscriptionError::NotRecorded(cause) => {
                tracing::error!(%cause, "a subscription command was carried out but not recorded");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::StorageUnavailable,
                    "Service unavailable",
                    "the processor made the change but Tollgate could not record it yet; retrying with the same \
                     Idempotency-Key changes nothing twice",
                )
            }
        }
    }
}

async fn run(
    state: &AppState,
    call: WorkspaceCall<Write>,
    req: &HttpRequest,
    command: SubscriptionCommand,
    proration: Option<billing_domain::ports::Proration>,
) -> Result<HttpResponse, ApiError> {
    let subscription = state
        .subscription_commands
        .run(RunCommand {
            workspace_id: call.workspace_id.clone(),
            command,
            proration,
            idempotency_key: crate::idempotency::key_of(req)?,
            actor: call.actor(),
            request_id: call.request_id(),
        })
        .await?;
    Ok(HttpResponse::Ok().json(SubscriptionView::from(subscription)))
}

/// `POST /v1/workspaces/{id}/subscription/cancel {at_period_end}`.
#[utoipa::path(
    post,
    path = "/v1/workspaces/{id}/subscription/cancel",
    operation_id = "cancelSubscription",
    tag = "subscriptions",
    params(crate::openapi::params::WorkspacePath),
    request_body = crate::dto::CancelBody,
    responses(
        (status = 200, description = "The subscription as it now stands.", body = crate::dto::SubscriptionView),
        crate::openapi::SubscriptionCommandProblems,
        crate::openapi::ProcessorProblems
    ),
    security(("api_key" = ["billing:write"]), ("user_token" = ["owner", "admin"]))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %call.workspace_id))]
pub async fn cancel(
    state: web::Data<AppState>,
    call: WorkspaceCall<Write>,
    req: HttpRequest,
    body: Json<CancelBody>,
) -> Result<HttpResponse, ApiError> {
    run(&state, call, &req, SubscriptionCommand::Cancel { at_period_end: body.at_period_end }, None).await
}

/// `POST /v1/workspaces/{id}/subscription/resume`: undoes a scheduled cancellation.
#[utoipa::path(
    post,
    path = "/v1/workspaces/{id}/subscription/resume",
    operation_id = "resumeSubscription",
    tag = "subscriptions",
    params(crate::openapi::params::WorkspacePath),
    responses(
        (status = 200, description = "The subscription as it now stands.", body = crate::dto::SubscriptionView),
        crate::openapi::SubscriptionCommandProblems,
        crate::openapi::ProcessorProblems
    ),
    security(("api_key" = ["billing:write"]), ("user_token" = ["owner", "admin"]))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %call.workspace_id))]
pub async fn resume(
    state: web::Data<AppState>,
    call: WorkspaceCall<Write>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    run(&state, call, &req, SubscriptionCommand::Resume, None).await
}

/// `POST /v1/workspaces/{id}/subscription/change {plan, proration?}`: upgrade or downgrade.
#[utoipa::path(
    post,
    path = "/v1/workspaces/{id}/subscription/change",
    operation_id = "changeSubscription",
    tag = "subscriptions",
    params(crate::openapi::params::WorkspacePath),
    request_body = crate::dto::ChangeBody,
    responses(
        (status = 200, description = "The subscription as it now stands.", body = crate::dto::SubscriptionView),
        crate::openapi::SubscriptionCommandProblems,
        crate::openapi::ProcessorProblems
    ),
    security(("api_key" = ["billing:write"]), ("user_token" = ["owner", "admin"]))
)]
#[tracing::instrument(skip_all, fields(workspace_id = %call.workspace_id))]
pub async fn change(
    state: web::Data<AppState>,
    call: WorkspaceCall<Write>,
    req: HttpRequest,
    body: Json<ChangeBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let command = SubscriptionCommand::ChangePlan { plan: PlanId::new(body.plan) };
    run(&state, call, &req, command, body.proration.map(Into::into)).await
}
