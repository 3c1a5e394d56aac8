//! Outbox leases in their own column, on the wall clock: `available_at` is billing time (a retry is due then, and
//! a test clock moves it), while a lease is about whether the worker holding it is still alive — a test clock's
//! jump must never end a lease early and let a second worker send a message already being sent.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(timestamp_with_time_zone_null(Outbox::LeasedUntil))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Outbox::Table).drop_column(Outbox::LeasedUntil).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    LeasedUntil,
}
