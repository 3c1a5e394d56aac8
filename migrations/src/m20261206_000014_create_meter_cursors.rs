//! How far usage has been reported to each processor's meters, and which replica holds the reporting lease.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MeterCursors::Table)
                    .if_not_exists()
                    .col(string(MeterCursors::Processor).primary_key())
                    // The `usage_events.id` of the last event reported (or passed over); 0 before the first.
                    .col(big_integer(MeterCursors::LastSeq))
                    .col(string_null(MeterCursors::LeaseOwner))
                    .col(timestamp_with_time_zone_null(MeterCursors::LeasedUntil))
                    .col(timestamp_with_time_zone(MeterCursors::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(MeterCursors::Table).if_exists().to_owned()).await
    }
}

#[derive(DeriveIden)]
enum MeterCursors {
    Table,
    Processor,
    LastSeq,
    LeaseOwner,
    LeasedUntil,
    UpdatedAt,
}
