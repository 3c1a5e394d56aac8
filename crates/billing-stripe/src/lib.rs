//! The Stripe adapter of the `PaymentProcessor` port.
//!
//! Requests are built with async-stripe 1.0's typed request structs (only the resources Tollgate calls) and sent by
//! [`api::StripeApi`], which pins the API version, sends idempotency keys derived from Tollgate's own ids and retries
//! per SPEC §4. Responses and webhooks are read through `stripe-wire`'s tolerant views, shared with the sandbox.

pub mod api;
mod config;
mod coupons;
mod ports;
mod processor;
mod responses;

pub use config::{DEFAULT_API_BASE, StripeConfig, StripeConfigError};
pub use processor::{PROCESSOR_ID, StripeProcessor};
pub use stripe_wire::{SIGNATURE_HEADER, signature};
