//! `UsageRepository`: idempotent usage events and their exact decimal totals.

use std::collections::BTreeMap;
use std::str::FromStr;

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::ids::WorkspaceId;
use billing_domain::ports::{UsageEvent, UsageRepository};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use super::{Executor, Repo, insert_or_skip};
use crate::entities::usage_event;
use crate::errors::{corrupt, map_db_err};

#[async_trait]
impl<C: Executor> UsageRepository for Repo<C> {
    #[tracing::instrument(skip_all, fields(workspace_id = %event.workspace_id, metric = %event.metric))]
    async fn record(&self, event: &UsageEvent, now: DateTime<Utc>) -> Result<bool, StoreError> {
        use usage_event::Column;
        let row = usage_event::ActiveModel {
            id: NotSet,
            workspace_id: Set(event.workspace_id.as_str().to_owned()),
            event_id: Set(event.id.clone()),
            metric: Set(event.metric.clone()),
            quantity: Set(event.quantity.to_string()),
            occurred_at: Set(event.at),
            recorded_at: Set(now),
        };
        let insert = usage_event::Entity::insert(row).on_conflict_do_nothing_on([Column::WorkspaceId, Column::EventId]);
        let recorded = insert_or_skip(&self.conn, insert).await?;
        if recorded {
            self.changed(&event.workspace_id).await?;
        }
        Ok(recorded)
    }

    /// Debug-level span: read on the entitlement check's hot path.
    #[tracing::instrument(level = "debug", skip_all, fields(workspace_id = %workspace))]
    async fn totals(
        &self,
        workspace: &WorkspaceId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<BTreeMap<String, Decimal>, StoreError> {
        self.through_cache(
            |cache| cache.usage(workspace, (from, to)),
            self.load_totals(workspace, from, to),
            |cache, stamp, totals| cache.store_usage(workspace, stamp, (from, to), totals),
        )
        .await
    }
}

impl<C: Executor> Repo<C> {
    async fn load_totals(
        &self,
        workspace: &WorkspaceId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<BTreeMap<String, Decimal>, StoreError> {
        use usage_event::Column;
        let rows = usage_event::Entity::find()
            .select_only()
            .column(Column::Metric)
            .column(Column::Quantity)
            .filter(Column::WorkspaceId.eq(workspace.as_str()))
            .filter(Column::OccurredAt.gte(from))
            .filter(Column::OccurredAt.lt(to))
            .into_tuple::<(String, String)>()
            .all(&self.conn)
            .await
            .map_err(map_db_err)?;
        // Summed here: SQLite has no exact decimal type, and the text column keeps every digit.
        let mut totals = BTreeMap::new();
        for (metric, raw) in rows {
            let quantity = Decimal::from_str(&raw).map_err(|e| corrupt("usage_events.quantity", e))?;
            let total: &mut Decimal = totals.entry(metric).or_default();
            *total = total
                .checked_add(quantity)
                .ok_or_else(|| StoreError::Other("usage total overflows the decimal range".to_owned()))?;
        }
        Ok(totals)
    }
}
