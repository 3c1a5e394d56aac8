//! Values several responses share, and the validation rules several requests share.

use billing_domain::catalog::Limit;
use billing_domain::money::Money;
use serde::{Serialize, Serializer};

/// An amount: `{minor, currency}`.
#[derive(Debug, Serialize)]
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
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmountBody {
    pub minor: i64,
    pub currency: String,
}

/// A limit: a number, or `"unlimited"`.
#[derive(Debug, Clone, Copy)]
pub struct LimitValue(pub Limit);

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
        && value.len() <= 2048
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok { Ok(()) } else { Err(message("must be an absolute http(s) URL")) }
}

fn message(text: &'static str) -> validator::ValidationError {
    validator::ValidationError::new("invalid").with_message(text.into())
}
