//! `POST /webhooks/{processor}`.

use serde::Serialize;
use utoipa::ToSchema;

/// The answer to a delivery, sent after the commit that made it durable.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookReceived<'a> {
    pub received: bool,
    pub event_id: &'a str,
    /// `applied`, `duplicate`, `parked`, `ignored` or `failed`.
    pub outcome: &'a str,
}
