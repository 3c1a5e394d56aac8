//! SeaORM adapters of Tollgate's storage ports, on SQLite and PostgreSQL.
//!
//! [`connect`] opens a [`Store`]; [`Store::migrate`] applies the schema; the store implements every storage port
//! and [`UnitOfWork`](billing_domain::ports::UnitOfWork), whose transactions ([`StoreTx`]) implement the same
//! ports. Concurrency is settled by unique constraints and compare-and-set updates, never read-modify-write.

mod cache;
mod changes;
mod connect;
mod entities;
mod errors;
mod mapping;
mod repo;
mod store;
mod tx;

pub use cache::{CacheSettings, CacheStats};
pub use connect::{connect, connect_with};
pub use repo::{Executor, Repo};
pub use store::Store;
pub use tx::StoreTx;
