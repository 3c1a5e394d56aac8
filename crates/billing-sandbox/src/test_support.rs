//! The sandbox's own test fixtures: its configuration and a ready processor on the shared clock and ids; plans,
//! workspaces and checkout requests come from `billing_domain::testing`.

use std::sync::Arc;

pub use billing_domain::testing::{
    CountingIds, FixedClock, T0_UNIX as NOW_UNIX, checkout_request, credits10, pro_monthly, pro_yearly, t0 as now,
    workspace,
};
use secrecy::SecretString;

use crate::{SandboxConfig, SandboxProcessor};

pub const SECRET: &str = "whsec_sandbox_test";

pub fn config() -> SandboxConfig {
    SandboxConfig {
        public_base_url: "http://localhost:8080/".to_owned(),
        webhook_secrets: vec![SecretString::from(SECRET)],
        tolerance_secs: 300,
    }
}

pub fn processor() -> SandboxProcessor {
    SandboxProcessor::new(config(), Arc::new(CountingIds::default()), Arc::new(FixedClock::at(now())))
}
