//! `MeterCursors`: one row per processor in `meter_cursors`, leased by compare-and-set, and the recorded usage
//! after a cursor below the *horizon*: the highest `usage_events.id` under which every insert has committed.
//!
//! Ids come from a sequence, and on PostgreSQL two batches may commit out of their ids' order, so reading past a
//! gap could skip the event a slower batch is still writing. Every usage insert holds a shared advisory lock to
//! its commit (`usage.rs`, `hold_report_horizon`); taking it exclusively for an instant waits those out, and the
//! largest id then is the horizon. On SQLite writers run one at a time, so whatever is committed has no gap.

use std::str::FromStr;

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::ids::{ProcessorId, WorkspaceId};
use billing_domain::ports::{Lease, MeterCursors, RecordedUsage};
use billing_domain::usage::UsageEvent;
use rust_decimal::Decimal;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    Statement,
};

use super::{Executor, Repo, insert_or_skip};
use crate::entities::meter_cursor::{self, Column, Entity};
use crate::entities::usage_event;
use crate::errors::{corrupt, map_db_err};

#[async_trait]
impl<C: Executor> MeterCursors for Repo<C> {
    #[tracing::instrument(skip_all, fields(processor = %processor, owner))]
    async fn claim(&self, processor: &ProcessorId, owner: &str, lease: Lease) -> Result<Option<i64>, StoreError> {
        let first = meter_cursor::ActiveModel {
            processor: Set(processor.as_str().to_owned()),
            last_seq: Set(0),
            lease_owner: Set(None),
            leased_until: Set(None),
            updated_at: Set(lease.now),
        };
        insert_or_skip(&self.conn, Entity::insert(first).on_conflict_do_nothing()).await?;
        let free = Condition::any()
            .add(Column::LeaseOwner.is_null())
            .add(Column::LeaseOwner.eq(owner))
            .add(Column::LeasedUntil.lte(lease.now));
        let taken = Entity::update_many()
            .col_expr(Column::LeaseOwner, Expr::value(owner))
            .col_expr(Column::LeasedUntil, Expr::value(lease.until))
            .col_expr(Column::UpdatedAt, Expr::value(lease.now))
            .filter(Column::Processor.eq(processor.as_str()))
            .filter(free)
            .exec(&self.conn)
            .await
            .map_err(map_db_err)?;
        if taken.rows_affected != 1 {
            return Ok(None);
        }
        let row = Entity::find_by_id(processor.as_str()).one(&self.conn).await.map_err(map_db_err)?;
        Ok(row.map(|r| r.last_seq))
    }

    #[tracing::instrument(skip_all, fields(processor = %processor, seq))]
    async fn advance(&self, processor: &ProcessorId, owner: &str, seq: i64, lease: Lease) -> Result<bool, StoreError> {
        let moved = Entity::update_many()
            .col_expr(Column::LastSeq, Expr::value(seq))
            .col_expr(Column::LeasedUntil, Expr::value(lease.until))
            .col_expr(Column::UpdatedAt, Expr::value(lease.now))
            .filter(Column::Processor.eq(processor.as_str()))
            .filter(Column::LeaseOwner.eq(owner))
            // Never backwards, whatever a confused caller asks.
            .filter(Column::LastSeq.lte(seq))
            .exec(&self.conn)
            .await
            .map_err(map_db_err)?;
        Ok(moved.rows_affected == 1)
    }

    async fn release(&self, processor: &ProcessorId, owner: &str) -> Result<(), StoreError> {
        Entity::update_many()
            .col_expr(Column::LeaseOwner, Expr::value(Option::<String>::None))
            .col_expr(Column::LeasedUntil, Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None))
            .filter(Column::Processor.eq(processor.as_str()))
            .filter(Column::LeaseOwner.eq(owner))
            .exec(&self.conn)
            .await
            .map_err(map_db_err)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(after, limit))]
    async fn recorded_after(&self, after: i64, limit: u32) -> Result<Vec<RecordedUsage>, StoreError> {
        use usage_event::Column as Event;
        let horizon = self.usage_horizon().await?;
        if horizon <= after {
            return Ok(Vec::new());
        }
        let rows = usage_event::Entity::find()
            .filter(Event::Id.gt(after))
            .filter(Event::Id.lte(horizon))
            .order_by_asc(Event::Id)
            .limit(u64::from(limit))
            .all(&self.conn)
            .await
            .map_err(map_db_err)?;
        rows.into_iter().map(recorded).collect()
    }
}

impl<C: Executor> Repo<C> {
    /// The highest event id below which no insert is still in flight (see the module's comment).
    async fn usage_horizon(&self) -> Result<i64, StoreError> {
        let backend = self.conn.get_database_backend();
        let max = "SELECT COALESCE(MAX(id), 0) AS horizon FROM usage_events";
        let tx = self.conn.begin().await.map_err(map_db_err)?;
        if backend == DbBackend::Postgres {
            // Released at this transaction's end: inserts wait only while the maximum is read.
            let sql = "SELECT pg_advisory_xact_lock(hashtextextended('tollgate:usage-events', 0))";
            tx.execute_raw(Statement::from_string(backend, sql)).await.map_err(map_db_err)?;
        }
        let row = tx.query_one_raw(Statement::from_string(backend, max)).await.map_err(map_db_err)?;
        tx.commit().await.map_err(map_db_err)?;
        let horizon: i64 = match row {
            Some(row) => row.try_get("", "horizon").map_err(map_db_err)?,
            None => 0,
        };
        Ok(horizon)
    }
}

fn recorded(row: usage_event::Model) -> Result<RecordedUsage, StoreError> {
    let workspace_id = WorkspaceId::parse(row.workspace_id).map_err(|e| corrupt("usage_events.workspace_id", e))?;
    let quantity = Decimal::from_str(&row.quantity).map_err(|e| corrupt("usage_events.quantity", e))?;
    Ok(RecordedUsage {
        seq: row.id,
        event: UsageEvent { id: row.event_id, workspace_id, metric: row.metric, quantity, at: row.occurred_at },
    })
}
