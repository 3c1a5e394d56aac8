//! Values several responses share, and the validation rules several requests share.

use billing_domain::catalog::Limit;
use billing_domain::money::Money;
use serde::{Serialize, Serializer};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType, Type};

/// An amount: `{minor, currency}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MoneyView<'a> {
    pub minor: i64,
    pub currency: &'a str,
}

impl<'a> From<&'a Money> for MoneyView<'a> {
    fn from(money: &'a Money) -> Self {
        Self { minor: money.minor, currency: money.currency.as_str() }
    }
}

/// The `before` that continues a page read with `limit`, newest first: the last id of a full page (which may
/// have more after it), `None` for a short one.
pub fn next_before(ids: impl ExactSizeIterator<Item = i64>, limit: u32) -> Option<i64> {
    let full = ids.len() == limit as usize;
    ids.last().filter(|_| full)
}

/// An amount in a request: `{minor, currency}`.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmountBody {
    /// Minor units (cents), at most 99,999,999.
    #[schema(minimum = 1, maximum = 99_999_999)]
    pub minor: i64,
    /// An ISO 4217 code, any case.
    #[schema(pattern = "^[A-Za-z]{3}$", example = "EUR")]
    pub currency: String,
}

/// A limit: a number, or `"unlimited"`.
#[derive(Debug, Clone, Copy)]
pub struct LimitValue(pub Limit);

impl utoipa::ToSchema for LimitValue {}

impl utoipa::PartialSchema for LimitValue {
    fn schema() -> RefOr<Schema> {
        let count = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(0));
        let unlimited = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["unlimited"]));
        OneOfBuilder::new().item(count).item(unlimited).description(Some("A count, or `\"unlimited\"`.")).into()
    }
}

impl Serialize for LimitValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Limit::Limited(n) => s.serialize_u64(n),
            Limit::Unlimited => s.serialize_str("unlimited"),
        }
    }
}

/// An absolute http(s) URL a browser is sent back to.
pub fn http_url(value: &str) -> Result<(), validator::ValidationError> {
    let ok = (value.starts_with("https://") || value.starts_with("http://"))
        && value.chars().count() <= 2048
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok { Ok(()) } else { Err(message("must be an absolute http(s) URL")) }
}

/// What [`http_url`] takes, for the document; `null` is taken as absent.
pub fn http_url_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(2048))
        .pattern(Some(format!("^https?://[^{NO_WHITESPACE_OR_CONTROL}]*$")))
        .description(Some("An absolute http(s) URL, at most 2,048 characters, no whitespace."))
        .into()
}

/// Rust's `char::is_whitespace` as a regex class body, for patterns that must accept exactly what `trim` and
/// `is_whitespace` do (JSON Schema's `\s` differs between regex dialects).
pub const WHITESPACE: &str = r"\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// A string holding something other than whitespace (as `trim` counts it), and no U+0000.
pub fn not_blank_pattern() -> String {
    format!(r"^[^\x00]*[^{WHITESPACE}\x00][^\x00]*$")
}

/// Whitespace and control characters (`is_whitespace || is_control`) as a regex class body.
const NO_WHITESPACE_OR_CONTROL: &str = r"\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

pub(crate) fn message(text: &'static str) -> validator::ValidationError {
    validator::ValidationError::new("invalid").with_message(text.into())
}
