//! The test clock for operators (admin): where it stands, and moving it forward.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use billing_domain::ports::TimeTravelError;

use crate::access::{Admin, Authorized};
use crate::dto::{AdvanceBody, AdvanceView, ClockView};
use crate::error::{ApiError, ErrorCode};
use crate::extract::Json;
use crate::state::AppState;

impl From<TimeTravelError> for ApiError {
    fn from(error: TimeTravelError) -> Self {
        match error {
            TimeTravelError::Backwards(now) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::ClockNotForward,
                "The clock only moves forward",
                format!("the test clock is at {now}; ask for a later time"),
            ),
            TimeTravelError::Store(e) => e.into(),
        }
    }
}

/// `GET /v1/admin/clock`.
#[utoipa::path(
    get,
    path = "/v1/admin/clock",
    operation_id = "getClock",
    tag = "admin",
    responses(
        (status = 200, description = "Where the clock stands.", body = crate::dto::ClockView)
    ),
    security(("api_key" = ["admin"]))
)]
#[tracing::instrument(skip_all)]
pub async fn get(state: web::Data<AppState>, _: Authorized<Admin>) -> Result<HttpResponse, ApiError> {
    let view = match &state.time_travel {
        Some(clock) => ClockView { mode: "test", now: clock.now(), offset_seconds: clock.offset().num_seconds() },
        None => ClockView { mode: "system", now: state.clock.now(), offset_seconds: 0 },
    };
    Ok(HttpResponse::Ok().json(view))
}

/// `POST /v1/admin/clock/advance`: 409 `test_clock_off` unless `clock.mode = "test"`.
#[utoipa::path(
    post,
    path = "/v1/admin/clock/advance",
    operation_id = "advanceClock",
    tag = "admin",
    request_body = crate::dto::AdvanceBody,
    responses(
        (status = 200, description = "What moving the clock did.", body = crate::dto::AdvanceView),
        (status = 409, description = "`test_clock_off` or `clock_not_forward`.", body = crate::openapi::Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = ["admin"]))
)]
#[tracing::instrument(skip_all)]
pub async fn advance(
    state: web::Data<AppState>,
    _: Authorized<Admin>,
    body: Json<AdvanceBody>,
) -> Result<HttpResponse, ApiError> {
    let Some(clock) = &state.time_travel else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::TestClockOff,
            "No test clock",
            "this server runs on the system clock; set clock.mode = \"test\" (sandbox only, never production)",
        ));
    };
    let to = body.target(clock.now()).map_err(ApiError::validation)?;
    let report = clock.advance_to(to).await?;
    Ok(HttpResponse::Ok().json(AdvanceView::from(report)))
}
