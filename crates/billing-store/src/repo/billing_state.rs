//! `BillingStateReader`: a workspace with its subscriptions in one query, answered from the cache when there is one.

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::ids::WorkspaceId;
use billing_domain::ports::{BillingState, BillingStateReader};
use std::collections::BTreeMap;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::subscriptions::current_of;
use super::{Executor, Repo};
use crate::cache::Lookup;
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

    /// Cache hits first, then every miss in one `LEFT JOIN`.
    #[tracing::instrument(level = "debug", skip_all, fields(workspaces = ids.len()))]
    async fn billing_states(&self, ids: &[WorkspaceId]) -> Result<BTreeMap<WorkspaceId, BillingState>, StoreError> {
        let cache = match self.changes.pending {
            Some(_) => None,
            None => self.changes.cache.as_deref(),
        };
        let mut found = BTreeMap::new();
        let mut misses = Vec::new();
        for id in ids {
            match cache.map(|cache| cache.state(id)) {
                Some(Lookup::Hit(Some(state))) => {
                    found.insert(id.clone(), state);
                }
                Some(Lookup::Hit(None)) => {}
                Some(Lookup::Miss(ticket)) => misses.push((id, Some(ticket))),
                None => misses.push((id, None)),
            }
        }
        if misses.is_empty() {
            return Ok(found);
        }
        let rows = workspace::Entity::find()
            .filter(workspace::Column::Id.is_in(misses.iter().map(|(id, _)| id.as_str())))
            .find_with_related(subscription::Entity)
            .all(&self.conn)
            .await
            .map_err(map_db_err)?;
        let mut loaded = BTreeMap::new();
        for (row, subscriptions) in rows {
            let subscriptions = subscriptions.into_iter().map(subscription_from_row).collect::<Result<Vec<_>, _>>()?;
            let workspace = workspace_from_row(row)?;
            loaded.insert(workspace.id.clone(), BillingState { workspace, subscription: current_of(subscriptions) });
        }
        for (id, ticket) in misses {
            let state = loaded.remove(id);
            if let (Some(cache), Some(ticket)) = (cache, ticket) {
                cache.store_state(id, ticket, state.clone());
            }
            if let Some(state) = state {
                found.insert(id.clone(), state);
            }
        }
        Ok(found)
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
