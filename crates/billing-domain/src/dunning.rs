//! Dunning (SPEC §3.8): a failed payment opens a case for its workspace, and a schedule of steps runs from the
//! day it opened — reminders, restricting access to the free plan, a final warning, canceling the subscription —
//! each once. Paying closes the case and lifts the restriction at once.
//!
//! Stored as one row per invoice whose payment failed (open until paid) or that was paid first (closed), so
//! which invoices are unpaid — and so whether the workspace is in dunning — depends only on the set of payment
//! events, not their order: a payment absorbs its invoice's failures, whenever they arrive. The case is the
//! workspace's oldest open row, which carries the schedule; when it is paid while others are still unpaid, the
//! next oldest takes the schedule over.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{InvoiceId, ProcessorId, SubscriptionId, WorkspaceId};
use crate::money::Money;

/// What a step does besides telling the owner (every step emails and announces itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DunningAction {
    /// A first, friendly reminder.
    Reminder,
    /// A more urgent reminder.
    Urgent,
    /// The workspace drops to the free plan until it pays.
    Restrict,
    /// The last warning before the subscription is canceled.
    FinalWarning,
    /// The subscription is canceled at the processor; the case closes.
    Cancel,
}

impl DunningAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DunningAction::Reminder => "reminder",
            DunningAction::Urgent => "urgent",
            DunningAction::Restrict => "restrict",
            DunningAction::FinalWarning => "final_warning",
            DunningAction::Cancel => "cancel",
        }
    }
}

/// One step: `action` on day `day` after the case opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DunningStep {
    pub day: u32,
    pub action: DunningAction,
}

/// The steps in the order they run (by day; at most one cancel, last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DunningSchedule(Vec<DunningStep>);

/// A schedule that cannot run as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("the schedule has no step")]
    Empty,
    #[error("steps must be in day order (day {0} comes after a later day)")]
    OutOfOrder(u32),
    #[error("`cancel` must be the last step, and only once")]
    CancelNotLast,
    #[error("day {0} is more than {MAX_DAY} days after the failure")]
    TooLate(u32),
}

/// The latest day a step may run on.
pub const MAX_DAY: u32 = 3650;

impl DunningSchedule {
    pub fn new(steps: Vec<DunningStep>) -> Result<Self, ScheduleError> {
        if steps.is_empty() {
            return Err(ScheduleError::Empty);
        }
        if let Some(step) = steps.iter().find(|s| s.day > MAX_DAY) {
            return Err(ScheduleError::TooLate(step.day));
        }
        if let Some(pair) = steps.windows(2).find(|pair| pair[1].day < pair[0].day) {
            return Err(ScheduleError::OutOfOrder(pair[1].day));
        }
        let cancels = steps.iter().filter(|s| s.action == DunningAction::Cancel).count();
        let last_is_cancel = steps.last().is_some_and(|s| s.action == DunningAction::Cancel);
        if cancels > 1 || (cancels == 1 && !last_is_cancel) {
            return Err(ScheduleError::CancelNotLast);
        }
        Ok(Self(steps))
    }

    pub fn steps(&self) -> &[DunningStep] {
        &self.0
    }

    /// Step `index`, if the schedule has it.
    pub fn step(&self, index: u32) -> Option<DunningStep> {
        self.0.get(usize::try_from(index).ok()?).copied()
    }

    /// When step `index` of a case opened at `opened_at` is due; `None` past the last step.
    pub fn due_at(&self, opened_at: DateTime<Utc>, index: u32) -> Option<DateTime<Utc>> {
        self.step(index).map(|step| opened_at + Duration::days(i64::from(step.day)))
    }
}

impl Default for DunningSchedule {
    /// Day 0 reminder, day 3 urgent, day 7 restrict, day 14 final warning, day 21 cancel.
    fn default() -> Self {
        let step = |day, action| DunningStep { day, action };
        Self(vec![
            step(0, DunningAction::Reminder),
            step(3, DunningAction::Urgent),
            step(7, DunningAction::Restrict),
            step(14, DunningAction::FinalWarning),
            step(21, DunningAction::Cancel),
        ])
    }
}

/// Whether a case still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Open,
    Closed,
}

/// Why a case closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// An invoice was paid.
    Paid,
    /// The last step canceled the subscription.
    Canceled,
    /// The subscription ended some other way (the customer canceled it); nothing is left to collect.
    SubscriptionEnded,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Paid => "paid",
            CloseReason::Canceled => "canceled",
            CloseReason::SubscriptionEnded => "subscription_ended",
        }
    }
}

/// A dunning case as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DunningCase {
    pub id: i64,
    pub workspace_id: WorkspaceId,
    pub processor: ProcessorId,
    /// The invoice whose failure opened it (or, for a closed marker, the invoice paid before any failure).
    pub invoice_id: InvoiceId,
    pub subscription_id: Option<SubscriptionId>,
    pub amount: Money,
    pub status: CaseStatus,
    /// Index of the next step to run; the ones before it ran.
    pub next_step: u32,
    pub next_step_at: Option<DateTime<Utc>>,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_reason: Option<CloseReason>,
}

/// A case about to be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCase {
    pub workspace_id: WorkspaceId,
    pub processor: ProcessorId,
    pub invoice_id: InvoiceId,
    pub subscription_id: Option<SubscriptionId>,
    pub amount: Money,
    pub opened_at: DateTime<Utc>,
    /// When the job looks at it first; `None` for an invoice that joins a case already open (the case's
    /// schedule runs on the oldest open invoice).
    pub first_step_at: Option<DateTime<Utc>>,
}

/// What a payment event tells dunning; written with the event by the webhook path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DunningSignal {
    /// An invoice failed: opens a case (or joins the open one) unless this invoice was paid.
    PaymentFailed { invoice_id: InvoiceId, subscription_id: Option<SubscriptionId>, amount: Money },
    /// An invoice was paid: it leaves the case; the last unpaid invoice leaving closes the case and lifts the
    /// restriction.
    Paid { invoice_id: InvoiceId, amount: Money },
}

/// The reason written on a workspace restricted by dunning; only a restriction with it is lifted by paying.
pub const RESTRICTED_REASON: &str = "dunning";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_runs_on_days_0_3_7_14_21_and_ends_with_cancel() {
        let schedule = DunningSchedule::default();
        let days: Vec<u32> = schedule.steps().iter().map(|s| s.day).collect();
        assert_eq!(days, [0, 3, 7, 14, 21]);
        let opened = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(schedule.due_at(opened, 2), Some(opened + Duration::days(7)));
        assert_eq!(schedule.due_at(opened, 5), None, "no step after the last");
        assert_eq!(schedule.step(4).map(|s| s.action), Some(DunningAction::Cancel));
        assert!(DunningSchedule::new(schedule.steps().to_vec()).is_ok());
    }

    #[test]
    fn a_schedule_out_of_order_or_canceling_early_is_refused() {
        let step = |day, action| DunningStep { day, action };
        assert_eq!(DunningSchedule::new(vec![]), Err(ScheduleError::Empty));
        let backwards = vec![step(3, DunningAction::Reminder), step(1, DunningAction::Urgent)];
        assert_eq!(DunningSchedule::new(backwards), Err(ScheduleError::OutOfOrder(1)));
        let early = vec![step(0, DunningAction::Cancel), step(3, DunningAction::Reminder)];
        assert_eq!(DunningSchedule::new(early), Err(ScheduleError::CancelNotLast));
        assert!(DunningSchedule::new(vec![step(0, DunningAction::Reminder)]).is_ok(), "no cancel is allowed");
    }
}
