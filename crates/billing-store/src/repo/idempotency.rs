//! `IdempotencyKeys`: the unique (owner, key) row is the claim; a compare-and-set takes over an expired or
//! abandoned one. Runs on the pool: each statement stands alone, so a claim is visible to a concurrent duplicate
//! at once.

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::ports::{Claimed, IdempotencyKeys, KeyClaim, StoredResponse};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use super::{Executor, Repo, insert_or_skip};
use crate::entities::idempotency_key::{self, Column, Entity};
use crate::errors::{corrupt, map_db_err};

const IN_PROGRESS: &str = "in_progress";
const DONE: &str = "done";

#[async_trait]
impl<C: Executor> IdempotencyKeys for Repo<C> {
    #[tracing::instrument(skip_all, fields(owner = %claim.owner))]
    async fn claim(&self, claim: &KeyClaim) -> Result<Claimed, StoreError> {
        let row = idempotency_key::ActiveModel {
            owner: Set(claim.owner.clone()),
            idempotency_key: Set(claim.key.clone()),
            fingerprint: Set(claim.fingerprint.clone()),
            status: Set(IN_PROGRESS.to_owned()),
            claim_token: Set(claim.token.clone()),
            response_status: Set(None),
            response_content_type: Set(None),
            response_body: Set(None),
            claimed_at: Set(claim.now),
            expires_at: Set(claim.expires_at),
        };
        let insert = Entity::insert(row).on_conflict_do_nothing_on([Column::Owner, Column::IdempotencyKey]);
        if insert_or_skip(&self.conn, insert).await? {
            return Ok(Claimed::Started);
        }
        // Expired, or claimed by a request that never finished: the first to set it here takes it.
        let stale = Condition::any().add(Column::ExpiresAt.lte(claim.now)).add(
            Condition::all().add(Column::Status.eq(IN_PROGRESS)).add(Column::ClaimedAt.lt(claim.abandoned_before)),
        );
        let taken = Entity::update_many()
            .col_expr(Column::Fingerprint, Expr::value(claim.fingerprint.clone()))
            .col_expr(Column::Status, Expr::value(IN_PROGRESS))
            .col_expr(Column::ClaimToken, Expr::value(claim.token.clone()))
            .col_expr(Column::ResponseStatus, Expr::value(Option::<i32>::None))
            .col_expr(Column::ResponseContentType, Expr::value(Option::<String>::None))
            .col_expr(Column::ResponseBody, Expr::value(Option::<Vec<u8>>::None))
            .col_expr(Column::ClaimedAt, Expr::value(claim.now))
            .col_expr(Column::ExpiresAt, Expr::value(claim.expires_at))
            .filter(Column::Owner.eq(claim.owner.as_str()))
            .filter(Column::IdempotencyKey.eq(claim.key.as_str()))
            .filter(stale)
            .exec(&self.conn)
            .await
            .map_err(map_db_err)?;
        if taken.rows_affected == 1 {
            return Ok(Claimed::Started);
        }
        let found =
            Entity::find_by_id((claim.owner.clone(), claim.key.clone())).one(&self.conn).await.map_err(map_db_err)?;
        // Released between the insert and this read: the caller claims again.
        let Some(row) = found else { return Ok(Claimed::InProgress) };
        if row.fingerprint != claim.fingerprint {
            return Ok(Claimed::Reused);
        }
        if row.status != DONE {
            return Ok(Claimed::InProgress);
        }
        let status = row
            .response_status
            .and_then(|s| u16::try_from(s).ok())
            .ok_or_else(|| corrupt("api_idempotency_keys.response_status", "a finished key without a status"))?;
        Ok(Claimed::Replay(StoredResponse {
            status,
            content_type: row.response_content_type,
            body: row.response_body.unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all, fields(owner = %claim.owner, status = response.status))]
    async fn complete(&self, claim: &KeyClaim, response: &StoredResponse) -> Result<(), StoreError> {
        Entity::update_many()
            .col_expr(Column::Status, Expr::value(DONE))
            .col_expr(Column::ResponseStatus, Expr::value(i32::from(response.status)))
            .col_expr(Column::ResponseContentType, Expr::value(response.content_type.clone()))
            .col_expr(Column::ResponseBody, Expr::value(response.body.clone()))
            .filter(Column::Owner.eq(claim.owner.as_str()))
            .filter(Column::IdempotencyKey.eq(claim.key.as_str()))
            .filter(Column::ClaimToken.eq(claim.token.as_str()))
            .filter(Column::Status.eq(IN_PROGRESS))
            .exec(&self.conn)
            .await
            .map_err(map_db_err)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(owner = %claim.owner))]
    async fn release(&self, claim: &KeyClaim) -> Result<(), StoreError> {
        Entity::delete_many()
            .filter(Column::Owner.eq(claim.owner.as_str()))
            .filter(Column::IdempotencyKey.eq(claim.key.as_str()))
            .filter(Column::ClaimToken.eq(claim.token.as_str()))
            .filter(Column::Status.eq(IN_PROGRESS))
            .exec(&self.conn)
            .await
            .map_err(map_db_err)?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn prune(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let deleted =
            Entity::delete_many().filter(Column::ExpiresAt.lte(now)).exec(&self.conn).await.map_err(map_db_err)?;
        Ok(deleted.rows_affected)
    }
}
