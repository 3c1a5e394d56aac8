//! Coupons and their redemptions: `used_count` moves only by a compare-and-set against `max_uses`, and a workspace
//! redeems a coupon once (unique code + workspace).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Coupons::Table)
                    .if_not_exists()
                    // Stored upper-case: codes compare case-insensitively.
                    .col(string_len(Coupons::Code, 64).primary_key())
                    .col(string_len(Coupons::DiscountType, 16))
                    .col(integer_null(Coupons::PercentOff))
                    .col(big_integer_null(Coupons::AmountOffMinor))
                    .col(string_len_null(Coupons::AmountOffCurrency, 3))
                    .col(timestamp_with_time_zone_null(Coupons::ValidUntil))
                    .col(integer_null(Coupons::MaxUses))
                    .col(integer(Coupons::UsedCount).default(0))
                    // A JSON array of plan ids; empty for every plan.
                    .col(text(Coupons::Plans))
                    .col(timestamp_with_time_zone(Coupons::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CouponRedemptions::Table)
                    .if_not_exists()
                    .col(big_pk_auto(CouponRedemptions::Id))
                    .col(string_len(CouponRedemptions::Code, 64))
                    .col(string_len(CouponRedemptions::WorkspaceId, 128))
                    .col(timestamp_with_time_zone(CouponRedemptions::RedeemedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_coupon_redemptions_workspace")
                    .table(CouponRedemptions::Table)
                    .col(CouponRedemptions::Code)
                    .col(CouponRedemptions::WorkspaceId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(CouponRedemptions::Table).if_exists().to_owned()).await?;
        manager.drop_table(Table::drop().table(Coupons::Table).if_exists().to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Coupons {
    Table,
    Code,
    DiscountType,
    PercentOff,
    AmountOffMinor,
    AmountOffCurrency,
    ValidUntil,
    MaxUses,
    UsedCount,
    Plans,
    CreatedAt,
}

#[derive(DeriveIden)]
enum CouponRedemptions {
    Table,
    Id,
    Code,
    WorkspaceId,
    RedeemedAt,
}
