//! Credit rules: grants come from paid credit-pack checkouts, consumption never drives the balance negative.

use crate::error::ValidationError;
use crate::ids::CheckoutSessionId;

/// The ledger key of the grant for a checkout session: one session grants once, whichever events announce it.
pub fn grant_key(session: &CheckoutSessionId) -> String {
    format!("grant:checkout:{session}")
}

/// The ledger key of a consumption, from the caller's idempotency key.
pub fn consume_key(idempotency_key: &str) -> String {
    format!("consume:{idempotency_key}")
}

/// Validates a consumption request: a positive amount and a usable idempotency key.
pub fn validate_consumption(amount: i64, idempotency_key: &str) -> Result<(), ValidationError> {
    if amount <= 0 {
        return Err(ValidationError::new("amount", "must be a positive integer"));
    }
    if idempotency_key.trim().is_empty() || idempotency_key.len() > 128 {
        return Err(ValidationError::new("idempotency_key", "must be 1-128 characters"));
    }
    Ok(())
}

/// The balance after consuming `amount` from `balance`, or `None` when it would go negative.
pub fn balance_after(balance: i64, amount: i64) -> Option<i64> {
    balance.checked_sub(amount).filter(|b| *b >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_goes_negative() {
        assert_eq!(balance_after(10, 3), Some(7));
        assert_eq!(balance_after(3, 3), Some(0));
        assert_eq!(balance_after(2, 3), None);
        assert_eq!(balance_after(i64::MIN, 1), None);
    }

    #[test]
    fn validation_names_the_field() {
        assert_eq!(validate_consumption(0, "k").unwrap_err().field, "amount");
        assert_eq!(validate_consumption(1, " ").unwrap_err().field, "idempotency_key");
        assert!(validate_consumption(1, "order-1").is_ok());
    }
}
