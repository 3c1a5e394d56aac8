//! `DunningRepository`: cases opened and closed with the events that cause them, stepped by compare-and-set.

use async_trait::async_trait;
use billing_domain::dunning::{CaseStatus, CloseReason, DunningCase, NewCase};
use billing_domain::error::StoreError;
use billing_domain::ids::{InvoiceId, ProcessorId, SubscriptionId, WorkspaceId};
use billing_domain::money::{Currency, Money};
use billing_domain::ports::DunningRepository;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::NotSet, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use super::{Executor, Repo, insert_or_skip};
use crate::entities::dunning_case::{self, Column, Entity};
use crate::errors::{corrupt, map_db_err};

const OPEN: &str = "open";
const CLOSED: &str = "closed";

fn row(case: &NewCase, status: &str, reason: Option<CloseReason>) -> dunning_case::ActiveModel {
    let open = status == OPEN;
    dunning_case::ActiveModel {
        id: NotSet,
        workspace_id: Set(case.workspace_id.as_str().to_owned()),
        processor: Set(case.processor.as_str().to_owned()),
        invoice_id: Set(case.invoice_id.as_str().to_owned()),
        subscription_id: Set(case.subscription_id.as_ref().map(|s| s.as_str().to_owned())),
        amount_minor: Set(case.amount.minor),
        currency: Set(case.amount.currency.as_str().to_owned()),
        status: Set(status.to_owned()),
        next_step: Set(0),
        next_step_at: Set(case.first_step_at.filter(|_| open)),
        opened_at: Set(case.opened_at),
        closed_at: Set((!open).then_some(case.opened_at)),
        closed_reason: Set(reason.map(|r| r.as_str().to_owned())),
    }
}

fn from_row(m: dunning_case::Model) -> Result<DunningCase, StoreError> {
    let status = match m.status.as_str() {
        OPEN => CaseStatus::Open,
        CLOSED => CaseStatus::Closed,
        other => return Err(corrupt("dunning_cases.status", other)),
    };
    let closed_reason = match m.closed_reason.as_deref() {
        None => None,
        Some("paid") => Some(CloseReason::Paid),
        Some("canceled") => Some(CloseReason::Canceled),
        Some("subscription_ended") => Some(CloseReason::SubscriptionEnded),
        Some(other) => return Err(corrupt("dunning_cases.closed_reason", other)),
    };
    Ok(DunningCase {
        id: m.id,
        workspace_id: WorkspaceId::parse(m.workspace_id).map_err(|e| corrupt("dunning_cases.workspace_id", e))?,
        processor: ProcessorId::new(m.processor),
        invoice_id: InvoiceId::new(m.invoice_id),
        subscription_id: m.subscription_id.map(SubscriptionId::new),
        amount: Money::new(
            m.amount_minor,
            Currency::parse(&m.currency).map_err(|e| corrupt("dunning_cases.currency", e))?,
        ),
        status,
        next_step: u32::try_from(m.next_step).map_err(|e| corrupt("dunning_cases.next_step", e))?,
        next_step_at: m.next_step_at,
        opened_at: m.opened_at,
        closed_at: m.closed_at,
        closed_reason,
    })
}

/// A step index as its column stores it.
fn step_column(step: u32) -> Result<i32, StoreError> {
    i32::try_from(step).map_err(|e| StoreError::Other(format!("dunning step {step}: {e}")))
}

impl<C: Executor> Repo<C> {
    async fn one_case(&self, query: sea_orm::Select<Entity>) -> Result<Option<DunningCase>, StoreError> {
        query.one(&self.conn).await.map_err(map_db_err)?.map(from_row).transpose()
    }
}

#[async_trait]
impl<C: Executor> DunningRepository for Repo<C> {
    async fn get_case(&self, id: i64) -> Result<Option<DunningCase>, StoreError> {
        self.one_case(Entity::find_by_id(id)).await
    }

    async fn open_case(&self, workspace: &WorkspaceId) -> Result<Option<DunningCase>, StoreError> {
        let query = Entity::find().filter(Column::WorkspaceId.eq(workspace.as_str())).filter(Column::Status.eq(OPEN));
        self.one_case(query.order_by_asc(Column::Id)).await
    }

    async fn latest_case(&self, workspace: &WorkspaceId) -> Result<Option<DunningCase>, StoreError> {
        let query = Entity::find().filter(Column::WorkspaceId.eq(workspace.as_str()));
        self.one_case(query.order_by_desc(Column::Id)).await
    }

    async fn case_for_invoice(
        &self,
        workspace: &WorkspaceId,
        invoice: &InvoiceId,
    ) -> Result<Option<DunningCase>, StoreError> {
        let query = Entity::find()
            .filter(Column::WorkspaceId.eq(workspace.as_str()))
            .filter(Column::InvoiceId.eq(invoice.as_str()));
        self.one_case(query).await
    }

    #[tracing::instrument(skip_all, fields(workspace_id = %case.workspace_id, invoice_id = %case.invoice_id))]
    async fn open(&self, case: &NewCase) -> Result<DunningCase, StoreError> {
        let insert =
            Entity::insert(row(case, OPEN, None)).on_conflict_do_nothing_on([Column::WorkspaceId, Column::InvoiceId]);
        if !insert_or_skip(&self.conn, insert).await? {
            return Err(StoreError::Duplicate(format!("a dunning case for invoice {}", case.invoice_id)));
        }
        self.case_for_invoice(&case.workspace_id, &case.invoice_id)
            .await?
            .ok_or_else(|| StoreError::Other("the dunning case just opened is not there".into()))
    }

    async fn insert_closed(&self, case: &NewCase, reason: CloseReason) -> Result<(), StoreError> {
        let insert = Entity::insert(row(case, CLOSED, Some(reason)))
            .on_conflict_do_nothing_on([Column::WorkspaceId, Column::InvoiceId]);
        insert_or_skip(&self.conn, insert).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(case_id = id))]
    async fn close(&self, id: i64, reason: CloseReason, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let updated = Entity::update_many()
            .col_expr(Column::Status, Expr::value(CLOSED))
            .col_expr(Column::ClosedReason, Expr::value(reason.as_str()))
            .col_expr(Column::ClosedAt, Expr::value(now))
            .col_expr(Column::NextStepAt, Expr::value(Option::<DateTime<Utc>>::None))
            .filter(Column::Id.eq(id))
            .filter(Column::Status.eq(OPEN))
            .exec(&self.conn)
            .await
            .map_err(map_db_err)?;
        Ok(updated.rows_affected == 1)
    }

    #[tracing::instrument(skip_all, fields(case_id = id, from))]
    async fn advance(&self, id: i64, from: u32, next_at: Option<DateTime<Utc>>) -> Result<bool, StoreError> {
        let from = step_column(from)?;
        let updated = Entity::update_many()
            .col_expr(Column::NextStep, Expr::value(from + 1))
            .col_expr(Column::NextStepAt, Expr::value(next_at))
            .filter(Column::Id.eq(id))
            .filter(Column::Status.eq(OPEN))
            .filter(Column::NextStep.eq(from))
            .exec(&self.conn)
            .await
            .map_err(map_db_err)?;
        Ok(updated.rows_affected == 1)
    }

    async fn reschedule(&self, id: i64, step: u32, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let step = step_column(step)?;
        let updated = Entity::update_many()
            .col_expr(Column::NextStepAt, Expr::value(at))
            .filter(Column::Id.eq(id))
            .filter(Column::Status.eq(OPEN))
            .filter(Column::NextStep.eq(step))
            .exec(&self.conn)
            .await
            .map_err(map_db_err)?;
        Ok(updated.rows_affected == 1)
    }

    async fn adopt(
        &self,
        id: i64,
        next_step: u32,
        next_step_at: Option<DateTime<Utc>>,
        opened_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let step = step_column(next_step)?;
        Entity::update_many()
            .col_expr(Column::NextStep, Expr::value(step))
            .col_expr(Column::NextStepAt, Expr::value(next_step_at))
            .col_expr(Column::OpenedAt, Expr::value(opened_at))
            .filter(Column::Id.eq(id))
            .exec(&self.conn)
            .await
            .map_err(map_db_err)?;
        Ok(())
    }

    async fn due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<DunningCase>, StoreError> {
        let rows = Entity::find()
            .filter(Column::Status.eq(OPEN))
            .filter(Column::NextStepAt.lte(now))
            .order_by_asc(Column::NextStepAt)
            .order_by_asc(Column::Id)
            .limit(u64::from(limit))
            .all(&self.conn)
            .await
            .map_err(map_db_err)?;
        rows.into_iter().map(from_row).collect()
    }
}
