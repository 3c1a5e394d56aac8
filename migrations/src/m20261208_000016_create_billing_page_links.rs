//! The billing page's links already opened: a link is single-use, so its nonce is inserted once (the primary key
//! decides between two tabs, or two replicas, opening it at the same moment). Rows outlive their link only until
//! a job prunes them: an expired link is refused by its signature's expiry before this table is asked.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BillingPageLinks::Table)
                    .if_not_exists()
                    .col(string_len(BillingPageLinks::Nonce, 64).primary_key())
                    .col(string_len(BillingPageLinks::WorkspaceId, 128))
                    .col(timestamp_with_time_zone(BillingPageLinks::RedeemedAt))
                    .col(timestamp_with_time_zone(BillingPageLinks::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_billing_page_links_expires_at")
                    .table(BillingPageLinks::Table)
                    .col(BillingPageLinks::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(BillingPageLinks::Table).if_exists().to_owned()).await
    }
}

#[derive(DeriveIden)]
enum BillingPageLinks {
    Table,
    Nonce,
    WorkspaceId,
    RedeemedAt,
    ExpiresAt,
}
