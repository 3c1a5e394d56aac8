//! What handlers share: the use-case services and the few ports the edge reads directly.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use billing_domain::catalog::Catalog;
use billing_domain::ports::{
    AuditLog, Clock, HostedCheckoutOps, HostedPortalOps, IdempotencyKeys, SubscriptionRepository, WebhookOps,
};
use billing_domain::services::{
    AccountService, CheckoutService, CouponService, CreditService, EntitlementService, OutboxService, PaymentService,
    RenewalService, SubscriptionService, TrialService, UsageService, WorkspaceService,
};

use crate::group_commit::GroupCommit;
use crate::idempotency::IdempotencyPolicy;
use crate::usage_commit::UsageCommit;

/// Answers whether the service can do its work (the database answers).
#[async_trait]
pub trait Readiness: Send + Sync {
    async fn check(&self) -> Result<(), String>;
}

/// Default redirect targets of checkouts whose request names none.
#[derive(Debug, Clone)]
pub struct CheckoutDefaults {
    pub success_url: String,
    pub cancel_url: String,
}

/// Everything the API routes need.
pub struct AppState {
    pub catalog: Arc<Catalog>,
    pub workspaces: WorkspaceService,
    pub trials: TrialService,
    pub checkout: CheckoutService,
    pub account: AccountService,
    pub credits: CreditService,
    pub payments: PaymentService,
    pub coupons: CouponService,
    pub entitlements: EntitlementService,
    /// Judging batches, reports and check-and-consume; batches are recorded through `usage_batches`.
    pub usage: Arc<UsageService>,
    /// Usage batches recorded by group commit.
    pub usage_batches: UsageCommit,
    pub subscription_commands: Arc<SubscriptionService>,
    /// Operators' view of the outbox; the delivery job holds its own.
    pub outbox: Arc<OutboxService>,
    /// Deliveries go through group commit; the reconciliation job calls the same `WebhookService` directly.
    pub webhooks: GroupCommit,
    pub subscriptions: Arc<dyn SubscriptionRepository>,
    pub audit: Arc<dyn AuditLog>,
    /// Webhook verifiers by route id (`/webhooks/{id}`).
    pub webhook_verifiers: HashMap<String, Arc<dyn WebhookOps>>,
    pub clock: Arc<dyn Clock>,
    /// The test clock, when `clock.mode = "test"`.
    pub time_travel: Option<Arc<dyn billing_domain::ports::TimeTravel>>,
    pub readiness: Arc<dyn Readiness>,
    pub checkout_defaults: CheckoutDefaults,
    /// Stored answers of keyed requests (`idempotency.rs`).
    pub idempotency: Arc<dyn IdempotencyKeys>,
    pub idempotency_policy: IdempotencyPolicy,
    /// The processor whose checkout page Tollgate serves (the sandbox, when enabled).
    pub hosted_checkout: Option<Arc<dyn HostedCheckoutOps>>,
    /// The processor whose billing portal Tollgate serves (the sandbox, when enabled).
    pub hosted_portal: Option<Arc<dyn HostedPortalOps>>,
    /// The sandbox's renewals and controls, when enabled; its deliveries are acknowledged through it.
    pub sandbox: Option<Arc<RenewalService>>,
    /// The hosted billing page, when `billing_page.enabled`.
    pub billing_page: Option<Arc<crate::billing_page::BillingPage>>,
    /// `GET /metrics`, when `telemetry.metrics` is on.
    pub metrics: Option<crate::telemetry::Metrics>,
}
