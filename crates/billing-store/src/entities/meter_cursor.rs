//! `meter_cursors`: per processor, the last usage event reported to its meters and the reporter's lease.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "meter_cursors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub processor: String,
    pub last_seq: i64,
    pub lease_owner: Option<String>,
    pub leased_until: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
