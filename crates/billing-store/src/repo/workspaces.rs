//! `WorkspaceRepository`: workspaces, their processor customers and (through `credits.rs`) their credits.

use std::collections::BTreeMap;

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::ids::{CustomerId, PlanId, ProcessorId, WorkspaceId};
use billing_domain::ports::{ConsumeOutcome, WorkspaceRepository};
use billing_domain::workspace::Workspace;
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Executor, Repo, insert_or_skip};
use crate::entities::{processor_customer, workspace};
use crate::errors::map_db_err;
use crate::mapping::{billing_details_json, workspace_from_row, workspace_row};

impl<C: Executor> Repo<C> {
    pub(crate) async fn workspace_exists(&self, id: &WorkspaceId) -> Result<bool, StoreError> {
        let found = workspace::Entity::find_by_id(id.as_str()).count(&self.conn).await.map_err(map_db_err)?;
        Ok(found > 0)
    }
}

#[async_trait]
impl<C: Executor> WorkspaceRepository for Repo<C> {
    #[tracing::instrument(skip_all, fields(workspace_id = %id))]
    async fn get(&self, id: &WorkspaceId) -> Result<Option<Workspace>, StoreError> {
        workspace::Entity::find_by_id(id.as_str())
            .one(&self.conn)
            .await
            .map_err(map_db_err)?
            .map(workspace_from_row)
            .transpose()
    }

    #[tracing::instrument(skip_all, fields(workspace_id = %workspace.id))]
    async fn insert(&self, workspace: &Workspace) -> Result<(), StoreError> {
        let insert = workspace::Entity::insert(workspace_row(workspace)?).on_conflict_do_nothing();
        if !insert_or_skip(&self.conn, insert).await? {
            return Err(StoreError::Duplicate(format!("workspace {}", workspace.id)));
        }
        // A cache may remember that the workspace did not exist.
        self.changed(&workspace.id).await
    }

    #[tracing::instrument(skip_all, fields(workspace_id = %workspace.id))]
    async fn update_profile(&self, workspace: &Workspace) -> Result<(), StoreError> {
        use workspace::Column;
        let updated = workspace::Entity::update_many()
            .col_expr(Column::Name, Expr::value(workspace.name.clone()))
            .col_expr(Column::OwnerEmail, Expr::value(workspace.owner_email.as_str()))
            .col_expr(Column::BillingDetails, Expr::value(billing_details_json(workspace)?))
            .col_expr(Column::UpdatedAt, Expr::value(workspace.updated_at))
            .filter(Column::Id.eq(workspace.id.as_str()))
            .exec(&self.conn)
            .await
            .map_err(map_db_err)?;
        if updated.rows_affected == 0 {
            return Err(StoreError::Other(format!("workspace {} not found", workspace.id)));
        }
        self.changed(&workspace.id).await
    }

    #[tracing::instrument(skip_all, fields(workspace_id = %id, restricted))]
    async fn set_restricted(
        &self,
        id: &WorkspaceId,
        restricted: bool,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        use workspace::Column;
        let updated = workspace::Entity::update_many()
            .col_expr(Column::Restricted, Expr::value(restricted))
            .col_expr(Column::RestrictedReason, Expr::value(reason))
            .col_expr(Column::UpdatedAt, Expr::value(now))
            .filter(Column::Id.eq(id.as_str()))
            .exec(&self.conn)
            .await
            .map_err(map_db_err)?;
        if updated.rows_affected == 0 {
            return Err(StoreError::Other(format!("workspace {id} not found")));
        }
        self.changed(id).await
    }

    async fn trials_ending(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Workspace>, StoreError> {
        use workspace::Column;
        workspace::Entity::find()
            .filter(Column::TrialEndsAt.gt(after))
            .filter(Column::TrialEndsAt.lte(until))
            .order_by_asc(Column::TrialEndsAt)
            .order_by_asc(Column::Id)
            .limit(u64::from(limit))
            .all(&self.conn)
            .await
            .map_err(map_db_err)?
            .into_iter()
            .map(workspace_from_row)
            .collect()
    }

    #[tracing::instrument(skip_all, fields(workspace_id = %id, plan = %plan))]
    async fn start_trial(
        &self,
        id: &WorkspaceId,
        plan: &PlanId,
        ends_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        use workspace::Column;
        // Compare-and-set on "no trial yet": of two concurrent starts exactly one updates the row.
        let updated = workspace::Entity::update_many()
            .col_expr(Column::TrialEndsAt, Expr::value(ends_at))
            .col_expr(Column::TrialPlan, Expr::value(plan.as_str()))
            .col_expr(Column::UpdatedAt, Expr::value(now))
            .filter(Column::Id.eq(id.as_str()))
            .filter(Column::TrialEndsAt.is_null())
            .exec(&self.conn)
            .await
            .map_err(map_db_err)?;
        if updated.rows_affected > 0 {
            self.changed(id).await?;
            return Ok(true);
        }
        if self.workspace_exists(id).await? {
            Ok(false)
        } else {
            Err(StoreError::Other(format!("workspace {id} not found")))
        }
    }

    #[tracing::instrument(skip_all, fields(processor = %processor, customer = %customer))]
    async fn workspace_of_customer(
        &self,
        processor: &ProcessorId,
        customer: &CustomerId,
    ) -> Result<Option<WorkspaceId>, StoreError> {
        let row = processor_customer::Entity::find_by_id((processor.as_str().to_owned(), customer.as_str().to_owned()))
            .one(&self.conn)
            .await
            .map_err(map_db_err)?;
        row.map(|r| {
            WorkspaceId::parse(r.workspace_id)
                .map_err(|e| crate::errors::corrupt("processor_customers.workspace_id", e))
        })
        .transpose()
    }

    #[tracing::instrument(skip_all, fields(processor = %processor, customers = customers.len()))]
    async fn workspaces_of_customers(
        &self,
        processor: &ProcessorId,
        customers: &[CustomerId],
    ) -> Result<BTreeMap<CustomerId, WorkspaceId>, StoreError> {
        use processor_customer::Column;
        if customers.is_empty() {
            return Ok(BTreeMap::new());
        }
        let rows = processor_customer::Entity::find()
            .filter(Column::Processor.eq(processor.as_str()))
            .filter(Column::CustomerId.is_in(customers.iter().map(CustomerId::as_str)))
            .all(&self.conn)
            .await
            .map_err(map_db_err)?;
        rows.into_iter()
            .map(|r| {
                let customer = CustomerId::new(r.customer_id);
                let workspace = WorkspaceId::parse(r.workspace_id)
                    .map_err(|e| crate::errors::corrupt("processor_customers.workspace_id", e))?;
                Ok((customer, workspace))
            })
            .collect()
    }

    #[tracing::instrument(skip_all, fields(processor = %processor, limit))]
    async fn linked_customers(
        &self,
        processor: &ProcessorId,
        after: Option<CustomerId>,
        limit: u32,
    ) -> Result<Vec<(CustomerId, WorkspaceId)>, StoreError> {
        use processor_customer::Column;
        let mut query = processor_customer::Entity::find()
            .filter(Column::Processor.eq(processor.as_str()))
            .order_by_asc(Column::CustomerId)
            .limit(u64::from(limit));
        if let Some(after) = after {
            query = query.filter(Column::CustomerId.gt(after.as_str()));
        }
        let rows = query.all(&self.conn).await.map_err(map_db_err)?;
        rows.into_iter()
            .map(|row| {
                let workspace = WorkspaceId::parse(row.workspace_id)
                    .map_err(|e| crate::errors::corrupt("processor_customers.workspace_id", e))?;
                Ok((CustomerId::new(row.customer_id), workspace))
            })
            .collect()
    }

    #[tracing::instrument(skip_all, fields(processor = %processor, workspace_id = %workspace))]
    async fn customer_of_workspace(
        &self,
        processor: &ProcessorId,
        workspace: &WorkspaceId,
    ) -> Result<Option<CustomerId>, StoreError> {
        use processor_customer::Column;
        let customer = processor_customer::Entity::find()
            .select_only()
            .column(Column::CustomerId)
            .filter(Column::Processor.eq(processor.as_str()))
            .filter(Column::WorkspaceId.eq(workspace.as_str()))
            .into_tuple::<String>()
            .one(&self.conn)
            .await
            .map_err(map_db_err)?;
        Ok(customer.map(CustomerId::new))
    }

    #[tracing::instrument(skip_all, fields(processor = %processor, customer = %customer, workspace_id = %workspace))]
    async fn link_customer(
        &self,
        processor: &ProcessorId,
        customer: &CustomerId,
        workspace: &WorkspaceId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let row = processor_customer::ActiveModel {
            processor: Set(processor.as_str().to_owned()),
            customer_id: Set(customer.as_str().to_owned()),
            workspace_id: Set(workspace.as_str().to_owned()),
            created_at: Set(now),
        };
        // No conflict target: either unique key (customer → workspace, workspace → customer) may refuse the row.
        let insert =
            processor_customer::Entity::insert(row).on_conflict(OnConflict::new().do_nothing().to_owned()).try_insert();
        if insert_or_skip(&self.conn, insert).await? {
            return Ok(true);
        }
        match self.workspace_of_customer(processor, customer).await? {
            Some(linked) if &linked == workspace => Ok(false),
            _ => Err(StoreError::Duplicate(format!(
                "{processor} customer {customer} or workspace {workspace} is already linked to another"
            ))),
        }
    }

    #[tracing::instrument(skip_all, fields(workspace_id = %id, amount, key))]
    async fn grant_credits(
        &self,
        id: &WorkspaceId,
        amount: i64,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let granted = self.grant(id, amount, key, now).await?;
        if granted {
            self.changed(id).await?;
        }
        Ok(granted)
    }

    #[tracing::instrument(skip_all, fields(workspace_id = %id, amount, key))]
    async fn consume_credits(
        &self,
        id: &WorkspaceId,
        amount: i64,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<ConsumeOutcome, StoreError> {
        let outcome = self.consume(id, amount, key, now).await?;
        if matches!(outcome, ConsumeOutcome::Consumed { .. }) {
            self.changed(id).await?;
        }
        Ok(outcome)
    }
}
