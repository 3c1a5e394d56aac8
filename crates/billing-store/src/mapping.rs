//! Conversions between domain types and rows. Enums use the domain's own names (`as_str`/`parse` or serde), so a
//! row reads the same as the API and the logs; anything the domain refuses on the way back is `corrupt`.

use billing_domain::email::Email;
use billing_domain::error::StoreError;
use billing_domain::ids::{CustomerId, PlanId, PriceId, ProcessorId, SubscriptionId, WorkspaceId};
use billing_domain::ports::InboxStatus;
use billing_domain::records::{AuditEntry, AuditRecord, OutboxEntry, OutboxMessage, OutboxStatus, PendingMessage};
use billing_domain::subscription::{Subscription, SubscriptionStatus, SubscriptionTerms, TermsSource};
use billing_domain::workspace::Workspace;
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::{NotSet, Set};

use crate::entities::{audit_log, outbox, subscription, workspace};
use crate::errors::corrupt;

/// A value the domain produced that cannot be written: a bug, reported as `Other`.
pub(crate) fn unencodable(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("cannot encode {what}: {err}"))
}

pub(crate) fn workspace_row(w: &Workspace) -> Result<workspace::ActiveModel, StoreError> {
    Ok(workspace::ActiveModel {
        id: Set(w.id.as_str().to_owned()),
        name: Set(w.name.clone()),
        owner_email: Set(w.owner_email.as_str().to_owned()),
        billing_details: Set(billing_details_json(w)?),
        trial_ends_at: Set(w.trial_ends_at),
        trial_plan: Set(w.trial_plan.as_ref().map(|p| p.as_str().to_owned())),
        credit_balance: Set(w.credit_balance),
        restricted: Set(w.restricted),
        restricted_reason: Set(w.restricted_reason.clone()),
        created_at: Set(w.created_at),
        updated_at: Set(w.updated_at),
    })
}

pub(crate) fn billing_details_json(w: &Workspace) -> Result<String, StoreError> {
    serde_json::to_string(&w.billing_details).map_err(|e| unencodable("billing details", e))
}

pub(crate) fn workspace_from_row(m: workspace::Model) -> Result<Workspace, StoreError> {
    Ok(Workspace {
        id: WorkspaceId::parse(m.id).map_err(|e| corrupt("workspaces.id", e))?,
        name: m.name,
        owner_email: Email::parse(m.owner_email).map_err(|e| corrupt("workspaces.owner_email", e))?,
        billing_details: serde_json::from_str(&m.billing_details)
            .map_err(|e| corrupt("workspaces.billing_details", e))?,
        trial_ends_at: m.trial_ends_at,
        trial_plan: m.trial_plan.map(PlanId::new),
        credit_balance: m.credit_balance,
        restricted: m.restricted,
        restricted_reason: m.restricted_reason,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

pub(crate) fn terms_source_str(source: TermsSource) -> Result<String, StoreError> {
    match serde_json::to_value(source) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        Ok(other) => Err(unencodable("terms source", other)),
        Err(e) => Err(unencodable("terms source", e)),
    }
}

/// Every column of a subscription row except the bookkeeping timestamps, which the caller decides.
pub(crate) fn subscription_row(s: &Subscription, now: DateTime<Utc>) -> Result<subscription::ActiveModel, StoreError> {
    Ok(subscription::ActiveModel {
        processor: Set(s.processor.as_str().to_owned()),
        id: Set(s.id.as_str().to_owned()),
        workspace_id: Set(s.workspace_id.as_str().to_owned()),
        customer_id: Set(s.customer_id.as_str().to_owned()),
        status: Set(s.status.as_str().to_owned()),
        status_at: Set(s.status_at),
        canceled_at: Set(s.canceled_at),
        plan_id: Set(s.terms.plan_id.as_str().to_owned()),
        price_id: Set(s.terms.price_id.as_str().to_owned()),
        quantity: Set(i64::from(s.terms.quantity)),
        cancel_at_period_end: Set(s.terms.cancel_at_period_end),
        current_period_start: Set(s.terms.current_period_start),
        current_period_end: Set(s.terms.current_period_end),
        trial_end: Set(s.terms.trial_end),
        terms_source: Set(terms_source_str(s.terms_source)?),
        terms_at: Set(s.terms_at),
        version: Set(s.version),
        created_at: Set(now),
        updated_at: Set(now),
    })
}

pub(crate) fn subscription_from_row(m: subscription::Model) -> Result<Subscription, StoreError> {
    let status = SubscriptionStatus::parse(&m.status).ok_or_else(|| corrupt("subscriptions.status", &m.status))?;
    let terms_source: TermsSource = serde_json::from_value(serde_json::Value::String(m.terms_source))
        .map_err(|e| corrupt("subscriptions.terms_source", e))?;
    Ok(Subscription {
        id: SubscriptionId::new(m.id),
        processor: ProcessorId::new(m.processor),
        workspace_id: WorkspaceId::parse(m.workspace_id).map_err(|e| corrupt("subscriptions.workspace_id", e))?,
        customer_id: CustomerId::new(m.customer_id),
        status,
        status_at: m.status_at,
        canceled_at: m.canceled_at,
        terms: SubscriptionTerms {
            plan_id: PlanId::new(m.plan_id),
            price_id: PriceId::new(m.price_id),
            quantity: u32::try_from(m.quantity).map_err(|e| corrupt("subscriptions.quantity", e))?,
            cancel_at_period_end: m.cancel_at_period_end,
            current_period_start: m.current_period_start,
            current_period_end: m.current_period_end,
            trial_end: m.trial_end,
        },
        terms_source,
        terms_at: m.terms_at,
        version: m.version,
    })
}

pub(crate) fn inbox_status(raw: &str) -> Result<InboxStatus, StoreError> {
    InboxStatus::parse(raw).ok_or_else(|| corrupt("inbox_events.status", raw))
}

pub(crate) fn attempts(raw: i32, what: &str) -> Result<u32, StoreError> {
    u32::try_from(raw).map_err(|e| corrupt(what, e))
}

fn optional_json(value: &Option<serde_json::Value>) -> Option<String> {
    // Serializing a `Value` cannot fail: its map keys are always strings.
    value.as_ref().map(serde_json::Value::to_string)
}

pub(crate) fn audit_row(record: &AuditRecord, at: DateTime<Utc>) -> Result<audit_log::ActiveModel, StoreError> {
    Ok(audit_log::ActiveModel {
        id: NotSet,
        workspace_id: Set(record.workspace_id.as_str().to_owned()),
        action: Set(record.action.clone()),
        actor: Set(serde_json::to_string(&record.actor).map_err(|e| unencodable("actor", e))?),
        before: Set(optional_json(&record.before)),
        after: Set(optional_json(&record.after)),
        request_id: Set(record.request_id.clone()),
        created_at: Set(at),
    })
}

pub(crate) fn audit_from_row(m: audit_log::Model) -> Result<AuditEntry, StoreError> {
    let parse =
        |raw: Option<String>, what| raw.map(|s| serde_json::from_str(&s).map_err(|e| corrupt(what, e))).transpose();
    Ok(AuditEntry {
        id: m.id,
        at: m.created_at,
        record: AuditRecord {
            workspace_id: WorkspaceId::parse(m.workspace_id).map_err(|e| corrupt("audit_log.workspace_id", e))?,
            action: m.action,
            actor: serde_json::from_str(&m.actor).map_err(|e| corrupt("audit_log.actor", e))?,
            before: parse(m.before, "audit_log.before")?,
            after: parse(m.after, "audit_log.after")?,
            request_id: m.request_id,
        },
    })
}

/// Outbox status names, shared by every query so they cannot drift apart.
pub(crate) mod outbox_status {
    pub const PENDING: &str = "pending";
    pub const DELIVERED: &str = "delivered";
    pub const DEAD: &str = "dead";
}

pub(crate) fn outbox_row(message: &OutboxMessage, now: DateTime<Utc>) -> Result<outbox::ActiveModel, StoreError> {
    Ok(outbox::ActiveModel {
        id: NotSet,
        dedup_key: Set(message.dedup_key.clone()),
        workspace_id: Set(message.workspace_id.as_str().to_owned()),
        target: Set(serde_json::to_string(&message.target).map_err(|e| unencodable("outbox target", e))?),
        payload: Set(message.payload.to_string()),
        status: Set(outbox_status::PENDING.to_owned()),
        attempts: Set(0),
        last_error: Set(None),
        available_at: Set(now),
        leased_until: Set(None),
        created_at: Set(now),
        delivered_at: Set(None),
        request_id: Set(message.request_id.clone()),
    })
}

pub(crate) fn pending_from_row(m: outbox::Model) -> Result<PendingMessage, StoreError> {
    let entry = entry_from_row(m)?;
    Ok(PendingMessage { id: entry.id, attempts: entry.attempts, created_at: entry.created_at, message: entry.message })
}

pub(crate) fn entry_from_row(m: outbox::Model) -> Result<OutboxEntry, StoreError> {
    let status = match m.status.as_str() {
        outbox_status::PENDING => OutboxStatus::Pending,
        outbox_status::DELIVERED => OutboxStatus::Delivered,
        outbox_status::DEAD => OutboxStatus::Dead,
        other => return Err(corrupt("outbox.status", other)),
    };
    Ok(OutboxEntry {
        id: m.id,
        status,
        attempts: attempts(m.attempts, "outbox.attempts")?,
        last_error: m.last_error,
        available_at: m.available_at,
        leased_until: m.leased_until,
        created_at: m.created_at,
        delivered_at: m.delivered_at,
        message: OutboxMessage {
            dedup_key: m.dedup_key,
            workspace_id: WorkspaceId::parse(m.workspace_id).map_err(|e| corrupt("outbox.workspace_id", e))?,
            target: serde_json::from_str(&m.target).map_err(|e| corrupt("outbox.target", e))?,
            payload: serde_json::from_str(&m.payload).map_err(|e| corrupt("outbox.payload", e))?,
            request_id: m.request_id,
        },
    })
}
