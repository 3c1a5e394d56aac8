//! Consuming credits: atomic at the store (a conditional update and a unique ledger key in one transaction), so
//! concurrent consumers never take the balance below zero and a key is consumed once; audited and announced in
//! the same transaction when it consumes.

use std::sync::Arc;

use serde_json::json;

use super::Context;
use crate::credits::{consume_key, validate_consumption};
use crate::error::{StoreError, ValidationError};
use crate::ids::WorkspaceId;
use crate::lifecycle::{CreditChange, credits_changed};
use crate::ports::{ConsumeOutcome, UnitOfWork};
use crate::records::{Actor, AuditRecord};

#[derive(Debug, thiserror::Error)]
pub enum CreditError {
    #[error("workspace not found")]
    WorkspaceNotFound,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A consumption from the API.
#[derive(Debug, Clone)]
pub struct Consume {
    pub workspace_id: WorkspaceId,
    pub amount: i64,
    /// The caller's key for this consumption: the same key consumes once, whenever it is sent again.
    pub idempotency_key: String,
    pub actor: Actor,
    pub request_id: Option<String>,
}

/// Credit use cases.
pub struct CreditService {
    ctx: Context,
    uow: Arc<dyn UnitOfWork>,
}

impl CreditService {
    pub fn new(ctx: Context, uow: Arc<dyn UnitOfWork>) -> Self {
        Self { ctx, uow }
    }

    /// Takes `amount` credits unless that would go below zero; `Insufficient` carries the balance that stands. A
    /// consumption is audited and announced (`billing.credits.changed`) in the transaction that takes it.
    pub async fn consume(&self, request: Consume) -> Result<ConsumeOutcome, CreditError> {
        validate_consumption(request.amount, &request.idempotency_key)?;
        let workspace = &request.workspace_id;
        self.ctx.workspaces.get(workspace).await?.ok_or(CreditError::WorkspaceNotFound)?;
        let now = self.ctx.clock.now();
        let key = consume_key(&request.idempotency_key);
        let tx = self.uow.begin().await?;
        let outcome = tx.workspaces().consume_credits(workspace, request.amount, &key, now).await?;
        if let ConsumeOutcome::Consumed { balance } = outcome {
            let record = AuditRecord {
                workspace_id: workspace.clone(),
                action: "credits.consumed".into(),
                actor: request.actor,
                before: Some(json!({"balance": balance + request.amount})),
                after: Some(json!({"balance": balance, "amount": request.amount, "ledger_key": key})),
                request_id: request.request_id.clone(),
            };
            tx.audit().append(&record, now).await?;
            let mut announced = credits_changed(workspace, &key, -request.amount, balance, CreditChange::Consumed);
            announced.request_id = request.request_id;
            tx.outbox().enqueue(&announced, now).await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }
}
