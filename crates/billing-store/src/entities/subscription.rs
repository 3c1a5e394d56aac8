//! `subscriptions`: one processor subscription, versioned for compare-and-set updates.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub processor: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub workspace_id: String,
    pub customer_id: String,
    pub status: String,
    pub status_at: DateTimeUtc,
    pub canceled_at: Option<DateTimeUtc>,
    pub plan_id: String,
    pub price_id: String,
    pub quantity: i64,
    pub cancel_at_period_end: bool,
    pub current_period_start: Option<DateTimeUtc>,
    pub current_period_end: Option<DateTimeUtc>,
    pub trial_end: Option<DateTimeUtc>,
    pub terms_source: String,
    pub terms_at: DateTimeUtc,
    pub version: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::workspace::Entity",
        from = "Column::WorkspaceId",
        to = "super::workspace::Column::Id"
    )]
    Workspace,
}

impl Related<super::workspace::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Workspace.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
