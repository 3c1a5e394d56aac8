//! The tollgate app spawned on a random port with a fresh database per test, exercised over real HTTP.

mod helpers;
mod transcript;

mod account;
mod auth_and_errors;
mod billing_page;
mod coupons;
mod credits;
mod hardening;
mod idempotency;
mod lifecycle;
mod metrics;
mod openapi;
mod payments;
mod stripe_webhooks;
mod subscriptions;
mod tenant_access;
mod usage;
mod webhooks;
mod workspaces;
