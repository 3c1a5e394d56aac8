//! Tollgate's schema as SeaORM migrations, written with the schema builder so the same files run on SQLite and
//! PostgreSQL. Migrations never import entities: an entity describes today's code, a migration yesterday's schema.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_create_workspaces;
mod m20261121_000002_create_subscriptions;
mod m20261121_000003_create_inbox;
mod m20261121_000004_create_audit_and_outbox;
mod m20261121_000005_create_usage_events;
mod m20261202_000006_create_idempotency_keys;
mod m20261202_000007_create_coupons;
mod m20261202_000008_create_payments;
mod m20261202_000009_create_processor_records;
mod m20261203_000010_add_outbox_leases;
mod m20261203_000011_create_dunning_cases;
mod m20261203_000012_create_test_clock;
mod m20261205_000013_create_usage_totals;
mod m20261206_000014_create_meter_cursors;
mod m20261207_000015_add_outbox_request_id;
mod m20261208_000016_create_billing_page_links;

/// Every migration in the order it applies; `tollgate migrate` and startup call [`MigratorTrait::up`].
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_workspaces::Migration),
            Box::new(m20261121_000002_create_subscriptions::Migration),
            Box::new(m20261121_000003_create_inbox::Migration),
            Box::new(m20261121_000004_create_audit_and_outbox::Migration),
            Box::new(m20261121_000005_create_usage_events::Migration),
            Box::new(m20261202_000006_create_idempotency_keys::Migration),
            Box::new(m20261202_000007_create_coupons::Migration),
            Box::new(m20261202_000008_create_payments::Migration),
            Box::new(m20261202_000009_create_processor_records::Migration),
            Box::new(m20261203_000010_add_outbox_leases::Migration),
            Box::new(m20261203_000011_create_dunning_cases::Migration),
            Box::new(m20261203_000012_create_test_clock::Migration),
            Box::new(m20261205_000013_create_usage_totals::Migration),
            Box::new(m20261206_000014_create_meter_cursors::Migration),
            Box::new(m20261207_000015_add_outbox_request_id::Migration),
            Box::new(m20261208_000016_create_billing_page_links::Migration),
        ]
    }
}
