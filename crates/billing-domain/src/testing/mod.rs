//! Test doubles and builders shared by every crate's tests (feature `testing`, which also exports the mockall
//! mocks of the ports): a clock that moves when told, counting ids, value builders, an in-memory store with
//! transactions, and the processor contract suite every adapter runs. Never compiled into the binary.

mod builders;
mod contract;
mod memory;
mod system;

pub use builders::*;
pub use contract::{ProcessorPeer, processor_contract};
pub use memory::{MemoryStore, MemoryTx, State};
pub use system::{CountingIds, FixedClock, T0_UNIX, t0};
