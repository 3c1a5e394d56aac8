//! `AuditLog`: append-only entries, listed newest first by id (ids grow with time, timestamps may tie).

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::ids::WorkspaceId;
use billing_domain::ports::AuditLog;
use billing_domain::records::{AuditEntry, AuditRecord};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Executor, Repo};
use crate::entities::audit_log;
use crate::errors::map_db_err;
use crate::mapping::{audit_from_row, audit_row};

#[async_trait]
impl<C: Executor> AuditLog for Repo<C> {
    #[tracing::instrument(skip_all, fields(workspace_id = %record.workspace_id, action = %record.action))]
    async fn append(&self, record: &AuditRecord, at: DateTime<Utc>) -> Result<(), StoreError> {
        audit_log::Entity::insert(audit_row(record, at)?)
            .exec_without_returning(&self.conn)
            .await
            .map_err(map_db_err)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(rows = records.len()))]
    async fn append_all(&self, records: &[(AuditRecord, DateTime<Utc>)]) -> Result<(), StoreError> {
        let rows = records.iter().map(|(record, at)| audit_row(record, *at)).collect::<Result<Vec<_>, _>>()?;
        if rows.is_empty() {
            return Ok(());
        }
        audit_log::Entity::insert_many(rows).exec_without_returning(&self.conn).await.map_err(map_db_err)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(workspace_id = %workspace, limit, before))]
    async fn list(
        &self,
        workspace: &WorkspaceId,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        use audit_log::Column;
        let mut query = audit_log::Entity::find().filter(Column::WorkspaceId.eq(workspace.as_str()));
        if let Some(before) = before {
            query = query.filter(Column::Id.lt(before));
        }
        query
            .order_by_desc(Column::Id)
            .limit(u64::from(limit))
            .all(&self.conn)
            .await
            .map_err(map_db_err)?
            .into_iter()
            .map(audit_from_row)
            .collect()
    }
}
