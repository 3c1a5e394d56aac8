//! `POST /v1/workspaces/{id}/billing-page-sessions`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use validator::Validate;

use super::common::{http_url, http_url_schema, message};
use crate::billing_page::Locale;
use crate::user_tokens::Role;

/// `{return_url?, user?, locale?, counts?}`: who opens the page and what it shows beside Tollgate's own state.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingPageSessionBody {
    /// Where the page's "Back" link leads (your product); absent, the page shows none.
    #[validate(custom(function = "http_url"))]
    #[schema(schema_with = http_url_schema)]
    pub return_url: Option<String>,
    /// The person opening it, audited as the actor of what they do there. With an API key: absent, the page opens
    /// for an unnamed admin (a `billing:write` key) or member (a read-only key), audited as the key. An end-user
    /// token opens it as its own user, with its role in the workspace, and must not name one.
    #[validate(nested)]
    pub user: Option<PageUser>,
    /// The page's language: `en`, `pt-BR` or `es`; absent, `billing_page.default_locale`.
    #[validate(custom(function = "known_locale"))]
    #[schema(schema_with = locale_schema)]
    pub locale: Option<String>,
    /// Current values of the catalog's count limits (members, say), which only your product knows; the page shows
    /// each given one as used / limit. Keys must be count limits of the catalog.
    #[schema(nullable = false)]
    pub counts: Option<BTreeMap<String, u64>>,
}

/// A user of the workspace, as the product knows them.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PageUser {
    /// Your product's id of the user.
    #[validate(length(min = 1, max = 255, message = "must be 1-255 characters"))]
    #[schema(min_length = 1, max_length = 255)]
    pub id: String,
    /// Owners and admins see the buttons; members see the page read-only.
    pub role: Role,
}

fn known_locale(value: &str) -> Result<(), validator::ValidationError> {
    match Locale::parse(value) {
        Some(_) => Ok(()),
        None => Err(message("must be one of en, pt-BR, es")),
    }
}

/// The shipped locales (tags are matched case-insensitively; the document lists their canonical spelling).
fn locale_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(Locale::NAMES.split(", ")))
        .description(Some("The page's language."))
        .into()
}

/// Send the user's browser to `url` (once) before `expires_at`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BillingPageSessionView {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}
