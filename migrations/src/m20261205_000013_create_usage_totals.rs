//! Usage kept per range, so a period's usage is read in O(1): `usage_periods` lists the ranges a workspace's events
//! opened, `usage_totals` holds each range's exact totals per metric (decimal text, as `usage_events.quantity`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UsagePeriods::Table)
                    .if_not_exists()
                    .col(string_len(UsagePeriods::WorkspaceId, 128))
                    .col(timestamp_with_time_zone(UsagePeriods::PeriodStart))
                    .col(timestamp_with_time_zone(UsagePeriods::PeriodEnd))
                    .col(timestamp_with_time_zone(UsagePeriods::OpenedAt))
                    .primary_key(
                        Index::create()
                            .col(UsagePeriods::WorkspaceId)
                            .col(UsagePeriods::PeriodStart)
                            .col(UsagePeriods::PeriodEnd),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UsageTotals::Table)
                    .if_not_exists()
                    .col(string_len(UsageTotals::WorkspaceId, 128))
                    .col(timestamp_with_time_zone(UsageTotals::PeriodStart))
                    .col(timestamp_with_time_zone(UsageTotals::PeriodEnd))
                    .col(string_len(UsageTotals::Metric, 128))
                    .col(string_len(UsageTotals::TotalSum, 64))
                    .col(string_len(UsageTotals::TotalMax, 64))
                    .col(big_integer(UsageTotals::EventCount))
                    .primary_key(
                        Index::create()
                            .col(UsageTotals::WorkspaceId)
                            .col(UsageTotals::PeriodStart)
                            .col(UsageTotals::PeriodEnd)
                            .col(UsageTotals::Metric),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(UsageTotals::Table).if_exists().to_owned()).await?;
        manager.drop_table(Table::drop().table(UsagePeriods::Table).if_exists().to_owned()).await
    }
}

#[derive(DeriveIden)]
enum UsagePeriods {
    Table,
    WorkspaceId,
    PeriodStart,
    PeriodEnd,
    OpenedAt,
}

#[derive(DeriveIden)]
enum UsageTotals {
    Table,
    WorkspaceId,
    PeriodStart,
    PeriodEnd,
    Metric,
    TotalSum,
    TotalMax,
    EventCount,
}
