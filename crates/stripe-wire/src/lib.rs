//! Stripe's wire format, kept apart from any HTTP client: the webhook signature scheme ([`signature`]), tolerant
//! serde views of the Stripe objects Tollgate reads ([`views`]), and their translation into domain events
//! ([`parse_event`], [`subscription_snapshot`]). The Stripe adapter verifies and parses real deliveries and API
//! responses with it; the sandbox signs and parses its Stripe-shaped deliveries with the same code, so both
//! processors go through one translation.

mod parse;
pub mod signature;

pub use parse::views;
pub use parse::{parse_event, subscription_snapshot};

use billing_domain::events::ProcessorEvent;
use billing_domain::ids::ProcessorId;
use billing_domain::ports::{WebhookError, WebhookHeaders};
use chrono::{DateTime, Utc};
use secrecy::SecretString;

/// The header Stripe signs webhook deliveries in.
pub const SIGNATURE_HEADER: &str = "stripe-signature";

/// How one processor signs its Stripe-shaped deliveries.
pub struct Signing<'a> {
    /// The signature header, as named in errors (`Stripe-Signature`); matched case-insensitively.
    pub header: &'static str,
    /// Active secrets; any may match (rotation).
    pub secrets: &'a [SecretString],
    pub tolerance_secs: i64,
}

/// `WebhookOps::verify_and_parse` of a processor speaking this format: find the signature header, verify it
/// (before reading the body as JSON), then translate the event for `processor`.
pub fn verify_and_parse(
    processor: &ProcessorId,
    signing: &Signing<'_>,
    headers: &WebhookHeaders,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<ProcessorEvent, WebhookError> {
    let header = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(signing.header))
        .map(|(_, value)| value.as_str())
        .ok_or(WebhookError::MissingSignature(signing.header))?;
    signature::verify(header, body, signing.secrets, now, signing.tolerance_secs)?;
    parse_event(processor, body)
}

#[cfg(test)]
mod fuzz_tests;
