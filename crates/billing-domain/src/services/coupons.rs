//! Managing coupons (admin) and telling a product whether a code applies to a plan now.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::Context;
use crate::coupon::{Coupon, CouponError, Discount};
use crate::error::{StoreError, ValidationError, ValidationErrors};
use crate::ids::PlanId;
use crate::ports::CouponRepository;

#[derive(Debug, thiserror::Error)]
pub enum CouponServiceError {
    #[error("invalid coupon")]
    Invalid(ValidationErrors),
    #[error("coupon `{0}` exists")]
    Exists(String),
    #[error("no coupon `{0}`")]
    NotFound(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for CouponServiceError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// A coupon to create.
#[derive(Debug, Clone)]
pub struct NewCoupon {
    pub code: String,
    pub discount: Discount,
    pub valid_until: Option<DateTime<Utc>>,
    pub max_uses: Option<u32>,
    pub plans: Vec<String>,
}

/// Whether a coupon applies, and if not why.
#[derive(Debug, Clone)]
pub struct CouponCheck {
    pub coupon: Coupon,
    /// `None` when it applies (to `plan`, when one was named).
    pub refused: Option<CouponError>,
}

/// Coupon use cases.
pub struct CouponService {
    ctx: Context,
    coupons: Arc<dyn CouponRepository>,
}

impl CouponService {
    pub fn new(ctx: Context, coupons: Arc<dyn CouponRepository>) -> Self {
        Self { ctx, coupons }
    }

    /// Creates a coupon; every problem of the request at once.
    pub async fn create(&self, new: NewCoupon) -> Result<Coupon, CouponServiceError> {
        let mut errors = ValidationErrors::default();
        let code = errors.check(Coupon::normalize_code(&new.code));
        errors.check(Coupon::validate_discount(&new.discount));
        let now = self.ctx.clock.now();
        if new.valid_until.is_some_and(|until| until <= now) {
            errors.push(ValidationError::new("valid_until", "must be in the future"));
        }
        if new.max_uses == Some(0) {
            errors.push(ValidationError::new("max_uses", "must be at least 1"));
        }
        for (i, plan) in new.plans.iter().enumerate() {
            match self.ctx.catalog.get(&PlanId::new(plan.as_str())) {
                Some(p) if !p.is_default => {}
                _ => errors.push(ValidationError::new(
                    format!("plans[{i}]"),
                    format!("`{plan}` is not a plan that can be bought"),
                )),
            }
        }
        let Some(code) = code.filter(|_| errors.0.is_empty()) else {
            return Err(CouponServiceError::Invalid(errors));
        };
        let coupon = Coupon {
            code: code.clone(),
            discount: new.discount,
            valid_until: new.valid_until,
            max_uses: new.max_uses,
            used_count: 0,
            plans: new.plans.into_iter().map(PlanId::new).collect(),
            created_at: now,
        };
        match self.coupons.insert(&coupon).await {
            Ok(()) => Ok(coupon),
            Err(StoreError::Duplicate(_)) => Err(CouponServiceError::Exists(code)),
            Err(other) => Err(other.into()),
        }
    }

    /// Up to `limit` coupons, by code.
    pub async fn list(&self, limit: u32) -> Result<Vec<Coupon>, CouponServiceError> {
        Ok(self.coupons.list(limit).await?)
    }

    /// The coupon `code` (case-insensitive) and whether it applies now, to `plan` when one is named.
    pub async fn check(&self, code: &str, plan: Option<&str>) -> Result<CouponCheck, CouponServiceError> {
        let normalized = Coupon::normalize_code(code).map_err(|e| CouponServiceError::Invalid(e.into()))?;
        let coupon = self.coupons.get(&normalized).await?.ok_or(CouponServiceError::NotFound(normalized))?;
        let now = self.ctx.clock.now();
        let refused = match plan {
            Some(plan) => {
                let Some(plan) = self.ctx.catalog.get(&PlanId::new(plan)) else {
                    return Err(CouponServiceError::Invalid(
                        ValidationError::new("plan", "is not a plan of the catalog").into(),
                    ));
                };
                coupon.applies_to(plan, now).err()
            }
            None => {
                let any_plan = coupon.plans.first().cloned().unwrap_or_else(|| PlanId::new(""));
                coupon.check_applicable(&any_plan, now).err()
            }
        };
        Ok(CouponCheck { coupon, refused })
    }
}
