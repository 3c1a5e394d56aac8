//! Integration tests of billing-domain: the webhook apply path over an in-memory store, checked by property tests.

mod convergence;
mod dunning;
mod group_commit;
