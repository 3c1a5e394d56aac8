//! Background jobs of `tollgate serve`: each runs on its own interval until shutdown, and a run in progress
//! finishes before the process exits. Every job is safe with several replicas on one database: what they change
//! goes through the same per-subject serialization as webhooks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_domain::ports::{Clock, IdempotencyKeys, PageLinks};
use billing_domain::services::{
    DunningService, MeterReport, MeterReportingService, OutboxService, PARKED_SWEEP_BATCH, ReconcileService,
    RenewalService, TrialService, WebhookService,
};
use tokio::sync::watch;

use crate::clock::TimeMachine;
use tokio::task::JoinHandle;

/// The running jobs.
pub struct Jobs {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

/// What the jobs run on, with each job's interval in seconds (0: off).
pub struct JobSet {
    pub reconciler: ReconcileService,
    pub reconcile_secs: u64,
    pub webhooks: Arc<WebhookService>,
    pub sweep_secs: u64,
    pub idempotency: Arc<dyn IdempotencyKeys>,
    pub clock: Arc<dyn Clock>,
    pub prune_keys_secs: u64,
    /// The billing page's redeemed links, forgotten once expired (on the same interval as the keys).
    pub page_links: Arc<dyn PageLinks>,
    pub outbox: Arc<OutboxService>,
    /// Pause between outbox rounds that found nothing due (zero: no delivery).
    pub outbox_poll: Duration,
    pub dunning: Arc<DunningService>,
    pub dunning_secs: u64,
    pub trials: Arc<TrialService>,
    pub trial_reminder_secs: u64,
    /// The test clock, read from the database every few hundred milliseconds so this replica follows an advance
    /// made through another.
    pub time_machine: Option<Arc<TimeMachine>>,
    /// The sandbox's renewals, when the sandbox is on.
    pub renewals: Option<Arc<RenewalService>>,
    pub renewal_secs: u64,
    /// Usage reported to the processor's meters, when the catalog names any and the processor takes them.
    pub meters: Option<Arc<MeterReportingService>>,
    pub meter_report_secs: u64,
}

/// How often a replica on a test clock reads where the shared clock stands.
const CLOCK_SYNC: Duration = Duration::from_millis(200);

/// Open cases (or ending trials) one run takes; the rest wait for the next run.
const DUNNING_BATCH: u32 = 200;

impl Jobs {
    /// Starts reconciliation, the parked-event sweep and the pruning of expired idempotency keys.
    pub fn start(set: JobSet) -> Self {
        let JobSet {
            reconciler,
            reconcile_secs,
            webhooks,
            sweep_secs,
            idempotency,
            clock,
            prune_keys_secs,
            page_links,
            outbox,
            outbox_poll,
            dunning,
            dunning_secs,
            trials,
            trial_reminder_secs,
            time_machine,
            renewals,
            renewal_secs,
            meters,
            meter_report_secs,
        } = set;
        let (stop, stopped) = watch::channel(false);
        let reconciler = Arc::new(reconciler);
        let mut handles = Vec::new();
        if let Some(machine) = time_machine {
            let mut stopping = stopped.clone();
            handles.push(tokio::spawn(async move {
                loop {
                    if let Err(error) = machine.sync().await {
                        tracing::warn!(%error, "reading the test clock failed");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(CLOCK_SYNC) => {}
                        _ = stopping.changed() => break,
                    }
                }
            }));
        }
        let stopping = stopped.clone();
        handles.extend(every("reconcile", reconcile_secs, stopped.clone(), move || {
            let (reconciler, stopping) = (reconciler.clone(), stopping.clone());
            async move {
                match reconciler.run_until(&move || *stopping.borrow()).await {
                    Ok(report) => {
                        tracing::info!(
                            checked = report.checked,
                            repaired = report.repaired.len(),
                            discovered = report.discovered.len(),
                            parked_applied = report.parked.applied,
                            failed = report.failed.len(),
                            "reconciliation run finished"
                        );
                        true
                    }
                    Err(error) => failed(error, "reconciliation run failed"),
                }
            }
        }));
        let links_clock = clock.clone();
        handles.extend(every("prune_idempotency_keys", prune_keys_secs, stopped.clone(), move || {
            let (idempotency, clock) = (idempotency.clone(), clock.clone());
            async move {
                match idempotency.prune(clock.now()).await {
                    Ok(0) => true,
                    Ok(pruned) => {
                        tracing::info!(pruned, "expired idempotency keys deleted");
                        true
                    }
                    Err(error) => failed(error, "pruning idempotency keys failed"),
                }
            }
        }));
        handles.extend(every("prune_billing_page_links", prune_keys_secs, stopped.clone(), move || {
            let (page_links, clock) = (page_links.clone(), links_clock.clone());
            async move {
                match page_links.prune(clock.now()).await {
                    Ok(0) => true,
                    Ok(pruned) => {
                        tracing::info!(pruned, "expired billing-page links deleted");
                        true
                    }
                    Err(error) => failed(error, "pruning billing-page links failed"),
                }
            }
        }));
        handles.extend(deliver_outbox(outbox, outbox_poll, stopped.clone()));
        handles.extend(every("trial_reminders", trial_reminder_secs, stopped.clone(), move || {
            let trials = trials.clone();
            async move {
                match trials.remind_ending(DUNNING_BATCH).await {
                    Ok(0) => true,
                    Ok(reminded) => {
                        tracing::info!(reminded, "trial-ending reminders enqueued");
                        true
                    }
                    Err(error) => failed(error, "trial reminders failed"),
                }
            }
        }));
        handles.extend(every("dunning", dunning_secs, stopped.clone(), move || {
            let dunning = dunning.clone();
            async move {
                match dunning.run_due(DUNNING_BATCH).await {
                    Ok(report) => {
                        for (case, action) in &report.steps {
                            tracing::info!(case_id = case, step = action.as_str(), "dunning step ran");
                        }
                        for (case, error) in &report.failed {
                            tracing::warn!(case_id = case, %error, "dunning step failed; retried next run");
                        }
                        report.failed.is_empty()
                    }
                    Err(error) => failed(error, "dunning run failed"),
                }
            }
        }));
        if let Some(renewals) = renewals {
            handles.extend(every("sandbox_renewals", renewal_secs, stopped.clone(), move || {
                let renewals = renewals.clone();
                async move {
                    let run = renewals.run().await;
                    let succeeded = run.is_ok();
                    crate::clock::log_renewals(run);
                    succeeded
                }
            }));
        }
        if let Some(meters) = meters {
            let stopping = stopped.clone();
            handles.extend(every("meter_reporting", meter_report_secs, stopped.clone(), move || {
                let (meters, stopping) = (meters.clone(), stopping.clone());
                async move {
                    match meters.run_until(&move || *stopping.borrow()).await {
                        Ok(report) => {
                            log_meter_report(&report);
                            true
                        }
                        Err(error) => failed(error, "usage reporting run failed; retried next run"),
                    }
                }
            }));
        }
        handles.extend(every("parked_event_sweep", sweep_secs, stopped, move || {
            let webhooks = webhooks.clone();
            async move {
                match webhooks.sweep_parked(PARKED_SWEEP_BATCH).await {
                    Ok(report) if report.ready > 0 => {
                        tracing::warn!(
                            ready = report.ready,
                            applied = report.applied,
                            failed = report.failed,
                            still_parked = report.still_parked,
                            "applied parked events whose link exists"
                        );
                        true
                    }
                    Ok(_) => true,
                    Err(error) => failed(error, "parked-event sweep failed"),
                }
            }
        }));
        Self { stop, handles }
    }

    /// Stops every job, letting a run in progress finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}

fn log_meter_report(report: &MeterReport) {
    if report.reported > 0 {
        tracing::info!(reported = report.reported, passed = report.passed, cursor = report.cursor, "usage reported");
    }
    if report.lease_lost {
        tracing::warn!(cursor = report.cursor, "usage reporting lease lost mid-run; another replica carries on");
    }
    if let Some((workspace, event, error)) = &report.stopped_by {
        // Held, never skipped: the next run sends this event again first.
        tracing::warn!(
            workspace_id = %workspace,
            event_id = event,
            %error,
            cursor = report.cursor,
            "the processor refused a usage event; reporting waits on it"
        );
    }
}

/// Delivers the outbox until `stopped` changes: round after round while rounds find work, pausing `poll` after
/// one that found none (or failed). A round in progress finishes first — its deliveries are bounded by their
/// timeouts — so a shutdown leaves every message delivered or claimable again; a kill -9 leaves the claimed ones
/// to be taken again when their lease ends.
fn deliver_outbox(
    outbox: Arc<OutboxService>,
    poll: Duration,
    mut stopped: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    (!poll.is_zero()).then(|| {
        tokio::spawn(async move {
            loop {
                let started = Instant::now();
                let round = outbox.deliver_due().await;
                job_ran("outbox_delivery", round.is_ok(), started);
                let pause = match round {
                    Ok(report) => {
                        for (id, error) in &report.failures {
                            tracing::warn!(outbox_id = id, %error, "outbox delivery failed");
                        }
                        if report.dead > 0 {
                            tracing::error!(
                                dead = report.dead,
                                "outbox messages gave up: GET /v1/admin/outbox?status=dead"
                            );
                        }
                        if report.claimed > 0 {
                            tracing::debug!(
                                delivered = report.delivered,
                                fanned_out = report.fanned_out,
                                retrying = report.retrying,
                                "outbox round"
                            );
                        }
                        report.claimed == 0
                    }
                    Err(error) => {
                        tracing::error!(%error, "outbox round failed");
                        true
                    }
                };
                if *stopped.borrow() {
                    break;
                }
                if pause {
                    tokio::select! {
                        _ = tokio::time::sleep(poll) => {}
                        _ = stopped.changed() => break,
                    }
                }
            }
        })
    })
}

/// Logs a failed run; `false`, the run's outcome.
fn failed(error: impl std::fmt::Display, what: &str) -> bool {
    tracing::error!(%error, "{what}");
    false
}

/// `tollgate_job_runs_total{job, outcome}` and `tollgate_job_run_duration_seconds{job}`.
fn job_ran(job: &'static str, succeeded: bool, started: Instant) {
    let outcome = if succeeded { "ok" } else { "failed" };
    metrics::counter!("tollgate_job_runs_total", "job" => job, "outcome" => outcome).increment(1);
    metrics::histogram!("tollgate_job_run_duration_seconds", "job" => job).record(started.elapsed().as_secs_f64());
}

/// Runs `job` every `secs` seconds until `stopped` changes, counting its runs and failures (`job` answers whether
/// the run succeeded); `None` when `secs` is 0.
fn every<F, Fut>(name: &'static str, secs: u64, mut stopped: watch::Receiver<bool>, job: F) -> Option<JoinHandle<()>>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    (secs > 0).then(|| {
        tokio::spawn(async move {
            let interval = Duration::from_secs(secs);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stopped.changed() => break,
                }
                let started = Instant::now();
                job_ran(name, job().await, started);
            }
        })
    })
}
