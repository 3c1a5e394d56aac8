//! `coupons`: code upper-case; `plans` a JSON array of plan ids.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "coupons")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub code: String,
    /// `percent` or `amount`.
    pub discount_type: String,
    pub percent_off: Option<i32>,
    pub amount_off_minor: Option<i64>,
    pub amount_off_currency: Option<String>,
    pub valid_until: Option<DateTimeUtc>,
    pub max_uses: Option<i32>,
    pub used_count: i32,
    pub plans: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
