//! `SubscriptionRepository`: processor subscriptions, updated only by compare-and-set on their version.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::ids::{ProcessorId, SubscriptionId, WorkspaceId};
use billing_domain::ports::SubscriptionRepository;
use billing_domain::subscription::{Subscription, SubscriptionStatus};
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::NotSet;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Executor, Repo, insert_or_skip};
use crate::entities::subscription;
use crate::errors::map_db_err;
use crate::mapping::{subscription_from_row, subscription_row};

/// The subscription that decides a workspace's plan, among all of its subscriptions (the port's order). Chosen in
/// Rust rather than by ORDER BY: ids compare byte-wise here, while PostgreSQL would order them by the database
/// collation, and the choice must be the same on both backends. A workspace has few rows.
pub(crate) fn current_of(subscriptions: Vec<Subscription>) -> Option<Subscription> {
    subscriptions
        .into_iter()
        .min_by_key(|s| (s.status.is_terminal(), Reverse(s.status_at), Reverse(s.id.as_str().to_owned())))
}

#[async_trait]
impl<C: Executor> SubscriptionRepository for Repo<C> {
    #[tracing::instrument(skip_all, fields(processor = %processor, subscription_id = %id))]
    async fn get(&self, processor: &ProcessorId, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        subscription::Entity::find_by_id((processor.as_str().to_owned(), id.as_str().to_owned()))
            .one(&self.conn)
            .await
            .map_err(map_db_err)?
            .map(subscription_from_row)
            .transpose()
    }

    #[tracing::instrument(skip_all, fields(processor = %processor, ids = ids.len()))]
    async fn get_many(
        &self,
        processor: &ProcessorId,
        ids: &[SubscriptionId],
    ) -> Result<BTreeMap<SubscriptionId, Subscription>, StoreError> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let rows = subscription::Entity::find()
            .filter(subscription::Column::Processor.eq(processor.as_str()))
            .filter(subscription::Column::Id.is_in(ids.iter().map(SubscriptionId::as_str)))
            .all(&self.conn)
            .await
            .map_err(map_db_err)?;
        rows.into_iter().map(|row| subscription_from_row(row).map(|s| (s.id.clone(), s))).collect()
    }

    #[tracing::instrument(skip_all, fields(workspace_id = %workspace))]
    async fn current_for_workspace(&self, workspace: &WorkspaceId) -> Result<Option<Subscription>, StoreError> {
        let rows = subscription::Entity::find()
            .filter(subscription::Column::WorkspaceId.eq(workspace.as_str()))
            .all(&self.conn)
            .await
            .map_err(map_db_err)?;
        let subscriptions = rows.into_iter().map(subscription_from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(current_of(subscriptions))
    }

    #[tracing::instrument(skip_all, fields(processor = %processor, limit))]
    async fn list_live(
        &self,
        processor: &ProcessorId,
        after: Option<SubscriptionId>,
        limit: u32,
    ) -> Result<Vec<Subscription>, StoreError> {
        use subscription::Column;
        let terminal = SubscriptionStatus::ALL.into_iter().filter(|s| s.is_terminal()).map(SubscriptionStatus::as_str);
        let mut query = subscription::Entity::find()
            .filter(Column::Processor.eq(processor.as_str()))
            .filter(Column::Status.is_not_in(terminal))
            .order_by_asc(Column::Id)
            .limit(u64::from(limit));
        if let Some(after) = after {
            query = query.filter(Column::Id.gt(after.as_str()));
        }
        let rows = query.all(&self.conn).await.map_err(map_db_err)?;
        rows.into_iter().map(subscription_from_row).collect()
    }

    #[tracing::instrument(skip_all, fields(processor = %subscription.processor, subscription_id = %subscription.id))]
    async fn insert(&self, subscription: &Subscription, now: DateTime<Utc>) -> Result<(), StoreError> {
        let row = subscription_row(subscription, now)?;
        let insert = subscription::Entity::insert(row).on_conflict_do_nothing();
        if !insert_or_skip(&self.conn, insert).await? {
            return Err(StoreError::Duplicate(format!("{} subscription {}", subscription.processor, subscription.id)));
        }
        self.changed(&subscription.workspace_id).await
    }

    #[tracing::instrument(skip_all, fields(processor = %subscription.processor, subscription_id = %subscription.id, expected_version))]
    async fn update(
        &self,
        subscription: &Subscription,
        expected_version: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        use subscription::Column;
        let mut row = subscription_row(subscription, now)?;
        row.created_at = NotSet;
        let updated = subscription::Entity::update_many()
            .set(row)
            .filter(Column::Processor.eq(subscription.processor.as_str()))
            .filter(Column::Id.eq(subscription.id.as_str()))
            .filter(Column::Version.eq(expected_version))
            .exec(&self.conn)
            .await
            .map_err(map_db_err)?;
        if updated.rows_affected == 0 {
            return Err(StoreError::Conflict(format!(
                "{} subscription {} is not at version {expected_version}",
                subscription.processor, subscription.id
            )));
        }
        self.changed(&subscription.workspace_id).await
    }
}
