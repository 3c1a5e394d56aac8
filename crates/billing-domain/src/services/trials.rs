//! Starting the one trial a workspace may have, and reminding its owner 3 days before it ends.

use std::sync::Arc;

use serde_json::json;

use super::Context;
use crate::error::StoreError;
use crate::ids::WorkspaceId;
use crate::lifecycle::{email, webhook};
use crate::ports::{BillingSubject, UnitOfWork};
use crate::records::{Actor, AuditRecord, NotificationKind};
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

    /// Enqueues the "trial ends in 3 days" email and `billing.trial.ending` for every trial ending within
    /// [`REMINDER_LEAD`] of now that no paid subscription has replaced, once per trial (the outbox's keys make a
    /// second run, or a second replica, a no-op). Returns how many reminders were new. A trial that ends unpaid
    /// needs no job: the plan is derived from `trial_ends_at` and the clock, so it falls back to free exactly then.
    pub async fn remind_ending(&self, limit: u32) -> Result<u32, TrialError> {
        let now = self.ctx.clock.now();
        let ending = self.ctx.workspaces.trials_ending(now, now + REMINDER_LEAD, limit).await?;
        let mut reminded = 0;
        for workspace in ending {
            let Some(ends_at) = workspace.trial_ends_at else { continue };
            let tx = self.uow.begin().await?;
            tx.lock(&BillingSubject::Workspace(workspace.id.clone())).await?;
            let subscription = tx.subscriptions().current_for_workspace(&workspace.id).await?;
            if subscription.is_some_and(|s| s.status.grants_plan()) {
                continue;
            }
            let key =
                |channel: &str| format!("{channel}:trial_ending:workspace:{}:{}", workspace.id, ends_at.timestamp());
            let payload = json!({"trial_end": ends_at, "plan": workspace.trial_plan});
            let email = email(&workspace.id, key("email"), NotificationKind::TrialEnding, payload.clone());
            if tx.outbox().enqueue(&email, now).await? {
                tx.outbox()
                    .enqueue(&webhook(&workspace.id, key("webhook"), "billing.trial.ending", payload), now)
                    .await?;
                reminded += 1;
            }
            tx.commit().await?;
        }
        Ok(reminded)
    }
}

/// How long before a trial ends its owner is reminded.
pub const REMINDER_LEAD: chrono::Duration = chrono::Duration::days(3);
