//! Payments and the refunds Tollgate asked for. A payment's `refunded_minor` moves only by a compare-and-set on
//! `version` (a refund's reservation checks `refunded_minor + amount <= amount_minor` in the same statement).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Payments::Table)
                    .if_not_exists()
                    // The processor's id (`pi_…`).
                    .col(string_len(Payments::Id, 255).primary_key())
                    .col(string_len(Payments::Processor, 32))
                    .col(string_len(Payments::WorkspaceId, 128))
                    .col(string_len(Payments::CustomerId, 255))
                    .col(big_integer(Payments::AmountMinor))
                    .col(string_len(Payments::Currency, 3))
                    .col(string_len(Payments::Status, 16))
                    .col(big_integer(Payments::RefundedMinor).default(0))
                    .col(big_integer(Payments::ProcessorRefundedMinor).default(0))
                    .col(string_len_null(Payments::PlanId, 64))
                    .col(string_len_null(Payments::Description, 500))
                    .col(big_integer(Payments::Version).default(0))
                    .col(timestamp_with_time_zone(Payments::CreatedAt))
                    .col(timestamp_with_time_zone(Payments::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_payments_workspace_created")
                    .table(Payments::Table)
                    .col(Payments::WorkspaceId)
                    .col(Payments::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Refunds::Table)
                    .if_not_exists()
                    // Tollgate's id (`rf_…`), which keys the processor call.
                    .col(string_len(Refunds::Id, 64).primary_key())
                    .col(string_len(Refunds::PaymentId, 255))
                    .col(big_integer(Refunds::AmountMinor))
                    .col(string_len(Refunds::Currency, 3))
                    .col(string_len(Refunds::Status, 16))
                    .col(string_len_null(Refunds::Reason, 32))
                    .col(string_len_null(Refunds::ProcessorRefundId, 255))
                    // The caller's Idempotency-Key (scoped to the caller): a retry finds its refund here.
                    .col(text_null(Refunds::RequestKey))
                    .col(timestamp_with_time_zone(Refunds::CreatedAt))
                    .col(timestamp_with_time_zone(Refunds::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("ix_refunds_payment").table(Refunds::Table).col(Refunds::PaymentId).to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_refunds_request_key")
                    .table(Refunds::Table)
                    .col(Refunds::PaymentId)
                    .col(Refunds::RequestKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Refunds::Table).if_exists().to_owned()).await?;
        manager.drop_table(Table::drop().table(Payments::Table).if_exists().to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Payments {
    Table,
    Id,
    Processor,
    WorkspaceId,
    CustomerId,
    AmountMinor,
    Currency,
    Status,
    RefundedMinor,
    ProcessorRefundedMinor,
    PlanId,
    Description,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Refunds {
    Table,
    Id,
    PaymentId,
    AmountMinor,
    Currency,
    Status,
    Reason,
    ProcessorRefundId,
    RequestKey,
    CreatedAt,
    UpdatedAt,
}
