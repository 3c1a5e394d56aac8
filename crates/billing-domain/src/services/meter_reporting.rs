//! Reporting recorded usage to the processor's meters (SPEC §3.7): a job walks the events in the order they were
//! recorded from a persisted cursor and sends each one of a metered metric, under the event's own identity, to
//! the meter its catalog component names.
//!
//! Exactly once, across restarts, failures and replicas, rests on three things:
//! - **One reporter at a time.** The cursor is leased (wall clock) to one replica; another waits for the lease to
//!   end. A reporter that finds its lease lost when it saves stops at once.
//! - **The cursor moves only past what was accepted.** It is saved every [`MeterReportPolicy::save_every`]
//!   events and when a run stops, so a crash repeats at most that many sends, and the first failure (429, 5xx, a
//!   rejection) ends the run with the cursor on the last event the processor took; the next run starts there.
//! - **A repeat is harmless.** Each send carries an identifier made of the workspace and the event id, which the
//!   processor deduplicates on, so the few events a crash repeats are counted once.
//!
//! A rejected event is never skipped: it holds reporting (logged with its id) until the cause — a missing meter,
//! a deleted customer — is fixed, because dropping billable usage silently is worse than reporting it late.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::Duration;

use crate::error::{ProcessorError, StoreError};
use crate::ids::{CustomerId, WorkspaceId};
use crate::ports::{Clock, Lease, MeterCursors, PaymentProcessor, RecordedUsage, WorkspaceRepository};

/// How a reporter runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterReportPolicy {
    /// How long a claimed cursor stays this reporter's without a save; it MUST outlast `save_every` sends.
    pub lease: Duration,
    /// Events read per page.
    pub page: u32,
    /// Sends between two saves of the cursor: the most a crash makes the processor see twice.
    pub save_every: u32,
}

impl Default for MeterReportPolicy {
    fn default() -> Self {
        Self { lease: Duration::seconds(120), page: 500, save_every: 50 }
    }
}

/// What one run did.
#[derive(Debug, Default)]
pub struct MeterReport {
    /// Events sent to a meter and accepted.
    pub reported: u64,
    /// Events passed over: of a metric no meter takes, or of a workspace with no customer at this processor
    /// (nothing of theirs is billed there).
    pub passed: u64,
    /// The cursor when the run ended.
    pub cursor: i64,
    /// Another replica held the cursor: this run did nothing.
    pub held_elsewhere: bool,
    /// The lease ended while sending: another replica may have taken over, so this one stopped.
    pub lease_lost: bool,
    /// The send that ended the run, with the workspace and event id it was for; retried next run.
    pub stopped_by: Option<(WorkspaceId, String, ProcessorError)>,
}

/// Sends recorded usage to the processor's meters from a persisted cursor.
pub struct MeterReportingService {
    processor: Arc<dyn PaymentProcessor>,
    cursors: Arc<dyn MeterCursors>,
    workspaces: Arc<dyn WorkspaceRepository>,
    /// Metric → the processor meter (event name) it is reported to.
    meters: BTreeMap<String, String>,
    /// Real time, even under a test clock: how long a lease lasts.
    wall: Arc<dyn Clock>,
    /// This reporter's name on the lease (unique per process).
    owner: String,
    policy: MeterReportPolicy,
}

/// The identifier a usage event is reported under: unique per workspace and event, the same on every send.
pub fn meter_event_identifier(workspace: &WorkspaceId, event_id: &str) -> String {
    format!("usage:{workspace}:{event_id}")
}

impl MeterReportingService {
    pub fn new(
        processor: Arc<dyn PaymentProcessor>,
        cursors: Arc<dyn MeterCursors>,
        workspaces: Arc<dyn WorkspaceRepository>,
        meters: BTreeMap<String, String>,
        wall: Arc<dyn Clock>,
        owner: String,
        policy: MeterReportPolicy,
    ) -> Self {
        Self { processor, cursors, workspaces, meters, wall, owner, policy }
    }

    /// Whether any metric reports to a meter (no meters: the job has nothing to do).
    pub fn has_meters(&self) -> bool {
        !self.meters.is_empty()
    }

    fn lease(&self) -> Lease {
        let now = self.wall.now();
        Lease { now, until: now + self.policy.lease }
    }

    /// Reports everything recorded since the cursor, or up to the first failure; `stop` is asked between pages.
    pub async fn run_until(&self, stop: &(dyn Fn() -> bool + Sync)) -> Result<MeterReport, StoreError> {
        let processor = self.processor.id();
        let Some(start) = self.cursors.claim(&processor, &self.owner, self.lease()).await? else {
            return Ok(MeterReport { held_elsewhere: true, ..MeterReport::default() });
        };
        let mut run = Run { report: MeterReport { cursor: start, ..MeterReport::default() }, saved: start, sent: 0 };
        let outcome = self.report_pages(&mut run, stop).await;
        // Whatever ended the run, what was accepted is saved, unless the lease went to another reporter.
        let saved = match outcome {
            Ok(()) if run.report.lease_lost => Ok(()),
            _ => self.save(&mut run).await,
        };
        if !run.report.lease_lost {
            self.cursors.release(&processor, &self.owner).await?;
        }
        outcome.and(saved)?;
        Ok(run.report)
    }

    async fn report_pages(&self, run: &mut Run, stop: &(dyn Fn() -> bool + Sync)) -> Result<(), StoreError> {
        let mut customers: HashMap<WorkspaceId, Option<CustomerId>> = HashMap::new();
        while !stop() {
            let page = self.cursors.recorded_after(run.report.cursor, self.policy.page).await?;
            let Some(last) = page.last().map(|r| r.seq) else { return Ok(()) };
            for recorded in &page {
                if !self.report_one(recorded, &mut customers, run).await? {
                    return Ok(());
                }
                run.report.cursor = recorded.seq;
                if run.sent >= self.policy.save_every {
                    self.save(run).await?;
                    if run.report.lease_lost {
                        return Ok(());
                    }
                }
            }
            debug_assert_eq!(run.report.cursor, last);
            if page.len() < self.policy.page as usize {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Sends one event if a meter takes it; `false` when the send failed and the run must stop.
    async fn report_one(
        &self,
        recorded: &RecordedUsage,
        customers: &mut HashMap<WorkspaceId, Option<CustomerId>>,
        run: &mut Run,
    ) -> Result<bool, StoreError> {
        let event = &recorded.event;
        let Some(meter) = self.meters.get(&event.metric) else {
            run.report.passed += 1;
            return Ok(true);
        };
        let customer = match customers.get(&event.workspace_id) {
            Some(known) => known.clone(),
            None => {
                let found = self.workspaces.customer_of_workspace(&self.processor.id(), &event.workspace_id).await?;
                customers.insert(event.workspace_id.clone(), found.clone());
                found
            }
        };
        let Some(customer) = customer else {
            run.report.passed += 1;
            return Ok(true);
        };
        let identifier = meter_event_identifier(&event.workspace_id, &event.id);
        match self.processor.report_usage(&customer, meter, event.quantity, event.at, &identifier).await {
            Ok(()) => {
                run.report.reported += 1;
                run.sent += 1;
                Ok(true)
            }
            Err(error) => {
                run.report.stopped_by = Some((event.workspace_id.clone(), event.id.clone(), error));
                Ok(false)
            }
        }
    }

    /// Saves the cursor where the run stands (and extends the lease); notes a lost lease.
    async fn save(&self, run: &mut Run) -> Result<(), StoreError> {
        run.sent = 0;
        if run.report.cursor == run.saved {
            return Ok(());
        }
        let kept = self.cursors.advance(&self.processor.id(), &self.owner, run.report.cursor, self.lease()).await?;
        if kept {
            run.saved = run.report.cursor;
        } else {
            run.report.lease_lost = true;
        }
        Ok(())
    }
}

/// A run in progress.
struct Run {
    report: MeterReport,
    /// The cursor as last saved.
    saved: i64,
    /// Sends since the last save.
    sent: u32,
}

#[cfg(test)]
#[path = "meter_reporting_tests.rs"]
mod tests;
