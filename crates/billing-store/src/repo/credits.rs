//! Credit grants and consumptions: one ledger row per key, the balance changed only by a conditional `UPDATE`.
//!
//! Both run in their own transaction (a savepoint inside the caller's) and take locks in one order, workspace
//! row first and ledger key second, so concurrent grants and consumptions queue instead of deadlocking. A ledger
//! key that turns up already used after the balance changed means another call won the race: the savepoint is
//! rolled back and nothing of ours remains.

use billing_domain::error::StoreError;
use billing_domain::ids::WorkspaceId;
use billing_domain::ports::ConsumeOutcome;
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};

use super::{Executor, Repo, insert_or_skip};
use crate::entities::{credit_ledger, workspace};
use crate::errors::map_db_err;

impl<C: Executor> Repo<C> {
    pub(crate) async fn grant(
        &self,
        id: &WorkspaceId,
        amount: i64,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if amount <= 0 {
            return Err(StoreError::Other(format!("credit grant of {amount} is not positive")));
        }
        // Cheap early answer for the common replay; the ledger insert below is what actually decides.
        if ledger_has(&self.conn, id, key).await? {
            return Ok(false);
        }
        let tx = self.begin_write().await?;
        let Some(balance) = add_to_balance(&tx, id, amount, None, now).await? else {
            return Err(StoreError::Other(format!("workspace {id} not found")));
        };
        if !insert_ledger(&tx, id, key, amount, balance, now).await? {
            tx.rollback().await.map_err(map_db_err)?;
            return Ok(false);
        }
        tx.commit().await.map_err(map_db_err)?;
        Ok(true)
    }

    pub(crate) async fn consume(
        &self,
        id: &WorkspaceId,
        amount: i64,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<ConsumeOutcome, StoreError> {
        if amount <= 0 {
            return Err(StoreError::Other(format!("credit consumption of {amount} is not positive")));
        }
        let tx = self.begin_write().await?;
        if ledger_has(&tx, id, key).await? {
            let balance = balance_of(&tx, id).await?;
            tx.rollback().await.map_err(map_db_err)?;
            return Ok(ConsumeOutcome::AlreadyConsumed { balance });
        }
        let Some(balance) = add_to_balance(&tx, id, -amount, Some(amount), now).await? else {
            // Too few credits, or a concurrent call with this key took them first (PostgreSQL re-reads the row
            // after waiting for its lock): only the ledger tells which.
            let used = ledger_has(&tx, id, key).await?;
            let balance = balance_of(&tx, id).await?;
            tx.rollback().await.map_err(map_db_err)?;
            return Ok(if used {
                ConsumeOutcome::AlreadyConsumed { balance }
            } else {
                ConsumeOutcome::Insufficient { balance }
            });
        };
        if !insert_ledger(&tx, id, key, -amount, balance, now).await? {
            tx.rollback().await.map_err(map_db_err)?;
            let balance = balance_of(&self.conn, id).await?;
            return Ok(ConsumeOutcome::AlreadyConsumed { balance });
        }
        tx.commit().await.map_err(map_db_err)?;
        Ok(ConsumeOutcome::Consumed { balance })
    }
}

async fn ledger_has<C: ConnectionTrait>(conn: &C, id: &WorkspaceId, key: &str) -> Result<bool, StoreError> {
    use credit_ledger::Column;
    let found = credit_ledger::Entity::find()
        .filter(Column::WorkspaceId.eq(id.as_str()))
        .filter(Column::LedgerKey.eq(key))
        .count(conn)
        .await
        .map_err(map_db_err)?;
    Ok(found > 0)
}

async fn balance_of<C: ConnectionTrait>(conn: &C, id: &WorkspaceId) -> Result<i64, StoreError> {
    workspace::Entity::find_by_id(id.as_str())
        .select_only()
        .column(workspace::Column::CreditBalance)
        .into_tuple::<i64>()
        .one(conn)
        .await
        .map_err(map_db_err)?
        .ok_or_else(|| StoreError::Other(format!("workspace {id} not found")))
}

/// `credit_balance += delta`, only where at least `at_least` credits remain when given; the new balance, or `None`
/// when no row matched. The condition is evaluated on the row as locked, so the balance never goes negative.
async fn add_to_balance(
    tx: &DatabaseTransaction,
    id: &WorkspaceId,
    delta: i64,
    at_least: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    use workspace::Column;
    let mut update = Query::update();
    update
        .table(workspace::Entity)
        .value(Column::CreditBalance, Expr::col(Column::CreditBalance).add(delta))
        .value(Column::UpdatedAt, now)
        .and_where(Column::Id.eq(id.as_str()))
        .returning_col(Column::CreditBalance);
    if let Some(minimum) = at_least {
        update.and_where(Expr::col(Column::CreditBalance).gte(minimum));
    }
    let row = tx.query_one(&update).await.map_err(map_db_err)?;
    row.map(|r| r.try_get::<i64>("", "credit_balance")).transpose().map_err(map_db_err)
}

async fn insert_ledger(
    tx: &DatabaseTransaction,
    id: &WorkspaceId,
    key: &str,
    amount: i64,
    balance_after: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    use credit_ledger::Column;
    let row = credit_ledger::ActiveModel {
        id: NotSet,
        workspace_id: Set(id.as_str().to_owned()),
        ledger_key: Set(key.to_owned()),
        amount: Set(amount),
        balance_after: Set(balance_after),
        created_at: Set(now),
    };
    let insert = credit_ledger::Entity::insert(row).on_conflict_do_nothing_on([Column::WorkspaceId, Column::LedgerKey]);
    insert_or_skip(tx, insert).await
}
