//! The append-only audit log and the outbox of messages delivered after commit.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .if_not_exists()
                    .col(big_pk_auto(AuditLog::Id))
                    .col(string_len(AuditLog::WorkspaceId, 128))
                    .col(string(AuditLog::Action))
                    .col(text(AuditLog::Actor))
                    .col(text_null(AuditLog::Before))
                    .col(text_null(AuditLog::After))
                    .col(string_null(AuditLog::RequestId))
                    .col(timestamp_with_time_zone(AuditLog::CreatedAt))
                    .to_owned(),
            )
            .await?;
        // Serves "newest first, before id N" pages of one workspace.
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_log_workspace_id")
                    .table(AuditLog::Table)
                    .col(AuditLog::WorkspaceId)
                    .col(AuditLog::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Outbox::Id))
                    .col(string_len(Outbox::DedupKey, 255))
                    .col(string_len(Outbox::WorkspaceId, 128))
                    .col(text(Outbox::Target))
                    .col(text(Outbox::Payload))
                    .col(string_len(Outbox::Status, 16))
                    .col(integer(Outbox::Attempts).default(0))
                    .col(text_null(Outbox::LastError))
                    .col(timestamp_with_time_zone(Outbox::AvailableAt))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(timestamp_with_time_zone_null(Outbox::DeliveredAt))
                    .to_owned(),
            )
            .await?;
        // One message per cause, however often the cause is replayed.
        manager
            .create_index(
                Index::create()
                    .name("ux_outbox_dedup_key")
                    .table(Outbox::Table)
                    .col(Outbox::DedupKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Serves the worker's "pending and due" scan.
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_status_available")
                    .table(Outbox::Table)
                    .col(Outbox::Status)
                    .col(Outbox::AvailableAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [Outbox::Table.into_iden(), AuditLog::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    WorkspaceId,
    Action,
    Actor,
    Before,
    After,
    RequestId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    DedupKey,
    WorkspaceId,
    Target,
    Payload,
    Status,
    Attempts,
    LastError,
    AvailableAt,
    CreatedAt,
    DeliveredAt,
}
