//! Workspaces: the profile a product backend sends, and the workspace and subscription it reads back.

use billing_domain::entitlements::PlanSource;
use billing_domain::error::ValidationErrors;
use billing_domain::services::WorkspaceOverview;
use billing_domain::subscription::Subscription;
use billing_domain::workspace::{BillingDetails, TaxId, WorkspaceProfile};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

/// `PUT /v1/workspaces/{id}`. The profile's own rules (name, email, address, tax ids) are the domain's
/// (`WorkspaceProfile::parse`, every problem at once); the DTO bounds what the domain would otherwise take whole.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(description = "The workspace's profile, as the product knows it; every invalid field is named at once.")]
pub struct WorkspaceBody {
    /// Up to 200 characters, not all whitespace (trimmed).
    #[validate(length(max = 200, message = "must be 1-200 characters"))]
    #[schema(schema_with = name_schema)]
    pub name: String,
    /// Where receipts and dunning emails go: `local@domain.tld`, ASCII (an internationalized domain in its
    /// `xn--` form), at most 254 characters.
    #[validate(custom(function = "ascii_email"))]
    #[schema(
        max_length = 254,
        pattern = r"^[\x21-\x3f\x41-\x7e]{1,64}@[\x21-\x2d\x2f-\x3f\x41-\x7e]+(\.[\x21-\x2d\x2f-\x3f\x41-\x7e]+)+$",
        example = "owner@example.com"
    )]
    pub owner_email: String,
    #[serde(default)]
    #[validate(nested)]
    pub billing_details: BillingDetailsDto,
}

impl WorkspaceBody {
    pub fn try_into_domain(self) -> Result<WorkspaceProfile, ValidationErrors> {
        WorkspaceProfile::parse(&self.name, &self.owner_email, self.billing_details.into())
    }
}

/// Not all whitespace, as `trim` counts it.
fn name_schema() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .max_length(Some(200))
        .pattern(Some(super::common::not_blank_pattern()))
        .examples(["Acme Inc."])
        .into()
}

/// The owner's address, before the domain's own check: printable ASCII only and no surrounding whitespace, so
/// what the document's pattern accepts is exactly what the API does.
fn ascii_email(value: &str) -> Result<(), validator::ValidationError> {
    if value.len() <= 254 && value.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(());
    }
    Err(validator::ValidationError::new("invalid")
        .with_message("must be an email address like name@example.com, in ASCII".into()))
}

/// Invoice details, as sent and as shown: legal name, address and tax ids, each optional.
#[derive(Debug, Default, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BillingDetails)]
pub struct BillingDetailsDto {
    #[serde(default)]
    #[schema(max_length = 200)]
    pub legal_name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub address_line1: Option<String>,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub address_line2: Option<String>,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub city: Option<String>,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub state: Option<String>,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    #[serde(default)]
    #[schema(pattern = "^[A-Z]{2}$", example = "DE")]
    pub country: Option<String>,
    #[serde(default)]
    #[validate(length(max = 16, message = "must list at most 16 tax ids"))]
    #[schema(max_items = 16)]
    pub tax_ids: Vec<TaxIdDto>,
}

/// `{type: "eu_vat", value: "DE123456789"}`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TaxId)]
pub struct TaxIdDto {
    /// Lower case and `_`, such as `eu_vat` or `br_cnpj`.
    #[serde(rename = "type")]
    #[schema(pattern = "^[a-z_]{1,32}$", example = "eu_vat")]
    pub kind: String,
    /// Up to 64 characters, not all whitespace.
    #[schema(schema_with = tax_id_value_schema)]
    pub value: String,
}

fn tax_id_value_schema() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .max_length(Some(64))
        .pattern(Some(super::common::not_blank_pattern()))
        .examples(["DE123456789"])
        .into()
}

impl From<BillingDetailsDto> for BillingDetails {
    fn from(d: BillingDetailsDto) -> Self {
        Self {
            legal_name: d.legal_name,
            address_line1: d.address_line1,
            address_line2: d.address_line2,
            city: d.city,
            state: d.state,
            postal_code: d.postal_code,
            country: d.country,
            tax_ids: d.tax_ids.into_iter().map(|t| TaxId { kind: t.kind, value: t.value }).collect(),
        }
    }
}

impl From<BillingDetails> for BillingDetailsDto {
    fn from(d: BillingDetails) -> Self {
        Self {
            legal_name: d.legal_name,
            address_line1: d.address_line1,
            address_line2: d.address_line2,
            city: d.city,
            state: d.state,
            postal_code: d.postal_code,
            country: d.country,
            tax_ids: d.tax_ids.into_iter().map(|t| TaxIdDto { kind: t.kind, value: t.value }).collect(),
        }
    }
}

/// Why a workspace has the plan it has, on the wire.
pub fn plan_source(source: PlanSource) -> &'static str {
    match source {
        PlanSource::Restricted => "restricted",
        PlanSource::Subscription => "subscription",
        PlanSource::GracePeriod => "grace_period",
        PlanSource::Trial => "trial",
        PlanSource::Default => "default",
    }
}

/// A workspace with its billing state.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceView {
    pub id: String,
    pub name: String,
    pub owner_email: String,
    pub billing_details: BillingDetailsDto,
    pub plan: String,
    pub plan_source: &'static str,
    pub subscription_status: Option<&'static str>,
    pub cancel_at_period_end: bool,
    pub current_period_end: Option<DateTime<Utc>>,
    pub trial_ends_at: Option<DateTime<Utc>>,
    pub trial_days_remaining: u32,
    pub credit_balance: i64,
    pub restricted: bool,
    pub restricted_reason: Option<String>,
    /// The open dunning case; `null` when the workspace is not in dunning.
    pub dunning: Option<DunningView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A workspace's open dunning case.
#[derive(Debug, Serialize, ToSchema)]
pub struct DunningView {
    pub case_id: i64,
    /// The invoice whose failed payment opened it (others that failed since are part of the case too).
    pub invoice_id: String,
    /// What that invoice is due, in minor units of `currency`.
    pub amount_due: i64,
    pub currency: String,
    pub opened_at: DateTime<Utc>,
    /// How many steps of the schedule have run.
    pub steps_run: u32,
    /// When the next step is due (`null`: none is left; the case waits for payment).
    pub next_step_at: Option<DateTime<Utc>>,
}

impl From<WorkspaceOverview> for WorkspaceView {
    fn from(o: WorkspaceOverview) -> Self {
        let ws = o.workspace;
        Self {
            id: ws.id.to_string(),
            name: ws.name,
            owner_email: ws.owner_email.to_string(),
            billing_details: ws.billing_details.into(),
            plan: o.plan.to_string(),
            plan_source: plan_source(o.plan_source),
            subscription_status: o.subscription.as_ref().map(|s| s.status.as_str()),
            cancel_at_period_end: o.subscription.as_ref().is_some_and(|s| s.terms.cancel_at_period_end),
            current_period_end: o.subscription.as_ref().and_then(|s| s.terms.current_period_end),
            trial_ends_at: ws.trial_ends_at,
            trial_days_remaining: o.trial_days_remaining,
            credit_balance: ws.credit_balance,
            restricted: ws.restricted,
            restricted_reason: ws.restricted_reason,
            dunning: o.dunning.map(|case| DunningView {
                case_id: case.id,
                invoice_id: case.invoice_id.to_string(),
                amount_due: case.amount.minor,
                currency: case.amount.currency.to_string(),
                opened_at: case.opened_at,
                steps_run: case.next_step,
                next_step_at: case.next_step_at,
            }),
            created_at: ws.created_at,
            updated_at: ws.updated_at,
        }
    }
}

/// `GET /v1/workspaces/{id}/subscription`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub id: String,
    pub processor: String,
    pub status: &'static str,
    pub plan: String,
    pub price_id: String,
    pub quantity: u32,
    pub cancel_at_period_end: bool,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub trial_end: Option<DateTime<Utc>>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub status_changed_at: DateTime<Utc>,
}

impl From<Subscription> for SubscriptionView {
    fn from(s: Subscription) -> Self {
        Self {
            id: s.id.to_string(),
            processor: s.processor.to_string(),
            status: s.status.as_str(),
            plan: s.terms.plan_id.to_string(),
            price_id: s.terms.price_id.to_string(),
            quantity: s.terms.quantity,
            cancel_at_period_end: s.terms.cancel_at_period_end,
            current_period_start: s.terms.current_period_start,
            current_period_end: s.terms.current_period_end,
            trial_end: s.terms.trial_end,
            canceled_at: s.canceled_at,
            status_changed_at: s.status_at,
        }
    }
}
