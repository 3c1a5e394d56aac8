//! `Outbox`: messages written with the change that caused them and delivered after commit by leasing workers.

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::ports::{Lease, Outbox};
use billing_domain::records::{OutboxBacklog, OutboxEntry, OutboxMessage, OutboxStatus, PendingMessage};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::{Executor, Repo, insert_or_skip};
use crate::entities::outbox;
use crate::errors::map_db_err;
use crate::mapping::{entry_from_row, outbox_row, outbox_status, pending_from_row};

#[async_trait]
impl<C: Executor> Outbox for Repo<C> {
    #[tracing::instrument(skip_all, fields(workspace_id = %message.workspace_id, dedup_key = %message.dedup_key))]
    async fn enqueue(&self, message: &OutboxMessage, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let insert =
            outbox::Entity::insert(outbox_row(message, now)?).on_conflict_do_nothing_on([outbox::Column::DedupKey]);
        insert_or_skip(&self.conn, insert).await
    }

    #[tracing::instrument(skip_all, fields(rows = messages.len()))]
    async fn enqueue_all(&self, messages: &[(OutboxMessage, DateTime<Utc>)]) -> Result<(), StoreError> {
        let rows = messages.iter().map(|(message, now)| outbox_row(message, *now)).collect::<Result<Vec<_>, _>>()?;
        if rows.is_empty() {
            return Ok(());
        }
        let insert = outbox::Entity::insert_many(rows).on_conflict_do_nothing_on([outbox::Column::DedupKey]);
        insert_or_skip(&self.conn, insert).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(limit))]
    async fn claim_due(&self, now: DateTime<Utc>, lease: Lease, limit: u32) -> Result<Vec<PendingMessage>, StoreError> {
        use outbox::Column;
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Select-then-lease inside one transaction: PostgreSQL row-locks the selected rows (skipping those another
        // worker holds) until the lease commits; SQLite's write lock serializes claimers. A single
        // `UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` is not safe: PostgreSQL may rescan the
        // subquery and lease more than `n` rows.
        let claimable = || {
            Condition::all()
                .add(Column::Status.eq(outbox_status::PENDING))
                .add(Column::AvailableAt.lte(now))
                .add(Condition::any().add(Column::LeasedUntil.is_null()).add(Column::LeasedUntil.lte(lease.now)))
        };
        let tx = self.begin_write().await?;
        let mut due = Query::select();
        due.column(Column::Id)
            .from(outbox::Entity)
            .cond_where(claimable())
            .order_by(Column::AvailableAt, sea_orm::Order::Asc)
            .order_by(Column::Id, sea_orm::Order::Asc)
            .limit(u64::from(limit));
        if tx.get_database_backend() == DbBackend::Postgres {
            due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let ids = tx
            .query_all(&due)
            .await
            .map_err(map_db_err)?
            .iter()
            .map(|row| row.try_get::<i64>("", "id"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_db_err)?;
        if ids.is_empty() {
            tx.rollback().await.map_err(map_db_err)?;
            return Ok(Vec::new());
        }
        // The repeated conditions make the lease a compare-and-set.
        let mut leasing = Query::update();
        leasing
            .table(outbox::Entity)
            .value(Column::LeasedUntil, lease.until)
            .cond_where(claimable())
            .and_where(Column::Id.is_in(ids.iter().copied()))
            .returning_all();
        let rows = tx.query_all(&leasing).await.map_err(map_db_err)?;
        tx.commit().await.map_err(map_db_err)?;
        let mut claimed = rows
            .iter()
            .map(|row| outbox::Model::from_query_result(row, "").map_err(map_db_err))
            .collect::<Result<Vec<_>, _>>()?;
        // Oldest due first, as selected; RETURNING promises no order.
        claimed.sort_by_key(|m| ids.iter().position(|id| *id == m.id));
        claimed.into_iter().map(pending_from_row).collect()
    }

    #[tracing::instrument(skip_all, fields(outbox_id = id))]
    async fn mark_delivered(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        use outbox::Column;
        let updated = outbox::Entity::update_many()
            .col_expr(Column::Status, Expr::value(outbox_status::DELIVERED))
            .col_expr(Column::DeliveredAt, Expr::value(now))
            .col_expr(Column::LeasedUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .filter(Column::Id.eq(id))
            .exec(&self.conn)
            .await
            .map_err(map_db_err)?;
        if updated.rows_affected == 0 {
            return Err(StoreError::Other(format!("outbox message {id} not found")));
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(outbox_id = id, give_up = retry_at.is_none()))]
    async fn mark_failed(&self, id: i64, error: &str, retry_at: Option<DateTime<Utc>>) -> Result<(), StoreError> {
        use outbox::Column;
        let mut update = outbox::Entity::update_many()
            .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
            .col_expr(Column::LastError, Expr::value(error))
            .col_expr(Column::LeasedUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .filter(Column::Id.eq(id))
            // Only a pending message: one delivered by a worker whose lease outlived ours stays delivered.
            .filter(Column::Status.eq(outbox_status::PENDING));
        update = match retry_at {
            Some(at) => update.col_expr(Column::AvailableAt, Expr::value(at)),
            None => update.col_expr(Column::Status, Expr::value(outbox_status::DEAD)),
        };
        let updated = update.exec(&self.conn).await.map_err(map_db_err)?;
        if updated.rows_affected == 0 && self.get(id).await?.is_none() {
            return Err(StoreError::Other(format!("outbox message {id} not found")));
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(status = status.as_str(), limit))]
    async fn list_messages(
        &self,
        status: OutboxStatus,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        use outbox::Column;
        let mut query = outbox::Entity::find().filter(Column::Status.eq(status.as_str()));
        if let Some(before) = before {
            query = query.filter(Column::Id.lt(before));
        }
        let rows = query.order_by_desc(Column::Id).limit(u64::from(limit)).all(&self.conn).await.map_err(map_db_err)?;
        rows.into_iter().map(entry_from_row).collect()
    }

    async fn get(&self, id: i64) -> Result<Option<OutboxEntry>, StoreError> {
        let row = outbox::Entity::find_by_id(id).one(&self.conn).await.map_err(map_db_err)?;
        row.map(entry_from_row).transpose()
    }

    async fn backlog(&self) -> Result<OutboxBacklog, StoreError> {
        use outbox::Column;
        // Status first in the claim index: both groups are read from it, never the delivered rows.
        let groups: Vec<(String, i64, Option<DateTime<Utc>>)> = outbox::Entity::find()
            .select_only()
            .column(Column::Status)
            .column_as(Column::Id.count(), "messages")
            .column_as(Column::CreatedAt.min(), "oldest")
            .filter(Column::Status.is_in([outbox_status::PENDING, outbox_status::DEAD]))
            .group_by(Column::Status)
            .into_tuple()
            .all(&self.conn)
            .await
            .map_err(map_db_err)?;
        let mut backlog = OutboxBacklog::default();
        for (status, messages, oldest) in groups {
            let messages = u64::try_from(messages).unwrap_or_default();
            if status == outbox_status::PENDING {
                backlog.pending = messages;
                backlog.oldest_pending = oldest;
            } else {
                backlog.dead = messages;
            }
        }
        Ok(backlog)
    }

    #[tracing::instrument(skip_all, fields(outbox_id = id))]
    async fn retry(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        use outbox::Column;
        // A leased message keeps its lease: the worker holding it may still be sending it.
        let updated = outbox::Entity::update_many()
            .col_expr(Column::Status, Expr::value(outbox_status::PENDING))
            .col_expr(Column::Attempts, Expr::value(0))
            .col_expr(Column::LastError, Expr::value(Option::<String>::None))
            .col_expr(Column::AvailableAt, Expr::value(now))
            .filter(Column::Id.eq(id))
            .filter(Column::Status.ne(outbox_status::DELIVERED))
            .exec(&self.conn)
            .await
            .map_err(map_db_err)?;
        Ok(updated.rows_affected > 0)
    }
}
