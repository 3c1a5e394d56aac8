//! Request and response bodies of the v1 API, one file per resource. Requests derive `validator::Validate` (the
//! extractors run it and name each failing field); responses are built from domain values here, so no domain type
//! is serialized directly and the wire shape changes only when a DTO does.

pub(crate) mod account;
mod audit;
mod billing_page;
mod checkout;
mod clock;
mod common;
mod coupons;
mod credits;
mod entitlements;
mod health;
mod outbox;
mod payments;
mod plans;
mod sandbox;
mod subscriptions;
mod usage;
mod webhooks;
mod workspaces;

pub use account::{InvoicePageView, InvoicesQuery, PortalBody, PortalView};
pub use audit::{AuditPage, AuditQuery};
pub use billing_page::{BillingPageSessionBody, BillingPageSessionView, PageUser};
pub use checkout::{CheckoutBody, CheckoutSessionView};
pub use clock::{AdvanceBody, AdvanceView, ClockView};
pub use coupons::{
    CouponCheckQuery, CouponCheckView, CouponList, CouponListQuery, CouponView, CreateCouponBody, coupon_code_schema,
};
pub use credits::{ConsumeBody, ConsumeView};
pub use entitlements::{CheckAnswer, CheckBody, CheckView, ConsumeCheckView, EntitlementsResponse};
pub use health::HealthView;
pub use outbox::{OutboxMessageView, OutboxPage, OutboxQuery};
pub use payments::{
    PaymentDetail, PaymentIntentBody, PaymentIntentView, PaymentPage, PaymentView, PaymentsQuery, RefundBody,
    RefundView, RefundedView,
};
pub use plans::PlansResponse;
pub use sandbox::{
    SandboxCardBody, SandboxCardView, SandboxDeliveriesView, SandboxDeliveryView, SandboxMeterView, SandboxMetersView,
    SandboxRenewView,
};
pub use subscriptions::{CancelBody, ChangeBody};
pub use usage::{UsageBatch, UsageBatchView, UsageQuery, UsageReportView};
pub use webhooks::WebhookReceived;
pub use workspaces::{SubscriptionView, WorkspaceBody, WorkspaceView};
