//! Storage ports. Concurrency guarantees come from unique constraints and compare-and-set updates in the adapter;
//! each method's doc states which error it MUST return.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::coupon::Coupon;
use crate::dunning::{CloseReason, DunningCase, NewCase};
use crate::error::StoreError;
use crate::events::ProcessorEvent;
use crate::ids::{CustomerId, EventId, InvoiceId, PlanId, ProcessorId, SubscriptionId, WorkspaceId};
use crate::records::{
    AuditEntry, AuditRecord, OutboxBacklog, OutboxEntry, OutboxMessage, OutboxStatus, PendingMessage,
};
use crate::subscription::Subscription;
use crate::workspace::Workspace;

/// Workspaces, their processor customers and their credit ledger.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait WorkspaceRepository: Send + Sync {
    async fn get(&self, id: &WorkspaceId) -> Result<Option<Workspace>, StoreError>;
    /// MUST return `Duplicate` when a workspace with this id exists.
    async fn insert(&self, workspace: &Workspace) -> Result<(), StoreError>;
    /// Writes name, owner email, billing details and `updated_at`; billing state is untouched.
    /// MUST return `Other` when the workspace does not exist.
    async fn update_profile(&self, workspace: &Workspace) -> Result<(), StoreError>;
    /// Starts the one trial: sets `trial_ends_at`/`trial_plan` only where no trial was ever started (compare-and-set).
    /// Returns `false`, changing nothing, when the workspace already had a trial.
    async fn start_trial(
        &self,
        id: &WorkspaceId,
        plan: &PlanId,
        ends_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Up to `limit` workspaces whose trial ends in `(after, until]`, soonest first.
    async fn trials_ending(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Workspace>, StoreError>;
    /// The workspace a processor customer belongs to.
    async fn workspace_of_customer(
        &self,
        processor: &ProcessorId,
        customer: &CustomerId,
    ) -> Result<Option<WorkspaceId>, StoreError>;
    /// The workspaces of several customers of `processor`, read at once; unlinked customers are absent. An
    /// adapter SHOULD answer in one statement (a group commit reads ahead for its whole batch).
    async fn workspaces_of_customers(
        &self,
        processor: &ProcessorId,
        customers: &[CustomerId],
    ) -> Result<BTreeMap<CustomerId, WorkspaceId>, StoreError> {
        let mut linked = BTreeMap::new();
        for customer in customers {
            if let Some(workspace) = self.workspace_of_customer(processor, customer).await? {
                linked.insert(customer.clone(), workspace);
            }
        }
        Ok(linked)
    }
    /// Up to `limit` linked customers of `processor` with their workspaces, ordered by customer id, after `after`
    /// (keyset pagination). Reconciliation asks the processor about each.
    async fn linked_customers(
        &self,
        processor: &ProcessorId,
        after: Option<CustomerId>,
        limit: u32,
    ) -> Result<Vec<(CustomerId, WorkspaceId)>, StoreError>;
    /// The processor customer of a workspace.
    async fn customer_of_workspace(
        &self,
        processor: &ProcessorId,
        workspace: &WorkspaceId,
    ) -> Result<Option<CustomerId>, StoreError>;
    /// Links a customer to a workspace. Linking the same pair again is a no-op returning `Ok(false)`; MUST return
    /// `Duplicate` when the customer or the workspace is already linked to another. `Ok(true)` when newly linked.
    async fn link_customer(
        &self,
        processor: &ProcessorId,
        customer: &CustomerId,
        workspace: &WorkspaceId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Adds `amount` credits with ledger key `key`, once: a key already in the ledger changes nothing and returns
    /// `false`. Balance and ledger row are written together.
    async fn grant_credits(
        &self,
        id: &WorkspaceId,
        amount: i64,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Sets or lifts the workspace's restriction (dunning drops it to the free plan) and its reason. MUST return
    /// `Other` when the workspace does not exist.
    async fn set_restricted(
        &self,
        id: &WorkspaceId,
        restricted: bool,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Takes `amount` credits with ledger key `key`, atomically: never below zero, the same key once.
    async fn consume_credits(
        &self,
        id: &WorkspaceId,
        amount: i64,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<ConsumeOutcome, StoreError>;
}

/// Result of [`WorkspaceRepository::consume_credits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ConsumeOutcome {
    Consumed {
        balance: i64,
    },
    /// The key was used before; nothing consumed again.
    AlreadyConsumed {
        balance: i64,
    },
    Insufficient {
        balance: i64,
    },
}

/// A workspace and the subscription that decides its plan: what every read of billing state starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingState {
    pub workspace: Workspace,
    /// As [`SubscriptionRepository::current_for_workspace`] chooses it.
    pub subscription: Option<Subscription>,
}

/// The hot path's read of billing state (SPEC §11). An adapter MAY answer from a cache; if it does, it MUST reflect
/// every change this process committed before that change's transaction (or write) returned, and changes made by
/// other processes on the same database within its documented staleness bound.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait BillingStateReader: Send + Sync {
    /// `None` when the workspace does not exist.
    async fn billing_state(&self, id: &WorkspaceId) -> Result<Option<BillingState>, StoreError>;
    /// The states of several workspaces; those that do not exist are absent. An adapter SHOULD read what it
    /// does not hold in one statement.
    async fn billing_states(
        &self,
        ids: &[WorkspaceId],
    ) -> Result<std::collections::BTreeMap<WorkspaceId, BillingState>, StoreError> {
        let mut found = std::collections::BTreeMap::new();
        for id in ids {
            if let Some(state) = self.billing_state(id).await? {
                found.insert(id.clone(), state);
            }
        }
        Ok(found)
    }
}

/// Processor subscriptions.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait SubscriptionRepository: Send + Sync {
    async fn get(&self, processor: &ProcessorId, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError>;
    /// Several subscriptions of `processor`, read at once; unknown ids are absent. An adapter SHOULD answer in one
    /// statement.
    async fn get_many(
        &self,
        processor: &ProcessorId,
        ids: &[SubscriptionId],
    ) -> Result<BTreeMap<SubscriptionId, Subscription>, StoreError> {
        let mut found = BTreeMap::new();
        for id in ids {
            if let Some(subscription) = self.get(processor, id).await? {
                found.insert(id.clone(), subscription);
            }
        }
        Ok(found)
    }
    /// The subscription that decides a workspace's plan: a non-terminal one before terminal ones, then the most
    /// recent status change, then the greatest id (deterministic).
    async fn current_for_workspace(&self, workspace: &WorkspaceId) -> Result<Option<Subscription>, StoreError>;
    /// Up to `limit` subscriptions of `processor` that are not in a terminal state, ordered by id, after `after`
    /// (keyset pagination). Reconciliation walks them to repair drift from missed webhooks.
    async fn list_live(
        &self,
        processor: &ProcessorId,
        after: Option<SubscriptionId>,
        limit: u32,
    ) -> Result<Vec<Subscription>, StoreError>;
    /// MUST return `Duplicate` when (processor, id) exists. `now` stamps the row (the store keeps no clock).
    async fn insert(&self, subscription: &Subscription, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Writes `subscription` where the stored version equals `expected_version` (compare-and-set) and stores
    /// `subscription.version`, stamped `now`. MUST return `Conflict` when no row matched.
    async fn update(
        &self,
        subscription: &Subscription,
        expected_version: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// Inbox status of a webhook event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxStatus {
    /// Recorded; its effect is being applied in the same transaction.
    Received,
    Processed,
    /// Waits for a link (e.g. the customer) before it can apply.
    Parked,
    Ignored,
    /// Applying failed; the processor's retry (or a job) tries again.
    Failed,
}

impl InboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Processed => "processed",
            Self::Parked => "parked",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Received, Self::Processed, Self::Parked, Self::Ignored, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// A webhook event to record: the raw body is kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEvent {
    pub processor: ProcessorId,
    pub event_id: EventId,
    pub event_type: String,
    pub payload: String,
    pub received_at: DateTime<Utc>,
}

/// Result of [`EventInbox::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// First delivery: the row was inserted with status `received` and `attempts = 1`.
    New,
    /// Seen before, with its current status and attempt count.
    Seen { status: InboxStatus, attempts: u32 },
}

/// The final status of one inbox event, for [`EventInbox::set_statuses`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub processor: ProcessorId,
    pub event_id: EventId,
    pub status: InboxStatus,
    pub error: Option<String>,
}

/// What [`EventInbox::seen_many`] knows of a recorded event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub status: InboxStatus,
    pub attempts: u32,
}

/// An event to record with the status it settled on, for [`EventInbox::record_settled`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettledEvent {
    pub event: InboxEvent,
    pub status: InboxStatus,
    pub error: Option<String>,
}

/// The webhook inbox and its parked events.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait EventInbox: Send + Sync {
    /// Inserts the event unless (processor, event_id) exists. MUST be atomic under concurrent deliveries (unique
    /// constraint): exactly one caller gets `New`.
    async fn record(&self, event: &InboxEvent) -> Result<Recorded, StoreError>;
    /// The status and attempt count of each of `events` that is recorded, read at once (absent: never seen).
    /// Callers hold the lock of each event's billing subject, so no transaction that takes the same locks can be
    /// recording one of them meanwhile. An adapter SHOULD answer in one statement.
    async fn seen_many(
        &self,
        events: &[(ProcessorId, EventId)],
    ) -> Result<BTreeMap<(ProcessorId, EventId), Seen>, StoreError>;
    /// Records events already settled, each with its final status (and error text): the inbox row is written once
    /// instead of inserted and then updated. Returns, in order, whether each was new; `false` means another
    /// transaction recorded it first, and the caller MUST roll back whatever it applied for it. An adapter SHOULD
    /// insert them in one statement. `now` is when those that finished were processed.
    async fn record_settled(&self, events: &[SettledEvent], now: DateTime<Utc>) -> Result<Vec<bool>, StoreError> {
        let mut new = Vec::with_capacity(events.len());
        for settled in events {
            let recorded = self.record(&settled.event).await? == Recorded::New;
            if recorded {
                let (processor, id) = (&settled.event.processor, &settled.event.event_id);
                self.set_status(processor, id, settled.status, settled.error.clone(), now).await?;
            }
            new.push(recorded);
        }
        Ok(new)
    }
    /// Claims a `failed` event for another attempt (compare-and-set on status and attempts). Returns `false` when
    /// another delivery claimed it first.
    async fn claim_retry(&self, processor: &ProcessorId, event_id: &EventId, attempts: u32)
    -> Result<bool, StoreError>;
    /// Sets the final status (and error text, if any) of an event; a finished one is stamped processed at `now`.
    async fn set_status(
        &self,
        processor: &ProcessorId,
        event_id: &EventId,
        status: InboxStatus,
        error: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// [`EventInbox::set_status`] for several events; a later update of the same event wins. An adapter SHOULD
    /// write them in one statement.
    async fn set_statuses(&self, updates: &[StatusUpdate], now: DateTime<Utc>) -> Result<(), StoreError> {
        for update in updates {
            self.set_status(&update.processor, &update.event_id, update.status, update.error.clone(), now).await?;
        }
        Ok(())
    }
    /// Records a failed attempt: inserts the event as `failed` or, if present and `failed` or `received`, sets `failed`
    /// and increments attempts. An event settled otherwise (by another delivery meanwhile) MUST be left as it is.
    async fn record_failure(&self, event: &InboxEvent, error: &str) -> Result<(), StoreError>;
    /// Parks a translated event under `link` (e.g. `customer:cus_1`) until that link appears.
    async fn park(&self, event: &ProcessorEvent, link: &str, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// [`EventInbox::park`] for several events, each with its link and time. An adapter SHOULD insert them in one
    /// statement.
    async fn park_all(&self, parked: &[(ProcessorEvent, String, DateTime<Utc>)]) -> Result<(), StoreError> {
        for (event, link, at) in parked {
            self.park(event, link, *at).await?;
        }
        Ok(())
    }
    /// Removes and returns the events parked under `link`, oldest first. Inside a transaction, removal and the
    /// caller's apply commit together, so a parked event is applied exactly once.
    async fn take_parked(&self, processor: &ProcessorId, link: &str) -> Result<Vec<ProcessorEvent>, StoreError>;
    /// Removes the parked rows of one event; `false` when none was parked (another transaction applied it). The
    /// removal is the claim: whoever removes the rows applies the event.
    async fn unpark(&self, processor: &ProcessorId, event_id: &EventId) -> Result<bool, StoreError>;
    /// Up to `limit` parked events, oldest first, whose link exists now: `customer:<id>` with that customer linked,
    /// `subscription:<id>` with that subscription recorded (the link names of `lifecycle::customer_link` and
    /// `lifecycle::subscription_link`). They wait for nothing; the sweep applies them.
    async fn parked_ready(&self, limit: u32) -> Result<Vec<ProcessorEvent>, StoreError>;
    /// Counts events by status (operations and tests).
    async fn count_by_status(&self, status: InboxStatus) -> Result<u64, StoreError>;
}

/// Append-only audit log.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends one entry stamped `at`. Callers MUST have redacted secrets already.
    async fn append(&self, record: &AuditRecord, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Appends several entries in their order, each with its own stamp. An adapter SHOULD insert them in one
    /// statement.
    async fn append_all(&self, records: &[(AuditRecord, DateTime<Utc>)]) -> Result<(), StoreError> {
        for (record, at) in records {
            self.append(record, *at).await?;
        }
        Ok(())
    }
    /// Entries of a workspace, newest first, at most `limit`, with ids below `before` when given.
    async fn list(
        &self,
        workspace: &WorkspaceId,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}

/// A worker's hold on claimed outbox messages, on the wall clock: a test clock's jump never ends it early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub now: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// Messages to deliver after commit (emails, outbound webhooks).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Enqueues unless `dedup_key` exists; returns whether it was new. MUST be atomic (unique constraint).
    async fn enqueue(&self, message: &OutboxMessage, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// [`Outbox::enqueue`] for several messages, each with its own stamp; existing dedup keys are skipped. An
    /// adapter SHOULD insert them in one statement.
    async fn enqueue_all(&self, messages: &[(OutboxMessage, DateTime<Utc>)]) -> Result<(), StoreError> {
        for (message, now) in messages {
            self.enqueue(message, *now).await?;
        }
        Ok(())
    }
    /// Claims up to `limit` messages due at `now` (billing time) and not leased at `lease.now`, oldest due first,
    /// leasing each until `lease.until` so no other worker takes it meanwhile — on one database, across
    /// processes (PostgreSQL: `FOR UPDATE SKIP LOCKED`).
    async fn claim_due(&self, now: DateTime<Utc>, lease: Lease, limit: u32) -> Result<Vec<PendingMessage>, StoreError>;
    async fn mark_delivered(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Records a failed attempt and when to try again (`None`: give up). A message no longer pending (another
    /// worker delivered it) is left as it is.
    async fn mark_failed(&self, id: i64, error: &str, retry_at: Option<DateTime<Utc>>) -> Result<(), StoreError>;
    /// Messages with `status`, newest first, at most `limit`, with ids below `before` when given.
    async fn list_messages(
        &self,
        status: OutboxStatus,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<OutboxEntry>, StoreError>;
    async fn get(&self, id: i64) -> Result<Option<OutboxEntry>, StoreError>;
    /// How many messages are pending and dead, and the oldest pending one's enqueue time, in one read.
    async fn backlog(&self) -> Result<OutboxBacklog, StoreError>;
    /// Makes a dead or pending message due at `now` with its attempts and error cleared; `false` when it was
    /// delivered or does not exist. A retried message is claimed like a new one, so it is still delivered once.
    async fn retry(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError>;
}

/// Dunning cases. Writers hold the workspace's lock (`Transaction::lock`), so "one open case per workspace" is
/// kept by checking then inserting; every step is a compare-and-set, so two replicas never run one step twice.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait DunningRepository: Send + Sync {
    async fn get_case(&self, id: i64) -> Result<Option<DunningCase>, StoreError>;
    /// The workspace's case: its oldest open row, if any.
    async fn open_case(&self, workspace: &WorkspaceId) -> Result<Option<DunningCase>, StoreError>;
    /// The most recent case of the workspace, open or closed.
    async fn latest_case(&self, workspace: &WorkspaceId) -> Result<Option<DunningCase>, StoreError>;
    /// The case of one invoice, open or closed.
    async fn case_for_invoice(
        &self,
        workspace: &WorkspaceId,
        invoice: &InvoiceId,
    ) -> Result<Option<DunningCase>, StoreError>;
    /// Opens a row at step 0. MUST return `Duplicate` when the invoice has one.
    async fn open(&self, case: &NewCase) -> Result<DunningCase, StoreError>;
    /// Records a case closed from the start (an invoice paid before any failure of it was seen), so its late
    /// failure opens none. No-op when the invoice has a case.
    async fn insert_closed(&self, case: &NewCase, reason: CloseReason) -> Result<(), StoreError>;
    /// Closes case `id` if it is open; `false` when it was not.
    async fn close(&self, id: i64, reason: CloseReason, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Moves open case `id` from step `from` to the next, due at `next_at` (`None`: no step left); `false`,
    /// changing nothing, when the case is no longer open at `from` (another worker ran the step).
    async fn advance(&self, id: i64, from: u32, next_at: Option<DateTime<Utc>>) -> Result<bool, StoreError>;
    /// Moves open case `id`, still at step `step`, to look again at `at` (the schedule says the step is later);
    /// `false` when the case moved on or closed.
    async fn reschedule(&self, id: i64, step: u32, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Hands the schedule of a case over to open row `id` (the case's own invoice was paid, this one is not).
    async fn adopt(
        &self,
        id: i64,
        next_step: u32,
        next_step_at: Option<DateTime<Utc>>,
        opened_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Up to `limit` open cases whose next step is due at `now`, the longest due first.
    async fn due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<DunningCase>, StoreError>;
}

pub use crate::usage::UsageEvent;
use crate::usage::{UsageRange, UsageTotals};

/// An event to record, with the range it opens when no range its workspace has opened holds it: the period
/// [`crate::usage::period_at`] gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedEvent {
    pub event: UsageEvent,
    pub period: UsageRange,
}

/// Metered usage: the events, and totals kept per range so a period's usage is read in O(1).
///
/// A workspace's *ranges* are the periods its events opened. Each keeps the exact totals of every event of the
/// workspace whose time it holds — whenever that event arrived — so ranges may overlap (a calendar month and a
/// billing period), and an event counts in each range holding it.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait UsageRepository: Send + Sync {
    /// Records, in the caller's transaction, each event its workspace has not recorded before (by id; a repeat
    /// within `events` is not new either) and counts it in every range of its workspace that holds its time.
    /// Where none does, the event's `period` is opened first, with the totals of the events it already holds.
    /// Locks each workspace as [`Transaction::lock`] does. Per event, in order: whether it was new.
    async fn record(&self, events: &[PlacedEvent], now: DateTime<Utc>) -> Result<Vec<bool>, StoreError>;
    /// Each metric's totals over `range`: the kept totals when a range of exactly these bounds was opened, else
    /// from the events it holds. Metrics without events are absent.
    async fn totals(&self, workspace: &WorkspaceId, range: UsageRange) -> Result<UsageTotals, StoreError>;
    /// Whether the workspace recorded an event `id`.
    async fn contains(&self, workspace: &WorkspaceId, id: &str) -> Result<bool, StoreError>;
}

/// A recorded usage event with its place in the order events were recorded (`seq`, increasing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedUsage {
    pub seq: i64,
    pub event: UsageEvent,
}

/// How far usage has been reported to a processor's meters: one cursor per processor, leased to one reporter
/// (replica) at a time on the wall clock, so a test clock's jump never ends a lease early.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait MeterCursors: Send + Sync {
    /// Takes the cursor of `processor` for `owner` unless another owner's lease is live (then `None`); else the
    /// last `seq` reported (0 before the first report). MUST be a compare-and-set: two claimers never both win.
    async fn claim(&self, processor: &ProcessorId, owner: &str, lease: Lease) -> Result<Option<i64>, StoreError>;
    /// Moves the cursor to `seq` and extends the lease while `owner` holds it; `false` when it no longer does
    /// (its lease ended and another took the cursor), in which case nothing changed.
    async fn advance(&self, processor: &ProcessorId, owner: &str, seq: i64, lease: Lease) -> Result<bool, StoreError>;
    /// Ends `owner`'s lease, keeping the cursor.
    async fn release(&self, processor: &ProcessorId, owner: &str) -> Result<(), StoreError>;
    /// Up to `limit` events recorded after `after`, in `seq` order, and only below a horizon under which every
    /// recording has committed: an event returned is never followed later by one of a lower `seq`.
    async fn recorded_after(&self, after: i64, limit: u32) -> Result<Vec<RecordedUsage>, StoreError>;
}

/// Result of [`CouponRepository::redeem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redemption {
    Redeemed,
    /// This workspace had redeemed it before: no other use taken.
    AlreadyRedeemed,
    /// The last use was taken (possibly concurrently).
    Exhausted,
    NotFound,
}

/// Coupons and their redemptions.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait CouponRepository: Send + Sync {
    /// Case-insensitive lookup.
    async fn get(&self, code: &str) -> Result<Option<Coupon>, StoreError>;
    /// MUST return `Duplicate` when the code exists (case-insensitively).
    async fn insert(&self, coupon: &Coupon) -> Result<(), StoreError>;
    /// Up to `limit` coupons, by code.
    async fn list(&self, limit: u32) -> Result<Vec<Coupon>, StoreError>;
    /// Takes one use atomically (`used_count < max_uses` compare-and-set): of two concurrent redemptions of the
    /// last use exactly one gets `Redeemed`. A workspace redeems a coupon once: its second redemption is
    /// `AlreadyRedeemed` and takes no other use.
    async fn redeem(&self, code: &str, workspace: &WorkspaceId, now: DateTime<Utc>) -> Result<Redemption, StoreError>;
    /// Gives back the use `workspace` took (its checkout could not be started); nothing when it took none.
    async fn unredeem(&self, code: &str, workspace: &WorkspaceId) -> Result<(), StoreError>;
}

/// What a billing state change serializes on (SPEC §5.8). A processor customer stands for its workspace before the
/// link between them exists, so an event of an unlinked customer and the checkout that links it meet on one lock.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BillingSubject {
    Customer { processor: ProcessorId, customer: CustomerId },
    Workspace(WorkspaceId),
}

impl BillingSubject {
    /// The subject's lock name, distinct for every subject.
    pub fn key(&self) -> String {
        match self {
            Self::Customer { processor, customer } => format!("customer:{processor}:{customer}"),
            Self::Workspace(id) => format!("workspace:{id}"),
        }
    }
}

/// The repositories of one open transaction.
#[async_trait]
pub trait Transaction: Send + Sync {
    /// Serializes the rest of this transaction with every other transaction that locks the same subject, until
    /// commit or rollback — across connections and processes on one database; different subjects never wait for
    /// each other. Reads made after it see everything the previous holder committed. Callers lock a customer
    /// before its workspace; re-locking a held subject is a no-op. A deadlock MUST surface as `Conflict` (the
    /// caller retries the transaction).
    async fn lock(&self, subject: &BillingSubject) -> Result<(), StoreError>;
    /// [`Transaction::lock`] for several subjects, in the order given (callers sort them, so lockers of
    /// overlapping sets do not wait on each other in a cycle). An adapter SHOULD lock them in one statement.
    async fn lock_all(&self, subjects: &[BillingSubject]) -> Result<(), StoreError> {
        for subject in subjects {
            self.lock(subject).await?;
        }
        Ok(())
    }
    /// Marks where [`Transaction::rollback_to_savepoint`] returns to. One level: a new savepoint replaces the
    /// previous one. A group commit isolates each event of its shared transaction this way.
    async fn savepoint(&self) -> Result<(), StoreError>;
    /// Undoes every write since the last savepoint, keeping the transaction and what came before it usable —
    /// also after a statement failed (PostgreSQL refuses any other statement then).
    async fn rollback_to_savepoint(&self) -> Result<(), StoreError>;
    fn workspaces(&self) -> &dyn WorkspaceRepository;
    fn subscriptions(&self) -> &dyn SubscriptionRepository;
    fn inbox(&self) -> &dyn EventInbox;
    fn audit(&self) -> &dyn AuditLog;
    fn outbox(&self) -> &dyn Outbox;
    fn payments(&self) -> &dyn super::PaymentRepository;
    fn dunning(&self) -> &dyn DunningRepository;
    fn usage(&self) -> &dyn UsageRepository;
    /// Makes every write durable at once. Dropping a transaction without commit rolls it back.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// The transaction boundary.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
#[async_trait]
pub trait UnitOfWork: Send + Sync {
    /// Opens a transaction. MUST return `Unavailable` when the database cannot be reached.
    async fn begin(&self) -> Result<Box<dyn Transaction>, StoreError>;
}
