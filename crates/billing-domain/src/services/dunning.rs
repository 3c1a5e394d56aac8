//! The dunning job: runs each open case's due step once — also with several replicas, each step a
//! compare-and-set on the case under the workspace's lock — emailing the owner, announcing
//! `billing.dunning.step`, restricting the workspace at a `restrict` step and canceling the subscription at the
//! processor at the `cancel` step.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::SubscriptionService;
use super::webhooks::dunning::{audit, lift_restriction, summary};
use crate::dunning::{CaseStatus, CloseReason, DunningAction, DunningCase, DunningSchedule, RESTRICTED_REASON};
use crate::error::StoreError;
use crate::lifecycle::{email, webhook};
use crate::ports::{BillingSubject, Clock, UnitOfWork};
use crate::records::{Actor, NotificationKind};

/// How long a case whose step failed waits before the job tries it again.
pub const RETRY_FAILED_STEP: chrono::Duration = chrono::Duration::hours(1);

/// The actor of every change the job makes.
pub const DUNNING_JOB: &str = "dunning";

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DunningReport {
    /// Steps run: case id and step.
    pub steps: Vec<(i64, DunningAction)>,
    /// Cases closed because their subscription ended some other way.
    pub closed: usize,
    /// Cases whose step could not run now (tried again next run): case id and why.
    pub failed: Vec<(i64, String)>,
}

enum Outcome {
    Ran(DunningAction),
    /// Not due yet by the schedule: looked at again then.
    Rescheduled,
    Closed,
    /// Another worker got there first, or the case closed meanwhile.
    Skipped,
}

/// How the `cancel` step ends a subscription: the case's own subscription, at the processor, under a key of the
/// case, so that two workers (or a retry after a crash) cancel once and get the same answer. Done by
/// [`SubscriptionService`] in the product.
#[async_trait]
pub trait CancelForNonPayment: Send + Sync {
    /// Cancels the case's subscription now: `Ok(true)` when this key canceled it (now or in an earlier
    /// attempt), `Ok(false)` when it had ended some other way.
    async fn cancel_now(&self, case: &DunningCase) -> Result<bool, String>;
}

#[async_trait]
impl CancelForNonPayment for SubscriptionService {
    async fn cancel_now(&self, case: &DunningCase) -> Result<bool, String> {
        let Some(subscription) = &case.subscription_id else { return Ok(false) };
        let key = format!("tollgate:dunning:{}:cancel", case.id);
        self.cancel_now(&case.processor, subscription, &key)
            .await
            .map_err(|error| format!("canceling the subscription: {error}"))
    }
}

/// Runs dunning schedules.
pub struct DunningService {
    uow: Arc<dyn UnitOfWork>,
    cancel: Arc<dyn CancelForNonPayment>,
    schedule: DunningSchedule,
    clock: Arc<dyn Clock>,
}

impl DunningService {
    pub fn new(
        uow: Arc<dyn UnitOfWork>,
        cancel: Arc<dyn CancelForNonPayment>,
        schedule: DunningSchedule,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { uow, cancel, schedule, clock }
    }

    /// Runs the due step of up to `limit` cases.
    pub async fn run_due(&self, limit: u32) -> Result<DunningReport, StoreError> {
        let now = self.clock.now();
        let mut report = DunningReport::default();
        let due = {
            let tx = self.uow.begin().await?;
            tx.dunning().due(now, limit).await?
        };
        for case in due {
            match self.run_step(&case, now).await {
                Ok(Outcome::Ran(action)) => report.steps.push((case.id, action)),
                Ok(Outcome::Closed) => report.closed += 1,
                Ok(Outcome::Rescheduled | Outcome::Skipped) => {}
                Err(error) => {
                    // Looked at again later, not on every run: a step that keeps failing (the processor down, a
                    // subscription it no longer knows) must not crowd out the cases behind it.
                    // Should the store fail too, the step stays due and the next run tries again.
                    let _ = self.park(&case, Some(now + RETRY_FAILED_STEP)).await;
                    report.failed.push((case.id, error));
                }
            }
        }
        Ok(report)
    }

    async fn run_step(&self, case: &DunningCase, now: DateTime<Utc>) -> Result<Outcome, String> {
        let index = case.next_step;
        let (Some(step), Some(due_at)) = (self.schedule.step(index), self.schedule.due_at(case.opened_at, index))
        else {
            // The schedule was shortened under a running case: nothing is left to run; it waits for payment.
            self.park(case, None).await.map_err(|e| e.to_string())?;
            return Ok(Outcome::Skipped);
        };
        if due_at > now {
            self.park(case, Some(due_at)).await.map_err(|e| e.to_string())?;
            return Ok(Outcome::Rescheduled);
        }
        // The processor first, under a key of this case: a worker that dies after it leaves the step to run
        // again, and that run gets the same answer. Only for a case still at this step (a payment may have
        // closed it since the due list was read).
        let mut ended_elsewhere = false;
        if step.action == DunningAction::Cancel {
            if !self.still_at(case).await.map_err(|e| e.to_string())? {
                return Ok(Outcome::Skipped);
            }
            ended_elsewhere = !self.cancel.cancel_now(case).await?;
        }
        self.record_step(case, step.action, step.day, ended_elsewhere, now).await.map_err(|e| e.to_string())
    }

    /// Whether `case` is still open at the step it was read at.
    async fn still_at(&self, case: &DunningCase) -> Result<bool, StoreError> {
        let tx = self.uow.begin().await?;
        let current = tx.dunning().get_case(case.id).await?;
        Ok(current.is_some_and(|c| c.status == CaseStatus::Open && c.next_step == case.next_step))
    }

    /// Looks at `case` again at `at` (never, when `None`: no step is left) without running a step.
    async fn park(&self, case: &DunningCase, at: Option<DateTime<Utc>>) -> Result<(), StoreError> {
        let tx = self.uow.begin().await?;
        match at {
            Some(at) => tx.dunning().reschedule(case.id, case.next_step, at).await?,
            None => tx.dunning().advance(case.id, case.next_step, None).await?,
        };
        tx.commit().await
    }

    async fn record_step(
        &self,
        seen: &DunningCase,
        action: DunningAction,
        day: u32,
        ended_elsewhere: bool,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let workspace = &seen.workspace_id;
        let actor = Actor::System { job: DUNNING_JOB.into() };
        let tx = self.uow.begin().await?;
        tx.lock(&BillingSubject::Workspace(workspace.clone())).await?;
        let Some(case) = tx.dunning().get_case(seen.id).await? else { return Ok(Outcome::Skipped) };
        if case.status != CaseStatus::Open || case.next_step != seen.next_step {
            return Ok(Outcome::Skipped);
        }
        // A subscription that ended some other way leaves nothing to collect.
        let subscription = match &case.subscription_id {
            Some(id) => tx.subscriptions().get(&case.processor, id).await?,
            None => None,
        };
        let ended = ended_elsewhere
            || (action != DunningAction::Cancel && subscription.as_ref().is_some_and(|s| s.status.is_terminal()));
        if ended {
            let reason = CloseReason::SubscriptionEnded;
            close_all(tx.as_ref(), workspace, reason, now).await?;
            lift_restriction(tx.as_ref(), workspace, now).await?;
            let after = json!({"status": "closed", "reason": reason.as_str()});
            tx.audit().append(&audit(&case, "dunning.closed", &actor, Some(summary(&case)), Some(after)), now).await?;
            tx.commit().await?;
            return Ok(Outcome::Closed);
        }
        let next_at = self.schedule.due_at(case.opened_at, case.next_step + 1);
        match action {
            DunningAction::Restrict => {
                // An operator's restriction (another reason) stays as it is, and so stays after payment.
                let current = tx.workspaces().get(workspace).await?;
                if current.is_some_and(|w| !w.restricted) {
                    tx.workspaces().set_restricted(workspace, true, Some(RESTRICTED_REASON.into()), now).await?;
                }
            }
            DunningAction::Cancel => {
                close_all(tx.as_ref(), workspace, CloseReason::Canceled, now).await?;
                lift_restriction(tx.as_ref(), workspace, now).await?;
            }
            DunningAction::Reminder | DunningAction::Urgent | DunningAction::FinalWarning => {}
        }
        if action != DunningAction::Cancel && !tx.dunning().advance(case.id, case.next_step, next_at).await? {
            return Ok(Outcome::Skipped);
        }
        let details = json!({
            "case_id": case.id, "step": action.as_str(), "day": day, "invoice_id": case.invoice_id,
            "amount": case.amount, "next_step_at": next_at,
        });
        let key = |channel: &str| format!("{channel}:dunning:{}:{}", case.id, case.next_step);
        let outbox = [
            email(workspace, key("email"), NotificationKind::DunningStep, details.clone()),
            webhook(workspace, key("webhook"), "billing.dunning.step", details.clone()),
        ];
        for message in &outbox {
            tx.outbox().enqueue(message, now).await?;
        }
        tx.audit().append(&audit(&case, "dunning.step", &actor, Some(summary(&case)), Some(details)), now).await?;
        tx.commit().await?;
        Ok(Outcome::Ran(action))
    }
}

/// Closes every unpaid invoice of the workspace's case: nothing is left to collect.
async fn close_all(
    tx: &dyn crate::ports::Transaction,
    workspace: &crate::ids::WorkspaceId,
    reason: CloseReason,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    while let Some(open) = tx.dunning().open_case(workspace).await? {
        tx.dunning().close(open.id, reason, now).await?;
    }
    Ok(())
}
