//! Tollgate's coupons at Stripe: a checkout with a redeemed coupon carries a Stripe coupon of the same discount in
//! its session's `discounts`. The Stripe coupon is created on first use with an id derived from our code, under an
//! idempotency key, and "already exists" counts as success — so any number of checkouts, retries and replicas
//! create it once.

use std::str::FromStr;

use billing_domain::coupon::{Coupon, Discount};
use billing_domain::error::ProcessorError;
use stripe_client_core::StripeRequest;
use stripe_product::coupon::CreateCoupon;
use stripe_shared::CouponDuration;

use crate::api::{CallError, idempotency_key};
use crate::processor::StripeProcessor;

impl StripeProcessor {
    /// The id of the Stripe coupon standing for `coupon`, created now if Stripe does not have it.
    pub(crate) async fn stripe_coupon(&self, coupon: &Coupon) -> Result<String, ProcessorError> {
        let id = stripe_coupon_id(coupon);
        let mut create = CreateCoupon::new().id(id.clone()).name(coupon.code.clone()).duration(CouponDuration::Once);
        let discount = match &coupon.discount {
            Discount::Percent { percent } => {
                create = create.percent_off(f64::from(*percent));
                format!("{percent}%")
            }
            Discount::Amount { amount } => {
                let Ok(currency) = stripe_types::Currency::from_str(&amount.currency.as_str().to_ascii_lowercase());
                create = create.amount_off(amount.minor).currency(currency);
                format!("{}{}", amount.minor, amount.currency)
            }
        };
        let key = idempotency_key(&["coupon", &id, &discount]);
        match self.send(&create.build(), Some(&key)).await {
            Ok(_) => Ok(id),
            // Made by an earlier checkout (or another replica): the same code, the same discount.
            Err(CallError::Status { kind, .. }) if kind.ends_with("/resource_already_exists") => Ok(id),
            Err(error) => Err(error.into_domain("POST /v1/coupons")),
        }
    }
}

/// `tollgate_<CODE>`: ours, apart from any coupon made in the Stripe dashboard.
pub fn stripe_coupon_id(coupon: &Coupon) -> String {
    format!("tollgate_{}", coupon.code)
}
