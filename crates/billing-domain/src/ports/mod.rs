//! Ports: the traits adapters implement. Each is `Send + Sync`, held as `Arc<dyn _>`, and mockable with mockall
//! (feature `mocks` exports the mocks to other crates).

mod billing_page;
mod hosted;
mod idempotency;
mod payments;
mod processor;
mod storage;
mod system;

pub use billing_page::*;
pub use hosted::*;
pub use idempotency::*;
pub use payments::*;
pub use processor::*;
pub use storage::*;
pub use system::*;
