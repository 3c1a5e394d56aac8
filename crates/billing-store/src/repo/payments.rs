//! `PaymentRepository`: every write of a payment is a compare-and-set on its `version`; a refund's reservation
//! also checks `refunded_minor + amount <= amount_minor` in the same statement, so of any number of concurrent
//! refunds only those that fit what was paid are reserved.

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::ids::{CustomerId, PaymentId, PlanId, ProcessorId, RefundId, WorkspaceId};
use billing_domain::money::{Currency, Money};
use billing_domain::payment::{Payment, PaymentObservation, PaymentStatus, RefundReason, RefundRecord, RefundStatus};
use billing_domain::ports::{PaymentRepository, RefundReservation, RefundSettlement};
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Executor, Repo, insert_or_skip};
use crate::entities::{payment, refund};
use crate::errors::{corrupt, map_db_err};

/// How often a write retries a compare-and-set another writer won before reporting `Conflict`.
const CAS_ATTEMPTS: u32 = 8;

#[async_trait]
impl<C: Executor> PaymentRepository for Repo<C> {
    async fn get(&self, id: &PaymentId) -> Result<Option<Payment>, StoreError> {
        read(&self.conn, id).await
    }

    #[tracing::instrument(skip_all, fields(payment_id = %observation.id))]
    async fn observe(&self, observation: &PaymentObservation, now: DateTime<Utc>) -> Result<Payment, StoreError> {
        for _ in 0..CAS_ATTEMPTS {
            let Some(known) = read(&self.conn, &observation.id).await? else {
                let fresh = Payment::from_observation(observation, now);
                let insert = payment::Entity::insert(to_row(&fresh)).on_conflict_do_nothing_on([payment::Column::Id]);
                if insert_or_skip(&self.conn, insert).await? {
                    return Ok(fresh);
                }
                continue;
            };
            let next = known.merged(observation, now);
            // Nothing new (a redelivery): no write, so replays do not contend on the row.
            if (Payment { updated_at: known.updated_at, ..next.clone() }) == known {
                return Ok(known);
            }
            if let Some(written) = write(&self.conn, &next, known.version).await? {
                return Ok(written);
            }
        }
        Err(StoreError::Conflict(format!("payment {} kept changing", observation.id)))
    }

    async fn list_for_workspace(
        &self,
        workspace: &WorkspaceId,
        limit: u32,
        starting_after: Option<PaymentId>,
    ) -> Result<Vec<Payment>, StoreError> {
        use payment::Column;
        let mut query = payment::Entity::find().filter(Column::WorkspaceId.eq(workspace.as_str()));
        if let Some(cursor) = starting_after {
            // The service checks the cursor first; one that vanished meanwhile ends the listing.
            let Some(cursor) = read(&self.conn, &cursor).await?.filter(|p| &p.workspace_id == workspace) else {
                return Ok(Vec::new());
            };
            query = query.filter(Condition::any().add(Column::CreatedAt.lt(cursor.created_at)).add(
                Condition::all().add(Column::CreatedAt.eq(cursor.created_at)).add(Column::Id.lt(cursor.id.as_str())),
            ));
        }
        query
            .order_by_desc(Column::CreatedAt)
            .order_by_desc(Column::Id)
            .limit(u64::from(limit))
            .all(&self.conn)
            .await
            .map_err(map_db_err)?
            .into_iter()
            .map(payment_from_row)
            .collect()
    }

    #[tracing::instrument(skip_all, fields(payment_id = %refund.payment_id, refund_id = %refund.id))]
    async fn reserve_refund(&self, refund: &RefundRecord, now: DateTime<Utc>) -> Result<RefundReservation, StoreError> {
        use payment::Column;
        let amount = refund.amount.minor;
        let tx = self.begin_write().await?;
        if let Some(existing) = by_request_key(&tx, refund).await? {
            return Ok(RefundReservation::Existing(Box::new(existing)));
        }
        let reserved = payment::Entity::update_many()
            .col_expr(Column::RefundedMinor, Expr::col(Column::RefundedMinor).add(amount))
            .col_expr(Column::Version, Expr::col(Column::Version).add(1))
            .col_expr(Column::UpdatedAt, Expr::value(now))
            .filter(Column::Id.eq(refund.payment_id.as_str()))
            .filter(Column::Status.eq(PaymentStatus::Succeeded.as_str()))
            .filter(Column::Currency.eq(refund.amount.currency.as_str()))
            .filter(Expr::col(Column::RefundedMinor).add(amount).lte(Expr::col(Column::AmountMinor)))
            .exec(&tx)
            .await
            .map_err(map_db_err)?;
        let current = read(&tx, &refund.payment_id).await?;
        if reserved.rows_affected == 0 {
            return Ok(match current {
                None => RefundReservation::NotFound,
                Some(p) if p.status != PaymentStatus::Succeeded => RefundReservation::NotRefundable(p.status),
                Some(p) => RefundReservation::Exceeds { refundable: p.refundable() },
            });
        }
        let current = current.ok_or_else(|| StoreError::Other("a reserved payment vanished".into()))?;
        let insert = refund::Entity::insert(refund_row(refund, now))
            .on_conflict_do_nothing_on([refund::Column::PaymentId, refund::Column::RequestKey]);
        if !insert_or_skip(&tx, insert).await? {
            // A retry with the same key got in first (on PostgreSQL, while this one waited for the row).
            tx.rollback().await.map_err(map_db_err)?;
            let existing = by_request_key(&self.conn, refund).await?;
            return existing
                .map(|r| RefundReservation::Existing(Box::new(r)))
                .ok_or_else(|| StoreError::Conflict(format!("refund {} lost its request key", refund.id)));
        }
        tx.commit().await.map_err(map_db_err)?;
        Ok(RefundReservation::Reserved(Box::new(current)))
    }

    #[tracing::instrument(skip_all, fields(refund_id = %id, status = settlement.status.as_str()))]
    async fn settle_refund(
        &self,
        id: &RefundId,
        settlement: &RefundSettlement,
        now: DateTime<Utc>,
    ) -> Result<Payment, StoreError> {
        use refund::Column;
        let tx = self.begin_write().await?;
        let row = refund::Entity::find_by_id(id.as_str())
            .one(&tx)
            .await
            .map_err(map_db_err)?
            .ok_or_else(|| StoreError::Other(format!("no refund {id} to settle")))?;
        let record = refund_from_row(row)?;
        let settled = refund::Entity::update_many()
            .col_expr(Column::Status, Expr::value(settlement.status.as_str()))
            .col_expr(Column::ProcessorRefundId, Expr::value(settlement.processor_refund_id.clone()))
            .col_expr(Column::UpdatedAt, Expr::value(now))
            .filter(Column::Id.eq(id.as_str()))
            .filter(Column::Status.eq(RefundStatus::Pending.as_str()))
            .exec(&tx)
            .await
            .map_err(map_db_err)?;
        let mut payment = read(&tx, &record.payment_id)
            .await?
            .ok_or_else(|| StoreError::Other(format!("refund {id} of a missing payment")))?;
        if settled.rows_affected > 0 && settlement.status == RefundStatus::Failed {
            payment = give_back(&tx, payment, record.amount.minor, now).await?;
        }
        tx.commit().await.map_err(map_db_err)?;
        Ok(payment)
    }

    async fn pending_refunds(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<RefundRecord>, StoreError> {
        refund::Entity::find()
            .filter(refund::Column::Status.eq(RefundStatus::Pending.as_str()))
            .filter(refund::Column::CreatedAt.lt(before))
            .order_by_asc(refund::Column::CreatedAt)
            .order_by_asc(refund::Column::Id)
            .limit(u64::from(limit))
            .all(&self.conn)
            .await
            .map_err(map_db_err)?
            .into_iter()
            .map(refund_from_row)
            .collect()
    }

    async fn refunds_of(&self, payment: &PaymentId) -> Result<Vec<RefundRecord>, StoreError> {
        refund::Entity::find()
            .filter(refund::Column::PaymentId.eq(payment.as_str()))
            .order_by_asc(refund::Column::CreatedAt)
            .order_by_asc(refund::Column::Id)
            .all(&self.conn)
            .await
            .map_err(map_db_err)?
            .into_iter()
            .map(refund_from_row)
            .collect()
    }
}

/// The refund of `refund`'s payment with its request key, if it has one and it was recorded.
async fn by_request_key<T: ConnectionTrait>(
    conn: &T,
    refund: &RefundRecord,
) -> Result<Option<RefundRecord>, StoreError> {
    let Some(key) = &refund.request_key else { return Ok(None) };
    let row = refund::Entity::find()
        .filter(refund::Column::PaymentId.eq(refund.payment_id.as_str()))
        .filter(refund::Column::RequestKey.eq(key.as_str()))
        .one(conn)
        .await
        .map_err(map_db_err)?;
    row.map(refund_from_row).transpose()
}

/// Releases `amount` of `payment`'s reservation, retrying the compare-and-set against concurrent writers.
async fn give_back<T: ConnectionTrait>(
    conn: &T,
    mut payment: Payment,
    amount: i64,
    now: DateTime<Utc>,
) -> Result<Payment, StoreError> {
    for _ in 0..CAS_ATTEMPTS {
        let next = payment.released(amount, now);
        if let Some(written) = write(conn, &next, payment.version).await? {
            return Ok(written);
        }
        payment = read(conn, &payment.id)
            .await?
            .ok_or_else(|| StoreError::Other(format!("payment {} vanished", payment.id)))?;
    }
    Err(StoreError::Conflict(format!("payment {} kept changing", payment.id)))
}

async fn read<T: ConnectionTrait>(conn: &T, id: &PaymentId) -> Result<Option<Payment>, StoreError> {
    let row = payment::Entity::find_by_id(id.as_str()).one(conn).await.map_err(map_db_err)?;
    row.map(payment_from_row).transpose()
}

/// Writes `next` if the row is still at `version`; `None` when another writer got there first.
async fn write<T: ConnectionTrait>(conn: &T, next: &Payment, version: i64) -> Result<Option<Payment>, StoreError> {
    use payment::Column;
    let updated = payment::Entity::update_many()
        .col_expr(Column::Status, Expr::value(next.status.as_str()))
        .col_expr(Column::RefundedMinor, Expr::value(next.refunded))
        .col_expr(Column::ProcessorRefundedMinor, Expr::value(next.processor_refunded))
        .col_expr(Column::PlanId, Expr::value(next.plan_id.as_ref().map(|p| p.as_str().to_owned())))
        .col_expr(Column::Description, Expr::value(next.description.clone()))
        .col_expr(Column::UpdatedAt, Expr::value(next.updated_at))
        .col_expr(Column::Version, Expr::value(version + 1))
        .filter(Column::Id.eq(next.id.as_str()))
        .filter(Column::Version.eq(version))
        .exec(conn)
        .await
        .map_err(map_db_err)?;
    Ok((updated.rows_affected > 0).then(|| Payment { version: version + 1, ..next.clone() }))
}

fn to_row(p: &Payment) -> payment::ActiveModel {
    payment::ActiveModel {
        id: Set(p.id.as_str().to_owned()),
        processor: Set(p.processor.as_str().to_owned()),
        workspace_id: Set(p.workspace_id.as_str().to_owned()),
        customer_id: Set(p.customer_id.as_str().to_owned()),
        amount_minor: Set(p.amount.minor),
        currency: Set(p.amount.currency.as_str().to_owned()),
        status: Set(p.status.as_str().to_owned()),
        refunded_minor: Set(p.refunded),
        processor_refunded_minor: Set(p.processor_refunded),
        plan_id: Set(p.plan_id.as_ref().map(|id| id.as_str().to_owned())),
        description: Set(p.description.clone()),
        version: Set(p.version),
        created_at: Set(p.created_at),
        updated_at: Set(p.updated_at),
    }
}

fn payment_from_row(row: payment::Model) -> Result<Payment, StoreError> {
    Ok(Payment {
        workspace_id: WorkspaceId::parse(row.workspace_id).map_err(|e| corrupt("payments.workspace_id", e))?,
        amount: Money::new(
            row.amount_minor,
            Currency::parse(&row.currency).map_err(|e| corrupt("payments.currency", e))?,
        ),
        status: PaymentStatus::parse(&row.status).ok_or_else(|| corrupt("payments.status", &row.status))?,
        id: PaymentId::new(row.id),
        processor: ProcessorId::new(row.processor),
        customer_id: CustomerId::new(row.customer_id),
        refunded: row.refunded_minor,
        processor_refunded: row.processor_refunded_minor,
        plan_id: row.plan_id.map(PlanId::new),
        description: row.description,
        created_at: row.created_at,
        updated_at: row.updated_at,
        version: row.version,
    })
}

fn refund_row(r: &RefundRecord, now: DateTime<Utc>) -> refund::ActiveModel {
    refund::ActiveModel {
        id: Set(r.id.as_str().to_owned()),
        payment_id: Set(r.payment_id.as_str().to_owned()),
        amount_minor: Set(r.amount.minor),
        currency: Set(r.amount.currency.as_str().to_owned()),
        status: Set(r.status.as_str().to_owned()),
        reason: Set(r.reason.map(|reason| reason.as_str().to_owned())),
        processor_refund_id: Set(r.processor_refund_id.clone()),
        request_key: Set(r.request_key.clone()),
        created_at: Set(r.created_at),
        updated_at: Set(now),
    }
}

fn refund_from_row(row: refund::Model) -> Result<RefundRecord, StoreError> {
    let reason = match row.reason {
        Some(word) => Some(RefundReason::parse(&word).ok_or_else(|| corrupt("refunds.reason", &word))?),
        None => None,
    };
    Ok(RefundRecord {
        amount: Money::new(
            row.amount_minor,
            Currency::parse(&row.currency).map_err(|e| corrupt("refunds.currency", e))?,
        ),
        status: RefundStatus::parse(&row.status).ok_or_else(|| corrupt("refunds.status", &row.status))?,
        id: RefundId::new(row.id),
        payment_id: PaymentId::new(row.payment_id),
        reason,
        processor_refund_id: row.processor_refund_id,
        request_key: row.request_key,
        created_at: row.created_at,
    })
}
