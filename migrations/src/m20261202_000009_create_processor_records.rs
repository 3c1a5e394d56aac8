//! Records of a processor that keeps none of its own (the sandbox): JSON documents by processor, kind and id.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ProcessorRecords::Table)
                    .if_not_exists()
                    .col(string_len(ProcessorRecords::Processor, 32))
                    .col(string_len(ProcessorRecords::Kind, 32))
                    // Text: some ids are the processor idempotency keys a caller chose, of any length.
                    .col(text(ProcessorRecords::Id))
                    .col(text(ProcessorRecords::Body))
                    .col(timestamp_with_time_zone(ProcessorRecords::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(ProcessorRecords::Processor)
                            .col(ProcessorRecords::Kind)
                            .col(ProcessorRecords::Id),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ProcessorRecords::Table).if_exists().to_owned()).await
    }
}

#[derive(DeriveIden)]
enum ProcessorRecords {
    Table,
    Processor,
    Kind,
    Id,
    Body,
    UpdatedAt,
}
