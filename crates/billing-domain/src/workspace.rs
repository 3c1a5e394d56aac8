//! The workspace: the billing account a team shares.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::email::Email;
use crate::error::{ValidationError, ValidationErrors};
use crate::ids::WorkspaceId;

/// A workspace as stored. Plan and subscription status are derived from its subscriptions and trial, never copied here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub owner_email: Email,
    pub billing_details: BillingDetails,
    /// When the one trial this workspace may have ends; `None` when it never started one.
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// The plan the trial grants, fixed when it starts.
    pub trial_plan: Option<crate::ids::PlanId>,
    pub credit_balance: i64,
    pub restricted: bool,
    pub restricted_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a caller may set on a workspace (`PUT /v1/workspaces/{id}`), already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceProfile {
    pub name: String,
    pub owner_email: Email,
    pub billing_details: BillingDetails,
}

impl WorkspaceProfile {
    /// Validates every field and reports all problems at once, each naming its field.
    pub fn parse(name: &str, owner_email: &str, billing_details: BillingDetails) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            errors.push(ValidationError::new("name", "must be 1-200 characters"));
        }
        let email = errors.check(Email::parse(owner_email));
        for problem in billing_details.problems() {
            errors.push(problem.within("billing_details"));
        }
        // A missing email always left an error behind, so this returns every problem found.
        let Some(owner_email) = email.filter(|_| errors.0.is_empty()) else {
            return Err(errors);
        };
        Ok(Self { name: name.to_owned(), owner_email, billing_details })
    }
}

impl Workspace {
    /// A new workspace with no trial, no credits and no restriction.
    pub fn create(id: WorkspaceId, profile: WorkspaceProfile, now: DateTime<Utc>) -> Self {
        Self {
            id,
            name: profile.name,
            owner_email: profile.owner_email,
            billing_details: profile.billing_details,
            trial_ends_at: None,
            trial_plan: None,
            credit_balance: 0,
            restricted: false,
            restricted_reason: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Applies a new profile, keeping billing state untouched.
    pub fn update_profile(&mut self, profile: WorkspaceProfile, now: DateTime<Utc>) {
        self.name = profile.name;
        self.owner_email = profile.owner_email;
        self.billing_details = profile.billing_details;
        self.updated_at = now;
    }
}

/// Invoice details: legal name, address and tax ids. Every field optional until the first invoice needs them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingDetails {
    #[serde(default)]
    pub legal_name: Option<String>,
    #[serde(default)]
    pub address_line1: Option<String>,
    #[serde(default)]
    pub address_line2: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub tax_ids: Vec<TaxId>,
}

/// A tax id such as `{type: "eu_vat", value: "DE123456789"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxId {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

impl BillingDetails {
    /// Every problem with these details, field names relative to the details object.
    pub fn problems(&self) -> Vec<ValidationError> {
        let mut problems = Vec::new();
        let text_fields = [
            ("legal_name", &self.legal_name),
            ("address_line1", &self.address_line1),
            ("address_line2", &self.address_line2),
            ("city", &self.city),
            ("state", &self.state),
            ("postal_code", &self.postal_code),
        ];
        for (field, value) in text_fields {
            if value.as_ref().is_some_and(|v| v.chars().count() > 200) {
                problems.push(ValidationError::new(field, "must be at most 200 characters"));
            }
        }
        if let Some(country) = &self.country {
            let alpha2 = country.len() == 2 && country.chars().all(|c| c.is_ascii_uppercase());
            if !alpha2 {
                problems.push(ValidationError::new(
                    "country",
                    "must be an upper-case ISO 3166-1 alpha-2 code such as DE or BR",
                ));
            }
        }
        for (i, tax_id) in self.tax_ids.iter().enumerate() {
            let kind_ok = !tax_id.kind.is_empty()
                && tax_id.kind.len() <= 32
                && tax_id.kind.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            if !kind_ok {
                problems.push(ValidationError::new(
                    format!("tax_ids[{i}].type"),
                    "must be a tax id type such as eu_vat or br_cnpj",
                ));
            }
            if tax_id.value.trim().is_empty() || tax_id.value.chars().count() > 64 {
                problems.push(ValidationError::new(format!("tax_ids[{i}].value"), "must be 1-64 characters"));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_reports_every_bad_field() {
        let details = BillingDetails {
            country: Some("germany".into()),
            tax_ids: vec![TaxId { kind: "EU VAT".into(), value: "".into() }],
            ..Default::default()
        };
        let errors = WorkspaceProfile::parse(" ", "nope", details).unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "owner_email",
                "billing_details.country",
                "billing_details.tax_ids[0].type",
                "billing_details.tax_ids[0].value"
            ]
        );
    }

    #[test]
    fn workspace_ids_follow_the_allowed_alphabet() {
        assert!(WorkspaceId::parse("team_42:prod.eu-1").is_ok());
        assert!(WorkspaceId::parse("").is_err());
        assert!(WorkspaceId::parse("a/b").is_err());
        assert!(WorkspaceId::parse("x".repeat(129)).is_err());
        assert!(WorkspaceId::parse("x".repeat(128)).is_ok());
    }
}
