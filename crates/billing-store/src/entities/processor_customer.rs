//! `processor_customers`: which workspace a processor customer belongs to (one each way per processor).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "processor_customers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub processor: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub customer_id: String,
    pub workspace_id: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
