//! API idempotency keys (SPEC §9): the first response to a state-changing request, replayed to its retries.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .if_not_exists()
                    // Keys are scoped to the caller that sent them (an API key's name), as Stripe scopes them to
                    // an account: two callers never see each other's responses.
                    .col(string_len(IdempotencyKeys::Owner, 128))
                    .col(string_len(IdempotencyKeys::IdempotencyKey, 255))
                    .col(string_len(IdempotencyKeys::Fingerprint, 64))
                    .col(string_len(IdempotencyKeys::Status, 16))
                    // The claiming request's own id: only it may complete or release the key, so a request that
                    // outlived its claim (taken over as abandoned) cannot overwrite its successor's.
                    .col(string_len(IdempotencyKeys::ClaimToken, 64))
                    .col(integer_null(IdempotencyKeys::ResponseStatus))
                    .col(string_len_null(IdempotencyKeys::ResponseContentType, 255))
                    .col(blob_null(IdempotencyKeys::ResponseBody))
                    .col(timestamp_with_time_zone(IdempotencyKeys::ClaimedAt))
                    .col(timestamp_with_time_zone(IdempotencyKeys::ExpiresAt))
                    .primary_key(Index::create().col(IdempotencyKeys::Owner).col(IdempotencyKeys::IdempotencyKey))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_keys_expiry")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(IdempotencyKeys::Table).if_exists().to_owned()).await
    }
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    #[sea_orm(iden = "api_idempotency_keys")]
    Table,
    Owner,
    IdempotencyKey,
    Fingerprint,
    Status,
    ClaimToken,
    ResponseStatus,
    ResponseContentType,
    ResponseBody,
    ClaimedAt,
    ExpiresAt,
}
