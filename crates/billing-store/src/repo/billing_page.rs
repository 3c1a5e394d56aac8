//! `PageLinks`: the nonce's primary key is the redemption (an insert that skips on conflict, so one of any number
//! of concurrent openings inserts it); `CreditHistory`: the newest ledger rows; `UsageHistory`: a range's events
//! summed per UTC day here (quantities are exact decimals kept as text).

use std::collections::BTreeMap;
use std::str::FromStr;

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::ids::WorkspaceId;
use billing_domain::ports::{CreditHistory, LedgerEntry, PageLinks, UsageHistory};
use billing_domain::usage::{UsageRange, UsageTotals};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Executor, Repo, insert_or_skip};
use crate::entities::{billing_page_link, credit_ledger, usage_event};
use crate::errors::{corrupt, map_db_err};

#[async_trait]
impl<C: Executor> PageLinks for Repo<C> {
    async fn redeem(
        &self,
        nonce: &str,
        workspace: &WorkspaceId,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        use billing_page_link::{ActiveModel, Column, Entity};
        let row = ActiveModel {
            nonce: Set(nonce.to_owned()),
            workspace_id: Set(workspace.as_str().to_owned()),
            redeemed_at: Set(now),
            expires_at: Set(expires_at),
        };
        insert_or_skip(&self.conn, Entity::insert(row).on_conflict_do_nothing_on([Column::Nonce])).await
    }

    async fn prune(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        use billing_page_link::{Column, Entity};
        let deleted =
            Entity::delete_many().filter(Column::ExpiresAt.lt(now)).exec(&self.conn).await.map_err(map_db_err)?;
        Ok(deleted.rows_affected)
    }
}

#[async_trait]
impl<C: Executor> CreditHistory for Repo<C> {
    async fn recent_ledger(&self, workspace: &WorkspaceId, limit: u32) -> Result<Vec<LedgerEntry>, StoreError> {
        use credit_ledger::{Column, Entity};
        let rows = Entity::find()
            .filter(Column::WorkspaceId.eq(workspace.as_str()))
            .order_by_desc(Column::Id)
            .limit(u64::from(limit))
            .all(&self.conn)
            .await
            .map_err(map_db_err)?;
        Ok(rows
            .into_iter()
            .map(|row| LedgerEntry {
                key: row.ledger_key,
                amount: row.amount,
                balance_after: row.balance_after,
                at: row.created_at,
            })
            .collect())
    }
}

#[async_trait]
impl<C: Executor> UsageHistory for Repo<C> {
    async fn daily_totals(
        &self,
        workspace: &WorkspaceId,
        range: UsageRange,
    ) -> Result<BTreeMap<NaiveDate, UsageTotals>, StoreError> {
        use usage_event::{Column, Entity};
        let rows = Entity::find()
            .select_only()
            .column(Column::Metric)
            .column(Column::Quantity)
            .column(Column::OccurredAt)
            .filter(Column::WorkspaceId.eq(workspace.as_str()))
            .filter(Column::OccurredAt.gte(range.start))
            .filter(Column::OccurredAt.lt(range.end))
            .into_tuple::<(String, String, DateTime<Utc>)>()
            .all(&self.conn)
            .await
            .map_err(map_db_err)?;
        let mut days: BTreeMap<NaiveDate, UsageTotals> = BTreeMap::new();
        for (metric, raw, at) in rows {
            let quantity = Decimal::from_str(&raw).map_err(|e| corrupt("usage_events.quantity", e))?;
            let day = days.entry(at.date_naive()).or_default();
            day.entry(metric).or_default().add(quantity).map_err(|e| StoreError::Other(e.to_string()))?;
        }
        Ok(days)
    }
}
