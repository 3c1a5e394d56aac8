//! `POST/GET /v1/coupons` and `GET /v1/coupons/{code}`.

use billing_domain::coupon::{Coupon, Discount};
use billing_domain::error::{ValidationError, ValidationErrors};
use billing_domain::money::{Currency, Money};
use billing_domain::services::{CouponCheck, NewCoupon};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use validator::Validate;

use super::common::{AmountBody, MoneyView};
use utoipa::{IntoParams, ToSchema};

/// A coupon to create: exactly one of `percent_off` (1-100) and `amount_off` (`{minor, currency}`).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCouponBody {
    /// Letters, digits, `-` and `_`; stored upper case, compared case-insensitively.
    #[validate(length(min = 1, max = 64, message = "must be 1-64 characters of A-Z, 0-9, '-' or '_'"))]
    #[schema(schema_with = coupon_code_schema)]
    pub code: String,
    #[schema(minimum = 1, maximum = 100)]
    pub percent_off: Option<u8>,
    pub amount_off: Option<AmountBody>,
    /// In the future.
    pub valid_until: Option<DateTime<Utc>>,
    /// At most 2,147,483,647 (what the database column holds).
    #[validate(range(max = 2_147_483_647, message = "must be at most 2147483647"))]
    #[schema(minimum = 1, maximum = 2_147_483_647)]
    pub max_uses: Option<u32>,
    /// The plans it applies to; every plan when empty.
    #[serde(default)]
    #[validate(length(max = 50, message = "must list at most 50 plans"))]
    #[schema(max_items = 50)]
    pub plans: Vec<String>,
}

impl CreateCouponBody {
    pub fn try_into_domain(self) -> Result<NewCoupon, ValidationErrors> {
        let discount = match (self.percent_off, self.amount_off) {
            (Some(percent), None) => Discount::Percent { percent },
            (None, Some(amount)) => {
                let currency = Currency::parse(&amount.currency)
                    .map_err(|e| ValidationError::new("amount_off.currency", e.message))?;
                Discount::Amount { amount: Money::new(amount.minor, currency) }
            }
            _ => {
                return Err(
                    ValidationError::new("percent_off", "give exactly one of percent_off and amount_off").into()
                );
            }
        };
        Ok(NewCoupon {
            code: self.code,
            discount,
            valid_until: self.valid_until,
            max_uses: self.max_uses,
            plans: self.plans,
        })
    }
}

/// `?limit=`.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CouponListQuery {
    /// Default 100.
    #[validate(range(min = 1, max = 500, message = "must be between 1 and 500"))]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// `?plan=`: check the coupon against this plan.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CouponCheckQuery {
    #[validate(length(min = 1, max = 64, message = "must name a plan of the catalog"))]
    #[param(min_length = 1, max_length = 64)]
    pub plan: Option<String>,
}

/// A coupon code as `Coupon::normalize_code` takes it: up to 64 characters, surrounding whitespace trimmed.
pub fn coupon_code_schema() -> utoipa::openapi::schema::Schema {
    let pattern = format!("^[{ws}]*[A-Za-z0-9_-]+[{ws}]*$", ws = super::common::WHITESPACE);
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .max_length(Some(64))
        .pattern(Some(pattern))
        .examples(["LAUNCH20"])
        .into()
}

/// A coupon.
#[derive(Debug, Serialize, ToSchema)]
pub struct CouponView<'a> {
    pub code: &'a str,
    pub percent_off: Option<u8>,
    pub amount_off: Option<MoneyView<'a>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub max_uses: Option<u32>,
    pub used_count: u32,
    pub plans: Vec<&'a str>,
    pub created_at: DateTime<Utc>,
}

impl<'a> From<&'a Coupon> for CouponView<'a> {
    fn from(c: &'a Coupon) -> Self {
        let (percent_off, amount_off) = match &c.discount {
            Discount::Percent { percent } => (Some(*percent), None),
            Discount::Amount { amount } => (None, Some(MoneyView::from(amount))),
        };
        Self {
            code: &c.code,
            percent_off,
            amount_off,
            valid_until: c.valid_until,
            max_uses: c.max_uses,
            used_count: c.used_count,
            plans: c.plans.iter().map(|p| p.as_str()).collect(),
            created_at: c.created_at,
        }
    }
}

/// `{coupons: [...]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CouponList<'a> {
    pub coupons: Vec<CouponView<'a>>,
}

/// A coupon and whether it applies now (to the plan asked about): `valid`, else `reason`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CouponCheckView<'a> {
    #[serde(flatten)]
    pub coupon: CouponView<'a>,
    pub valid: bool,
    pub reason: Option<String>,
}

impl<'a> From<&'a CouponCheck> for CouponCheckView<'a> {
    fn from(check: &'a CouponCheck) -> Self {
        Self {
            coupon: CouponView::from(&check.coupon),
            valid: check.refused.is_none(),
            reason: check.refused.as_ref().map(ToString::to_string),
        }
    }
}
