//! Metered usage events. Quantities are decimal text, summed exactly in Rust: SQLite has no exact decimal type.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UsageEvents::Table)
                    .if_not_exists()
                    .col(big_pk_auto(UsageEvents::Id))
                    .col(string_len(UsageEvents::WorkspaceId, 128))
                    .col(string_len(UsageEvents::EventId, 255))
                    .col(string_len(UsageEvents::Metric, 128))
                    .col(string_len(UsageEvents::Quantity, 64))
                    .col(timestamp_with_time_zone(UsageEvents::OccurredAt))
                    .col(timestamp_with_time_zone(UsageEvents::RecordedAt))
                    .to_owned(),
            )
            .await?;
        // The caller's event id is its idempotency key within a workspace.
        manager
            .create_index(
                Index::create()
                    .name("ux_usage_events_event")
                    .table(UsageEvents::Table)
                    .col(UsageEvents::WorkspaceId)
                    .col(UsageEvents::EventId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_usage_events_workspace_time")
                    .table(UsageEvents::Table)
                    .col(UsageEvents::WorkspaceId)
                    .col(UsageEvents::OccurredAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(UsageEvents::Table).if_exists().to_owned()).await
    }
}

#[derive(DeriveIden)]
enum UsageEvents {
    Table,
    Id,
    WorkspaceId,
    EventId,
    Metric,
    Quantity,
    OccurredAt,
    RecordedAt,
}
