//! Cancel, resume and change plan: checked against the subscription's state (`commands.rs`) before the processor
//! is asked, then the processor's answer is ingested as an observation through the one convergent path — stamped
//! with the time the request was sent, like a reconciliation repair — so the answer shows the change at once and
//! the webhooks that follow agree with it whatever order they arrive in.

use std::sync::Arc;

use serde_json::json;

use super::{Context, IngestOutcome, WebhookService, client_key};
use crate::catalog::UnknownPlan;
use crate::commands::{IllegalTransition, SubscriptionCommand, check_command};
use crate::error::{ProcessorError, StoreError};
use crate::events::{EventPayload, ProcessorEvent};
use crate::ids::{EventId, PlanId, WorkspaceId};
use crate::ports::{AuditLog, ChangePreview, IdGenerator, PaymentProcessor, Proration};
use crate::records::{Actor, AuditRecord};
use crate::subscription::{Subscription, SubscriptionStatus};

/// The event type of an API command's result in the inbox and audit log.
pub const COMMAND_EVENT_TYPE: &str = "tollgate.command";

/// Why a command was not carried out. Nothing changed, here or at the processor, unless it says so.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error("workspace not found")]
    WorkspaceNotFound,
    #[error("the workspace has no subscription")]
    NoSubscription,
    /// The request names a plan it cannot move to (unknown, a credits pack, the free plan, the current plan).
    #[error(transparent)]
    UnknownPlan(#[from] UnknownPlan),
    #[error("{0}")]
    BadPlan(IllegalTransition),
    /// Not allowed in the subscription's current state.
    #[error("{reason}")]
    Conflict { status: SubscriptionStatus, reason: IllegalTransition },
    /// The subscription lives at a processor that is not the active one.
    #[error("the subscription is managed by processor `{0}`, which is not the active one")]
    OtherProcessor(String),
    #[error(transparent)]
    Processor(#[from] ProcessorError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The processor carried the command out but its answer could not be applied here; the webhooks that follow
    /// (or reconciliation) will apply it.
    #[error("the processor changed the subscription but recording it failed: {0}")]
    NotRecorded(String),
    /// The processor's answer cannot apply here (recorded as a failed event for an operator).
    #[error("the processor's answer could not be applied: {0}")]
    NotApplied(String),
}

/// A command from the API.
#[derive(Debug, Clone)]
pub struct RunCommand {
    pub workspace_id: WorkspaceId,
    pub command: SubscriptionCommand,
    /// For a plan change; the service's default when `None`.
    pub proration: Option<Proration>,
    /// The caller's `Idempotency-Key`, folded into the processor's so a retry changes nothing twice.
    pub idempotency_key: Option<String>,
    pub actor: Actor,
    pub request_id: Option<String>,
}

/// Subscription commands.
pub struct SubscriptionService {
    ctx: Context,
    processor: Arc<dyn PaymentProcessor>,
    webhooks: Arc<WebhookService>,
    audit: Arc<dyn AuditLog>,
    ids: Arc<dyn IdGenerator>,
    default_proration: Proration,
}

impl SubscriptionService {
    pub fn new(
        ctx: Context,
        processor: Arc<dyn PaymentProcessor>,
        webhooks: Arc<WebhookService>,
        audit: Arc<dyn AuditLog>,
        ids: Arc<dyn IdGenerator>,
        default_proration: Proration,
    ) -> Self {
        Self { ctx, processor, webhooks, audit, ids, default_proration }
    }

    /// Checks `request.command`, has the processor carry it out, applies its answer, and returns the subscription
    /// as it now stands.
    pub async fn run(&self, request: RunCommand) -> Result<Subscription, SubscriptionError> {
        let workspace = &request.workspace_id;
        self.ctx.workspaces.get(workspace).await?.ok_or(SubscriptionError::WorkspaceNotFound)?;
        let current =
            self.ctx.subscriptions.current_for_workspace(workspace).await?.ok_or(SubscriptionError::NoSubscription)?;
        if current.processor != self.processor.id() {
            return Err(SubscriptionError::OtherProcessor(current.processor.to_string()));
        }
        if let SubscriptionCommand::ChangePlan { plan } = &request.command {
            self.ctx.catalog.require(plan.as_str())?;
        }
        check_command(&self.ctx.catalog, &current, &request.command).map_err(|reason| match reason {
            // Not a plan one can change to, whatever the subscription: the request's mistake (400). Already on
            // it is the subscription's state (409), as for any command its state refuses.
            IllegalTransition::NotASubscriptionPlan(_) => SubscriptionError::BadPlan(reason),
            reason => SubscriptionError::Conflict { status: current.status, reason },
        })?;

        let client_key = client_key(&request.actor, request.idempotency_key.as_deref(), self.ids.as_ref());
        let key = format!("{}:{}:{client_key}", command_name(&request.command), current.id);
        // The answer is an observation as of when the request was sent (like a reconciliation repair): a webhook
        // the processor sends after that is newer and wins. Full precision, so two commands in one second order by
        // when they were sent (the processor stamps its events in whole seconds: one of its own in the same second
        // as a command orders by the fixed same-second precedence until the next observation).
        let sent_at = self.ctx.clock.now();
        let snapshot = match &request.command {
            SubscriptionCommand::Cancel { at_period_end } => {
                self.processor.cancel(&current.id, *at_period_end, &key).await?
            }
            SubscriptionCommand::Resume => self.processor.resume(&current.id, &key).await?,
            SubscriptionCommand::ChangePlan { plan } => {
                let price = self.price_of(plan)?;
                let proration = request.proration.unwrap_or(self.default_proration);
                self.processor.change_price(&current.id, &price, proration, &key).await?
            }
        };
        self.ingest_answer(&current.processor, snapshot, &key, sent_at).await?;
        let after = self.ctx.subscriptions.get(&current.processor, &current.id).await?.unwrap_or(current.clone());
        let record = AuditRecord {
            workspace_id: workspace.clone(),
            action: format!("subscription.{}", command_name(&request.command)),
            actor: request.actor,
            before: Some(json!({"status": current.status, "plan": current.terms.plan_id,
                "cancel_at_period_end": current.terms.cancel_at_period_end})),
            after: Some(json!({"status": after.status, "plan": after.terms.plan_id,
                "cancel_at_period_end": after.terms.cancel_at_period_end, "idempotency_key": key})),
            request_id: request.request_id,
        };
        self.audit.append(&record, self.ctx.clock.now()).await?;
        Ok(after)
    }

    /// What changing the workspace's subscription to `plan` would bill now, as the processor says, under the
    /// default proration; the same checks as the change itself, and nothing changes.
    pub async fn preview_change(
        &self,
        workspace: &WorkspaceId,
        plan: &PlanId,
    ) -> Result<ChangePreview, SubscriptionError> {
        self.ctx.workspaces.get(workspace).await?.ok_or(SubscriptionError::WorkspaceNotFound)?;
        let current =
            self.ctx.subscriptions.current_for_workspace(workspace).await?.ok_or(SubscriptionError::NoSubscription)?;
        if current.processor != self.processor.id() {
            return Err(SubscriptionError::OtherProcessor(current.processor.to_string()));
        }
        self.ctx.catalog.require(plan.as_str())?;
        let command = SubscriptionCommand::ChangePlan { plan: plan.clone() };
        check_command(&self.ctx.catalog, &current, &command).map_err(|reason| match reason {
            IllegalTransition::NotASubscriptionPlan(_) => SubscriptionError::BadPlan(reason),
            reason => SubscriptionError::Conflict { status: current.status, reason },
        })?;
        let price = self.price_of(plan)?;
        Ok(self.processor.preview_price_change(&current.id, &price, self.default_proration).await?)
    }

    /// The proration plan changes use when the caller names none.
    pub fn default_proration(&self) -> Proration {
        self.default_proration
    }

    /// Ingests the processor's answer to a command sent at `sent_at` under `key` as an observation.
    async fn ingest_answer(
        &self,
        processor: &crate::ids::ProcessorId,
        snapshot: crate::events::SubscriptionSnapshot,
        key: &str,
        sent_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), SubscriptionError> {
        let event = ProcessorEvent {
            // The send time is part of the id: a retry with the same key is a new observation (the processor's
            // replayed answer), never a `Duplicate` of an attempt that did not apply.
            id: EventId::new(format!("command:{key}:{}", sent_at.timestamp_millis())),
            processor: processor.clone(),
            event_type: COMMAND_EVENT_TYPE.to_owned(),
            occurred_at: sent_at,
            payload: EventPayload::SubscriptionChanged(snapshot),
        };
        let raw = serde_json::to_string(&event).map_err(|e| SubscriptionError::NotRecorded(e.to_string()))?;
        match self.webhooks.ingest(&event, &raw).await {
            Ok(IngestOutcome::Applied | IngestOutcome::Duplicate) => Ok(()),
            // Recorded as failed for an operator (a price the catalog does not know): retrying cannot help.
            Ok(IngestOutcome::Failed { reason }) => Err(SubscriptionError::NotApplied(reason)),
            Ok(other) => Err(SubscriptionError::NotRecorded(format!("{other:?}"))),
            Err(error) => Err(SubscriptionError::NotRecorded(error.to_string())),
        }
    }

    /// Cancels subscription `id` of `processor` now under the processor idempotency `key` — that one, not
    /// whichever the workspace has now — and ingests the answer. `Ok(false)` when the processor refuses because
    /// it has ended already (the customer canceled it); a repeat with the same key (a retry after a crash)
    /// replays the first answer, `Ok(true)`.
    pub async fn cancel_now(
        &self,
        processor: &crate::ids::ProcessorId,
        id: &crate::ids::SubscriptionId,
        key: &str,
    ) -> Result<bool, SubscriptionError> {
        if *processor != self.processor.id() {
            return Err(SubscriptionError::OtherProcessor(processor.to_string()));
        }
        let sent_at = self.ctx.clock.now();
        let snapshot = match self.processor.cancel(id, false, key).await {
            Ok(snapshot) => snapshot,
            Err(ProcessorError::Rejected(_)) => return Ok(false),
            Err(other) => return Err(other.into()),
        };
        self.ingest_answer(processor, snapshot, key, sent_at).await?;
        Ok(true)
    }

    fn price_of(&self, plan: &PlanId) -> Result<crate::ids::PriceId, SubscriptionError> {
        let processor = self.processor.id();
        let plan = self.ctx.catalog.require(plan.as_str())?;
        plan.price_for(&processor)
            .cloned()
            .ok_or_else(|| SubscriptionError::BadPlan(IllegalTransition::NotASubscriptionPlan(plan.id.clone())))
    }
}

/// The command's name in audit actions and processor idempotency keys.
fn command_name(command: &SubscriptionCommand) -> &'static str {
    match command {
        SubscriptionCommand::Cancel { at_period_end: true } => "cancel_scheduled",
        SubscriptionCommand::Cancel { at_period_end: false } => "canceled_now",
        SubscriptionCommand::Resume => "resumed",
        SubscriptionCommand::ChangePlan { .. } => "plan_change_requested",
    }
}
