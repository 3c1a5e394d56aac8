//! Use-case services: each orchestrates ports around the pure rules, one thiserror enum per use case.

mod account;
mod checkout;
mod coupons;
mod credits;
mod dunning;
mod entitlements;
mod meter_reporting;
mod outbox;
mod payments;
mod reconcile;
mod renewals;
mod subscriptions;
mod trials;
mod usage;
mod webhooks;
mod workspaces;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use account::{AccountError, AccountService};
pub use checkout::{CheckoutError, CheckoutService, StartCheckout};
pub use coupons::{CouponCheck, CouponService, CouponServiceError, NewCoupon};
pub use credits::{Consume, CreditError, CreditService};
pub use dunning::{CancelForNonPayment, DUNNING_JOB, DunningReport, DunningService};
pub use entitlements::{EntitlementError, EntitlementService, EntitlementsView, LimitView};
pub use meter_reporting::{MeterReport, MeterReportPolicy, MeterReportingService, meter_event_identifier};
pub use outbox::{DeliveryPolicy, DeliveryReport, OutboxError, OutboxPorts, OutboxService};
pub use payments::{Charge, CreatePayment, PaymentError, PaymentService, RefundPayment, Refunded};
pub use reconcile::{
    Discovery, RECONCILE_EVENT_TYPE, ReconcileError, ReconcileFailure, ReconcileReport, ReconcileService, Repair, drift,
};
pub use renewals::{Ingested, REDELIVER_AFTER, RenewalReport, RenewalService};
pub use subscriptions::{COMMAND_EVENT_TYPE, RunCommand, SubscriptionError, SubscriptionService};
pub use trials::{TrialError, TrialService};
pub use usage::{
    CheckAndConsume, ConsumeCheck, EventOutcome, JudgedBatch, PeriodQuery, UsageError, UsageReport, UsageService,
};
pub use webhooks::{
    BatchAnswers, Delivery, IngestError, IngestOutcome, PARKED_SWEEP_BATCH, SweepReport, WebhookService, subject_of,
};
pub use workspaces::{WorkspaceError, WorkspaceOverview, WorkspaceService};

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::catalog::Catalog;
use crate::entitlements::{EffectivePlan, effective_plan};
use crate::error::StoreError;
use crate::ids::WorkspaceId;
use crate::ports::{BillingStateReader, Clock, SubscriptionRepository, WorkspaceRepository};
use crate::subscription::Subscription;
use crate::trial::TrialPolicy;
use crate::workspace::Workspace;

/// The caller's part of a processor idempotency key: its `Idempotency-Key` scoped to the caller (so two callers'
/// equal keys never share an effect), or a fresh id when it sent none (each request its own effect).
fn client_key(actor: &crate::records::Actor, key: Option<&str>, ids: &dyn crate::ports::IdGenerator) -> String {
    match key {
        Some(key) => scoped_key(actor, key),
        None => ids.new_id("req_"),
    }
}

/// The caller's `Idempotency-Key` scoped to the caller.
fn scoped_key(actor: &crate::records::Actor, key: &str) -> String {
    format!("{}:{key}", actor.key_scope())
}

/// Settings the services share.
#[derive(Debug, Clone)]
pub struct BillingPolicy {
    pub trial: TrialPolicy,
    /// How long a past-due subscription keeps its plan.
    pub grace_period: Duration,
}

impl Default for BillingPolicy {
    fn default() -> Self {
        Self { trial: TrialPolicy::default(), grace_period: Duration::days(7) }
    }
}

/// What every read-side service needs: catalog, policy, clock, the two main repositories and the (possibly cached)
/// read of billing state.
#[derive(Clone)]
pub struct Context {
    pub catalog: Arc<Catalog>,
    pub policy: BillingPolicy,
    pub clock: Arc<dyn Clock>,
    pub workspaces: Arc<dyn WorkspaceRepository>,
    pub subscriptions: Arc<dyn SubscriptionRepository>,
    pub state: Arc<dyn BillingStateReader>,
}

impl Context {
    /// A workspace and the subscription that decides its plan; `None` when the workspace does not exist.
    async fn billing_state(&self, id: &WorkspaceId) -> Result<Option<(Workspace, Option<Subscription>)>, StoreError> {
        Ok(self.state.billing_state(id).await?.map(|s| (s.workspace, s.subscription)))
    }

    /// The effective plan at `now` under this context's catalog and grace period.
    fn effective_plan(
        &self,
        workspace: &Workspace,
        subscription: Option<&Subscription>,
        now: DateTime<Utc>,
    ) -> EffectivePlan<'_> {
        effective_plan(&self.catalog, workspace, subscription, now, self.policy.grace_period)
    }
}
