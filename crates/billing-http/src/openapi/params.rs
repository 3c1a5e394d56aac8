//! Path parameters, as the extractors check them (`WorkspaceId::parse`, the payment id's check, …).

use utoipa::IntoParams;

/// `{id}` of a workspace route.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct WorkspacePath {
    /// The product's own id for the workspace: 1-128 characters of A-Z, a-z, 0-9, `_`, `.`, `:` or `-`.
    #[param(pattern = "^[A-Za-z0-9_.:-]{1,128}$", example = "acme")]
    id: String,
}

/// `{id}` of a payment: the processor's payment id.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct PaymentPath {
    #[param(pattern = "^[A-Za-z0-9_]{1,255}$", example = "pi_3PaymentId")]
    id: String,
}

/// `{id}` of an outbox message.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct OutboxPath {
    id: i64,
}

/// `{code}` of a coupon, compared case-insensitively.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct CouponPath {
    #[param(schema_with = crate::dto::coupon_code_schema)]
    code: String,
}

/// `{processor}` of a webhook: `stripe` or `sandbox`, when configured.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ProcessorPath {
    #[param(example = "stripe")]
    processor: String,
}

/// `{id}` of a session of a page Tollgate hosts for the sandbox processor.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct SessionPath {
    id: String,
}

/// The sandbox portal's session, subscription and what to do with it.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct PortalActionPath {
    id: String,
    subscription: String,
    /// `cancel` (at period end), `resume` or `end` (now).
    #[param(pattern = "^(cancel|resume|end)$")]
    action: String,
}

/// The sandbox portal's session, subscription and the plan to switch it to.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct PortalChangePath {
    id: String,
    subscription: String,
    /// A subscription plan of the catalog.
    plan: String,
}
