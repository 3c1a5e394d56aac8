//! Usage: the ingestion batch (each event read leniently, so a bad one is rejected alone instead of failing the
//! batch), its per-event results, and a period's usage with its cost.

use std::fmt;

use billing_domain::catalog::Aggregation;
use billing_domain::error::{ValidationError, ValidationErrors};
use billing_domain::services::{EventOutcome, PeriodQuery, UsageReport};
use billing_domain::usage::{RawUsageEvent, RawValue, UsageRange};
use chrono::{DateTime, NaiveDate, Utc};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

/// `POST /v1/usage`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageBatch {
    /// Up to 1,000 events.
    pub events: Vec<WireEvent>,
}

/// One event of a batch as sent: any JSON value, typed field by field.
#[derive(Debug)]
pub struct WireEvent(pub RawUsageEvent);

impl ToSchema for WireEvent {
    fn name() -> std::borrow::Cow<'static, str> {
        "UsageEvent".into()
    }
}

/// Any JSON value: a malformed event is rejected in its own result (`results[]`), never the batch.
impl utoipa::PartialSchema for WireEvent {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let description = "`{id, workspace_id, metric, quantity, timestamp?}`: `id` (1-255 characters) is the \
            event's idempotency key within its workspace; `quantity` a non-negative decimal (number or string); \
            `timestamp` RFC 3339, default now. Any value is taken: an event that is not valid is rejected in its \
            own result, never the batch.";
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
            .description(Some(description))
            .examples([serde_json::json!({
                "id": "evt_42", "workspace_id": "acme", "metric": "api_calls", "quantity": 3,
                "timestamp": "2026-12-01T10:00:00Z"
            })])
            .into()
    }
}

/// The event's `id` when it sent one as a string, echoed in its result.
fn sent_id(event: &RawUsageEvent) -> Option<&str> {
    match &event.id {
        Some(RawValue::Text(id)) => Some(id),
        _ => None,
    }
}

impl<'de> Deserialize<'de> for WireEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EventVisitor)
    }
}

struct EventVisitor;

impl EventVisitor {
    fn not_an_object<E>(self) -> Result<WireEvent, E> {
        Ok(WireEvent(RawUsageEvent { not_an_object: true, ..RawUsageEvent::default() }))
    }
}

impl<'de> Visitor<'de> for EventVisitor {
    type Value = WireEvent;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a usage event")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireEvent, A::Error> {
        let mut raw = RawUsageEvent::default();
        while let Some(key) = map.next_key::<EventField>()? {
            let slot = match key {
                EventField::Id => &mut raw.id,
                EventField::WorkspaceId => &mut raw.workspace_id,
                EventField::Metric => &mut raw.metric,
                EventField::Quantity => &mut raw.quantity,
                EventField::Timestamp => &mut raw.timestamp,
                EventField::Other(name) => {
                    raw.unknown_field.get_or_insert(name);
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value::<WireValue>()?.0);
        }
        Ok(WireEvent(raw))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WireEvent, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.not_an_object()
    }

    fn visit_bool<E>(self, _: bool) -> Result<WireEvent, E> {
        self.not_an_object()
    }
    fn visit_i64<E>(self, _: i64) -> Result<WireEvent, E> {
        self.not_an_object()
    }
    fn visit_u64<E>(self, _: u64) -> Result<WireEvent, E> {
        self.not_an_object()
    }
    fn visit_f64<E>(self, _: f64) -> Result<WireEvent, E> {
        self.not_an_object()
    }
    fn visit_str<E>(self, _: &str) -> Result<WireEvent, E> {
        self.not_an_object()
    }
    fn visit_unit<E>(self) -> Result<WireEvent, E> {
        self.not_an_object()
    }
}

enum EventField {
    Id,
    WorkspaceId,
    Metric,
    Quantity,
    Timestamp,
    Other(String),
}

impl<'de> Deserialize<'de> for EventField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = EventField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<EventField, E> {
                Ok(match name {
                    "id" => EventField::Id,
                    "workspace_id" => EventField::WorkspaceId,
                    "metric" => EventField::Metric,
                    "quantity" => EventField::Quantity,
                    "timestamp" => EventField::Timestamp,
                    other => EventField::Other(other.chars().take(64).collect()),
                })
            }
        }
        deserializer.deserialize_identifier(FieldVisitor)
    }
}

/// Any JSON value, kept as far as it is a string or a number.
struct WireValue(RawValue);

impl<'de> Deserialize<'de> for WireValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = WireValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<WireValue, E> {
                Ok(WireValue(RawValue::Text(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<WireValue, E> {
                Ok(WireValue(RawValue::Text(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<WireValue, E> {
                Ok(WireValue(RawValue::Integer(i128::from(v))))
            }
            fn visit_u64<E>(self, v: u64) -> Result<WireValue, E> {
                Ok(WireValue(RawValue::Integer(i128::from(v))))
            }
            fn visit_f64<E>(self, v: f64) -> Result<WireValue, E> {
                Ok(WireValue(RawValue::Float(v)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<WireValue, E> {
                Ok(WireValue(RawValue::Other))
            }
            fn visit_unit<E>(self) -> Result<WireValue, E> {
                Ok(WireValue(RawValue::Other))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireValue, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(WireValue(RawValue::Other))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WireValue, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(WireValue(RawValue::Other))
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// The answer to a batch: counts, then one result per event in the batch's order.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageBatchView<'a> {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub results: Vec<EventResultView<'a>>,
}

/// One event's result.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventResultView<'a> {
    pub index: usize,
    pub id: Option<&'a str>,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'a str>,
}

impl<'a> UsageBatchView<'a> {
    pub fn of(events: &'a [RawUsageEvent], outcomes: &'a [EventOutcome]) -> Self {
        let mut view = Self { accepted: 0, duplicates: 0, rejected: 0, results: Vec::with_capacity(outcomes.len()) };
        for (index, (event, outcome)) in events.iter().zip(outcomes).enumerate() {
            let mut result = EventResultView {
                index,
                id: sent_id(event),
                status: "accepted",
                code: None,
                field: None,
                message: None,
            };
            match outcome {
                EventOutcome::Accepted => view.accepted += 1,
                EventOutcome::Duplicate => {
                    view.duplicates += 1;
                    result.status = "duplicate";
                }
                EventOutcome::Rejected(rejection) => {
                    view.rejected += 1;
                    result.status = "rejected";
                    result.code = Some(rejection.code.as_str());
                    result.field = Some(&rejection.field);
                    result.message = Some(&rejection.message);
                }
            }
            view.results.push(result);
        }
        view
    }
}

/// `GET /v1/workspaces/{id}/usage?period=current|YYYY-MM` or `?from=…&to=…` (RFC 3339, `to` excluded).
#[derive(Debug, Default, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// `current` (the default) or a calendar month, `YYYY-MM`; not with `from`/`to`.
    #[param(pattern = "^(current|[0-9]{4}-(0[1-9]|1[0-2]))$")]
    pub period: Option<String>,
    /// With `to`: the start of a range (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// With `from`: the end of the range, excluded; after `from`.
    pub to: Option<DateTime<Utc>>,
}

impl UsageQuery {
    /// The period asked for; errors name the parameter.
    pub fn period(&self) -> Result<PeriodQuery, ValidationErrors> {
        match (&self.period, self.from, self.to) {
            (None, None, None) => Ok(PeriodQuery::Current),
            (Some(period), None, None) => parse_period(period).map_err(Into::into),
            (None, Some(start), Some(end)) if start < end => Ok(PeriodQuery::Range(UsageRange { start, end })),
            (None, Some(_), Some(_)) => Err(ValidationError::new("to", "must be after `from`").into()),
            (None, Some(_), None) => Err(ValidationError::new("to", "is required with `from`").into()),
            (None, None, Some(_)) => Err(ValidationError::new("from", "is required with `to`").into()),
            (Some(_), _, _) => Err(ValidationError::new("period", "give `period` or `from` and `to`, not both").into()),
        }
    }
}

fn parse_period(raw: &str) -> Result<PeriodQuery, ValidationError> {
    if raw == "current" {
        return Ok(PeriodQuery::Current);
    }
    let shaped =
        raw.len() == 7 && raw.bytes().enumerate().all(|(i, b)| if i == 4 { b == b'-' } else { b.is_ascii_digit() });
    let month = NaiveDate::parse_from_str(&format!("{raw}-01"), "%Y-%m-%d")
        .ok()
        .filter(|_| shaped)
        .ok_or_else(|| ValidationError::new("period", "must be `current` or a month as YYYY-MM"))?;
    use chrono::Datelike;
    Ok(PeriodQuery::Month { year: month.year(), month: month.month() })
}

/// A period's usage and cost.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageReportView<'a> {
    pub workspace_id: &'a str,
    pub plan: &'a str,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub currency: &'a str,
    pub metrics: Vec<MetricUsageView<'a>>,
    /// The sum of the lines' `amount_minor`.
    pub total_minor: i64,
}

/// One metric's line. Decimals are strings, so no digit is lost.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricUsageView<'a> {
    pub metric: &'a str,
    pub aggregation: &'static str,
    pub events: u64,
    pub quantity: String,
    /// `null` when the plan does not meter this metric.
    pub included: Option<String>,
    pub billable: String,
    pub unit_price: Option<String>,
    /// `billable × unit_price` in major units, exact.
    pub amount: String,
    /// `amount` in minor units, rounded half to even.
    pub amount_minor: i64,
}

impl<'a> From<&'a UsageReport> for UsageReportView<'a> {
    fn from(report: &'a UsageReport) -> Self {
        let metrics = report
            .cost
            .lines
            .iter()
            .map(|line| MetricUsageView {
                metric: &line.metric,
                aggregation: match line.aggregation {
                    Aggregation::Sum => "sum",
                    Aggregation::Max => "max",
                },
                events: report.totals.get(&line.metric).map_or(0, |t| t.events),
                quantity: line.quantity.normalize().to_string(),
                included: line.included.map(|d| d.normalize().to_string()),
                billable: line.billable.normalize().to_string(),
                unit_price: line.unit_price.map(|d| d.normalize().to_string()),
                amount: line.amount.normalize().to_string(),
                amount_minor: line.amount_minor,
            })
            .collect();
        Self {
            workspace_id: report.workspace_id.as_str(),
            plan: report.plan.as_str(),
            period_start: report.range.start,
            period_end: report.range.end,
            currency: report.cost.currency.as_str(),
            metrics,
            total_minor: report.cost.total_minor,
        }
    }
}
