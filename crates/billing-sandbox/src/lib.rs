//! The sandbox payment processor: offline and deterministic. Checkout URLs point at Tollgate's own
//! `/sandbox/checkout/{id}` page (the domain's `HostedCheckoutOps` port), whose Pay and Decline buttons call
//! [`SandboxProcessor::pay`] and [`SandboxProcessor::decline`]; the edge hands the signed, Stripe-shaped deliveries
//! they return to the same verify-and-ingest step as `POST /webhooks/sandbox`, so they come back through
//! [`WebhookOps::verify_and_parse`](billing_domain::ports::WebhookOps) like any processor's. Payment intents are
//! paid on the same page; every charge is refundable. Its records are kept in Tollgate's database through the
//! domain's `ProcessorRecords` port (`records.rs`) when it is given one.

mod config;
mod meters;
mod payloads;
mod payments;
mod portal;
mod ports;
mod processor;
mod records;
mod renewals;
mod state;

#[cfg(test)]
mod test_support;

pub use config::{SandboxConfig, SandboxConfigError};
pub use payloads::API_VERSION;
pub use processor::{PROCESSOR_ID, SIGNATURE_HEADER, SandboxProcessor};
pub use stripe_wire::{parse_event, signature};
