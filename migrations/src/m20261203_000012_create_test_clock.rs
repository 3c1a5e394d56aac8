//! The test clock's offset from real time, shared by every replica on the database (`clock.mode = "test"`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TestClock::Table)
                    .if_not_exists()
                    // Always 1: one clock per database.
                    .col(integer(TestClock::Id).primary_key())
                    .col(big_integer(TestClock::OffsetMs))
                    .col(timestamp_with_time_zone(TestClock::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(TestClock::Table).if_exists().to_owned()).await
    }
}

#[derive(DeriveIden)]
enum TestClock {
    Table,
    Id,
    OffsetMs,
    UpdatedAt,
}
