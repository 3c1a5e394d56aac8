//! What a usage event must be to count. Each event of a batch is judged on its own: a bad one is rejected with a
//! stable code and the field at fault, and the rest of the batch is kept.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

use super::UsageEvent;
use crate::catalog::Catalog;
use crate::ids::WorkspaceId;

/// Events per batch, at most (SPEC §3.7).
pub const MAX_BATCH: usize = 1000;
/// Decimal places a quantity may have.
pub const MAX_QUANTITY_SCALE: u32 = 9;
/// Digits before the decimal point a quantity may have (so a period's total of many events stays exact).
const MAX_QUANTITY_DIGITS: u32 = 15;
/// Longest event id, in bytes.
const MAX_ID_LEN: usize = 255;

/// How late and how early an event may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsagePolicy {
    /// Events older than this are refused (their period may have been billed).
    pub late_window: Duration,
    /// Events later than this beyond now are refused (a client clock running ahead).
    pub future_skew: Duration,
}

impl Default for UsagePolicy {
    fn default() -> Self {
        Self { late_window: Duration::days(7), future_skew: Duration::minutes(5) }
    }
}

/// A JSON value as it arrived, typed only as far as JSON types it.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Text(String),
    Integer(i128),
    Float(f64),
    /// `true`, `false`, `null`, an object or an array.
    Other,
}

/// An event as it arrived: each field as sent, `None` when absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawUsageEvent {
    pub id: Option<RawValue>,
    pub workspace_id: Option<RawValue>,
    pub metric: Option<RawValue>,
    pub quantity: Option<RawValue>,
    pub timestamp: Option<RawValue>,
    /// The first field the event should not have.
    pub unknown_field: Option<String>,
    /// The element is not a JSON object at all.
    pub not_an_object: bool,
}

/// Why an event was refused; each is a stable code of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectCode {
    InvalidEvent,
    UnknownField,
    MissingField,
    InvalidId,
    InvalidWorkspaceId,
    UnknownWorkspace,
    UnknownMetric,
    InvalidQuantity,
    NegativeQuantity,
    QuantityScale,
    QuantityTooLarge,
    InvalidTimestamp,
    TimestampTooOld,
    TimestampInFuture,
}

impl RejectCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidEvent => "invalid_event",
            Self::UnknownField => "unknown_field",
            Self::MissingField => "missing_field",
            Self::InvalidId => "invalid_id",
            Self::InvalidWorkspaceId => "invalid_workspace_id",
            Self::UnknownWorkspace => "unknown_workspace",
            Self::UnknownMetric => "unknown_metric",
            Self::InvalidQuantity => "invalid_quantity",
            Self::NegativeQuantity => "negative_quantity",
            Self::QuantityScale => "quantity_scale",
            Self::QuantityTooLarge => "quantity_too_large",
            Self::InvalidTimestamp => "invalid_timestamp",
            Self::TimestampTooOld => "timestamp_too_old",
            Self::TimestampInFuture => "timestamp_in_future",
        }
    }
}

/// A refused event: the code, the field at fault and a sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: RejectCode,
    pub field: String,
    pub message: String,
}

impl Rejection {
    fn new(code: RejectCode, field: &str, message: impl Into<String>) -> Self {
        Self { code, field: field.to_owned(), message: message.into() }
    }
}

/// Checks one event against the catalog and the time window at `now`. Whether its workspace exists is the
/// caller's to check (it needs the store).
pub fn validate_event(
    raw: &RawUsageEvent,
    catalog: &Catalog,
    policy: &UsagePolicy,
    now: DateTime<Utc>,
) -> Result<UsageEvent, Rejection> {
    if raw.not_an_object {
        return Err(Rejection::new(RejectCode::InvalidEvent, "", "each event must be a JSON object"));
    }
    if let Some(field) = &raw.unknown_field {
        return Err(Rejection::new(RejectCode::UnknownField, field, format!("unknown field `{field}`")));
    }
    let id = text(&raw.id, "id")?;
    if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(Rejection::new(RejectCode::InvalidId, "id", "must be 1-255 bytes without control characters"));
    }
    let workspace_id = WorkspaceId::parse(text(&raw.workspace_id, "workspace_id")?)
        .map_err(|e| Rejection::new(RejectCode::InvalidWorkspaceId, "workspace_id", e.message))?;
    let metric = text(&raw.metric, "metric")?;
    if !catalog.metric_declarations().contains_key(metric) {
        let known = catalog.metric_declarations().keys().cloned().collect::<Vec<_>>().join(", ");
        return Err(Rejection::new(
            RejectCode::UnknownMetric,
            "metric",
            format!("unknown metric `{metric}`; valid metrics: {known}"),
        ));
    }
    let quantity = quantity(raw.quantity.as_ref().ok_or_else(|| missing("quantity"))?)?;
    let at = timestamp(raw.timestamp.as_ref().ok_or_else(|| missing("timestamp"))?)?;
    if at < now - policy.late_window {
        let days = policy.late_window.num_hours() as f64 / 24.0;
        return Err(Rejection::new(
            RejectCode::TimestampTooOld,
            "timestamp",
            format!("is older than the late window of {days} days"),
        ));
    }
    if at > now + policy.future_skew {
        let secs = policy.future_skew.num_seconds();
        return Err(Rejection::new(
            RejectCode::TimestampInFuture,
            "timestamp",
            format!("is more than {secs} s in the future"),
        ));
    }
    Ok(UsageEvent { id: id.to_owned(), workspace_id, metric: metric.to_owned(), quantity, at })
}

fn missing(field: &str) -> Rejection {
    Rejection::new(RejectCode::MissingField, field, format!("`{field}` is required"))
}

fn text<'a>(value: &'a Option<RawValue>, field: &str) -> Result<&'a str, Rejection> {
    let code = match field {
        "id" => RejectCode::InvalidId,
        "workspace_id" => RejectCode::InvalidWorkspaceId,
        _ => RejectCode::UnknownMetric,
    };
    match value {
        Some(RawValue::Text(text)) => Ok(text),
        Some(_) => Err(Rejection::new(code, field, "must be a string")),
        None => Err(missing(field)),
    }
}

/// A non-negative decimal of at most [`MAX_QUANTITY_SCALE`] places, as a JSON string (exact) or number.
fn quantity(value: &RawValue) -> Result<Decimal, Rejection> {
    let invalid =
        || Rejection::new(RejectCode::InvalidQuantity, "quantity", "must be a decimal number such as \"12.5\"");
    let parsed = match value {
        RawValue::Text(text) => parse_plain_decimal(text).ok_or_else(invalid)?,
        RawValue::Integer(n) => Decimal::try_from_i128_with_scale(*n, 0).map_err(|_| too_large())?,
        // Rust prints the shortest text that reads back as the same f64: what the sender most likely wrote.
        RawValue::Float(f) if f.is_finite() => parse_plain_decimal(&f.to_string()).ok_or_else(too_large)?,
        RawValue::Float(_) | RawValue::Other => return Err(invalid()),
    };
    if parsed.is_sign_negative() && !parsed.is_zero() {
        return Err(Rejection::new(RejectCode::NegativeQuantity, "quantity", "must not be negative"));
    }
    let normalized = parsed.normalize();
    if normalized.scale() > MAX_QUANTITY_SCALE {
        return Err(Rejection::new(
            RejectCode::QuantityScale,
            "quantity",
            format!("has more than {MAX_QUANTITY_SCALE} decimal places"),
        ));
    }
    if normalized.abs() >= Decimal::from(10u64.pow(MAX_QUANTITY_DIGITS)) {
        return Err(too_large());
    }
    Ok(normalized)
}

fn too_large() -> Rejection {
    Rejection::new(RejectCode::QuantityTooLarge, "quantity", format!("must be below 10^{MAX_QUANTITY_DIGITS}"))
}

/// `[-]digits[.digits]` and nothing else (no exponent, sign `+`, spaces or separators).
fn parse_plain_decimal(text: &str) -> Option<Decimal> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && (fraction.is_empty() != digits.contains('.'));
    if !plain || text.len() > 64 {
        return None;
    }
    Decimal::from_str(text).ok()
}

/// RFC 3339 text or whole Unix seconds.
fn timestamp(value: &RawValue) -> Result<DateTime<Utc>, Rejection> {
    let invalid = || {
        Rejection::new(
            RejectCode::InvalidTimestamp,
            "timestamp",
            "must be RFC 3339 (\"2026-12-01T10:00:00Z\") or Unix seconds",
        )
    };
    match value {
        RawValue::Text(text) => {
            DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(|_| invalid())
        }
        RawValue::Integer(secs) => {
            i64::try_from(*secs).ok().and_then(|s| DateTime::from_timestamp(s, 0)).ok_or_else(invalid)
        }
        RawValue::Float(_) | RawValue::Other => Err(invalid()),
    }
}
