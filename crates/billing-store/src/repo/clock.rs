//! `ClockOffsets`: the test clock's offset in one row, moved by compare-and-set.

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::ports::ClockOffsets;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};

use super::{Executor, Repo, insert_or_skip};
use crate::entities::test_clock::{self, Column, Entity};
use crate::errors::map_db_err;

const ROW: i32 = 1;

#[async_trait]
impl<C: Executor> ClockOffsets for Repo<C> {
    async fn offset_ms(&self) -> Result<i64, StoreError> {
        let row = Entity::find_by_id(ROW).one(&self.conn).await.map_err(map_db_err)?;
        Ok(row.map_or(0, |r| r.offset_ms))
    }

    #[tracing::instrument(skip_all, fields(from, to))]
    async fn move_offset(&self, from: i64, to: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        // The row appears with offset 0 the first time; then every move is a compare-and-set on the offset.
        let first = test_clock::ActiveModel { id: Set(ROW), offset_ms: Set(0), updated_at: Set(now) };
        insert_or_skip(&self.conn, Entity::insert(first).on_conflict_do_nothing()).await?;
        let updated = Entity::update_many()
            .col_expr(Column::OffsetMs, Expr::value(to))
            .col_expr(Column::UpdatedAt, Expr::value(now))
            .filter(Column::Id.eq(ROW))
            .filter(Column::OffsetMs.eq(from))
            .exec(&self.conn)
            .await
            .map_err(map_db_err)?;
        Ok(updated.rows_affected == 1)
    }
}
