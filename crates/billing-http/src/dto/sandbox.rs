//! The sandbox controls (admin): a workspace's card, paying its open invoice, renewing now, what its meters took.

use billing_domain::ports::{SandboxCard, SandboxMeterTally};
use serde::{Deserialize, Serialize};
use validator::Validate;

use super::account::InvoiceView;
use utoipa::ToSchema;

/// A workspace's card at the sandbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct SandboxCardView<'a> {
    pub workspace_id: &'a str,
    pub decline_next_charge: bool,
    pub open_invoices: Vec<InvoiceView<'a>>,
}

impl<'a> From<&'a SandboxCard> for SandboxCardView<'a> {
    fn from(card: &'a SandboxCard) -> Self {
        Self {
            workspace_id: card.workspace_id.as_str(),
            decline_next_charge: card.decline_next_charge,
            open_invoices: card.open_invoices.iter().map(InvoiceView::from).collect(),
        }
    }
}

/// `PUT …/card`: whether the next charge declines.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxCardBody {
    pub decline_next_charge: bool,
}

/// The deliveries a control caused, each as Tollgate took it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SandboxDeliveriesView {
    pub deliveries: Vec<SandboxDeliveryView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SandboxDeliveryView {
    pub event_id: String,
    pub event_type: String,
    /// `applied`, `duplicate`, `parked`, `ignored`, `failed`, or the error code it was refused with.
    pub outcome: String,
}

/// `POST /v1/admin/sandbox/renew`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SandboxRenewView {
    pub renewal_deliveries: usize,
    pub redelivered: usize,
    pub problems: Vec<String>,
}

/// `GET …/meter-events`: what the sandbox's meters received for the workspace.
#[derive(Debug, Serialize, ToSchema)]
pub struct SandboxMetersView<'a> {
    pub workspace_id: &'a str,
    pub meters: Vec<SandboxMeterView<'a>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SandboxMeterView<'a> {
    pub meter: &'a str,
    /// Meter events taken, each identifier once.
    pub events: u64,
    /// Their values added up, as a decimal string.
    pub value: String,
    /// Sends of an identifier already taken (a reporter repeating after a restart), not counted.
    pub repeats: u64,
    pub first_at: chrono::DateTime<chrono::Utc>,
    pub last_at: chrono::DateTime<chrono::Utc>,
}

impl<'a> From<&'a SandboxMeterTally> for SandboxMeterView<'a> {
    fn from(tally: &'a SandboxMeterTally) -> Self {
        Self {
            meter: &tally.meter,
            events: tally.events,
            value: tally.value.normalize().to_string(),
            repeats: tally.repeats,
            first_at: tally.first_at,
            last_at: tally.last_at,
        }
    }
}
