//! The `tollgate` application as a library: configuration, telemetry and wiring, so the binary and the API tests
//! build the very same server.

pub mod billing_page;
pub mod catalog_file;
pub mod clock;
pub mod jobs;
pub mod settings;
pub mod startup;
pub mod system;
pub mod telemetry;
pub mod user_tokens;
