//! `ProcessorRecords`: the sandbox's own records, upserted by (processor, kind, id), with a version row per
//! processor moved by compare-and-set in the same transaction as the records it guards.

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::ids::ProcessorId;
use billing_domain::ports::{ProcessorRecord, ProcessorRecords, StoredRecords};
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::{Executor, Repo, insert_or_skip};
use crate::entities::processor_record::{self, Column, Entity};
use crate::errors::map_db_err;

/// The kind of the one row per processor whose body is its records' version; no record of the processor's own
/// can take it (the sandbox's kinds are plain words).
const VERSION_KIND: &str = "_version";

#[async_trait]
impl<C: Executor> ProcessorRecords for Repo<C> {
    async fn load_records(&self, processor: &ProcessorId) -> Result<StoredRecords, StoreError> {
        // The version first: records read after it are at it or later, and a later write makes the next
        // compare-and-set fail, so a copy is never taken for newer than it is.
        let version = version_of(&self.conn, processor).await?;
        let rows = Entity::find()
            .filter(Column::Processor.eq(processor.as_str()))
            .filter(Column::Kind.ne(VERSION_KIND))
            .all(&self.conn)
            .await
            .map_err(map_db_err)?;
        let records = rows.into_iter().map(|r| ProcessorRecord { kind: r.kind, id: r.id, body: r.body }).collect();
        Ok(StoredRecords { records, version })
    }

    async fn records_version(&self, processor: &ProcessorId) -> Result<u64, StoreError> {
        version_of(&self.conn, processor).await
    }

    #[tracing::instrument(skip_all, fields(processor = %processor, records = records.len(), expected))]
    async fn save_records(
        &self,
        processor: &ProcessorId,
        records: &[ProcessorRecord],
        expected: u64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let tx = self.begin_write().await?;
        let first = processor_record::ActiveModel {
            processor: Set(processor.as_str().to_owned()),
            kind: Set(VERSION_KIND.to_owned()),
            id: Set(String::new()),
            body: Set("0".to_owned()),
            updated_at: Set(now),
        };
        insert_or_skip(&tx, Entity::insert(first).on_conflict_do_nothing()).await?;
        let moved = Entity::update_many()
            .col_expr(Column::Body, Expr::value((expected + 1).to_string()))
            .col_expr(Column::UpdatedAt, Expr::value(now))
            .filter(Column::Processor.eq(processor.as_str()))
            .filter(Column::Kind.eq(VERSION_KIND))
            .filter(Column::Body.eq(expected.to_string()))
            .exec(&tx)
            .await
            .map_err(map_db_err)?;
        if moved.rows_affected != 1 {
            tx.rollback().await.map_err(map_db_err)?;
            return Ok(false);
        }
        if !records.is_empty() {
            let rows = records.iter().map(|r| processor_record::ActiveModel {
                processor: Set(processor.as_str().to_owned()),
                kind: Set(r.kind.clone()),
                id: Set(r.id.clone()),
                body: Set(r.body.clone()),
                updated_at: Set(now),
            });
            let upsert = OnConflict::columns([Column::Processor, Column::Kind, Column::Id])
                .update_columns([Column::Body, Column::UpdatedAt])
                .to_owned();
            Entity::insert_many(rows).on_conflict(upsert).exec_without_returning(&tx).await.map_err(map_db_err)?;
        }
        tx.commit().await.map_err(map_db_err)?;
        Ok(true)
    }
}

async fn version_of(conn: &impl ConnectionTrait, processor: &ProcessorId) -> Result<u64, StoreError> {
    let row = Entity::find_by_id((processor.as_str().to_owned(), VERSION_KIND.to_owned(), String::new()))
        .one(conn)
        .await
        .map_err(map_db_err)?;
    match row {
        None => Ok(0),
        Some(row) => row
            .body
            .parse()
            .map_err(|_| StoreError::Other(format!("processor records version `{}` is not a number", row.body))),
    }
}
