//! `outbox`: messages delivered after commit; `target` and `payload` are JSON text.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub dedup_key: String,
    pub workspace_id: String,
    pub target: String,
    pub payload: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// When it is due (billing time): enqueued, or the next retry.
    pub available_at: DateTimeUtc,
    /// While a worker delivers it (wall-clock time): no other worker takes it before.
    pub leased_until: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
    /// The request that caused it (`X-Request-Id`); none for a background job's.
    pub request_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
