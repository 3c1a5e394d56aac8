//! Identifier newtypes. Each is parsed once at the edge so the core never sees an invalid id.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// The product's own id for a workspace: 1–128 chars of `[A-Za-z0-9_.:-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WorkspaceId(String);

impl WorkspaceId {
    /// Validates the shape the SPEC allows; the error names the `id` field.
    pub fn parse(raw: impl Into<String>) -> Result<Self, ValidationError> {
        let raw = raw.into();
        let valid_chars = raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
        if raw.is_empty() || raw.len() > 128 || !valid_chars {
            return Err(ValidationError::new("id", "must be 1-128 characters of A-Z, a-z, 0-9, '_', '.', ':' or '-'"));
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for WorkspaceId {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<WorkspaceId> for String {
    fn from(id: WorkspaceId) -> Self {
        id.0
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Declares a string id newtype whose values come from configuration or a processor, not from end users.
macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(raw: impl Into<String>) -> Self {
                Self(raw.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(raw: &str) -> Self {
                Self(raw.to_owned())
            }
        }
    };
}

opaque_id!(
    /// A plan id from the catalog (`free`, `pro`, …); the set is configuration, not code.
    PlanId
);
opaque_id!(
    /// Which processor an id or event belongs to (`sandbox`, `stripe`, …).
    ProcessorId
);
opaque_id!(
    /// The processor's id of a customer (`cus_…`).
    CustomerId
);
opaque_id!(
    /// The processor's id of a subscription (`sub_…`).
    SubscriptionId
);
opaque_id!(
    /// The processor's id of a webhook event (`evt_…`); unique per processor.
    EventId
);
opaque_id!(
    /// The processor's id of a checkout session (`cs_…`).
    CheckoutSessionId
);
opaque_id!(
    /// The processor's id of an invoice (`in_…`).
    InvoiceId
);
opaque_id!(
    /// The processor's id of a price (`price_…`), mapped to a plan through the catalog.
    PriceId
);
opaque_id!(
    /// The processor's id of a payment (`pi_…`): what a refund names.
    PaymentId
);
opaque_id!(
    /// Tollgate's id of a refund it asked for (`rf_…`), which keys the processor call.
    RefundId
);
