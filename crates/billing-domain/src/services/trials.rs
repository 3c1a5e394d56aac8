//! Starting the one trial a workspace may have.

use std::sync::Arc;

use serde_json::json;

use super::Context;
use crate::error::StoreError;
use crate::ids::WorkspaceId;
use crate::ports::{BillingSubject, UnitOfWork};
use crate::records::{Actor, AuditRecord};
use crate::workspace::Workspace;

/// Errors of starting a trial.
#[derive(Debug, thiserror::Error)]
pub enum TrialError {
    #[error("workspace not found")]
    WorkspaceNotFound,
    #[error("this workspace has already had its trial")]
    AlreadyUsed,
    #[error("trial plan `{0}` is not in the catalog")]
    PlanMissing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Trial use cases.
pub struct TrialService {
    ctx: Context,
    uow: Arc<dyn UnitOfWork>,
}

impl TrialService {
    pub fn new(ctx: Context, uow: Arc<dyn UnitOfWork>) -> Self {
        Self { ctx, uow }
    }

    /// Starts the trial now; a second start (even concurrent) gets `AlreadyUsed`.
    pub async fn start(
        &self,
        id: &WorkspaceId,
        actor: Actor,
        request_id: Option<String>,
    ) -> Result<Workspace, TrialError> {
        let policy = &self.ctx.policy.trial;
        if self.ctx.catalog.get(&policy.plan).is_none() {
            return Err(TrialError::PlanMissing(policy.plan.to_string()));
        }
        let now = self.ctx.clock.now();
        let ends_at = policy.ends_at(now);
        let tx = self.uow.begin().await?;
        tx.lock(&BillingSubject::Workspace(id.clone())).await?;
        if tx.workspaces().get(id).await?.is_none() {
            return Err(TrialError::WorkspaceNotFound);
        }
        if !tx.workspaces().start_trial(id, &policy.plan, ends_at, now).await? {
            return Err(TrialError::AlreadyUsed);
        }
        let record = AuditRecord {
            workspace_id: id.clone(),
            action: "trial.started".into(),
            actor,
            before: None,
            after: Some(json!({"plan": policy.plan, "trial_ends_at": ends_at})),
            request_id,
        };
        tx.audit().append(&record, now).await?;
        let workspace = tx.workspaces().get(id).await?.ok_or(TrialError::WorkspaceNotFound)?;
        tx.commit().await?;
        Ok(workspace)
    }
}
