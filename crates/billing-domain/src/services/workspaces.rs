//! Creating, updating and reading workspaces.

use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use super::Context;
use crate::entitlements::PlanSource;
use crate::error::{StoreError, ValidationErrors};
use crate::ids::{PlanId, WorkspaceId};
use crate::ports::{BillingSubject, UnitOfWork};
use crate::records::{Actor, AuditRecord};
use crate::subscription::Subscription;
use crate::trial;
use crate::workspace::{Workspace, WorkspaceProfile};

/// Errors of the workspace use cases.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("workspace not found")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A workspace with its derived billing state, as `GET /v1/workspaces/{id}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct WorkspaceOverview {
    pub workspace: Workspace,
    pub plan: PlanId,
    pub plan_source: PlanSource,
    pub subscription: Option<Subscription>,
    pub trial_days_remaining: u32,
    /// The open dunning case, if the workspace is in dunning.
    pub dunning: Option<crate::dunning::DunningCase>,
}

/// Workspace use cases.
pub struct WorkspaceService {
    ctx: Context,
    uow: Arc<dyn UnitOfWork>,
    dunning: Option<Arc<dyn crate::ports::DunningRepository>>,
}

impl WorkspaceService {
    pub fn new(ctx: Context, uow: Arc<dyn UnitOfWork>) -> Self {
        Self { ctx, uow, dunning: None }
    }

    /// This service showing each workspace's open dunning case from `cases`.
    pub fn with_dunning(mut self, cases: Arc<dyn crate::ports::DunningRepository>) -> Self {
        self.dunning = Some(cases);
        self
    }

    /// Creates the workspace or updates its profile; returns it and whether it was created. Audited in the same
    /// transaction. Two concurrent creates of one id end as one create and one update.
    pub async fn upsert(
        &self,
        id: WorkspaceId,
        profile: WorkspaceProfile,
        actor: Actor,
        request_id: Option<String>,
    ) -> Result<(Workspace, bool), WorkspaceError> {
        let now = self.ctx.clock.now();
        for _ in 0..3 {
            let tx = self.uow.begin().await?;
            tx.lock(&BillingSubject::Workspace(id.clone())).await?;
            let existing = tx.workspaces().get(&id).await?;
            let (workspace, created, before) = match existing {
                None => (Workspace::create(id.clone(), profile.clone(), now), true, None),
                Some(current) => {
                    let mut updated = current.clone();
                    updated.update_profile(profile.clone(), now);
                    (updated, false, Some(current))
                }
            };
            let written = if created {
                tx.workspaces().insert(&workspace).await
            } else {
                tx.workspaces().update_profile(&workspace).await
            };
            match written {
                // Another request created it between our read and insert: go round again as an update.
                Err(StoreError::Duplicate(_)) => continue,
                other => other?,
            }
            let record = AuditRecord {
                workspace_id: id.clone(),
                action: if created { "workspace.created" } else { "workspace.updated" }.into(),
                actor: actor.clone(),
                before: before.as_ref().map(profile_json),
                after: Some(profile_json(&workspace)),
                request_id: request_id.clone(),
            };
            tx.audit().append(&record, now).await?;
            tx.commit().await?;
            return Ok((workspace, created));
        }
        Err(StoreError::Conflict(format!("workspace {id}")).into())
    }

    /// The workspace with its effective plan and current subscription.
    pub async fn overview(&self, id: &WorkspaceId) -> Result<WorkspaceOverview, WorkspaceError> {
        let (workspace, subscription) = self.ctx.billing_state(id).await?.ok_or(WorkspaceError::NotFound)?;
        let now = self.ctx.clock.now();
        let effective = self.ctx.effective_plan(&workspace, subscription.as_ref(), now);
        let dunning = match &self.dunning {
            Some(cases) => cases.open_case(id).await?,
            None => None,
        };
        Ok(WorkspaceOverview {
            dunning,
            plan: effective.plan.id.clone(),
            plan_source: effective.source,
            trial_days_remaining: trial::days_remaining(workspace.trial_ends_at, now),
            subscription,
            workspace,
        })
    }
}

fn profile_json(workspace: &Workspace) -> serde_json::Value {
    json!({
        "name": workspace.name,
        "owner_email": workspace.owner_email,
        "billing_details": workspace.billing_details,
    })
}
