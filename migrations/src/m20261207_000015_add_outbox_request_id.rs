//! The request that caused an outbox message (its `X-Request-Id`), so a delivered webhook or email can be traced
//! back to the API call or webhook delivery behind it. Null for messages of background jobs.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Outbox::Table).add_column(string_null(Outbox::RequestId)).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Outbox::Table).drop_column(Outbox::RequestId).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    RequestId,
}
