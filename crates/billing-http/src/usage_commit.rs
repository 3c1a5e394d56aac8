//! Group commit of usage batches: concurrent `POST /v1/usage` requests are judged each on its own, then queue on
//! one lane, which records whatever queued while its last transaction ran as one transaction
//! (`UsageService::record_together`): one commit — one `fsync` on SQLite — and one pass over the indexes for
//! several batches. Under light load a transaction holds one batch and nothing waits; under load they grow on
//! their own, up to `max_events`. Each answer is sent after the commit that made its batch durable.
//!
//! One lane: batches usually span many workspaces, and recording locks every workspace of a batch, so two
//! transactions of whole batches side by side would mostly wait on each other. The parallelism is inside instead:
//! on PostgreSQL the service splits what the lane hands it by workspace (`usage.write_partitions`), and those
//! transactions never share a lock.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use billing_domain::error::StoreError;
use billing_domain::services::{EventOutcome, JudgedBatch, UsageService};
use futures::FutureExt;
use tokio::sync::{mpsc, oneshot};

type Answer = Result<Vec<EventOutcome>, StoreError>;

struct Job {
    batch: JudgedBatch,
    reply: oneshot::Sender<Answer>,
}

/// The lane; cheap to share. Dropping it lets the lane finish what it has queued, then stop.
pub struct UsageCommit {
    service: Arc<UsageService>,
    /// `None` when group commit is off: each batch then runs its own transaction at once.
    lane: Option<mpsc::Sender<Job>>,
}

impl UsageCommit {
    /// Starts the lane on the current Tokio runtime; `max_events` events per transaction at most (a batch is
    /// never split, so one larger batch still goes alone), and at most 1,000 (one batch) turns grouping off.
    pub fn start(service: Arc<UsageService>, max_events: usize) -> Self {
        let lane = (max_events > billing_domain::usage::MAX_BATCH).then(|| {
            let (sender, receiver) = mpsc::channel(64);
            tokio::spawn(run_lane(service.clone(), receiver, max_events));
            sender
        });
        Self { service, lane }
    }

    /// Records `batch` with whatever else queued beside it; answers after its commit.
    pub async fn record(&self, batch: JudgedBatch) -> Answer {
        let Some(lane) = &self.lane else {
            return self.service.record_together(vec![batch]).await.pop().unwrap_or_else(|| Ok(Vec::new()));
        };
        let (reply, answer) = oneshot::channel();
        lane.send(Job { batch, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("usage ingestion is shutting down".into())
}

async fn run_lane(service: Arc<UsageService>, mut queue: mpsc::Receiver<Job>, max_events: usize) {
    // A job taken from the queue that did not fit the last transaction: it opens the next.
    let mut carried: Option<Job> = None;
    loop {
        let first = match carried.take() {
            Some(job) => job,
            None => match queue.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let mut events = first.batch.len();
        let mut jobs = vec![first];
        while let Ok(job) = queue.try_recv() {
            if events + job.batch.len() > max_events {
                carried = Some(job);
                break;
            }
            events += job.batch.len();
            jobs.push(job);
        }
        let (batches, replies): (Vec<JudgedBatch>, Vec<_>) = jobs.into_iter().map(|j| (j.batch, j.reply)).unzip();
        let count = batches.len();
        // A panic must not take the lane down with it: every later batch would fail.
        let answers = match AssertUnwindSafe(service.record_together(batches)).catch_unwind().await {
            Ok(answers) => answers,
            Err(_) => {
                tracing::error!(batches = count, "recording usage panicked");
                (0..count).map(|_| Err(StoreError::Other("recording usage failed".into()))).collect()
            }
        };
        tracing::debug!(batches = count, events, "usage group commit");
        for (reply, answer) in replies.into_iter().zip(answers) {
            // The client is gone: its batch is durable all the same.
            let _ = reply.send(answer);
        }
    }
}
