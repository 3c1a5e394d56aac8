//! Stripe's wire format, kept apart from any HTTP client: the webhook signature scheme ([`signature`]), tolerant
//! serde views of the Stripe objects Tollgate reads ([`views`]), and their translation into domain events
//! ([`parse_event`], [`subscription_snapshot`]). The Stripe adapter verifies and parses real deliveries and API
//! responses with it; the sandbox signs and parses its Stripe-shaped deliveries with the same code, so both
//! processors go through one translation.

mod parse;
pub mod signature;

pub use parse::views;
pub use parse::{parse_event, subscription_snapshot};

/// The header Stripe signs webhook deliveries in.
pub const SIGNATURE_HEADER: &str = "stripe-signature";
