//! Integration tests of every storage port, each run on a fresh SQLite file and a fresh PostgreSQL database.
//!
//! PostgreSQL must be running (`TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`); a test
//! fails loudly, never skips, when it is not.

/// Generates `<name>::sqlite` and `<name>::postgres`, each running `body(store)` on a fresh, migrated database.
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                crate::helpers::run(crate::helpers::Backend::Sqlite, $body).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                crate::helpers::run(crate::helpers::Backend::Postgres, $body).await;
            }
        }
    };
}

mod audit;
mod batches;
mod billing_page;
mod cache;
mod clock;
mod connect;
mod coupons;
mod dunning;
mod helpers;
mod idempotency;
mod inbox;
mod locks;
mod meter_cursors;
mod outbox;
mod payments;
mod processor_records;
mod subscriptions;
mod transactions;
mod usage;
mod workspaces;
