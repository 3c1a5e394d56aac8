//! `EventInbox`: the webhook inbox (unique per processor and event id) and the events parked under a link.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::events::ProcessorEvent;
use billing_domain::ids::{EventId, ProcessorId};
use billing_domain::ports::{EventInbox, InboxEvent, InboxStatus, Recorded, Seen, SettledEvent, StatusUpdate};
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter,
    QuerySelect, Statement,
};

use super::{Executor, Repo, insert_or_skip, to_i32};
use crate::entities::{inbox_event, parked_event};
use crate::errors::{corrupt, map_db_err};
use crate::mapping::{attempts, inbox_status, unencodable};

/// The `n`th (1-based) bind parameter in `backend`'s syntax (numbered on both, so the text may use them in any
/// order).
fn placeholder(backend: DbBackend, n: usize) -> String {
    match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => format!("?{n}"),
    }
}

fn parked_row(event: &ProcessorEvent, link: &str, at: DateTime<Utc>) -> Result<parked_event::ActiveModel, StoreError> {
    Ok(parked_event::ActiveModel {
        id: NotSet,
        processor: Set(event.processor.as_str().to_owned()),
        event_id: Set(event.id.as_str().to_owned()),
        link: Set(link.to_owned()),
        event: Set(serde_json::to_string(event).map_err(|e| unencodable("parked event", e))?),
        parked_at: Set(at),
    })
}

fn new_row(event: &InboxEvent, status: InboxStatus, error: Option<String>) -> inbox_event::ActiveModel {
    inbox_event::ActiveModel {
        id: NotSet,
        processor: Set(event.processor.as_str().to_owned()),
        event_id: Set(event.event_id.as_str().to_owned()),
        event_type: Set(event.event_type.clone()),
        payload: Set(event.payload.clone()),
        status: Set(status.as_str().to_owned()),
        attempts: Set(1),
        error: Set(error),
        received_at: Set(event.received_at),
        processed_at: Set(None),
    }
}

impl<C: Executor> Repo<C> {
    /// Inserts parked rows; a redelivery parks nothing new (the first row already waits for its link).
    async fn insert_parked(&self, rows: Vec<parked_event::ActiveModel>) -> Result<(), StoreError> {
        use parked_event::Column;
        if rows.is_empty() {
            return Ok(());
        }
        let insert = parked_event::Entity::insert_many(rows).on_conflict_do_nothing_on([
            Column::Processor,
            Column::EventId,
            Column::Link,
        ]);
        insert_or_skip(&self.conn, insert).await?;
        Ok(())
    }
}

#[async_trait]
impl<C: Executor> EventInbox for Repo<C> {
    #[tracing::instrument(skip_all, fields(processor = %event.processor, event_id = %event.event_id))]
    async fn record(&self, event: &InboxEvent) -> Result<Recorded, StoreError> {
        use inbox_event::Column;
        let insert = inbox_event::Entity::insert(new_row(event, InboxStatus::Received, None))
            .on_conflict_do_nothing_on([Column::Processor, Column::EventId]);
        if insert_or_skip(&self.conn, insert).await? {
            return Ok(Recorded::New);
        }
        let existing = inbox_event::Entity::find()
            .filter(Column::Processor.eq(event.processor.as_str()))
            .filter(Column::EventId.eq(event.event_id.as_str()))
            .one(&self.conn)
            .await
            .map_err(map_db_err)?
            .ok_or_else(|| StoreError::Other(format!("inbox event {} vanished after a conflict", event.event_id)))?;
        Ok(Recorded::Seen {
            status: inbox_status(&existing.status)?,
            attempts: attempts(existing.attempts, "inbox_events.attempts")?,
        })
    }

    #[tracing::instrument(skip_all, fields(events = events.len()))]
    async fn seen_many(
        &self,
        events: &[(ProcessorId, EventId)],
    ) -> Result<BTreeMap<(ProcessorId, EventId), Seen>, StoreError> {
        use inbox_event::Column;
        if events.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut any = Condition::any();
        for (processor, id) in events {
            any = any.add(
                Condition::all().add(Column::Processor.eq(processor.as_str())).add(Column::EventId.eq(id.as_str())),
            );
        }
        let rows = inbox_event::Entity::find()
            .select_only()
            .columns([Column::Processor, Column::EventId, Column::Status, Column::Attempts])
            .filter(any)
            .into_tuple::<(String, String, String, i32)>()
            .all(&self.conn)
            .await
            .map_err(map_db_err)?;
        rows.into_iter()
            .map(|(processor, id, status, count)| {
                let seen = Seen { status: inbox_status(&status)?, attempts: attempts(count, "inbox_events.attempts")? };
                Ok(((ProcessorId::new(processor), EventId::new(id)), seen))
            })
            .collect()
    }

    #[tracing::instrument(skip_all, fields(events = events.len()))]
    async fn record_settled(&self, events: &[SettledEvent], now: DateTime<Utc>) -> Result<Vec<bool>, StoreError> {
        use inbox_event::Column;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // One multi-row insert; RETURNING names the rows that were new.
        let mut insert = Query::insert();
        insert
            .into_table(inbox_event::Entity)
            .columns([
                Column::Processor,
                Column::EventId,
                Column::EventType,
                Column::Payload,
                Column::Status,
                Column::Attempts,
                Column::Error,
                Column::ReceivedAt,
                Column::ProcessedAt,
            ])
            .on_conflict(OnConflict::columns([Column::Processor, Column::EventId]).do_nothing().to_owned())
            .returning(Query::returning().columns([Column::Processor, Column::EventId]));
        for settled in events {
            let event = &settled.event;
            let finished = matches!(settled.status, InboxStatus::Processed | InboxStatus::Ignored);
            insert.values_panic([
                event.processor.as_str().into(),
                event.event_id.as_str().into(),
                event.event_type.as_str().into(),
                event.payload.as_str().into(),
                settled.status.as_str().into(),
                1i32.into(),
                settled.error.clone().into(),
                event.received_at.into(),
                finished.then_some(now).into(),
            ]);
        }
        let inserted: HashSet<(String, String)> = self
            .conn
            .query_all(&insert)
            .await
            .map_err(map_db_err)?
            .iter()
            .map(|row| Ok((row.try_get("", "processor")?, row.try_get("", "event_id")?)))
            .collect::<Result<_, sea_orm::DbErr>>()
            .map_err(map_db_err)?;
        Ok(events
            .iter()
            .map(|s| inserted.contains(&(s.event.processor.as_str().to_owned(), s.event.event_id.as_str().to_owned())))
            .collect())
    }

    #[tracing::instrument(skip_all, fields(processor = %processor, event_id = %event_id, attempts))]
    async fn claim_retry(
        &self,
        processor: &ProcessorId,
        event_id: &EventId,
        attempts: u32,
    ) -> Result<bool, StoreError> {
        use inbox_event::Column;
        let updated = inbox_event::Entity::update_many()
            .col_expr(Column::Status, Expr::value(InboxStatus::Received.as_str()))
            .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
            .filter(Column::Processor.eq(processor.as_str()))
            .filter(Column::EventId.eq(event_id.as_str()))
            .filter(Column::Status.eq(InboxStatus::Failed.as_str()))
            .filter(Column::Attempts.eq(to_i32(attempts, "attempts")?))
            .exec(&self.conn)
            .await
            .map_err(map_db_err)?;
        Ok(updated.rows_affected > 0)
    }

    #[tracing::instrument(skip_all, fields(processor = %processor, event_id = %event_id, status = status.as_str()))]
    async fn set_status(
        &self,
        processor: &ProcessorId,
        event_id: &EventId,
        status: InboxStatus,
        error: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        use inbox_event::Column;
        let mut update = inbox_event::Entity::update_many()
            .col_expr(Column::Status, Expr::value(status.as_str()))
            .col_expr(Column::Error, Expr::value(error))
            .filter(Column::Processor.eq(processor.as_str()))
            .filter(Column::EventId.eq(event_id.as_str()));
        if matches!(status, InboxStatus::Processed | InboxStatus::Ignored) {
            update = update.col_expr(Column::ProcessedAt, Expr::value(now));
        }
        let updated = update.exec(&self.conn).await.map_err(map_db_err)?;
        if updated.rows_affected == 0 {
            return Err(StoreError::Other(format!("inbox event {processor}/{event_id} not found")));
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(updates = updates.len()))]
    async fn set_statuses(&self, updates: &[StatusUpdate], now: DateTime<Utc>) -> Result<(), StoreError> {
        // The last update of each event wins; then one UPDATE … FROM a VALUES list (both backends).
        let mut last: HashMap<(&str, &str), &StatusUpdate> = HashMap::new();
        for update in updates {
            last.insert((update.processor.as_str(), update.event_id.as_str()), update);
        }
        if last.is_empty() {
            return Ok(());
        }
        let backend = self.conn.get_database_backend();
        let mut values: Vec<sea_orm::Value> = vec![now.into()];
        let mut rows = Vec::with_capacity(last.len());
        for update in last.values() {
            let first = values.len() + 1;
            rows.push(format!(
                "({}, {}, {}, {})",
                placeholder(backend, first),
                placeholder(backend, first + 1),
                placeholder(backend, first + 2),
                placeholder(backend, first + 3)
            ));
            values.push(update.processor.as_str().into());
            values.push(update.event_id.as_str().into());
            values.push(update.status.as_str().into());
            values.push(update.error.clone().into());
        }
        let now = placeholder(backend, 1);
        let finished = [InboxStatus::Processed, InboxStatus::Ignored].map(|s| format!("'{}'", s.as_str())).join(", ");
        let sql = format!(
            "WITH v(processor, event_id, status, error) AS (VALUES {}) \
             UPDATE inbox_events SET status = v.status, error = v.error, \
             processed_at = CASE WHEN v.status IN ({finished}) THEN {now} ELSE inbox_events.processed_at END \
             FROM v WHERE inbox_events.processor = v.processor AND inbox_events.event_id = v.event_id",
            rows.join(", ")
        );
        let result =
            self.conn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await.map_err(map_db_err)?;
        let expected = last.len() as u64;
        if result.rows_affected() != expected {
            return Err(StoreError::Other(format!(
                "{} inbox events to update, {} found",
                expected,
                result.rows_affected()
            )));
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(processor = %event.processor, event_id = %event.event_id))]
    async fn record_failure(&self, event: &InboxEvent, error: &str) -> Result<(), StoreError> {
        use inbox_event::Column;
        // One upsert, so a failure is counted exactly once even when the event was never recorded (its insert was
        // rolled back with the failed transaction). A row another delivery settled meanwhile is left alone: marking
        // an applied event failed would let a redelivery apply it again.
        let on_conflict = OnConflict::columns([Column::Processor, Column::EventId])
            .value(Column::Status, Expr::value(InboxStatus::Failed.as_str()))
            .value(Column::Attempts, Expr::col((inbox_event::Entity, Column::Attempts)).add(1))
            .update_column(Column::Error)
            .action_and_where(
                Expr::col((inbox_event::Entity, Column::Status))
                    .is_in([InboxStatus::Failed.as_str(), InboxStatus::Received.as_str()]),
            )
            .to_owned();
        let row = new_row(event, InboxStatus::Failed, Some(error.to_owned()));
        inbox_event::Entity::insert(row)
            .on_conflict(on_conflict)
            .exec_without_returning(&self.conn)
            .await
            .map_err(map_db_err)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(processor = %event.processor, event_id = %event.id, link))]
    async fn park(&self, event: &ProcessorEvent, link: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.insert_parked(vec![parked_row(event, link, now)?]).await
    }

    #[tracing::instrument(skip_all, fields(rows = parked.len()))]
    async fn park_all(&self, parked: &[(ProcessorEvent, String, DateTime<Utc>)]) -> Result<(), StoreError> {
        let rows =
            parked.iter().map(|(event, link, at)| parked_row(event, link, *at)).collect::<Result<Vec<_>, _>>()?;
        self.insert_parked(rows).await
    }

    #[tracing::instrument(skip_all, fields(processor = %processor, link))]
    async fn take_parked(&self, processor: &ProcessorId, link: &str) -> Result<Vec<ProcessorEvent>, StoreError> {
        // In a transaction the caller's rollback (of it, or of its savepoint) puts the rows back if one cannot be
        // decoded; on the pool a transaction of its own does.
        if self.changes.pending.is_some() {
            return take_parked_in(&self.conn, processor, link).await;
        }
        let tx = self.begin_write().await?;
        let events = take_parked_in(&tx, processor, link).await?;
        tx.commit().await.map_err(map_db_err)?;
        Ok(events)
    }

    #[tracing::instrument(skip_all, fields(processor = %processor, event_id = %event_id))]
    async fn unpark(&self, processor: &ProcessorId, event_id: &EventId) -> Result<bool, StoreError> {
        use parked_event::Column;
        let deleted = parked_event::Entity::delete_many()
            .filter(Column::Processor.eq(processor.as_str()))
            .filter(Column::EventId.eq(event_id.as_str()))
            .exec(&self.conn)
            .await
            .map_err(map_db_err)?;
        Ok(deleted.rows_affected > 0)
    }

    #[tracing::instrument(skip_all, fields(limit))]
    async fn parked_ready(&self, limit: u32) -> Result<Vec<ProcessorEvent>, StoreError> {
        // The link names are the domain's `customer:<id>` and `subscription:<id>`; comparing the stripped id keeps
        // the lookups on the primary keys of both tables.
        let sql = "SELECT p.event FROM parked_events p WHERE \
            (p.link LIKE 'customer:%' AND EXISTS (SELECT 1 FROM processor_customers c \
                WHERE c.processor = p.processor AND c.customer_id = SUBSTR(p.link, 10))) \
            OR (p.link LIKE 'subscription:%' AND EXISTS (SELECT 1 FROM subscriptions s \
                WHERE s.processor = p.processor AND s.id = SUBSTR(p.link, 14))) \
            ORDER BY p.id LIMIT $1";
        let backend = self.conn.get_database_backend();
        let sql = sql.replace("$1", &placeholder(backend, 1));
        let statement = Statement::from_sql_and_values(backend, sql, [i64::from(limit).into()]);
        let rows = self.conn.query_all_raw(statement).await.map_err(map_db_err)?;
        rows.iter()
            .map(|row| {
                let raw: String = row.try_get("", "event").map_err(map_db_err)?;
                serde_json::from_str(&raw).map_err(|e| corrupt("parked_events.event", e))
            })
            .collect()
    }

    #[tracing::instrument(skip_all, fields(status = status.as_str()))]
    async fn count_by_status(&self, status: InboxStatus) -> Result<u64, StoreError> {
        inbox_event::Entity::find()
            .filter(inbox_event::Column::Status.eq(status.as_str()))
            .count(&self.conn)
            .await
            .map_err(map_db_err)
    }
}

/// Removes and decodes the events parked under `link`, oldest first: DELETE … RETURNING hands each row to exactly
/// one caller.
async fn take_parked_in<C: ConnectionTrait>(
    conn: &C,
    processor: &ProcessorId,
    link: &str,
) -> Result<Vec<ProcessorEvent>, StoreError> {
    use parked_event::Column;
    let mut delete = Query::delete();
    delete
        .from_table(parked_event::Entity)
        .and_where(Column::Processor.eq(processor.as_str()))
        .and_where(Column::Link.eq(link))
        .returning_all();
    let rows = conn.query_all(&delete).await.map_err(map_db_err)?;
    let mut parked = rows
        .iter()
        .map(|row| parked_event::Model::from_query_result(row, "").map_err(map_db_err))
        .collect::<Result<Vec<_>, _>>()?;
    parked.sort_by_key(|p| p.id);
    parked.into_iter().map(|p| serde_json::from_str(&p.event).map_err(|e| corrupt("parked_events.event", e))).collect()
}
