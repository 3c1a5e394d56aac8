//! Processor subscriptions as Tollgate keeps them, with a row version for compare-and-set updates.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Subscriptions::Table)
                    .if_not_exists()
                    .col(string_len(Subscriptions::Processor, 32))
                    .col(string_len(Subscriptions::Id, 255))
                    .col(string_len(Subscriptions::WorkspaceId, 128))
                    .col(string_len(Subscriptions::CustomerId, 255))
                    .col(string_len(Subscriptions::Status, 32))
                    .col(timestamp_with_time_zone(Subscriptions::StatusAt))
                    .col(timestamp_with_time_zone_null(Subscriptions::CanceledAt))
                    .col(string(Subscriptions::PlanId))
                    .col(string(Subscriptions::PriceId))
                    .col(big_integer(Subscriptions::Quantity))
                    .col(boolean(Subscriptions::CancelAtPeriodEnd))
                    .col(timestamp_with_time_zone_null(Subscriptions::CurrentPeriodStart))
                    .col(timestamp_with_time_zone_null(Subscriptions::CurrentPeriodEnd))
                    .col(timestamp_with_time_zone_null(Subscriptions::TrialEnd))
                    .col(string_len(Subscriptions::TermsSource, 32))
                    .col(timestamp_with_time_zone(Subscriptions::TermsAt))
                    .col(big_integer(Subscriptions::Version))
                    .col(timestamp_with_time_zone(Subscriptions::CreatedAt))
                    .col(timestamp_with_time_zone(Subscriptions::UpdatedAt))
                    .primary_key(Index::create().col(Subscriptions::Processor).col(Subscriptions::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_subscriptions_workspace")
                    .table(Subscriptions::Table)
                    .col(Subscriptions::WorkspaceId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Subscriptions::Table).if_exists().to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Subscriptions {
    Table,
    Processor,
    Id,
    WorkspaceId,
    CustomerId,
    Status,
    StatusAt,
    CanceledAt,
    PlanId,
    PriceId,
    Quantity,
    CancelAtPeriodEnd,
    CurrentPeriodStart,
    CurrentPeriodEnd,
    TrialEnd,
    TermsSource,
    TermsAt,
    Version,
    CreatedAt,
    UpdatedAt,
}
