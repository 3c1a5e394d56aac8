//! `CouponRepository`: a redemption is a compare-and-set on `used_count` and a unique (code, workspace) row, in one
//! transaction, so the last use goes to exactly one of any number of concurrent checkouts.

use async_trait::async_trait;
use billing_domain::coupon::{Coupon, Discount};
use billing_domain::error::StoreError;
use billing_domain::ids::{PlanId, WorkspaceId};
use billing_domain::money::{Currency, Money};
use billing_domain::ports::{CouponRepository, Redemption};
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Executor, Repo, insert_or_skip};
use crate::entities::{coupon, coupon_redemption};
use crate::errors::{corrupt, map_db_err};

#[async_trait]
impl<C: Executor> CouponRepository for Repo<C> {
    async fn get(&self, code: &str) -> Result<Option<Coupon>, StoreError> {
        let row = coupon::Entity::find_by_id(code.to_ascii_uppercase()).one(&self.conn).await.map_err(map_db_err)?;
        row.map(coupon_from_row).transpose()
    }

    #[tracing::instrument(skip_all, fields(code = %coupon.code))]
    async fn insert(&self, coupon: &Coupon) -> Result<(), StoreError> {
        let (discount_type, percent, amount, currency) = match &coupon.discount {
            Discount::Percent { percent } => ("percent", Some(i32::from(*percent)), None, None),
            Discount::Amount { amount } => ("amount", None, Some(amount.minor), Some(amount.currency.to_string())),
        };
        let plans: Vec<&str> = coupon.plans.iter().map(PlanId::as_str).collect();
        let row = coupon::ActiveModel {
            code: Set(coupon.code.to_ascii_uppercase()),
            discount_type: Set(discount_type.to_owned()),
            percent_off: Set(percent),
            amount_off_minor: Set(amount),
            amount_off_currency: Set(currency),
            valid_until: Set(coupon.valid_until),
            max_uses: Set(coupon.max_uses.map(|m| i32::try_from(m).unwrap_or(i32::MAX))),
            used_count: Set(0),
            plans: Set(serde_json::to_string(&plans).map_err(|e| StoreError::Other(e.to_string()))?),
            created_at: Set(coupon.created_at),
        };
        let insert = coupon::Entity::insert(row).on_conflict_do_nothing_on([coupon::Column::Code]);
        if insert_or_skip(&self.conn, insert).await? {
            Ok(())
        } else {
            Err(StoreError::Duplicate(format!("coupon {}", coupon.code)))
        }
    }

    async fn list(&self, limit: u32) -> Result<Vec<Coupon>, StoreError> {
        let rows = coupon::Entity::find()
            .order_by_asc(coupon::Column::Code)
            .limit(u64::from(limit))
            .all(&self.conn)
            .await
            .map_err(map_db_err)?;
        rows.into_iter().map(coupon_from_row).collect()
    }

    #[tracing::instrument(skip_all, fields(code, workspace_id = %workspace))]
    async fn redeem(&self, code: &str, workspace: &WorkspaceId, now: DateTime<Utc>) -> Result<Redemption, StoreError> {
        use coupon::Column;
        let code = code.to_ascii_uppercase();
        let tx = self.begin_write().await?;
        if redeemed_by(&tx, &code, workspace).await? {
            return Ok(Redemption::AlreadyRedeemed);
        }
        let taken = coupon::Entity::update_many()
            .col_expr(Column::UsedCount, Expr::col(Column::UsedCount).add(1))
            .filter(Column::Code.eq(code.as_str()))
            .filter(
                Condition::any()
                    .add(Column::MaxUses.is_null())
                    .add(Expr::col(Column::UsedCount).lt(Expr::col(Column::MaxUses))),
            )
            .exec(&tx)
            .await
            .map_err(map_db_err)?;
        if taken.rows_affected == 0 {
            // On PostgreSQL a concurrent redemption by this same workspace may have taken the last use while this
            // one waited for the row: it is this workspace's, as SQLite's serialized writers would have said.
            if redeemed_by(&tx, &code, workspace).await? {
                return Ok(Redemption::AlreadyRedeemed);
            }
            let exists = coupon::Entity::find_by_id(code.clone()).one(&tx).await.map_err(map_db_err)?.is_some();
            return Ok(if exists { Redemption::Exhausted } else { Redemption::NotFound });
        }
        let row = coupon_redemption::ActiveModel {
            id: NotSet,
            code: Set(code.clone()),
            workspace_id: Set(workspace.as_str().to_owned()),
            redeemed_at: Set(now),
        };
        let insert = coupon_redemption::Entity::insert(row)
            .on_conflict_do_nothing_on([coupon_redemption::Column::Code, coupon_redemption::Column::WorkspaceId]);
        if !insert_or_skip(&tx, insert).await? {
            // The same workspace redeemed it concurrently: its use stands, this one is given back.
            tx.rollback().await.map_err(map_db_err)?;
            return Ok(Redemption::AlreadyRedeemed);
        }
        tx.commit().await.map_err(map_db_err)?;
        Ok(Redemption::Redeemed)
    }

    #[tracing::instrument(skip_all, fields(code, workspace_id = %workspace))]
    async fn unredeem(&self, code: &str, workspace: &WorkspaceId) -> Result<(), StoreError> {
        use coupon::Column;
        let code = code.to_ascii_uppercase();
        let tx = self.begin_write().await?;
        let deleted = coupon_redemption::Entity::delete_many()
            .filter(coupon_redemption::Column::Code.eq(code.as_str()))
            .filter(coupon_redemption::Column::WorkspaceId.eq(workspace.as_str()))
            .exec(&tx)
            .await
            .map_err(map_db_err)?;
        if deleted.rows_affected > 0 {
            coupon::Entity::update_many()
                .col_expr(Column::UsedCount, Expr::col(Column::UsedCount).sub(1))
                .filter(Column::Code.eq(code.as_str()))
                .filter(Column::UsedCount.gt(0))
                .exec(&tx)
                .await
                .map_err(map_db_err)?;
        }
        tx.commit().await.map_err(map_db_err)
    }
}

async fn redeemed_by<T: sea_orm::ConnectionTrait>(
    conn: &T,
    code: &str,
    workspace: &WorkspaceId,
) -> Result<bool, StoreError> {
    let found = coupon_redemption::Entity::find()
        .filter(coupon_redemption::Column::Code.eq(code))
        .filter(coupon_redemption::Column::WorkspaceId.eq(workspace.as_str()))
        .one(conn)
        .await
        .map_err(map_db_err)?;
    Ok(found.is_some())
}

fn coupon_from_row(row: coupon::Model) -> Result<Coupon, StoreError> {
    let discount = match (row.discount_type.as_str(), row.percent_off, row.amount_off_minor, row.amount_off_currency) {
        ("percent", Some(percent), _, _) => {
            Discount::Percent { percent: u8::try_from(percent).map_err(|e| corrupt("coupons.percent_off", e))? }
        }
        ("amount", _, Some(minor), Some(currency)) => Discount::Amount {
            amount: Money::new(
                minor,
                Currency::parse(&currency).map_err(|e| corrupt("coupons.amount_off_currency", e))?,
            ),
        },
        (other, ..) => return Err(corrupt("coupons.discount_type", format!("{other} without its amount"))),
    };
    let plans: Vec<String> = serde_json::from_str(&row.plans).map_err(|e| corrupt("coupons.plans", e))?;
    Ok(Coupon {
        code: row.code,
        discount,
        valid_until: row.valid_until,
        max_uses: row.max_uses.map(|m| u32::try_from(m).unwrap_or_default()),
        used_count: u32::try_from(row.used_count).unwrap_or_default(),
        plans: plans.into_iter().map(PlanId::new).collect(),
        created_at: row.created_at,
    })
}
