//! Dunning: one row per invoice whose payment failed (open until paid), the workspace's oldest open row carrying
//! the case's schedule, walked step by step by the dunning job. A paid invoice with no row leaves a closed one, so
//! its late failure opens nothing.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DunningCases::Table)
                    .if_not_exists()
                    .col(big_pk_auto(DunningCases::Id))
                    .col(string_len(DunningCases::WorkspaceId, 128))
                    .col(string_len(DunningCases::Processor, 32))
                    .col(string(DunningCases::InvoiceId))
                    .col(string_null(DunningCases::SubscriptionId))
                    .col(big_integer(DunningCases::AmountMinor))
                    .col(string_len(DunningCases::Currency, 3))
                    // `open` or `closed`.
                    .col(string_len(DunningCases::Status, 16))
                    // The index of the next step in the schedule; every step before it has run.
                    .col(integer(DunningCases::NextStep))
                    // When the next step is due; null once none is left or the case is closed.
                    .col(timestamp_with_time_zone_null(DunningCases::NextStepAt))
                    .col(timestamp_with_time_zone(DunningCases::OpenedAt))
                    .col(timestamp_with_time_zone_null(DunningCases::ClosedAt))
                    // `paid`, `canceled`, `subscription_ended`.
                    .col(string_len_null(DunningCases::ClosedReason, 32))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_dunning_cases_workspace_invoice")
                    .table(DunningCases::Table)
                    .col(DunningCases::WorkspaceId)
                    .col(DunningCases::InvoiceId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Serves the job's "open and due" scan.
        manager
            .create_index(
                Index::create()
                    .name("idx_dunning_cases_status_next")
                    .table(DunningCases::Table)
                    .col(DunningCases::Status)
                    .col(DunningCases::NextStepAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(DunningCases::Table).if_exists().to_owned()).await
    }
}

#[derive(DeriveIden)]
enum DunningCases {
    Table,
    Id,
    WorkspaceId,
    Processor,
    InvoiceId,
    SubscriptionId,
    AmountMinor,
    Currency,
    Status,
    NextStep,
    NextStepAt,
    OpenedAt,
    ClosedAt,
    ClosedReason,
}
