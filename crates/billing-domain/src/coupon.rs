//! Coupon rules: who may use a coupon and what it takes off. Redemption itself is atomic in the store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::Plan;
use crate::error::ValidationError;
use crate::ids::PlanId;
use crate::money::Money;

/// What a coupon takes off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Discount {
    /// 1–100 percent.
    Percent {
        percent: u8,
    },
    Amount {
        amount: Money,
    },
}

/// A coupon. Codes compare case-insensitively and are stored upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coupon {
    pub code: String,
    pub discount: Discount,
    pub valid_until: Option<DateTime<Utc>>,
    pub max_uses: Option<u32>,
    pub used_count: u32,
    /// Plans it applies to; empty means every plan.
    pub plans: Vec<PlanId>,
    pub created_at: DateTime<Utc>,
}

/// Why a coupon cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CouponError {
    #[error("coupon has expired")]
    Expired,
    #[error("coupon has no uses left")]
    Exhausted,
    #[error("coupon does not apply to plan `{0}`")]
    NotForPlan(PlanId),
    #[error("coupon takes off {coupon}, and the plan is priced in {plan}")]
    OtherCurrency { coupon: String, plan: String },
}

impl Coupon {
    /// Normalises a code for storage and lookup.
    pub fn normalize_code(raw: &str) -> Result<String, ValidationError> {
        let code = raw.trim();
        let valid = !code.is_empty()
            && code.len() <= 64
            && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(ValidationError::new("code", "must be 1-64 characters of A-Z, 0-9, '-' or '_'"));
        }
        Ok(code.to_ascii_uppercase())
    }

    /// Validates a discount's range.
    pub fn validate_discount(discount: &Discount) -> Result<(), ValidationError> {
        match discount {
            Discount::Percent { percent } if (1..=100).contains(percent) => Ok(()),
            Discount::Percent { .. } => Err(ValidationError::new("percent_off", "must be between 1 and 100")),
            Discount::Amount { amount } if (1..=crate::payment::MAX_PAYMENT_MINOR).contains(&amount.minor) => Ok(()),
            Discount::Amount { .. } => Err(ValidationError::new(
                "amount_off.minor",
                format!("must be between 1 and {}", crate::payment::MAX_PAYMENT_MINOR),
            )),
        }
    }

    /// Whether the coupon may be applied to `plan` at `now` (the final use is still taken atomically by the store).
    pub fn check_applicable(&self, plan: &PlanId, now: DateTime<Utc>) -> Result<(), CouponError> {
        if self.valid_until.is_some_and(|until| now >= until) {
            return Err(CouponError::Expired);
        }
        if self.max_uses.is_some_and(|max| self.used_count >= max) {
            return Err(CouponError::Exhausted);
        }
        if !self.plans.is_empty() && !self.plans.contains(plan) {
            return Err(CouponError::NotForPlan(plan.clone()));
        }
        Ok(())
    }

    /// Whether it may be used to buy `plan` at `now`: applicable, and its discount in the plan's currency.
    pub fn applies_to(&self, plan: &Plan, now: DateTime<Utc>) -> Result<(), CouponError> {
        self.check_applicable(&plan.id, now)?;
        self.discounted(&plan.price).map(drop)
    }

    /// `price` with the discount taken off: a percentage rounded half up to the minor unit, an amount never below
    /// zero and only in the plan's own currency.
    pub fn discounted(&self, price: &Money) -> Result<Money, CouponError> {
        let minor = match &self.discount {
            Discount::Percent { percent } => {
                let off = (i128::from(price.minor) * i128::from(*percent) + 50) / 100;
                price.minor - i64::try_from(off).unwrap_or(price.minor)
            }
            Discount::Amount { amount } if amount.currency == price.currency => (price.minor - amount.minor).max(0),
            Discount::Amount { amount } => {
                return Err(CouponError::OtherCurrency {
                    coupon: amount.currency.to_string(),
                    plan: price.currency.to_string(),
                });
            }
        };
        Ok(Money::new(minor, price.currency.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn coupon() -> Coupon {
        Coupon {
            code: "LAUNCH".into(),
            discount: Discount::Percent { percent: 20 },
            valid_until: Some(Utc.with_ymd_and_hms(2026, 12, 31, 0, 0, 0).unwrap()),
            max_uses: Some(2),
            used_count: 1,
            plans: vec![PlanId::new("pro")],
            created_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        }
    }

    #[test]
    fn discounts_round_half_up_and_never_go_below_zero() {
        let usd = |minor| Money::new(minor, crate::money::Currency::parse("USD").unwrap());
        assert_eq!(coupon().discounted(&usd(4900)).unwrap(), usd(3920));
        let third = Coupon { discount: Discount::Percent { percent: 33 }, ..coupon() };
        assert_eq!(third.discounted(&usd(999)).unwrap(), usd(669), "329.67 off rounds to 330");
        let all = Coupon { discount: Discount::Percent { percent: 100 }, ..coupon() };
        assert_eq!(all.discounted(&usd(4900)).unwrap(), usd(0));
        let five = Coupon { discount: Discount::Amount { amount: usd(500) }, ..coupon() };
        assert_eq!(five.discounted(&usd(4900)).unwrap(), usd(4400));
        assert_eq!(five.discounted(&usd(300)).unwrap(), usd(0));
        let eur = Money::new(4900, crate::money::Currency::parse("EUR").unwrap());
        assert!(matches!(five.discounted(&eur), Err(CouponError::OtherCurrency { .. })));
    }

    #[test]
    fn applies_only_within_its_rules() {
        let before = Utc.with_ymd_and_hms(2026, 12, 30, 0, 0, 0).unwrap();
        let at_end = Utc.with_ymd_and_hms(2026, 12, 31, 0, 0, 0).unwrap();
        assert_eq!(coupon().check_applicable(&"pro".into(), before), Ok(()));
        assert_eq!(coupon().check_applicable(&"pro".into(), at_end), Err(CouponError::Expired));
        assert_eq!(coupon().check_applicable(&"hobby".into(), before), Err(CouponError::NotForPlan("hobby".into())));
        let used_up = Coupon { used_count: 2, ..coupon() };
        assert_eq!(used_up.check_applicable(&"pro".into(), before), Err(CouponError::Exhausted));
    }

    #[test]
    fn codes_are_case_insensitive_and_discounts_bounded() {
        assert_eq!(Coupon::normalize_code(" launch-20 ").unwrap(), "LAUNCH-20");
        assert!(Coupon::normalize_code("no spaces").is_err());
        assert!(Coupon::validate_discount(&Discount::Percent { percent: 0 }).is_err());
        assert!(Coupon::validate_discount(&Discount::Percent { percent: 101 }).is_err());
        assert!(Coupon::validate_discount(&Discount::Percent { percent: 100 }).is_ok());
    }
}
