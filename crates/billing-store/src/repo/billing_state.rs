//! `BillingStateReader`: a workspace with its subscriptions in one query, answered from the cache when there is one.

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::ids::WorkspaceId;
use billing_domain::ports::{BillingState, BillingStateReader};
use sea_orm::EntityTrait;

use super::subscriptions::current_of;
use super::{Executor, Repo};
use crate::entities::{subscription, workspace};
use crate::errors::map_db_err;
use crate::mapping::{subscription_from_row, workspace_from_row};

#[async_trait]
impl<C: Executor> BillingStateReader for Repo<C> {
    /// Debug-level span: this is the entitlement check's hot path.
    #[tracing::instrument(level = "debug", skip_all, fields(workspace_id = %id))]
    async fn billing_state(&self, id: &WorkspaceId) -> Result<Option<BillingState>, StoreError> {
        self.through_cache(
            |cache| cache.state(id),
            self.load_billing_state(id),
            |cache, stamp, state| cache.store_state(id, stamp, state),
        )
        .await
    }
}

impl<C: Executor> Repo<C> {
    /// One `LEFT JOIN` of the workspace and its subscriptions.
    async fn load_billing_state(&self, id: &WorkspaceId) -> Result<Option<BillingState>, StoreError> {
        let rows = workspace::Entity::find_by_id(id.as_str())
            .find_with_related(subscription::Entity)
            .all(&self.conn)
            .await
            .map_err(map_db_err)?;
        let Some((row, subscriptions)) = rows.into_iter().next() else { return Ok(None) };
        let subscriptions = subscriptions.into_iter().map(subscription_from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(Some(BillingState { workspace: workspace_from_row(row)?, subscription: current_of(subscriptions) }))
    }
}
