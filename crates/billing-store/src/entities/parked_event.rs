//! `parked_events`: translated events waiting for a link; `event` is the JSON of the domain `ProcessorEvent`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "parked_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub processor: String,
    pub event_id: String,
    pub link: String,
    pub event: String,
    pub parked_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
