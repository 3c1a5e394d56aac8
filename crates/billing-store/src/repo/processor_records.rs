//! `ProcessorRecords`: the sandbox's own records, upserted by (processor, kind, id) in one statement.

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::ids::ProcessorId;
use billing_domain::ports::{ProcessorRecord, ProcessorRecords};
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::{Executor, Repo};
use crate::entities::processor_record::{self, Column};
use crate::errors::map_db_err;

#[async_trait]
impl<C: Executor> ProcessorRecords for Repo<C> {
    async fn load_records(&self, processor: &ProcessorId) -> Result<Vec<ProcessorRecord>, StoreError> {
        let rows = processor_record::Entity::find()
            .filter(Column::Processor.eq(processor.as_str()))
            .all(&self.conn)
            .await
            .map_err(map_db_err)?;
        Ok(rows.into_iter().map(|r| ProcessorRecord { kind: r.kind, id: r.id, body: r.body }).collect())
    }

    #[tracing::instrument(skip_all, fields(processor = %processor, records = records.len()))]
    async fn save_records(
        &self,
        processor: &ProcessorId,
        records: &[ProcessorRecord],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
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
        processor_record::Entity::insert_many(rows)
            .on_conflict(upsert)
            .exec_without_returning(&self.conn)
            .await
            .map_err(map_db_err)?;
        Ok(())
    }
}
