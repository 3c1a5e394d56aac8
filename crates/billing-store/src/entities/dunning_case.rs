//! `dunning_cases`: one per failed invoice that opened a case (and closed markers for invoices paid first).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dunning_cases")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub workspace_id: String,
    pub processor: String,
    pub invoice_id: String,
    pub subscription_id: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    /// `open` or `closed`.
    pub status: String,
    pub next_step: i32,
    pub next_step_at: Option<DateTimeUtc>,
    pub opened_at: DateTimeUtc,
    pub closed_at: Option<DateTimeUtc>,
    pub closed_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
