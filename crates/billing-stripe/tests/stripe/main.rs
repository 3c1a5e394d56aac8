//! Integration tests of the Stripe adapter, one binary: against localstripe (started by `scripts/test`, URL in
//! `TOLLGATE_LOCALSTRIPE_URL`), against wiremock for what localstripe lacks, over Stripe's own fixture objects, and
//! with signatures made by Stripe's official Python library (`TOLLGATE_PYTHON`).

mod contract;
mod fixtures;
mod localstripe;
mod python_signatures;
mod support;
mod wiremock_calls;
