//! Group commit of webhook deliveries (SPEC §11): concurrent deliveries queue on a few lanes, and each lane hands
//! whatever has queued while its last batch ran to `WebhookService::ingest_batch` as one transaction. Under light
//! load a batch is one event and nothing waits; under heavy load batches grow to `max_batch` on their own, because
//! deliveries arrive while the previous batch commits. Each answer is sent after the commit that made its event
//! durable.
//!
//! Events of one billing subject (their customer) always take the same lane, so they share a batch instead of
//! waiting on each other's locks from two transactions; different lanes run in parallel on their own connections.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use billing_domain::error::StoreError;
use billing_domain::events::ProcessorEvent;
use billing_domain::services::{Delivery, IngestError, IngestOutcome, WebhookService, subject_of};
use futures::FutureExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// How deliveries are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitSettings {
    /// Parallel batches (each holds one database connection while it runs).
    pub lanes: usize,
    /// Events per transaction at most; 1 turns group commit off.
    pub max_batch: usize,
    /// How long a batch waits for more events once it has one; zero takes only what already queued.
    pub max_wait: Duration,
}

type Answer = Result<IngestOutcome, IngestError>;

struct Job {
    delivery: Delivery,
    reply: oneshot::Sender<Answer>,
}

/// The lanes; cheap to share. Dropping it lets each lane finish what it has queued, then stop.
pub struct GroupCommit {
    service: Arc<WebhookService>,
    /// Empty when group commit is off (`max_batch` = 1): each delivery then runs its own transaction at once.
    lanes: Vec<mpsc::Sender<Job>>,
}

impl GroupCommit {
    /// Starts the lanes on the current Tokio runtime.
    pub fn start(service: Arc<WebhookService>, settings: GroupCommitSettings) -> Self {
        let settings =
            GroupCommitSettings { lanes: settings.lanes.max(1), max_batch: settings.max_batch.max(1), ..settings };
        let lanes = (0..settings.lanes)
            .filter(|_| settings.max_batch > 1)
            .map(|_| {
                // Room for several batches: a full queue makes senders wait (back-pressure), never fail.
                let (sender, receiver) = mpsc::channel(settings.max_batch * 8);
                tokio::spawn(run_lane(service.clone(), receiver, settings));
                sender
            })
            .collect();
        Self { service, lanes }
    }

    /// Ingests one delivery with whatever else its lane batches it with; answers after its commit.
    /// `request_id` is the delivering request's, carried into what the event causes.
    pub async fn ingest(&self, event: ProcessorEvent, raw: String, request_id: Option<String>) -> Answer {
        if self.lanes.is_empty() {
            return self.service.ingest_delivered(&event, &raw, request_id.as_deref()).await;
        }
        let lane = &self.lanes[self.lane_of(&event)];
        let (reply, answer) = oneshot::channel();
        lane.send(Job { delivery: Delivery { event, raw, request_id }, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    fn lane_of(&self, event: &ProcessorEvent) -> usize {
        let mut hasher = DefaultHasher::new();
        match subject_of(event) {
            Some(subject) => subject.key().hash(&mut hasher),
            // Touches no billing state: any lane will do.
            None => event.id.as_str().hash(&mut hasher),
        }
        (hasher.finish() % self.lanes.len() as u64) as usize
    }
}

fn stopped() -> IngestError {
    IngestError::Store(StoreError::Unavailable("webhook ingestion is shutting down".into()))
}

async fn run_lane(service: Arc<WebhookService>, mut queue: mpsc::Receiver<Job>, settings: GroupCommitSettings) {
    while let Some(first) = queue.recv().await {
        let mut jobs = vec![first];
        let deadline = Instant::now() + settings.max_wait;
        while jobs.len() < settings.max_batch {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(mpsc::error::TryRecvError::Empty) if !settings.max_wait.is_zero() => {
                    match tokio::time::timeout_at(deadline, queue.recv()).await {
                        Ok(Some(job)) => jobs.push(job),
                        _ => break,
                    }
                }
                Err(_) => break,
            }
        }
        let (deliveries, replies): (Vec<Delivery>, Vec<_>) = jobs.into_iter().map(|j| (j.delivery, j.reply)).unzip();
        let started = Instant::now();
        // A panic must not take the lane down with it (every later delivery on it would fail), nor fail the
        // batch's other events: after one, each delivery is ingested on its own.
        let answers = match AssertUnwindSafe(service.ingest_batch(&deliveries)).catch_unwind().await {
            Ok(batch) => {
                if let Some(error) = batch.fell_back {
                    tracing::warn!(events = deliveries.len(), %error, "group commit failed; ingested one by one");
                }
                batch.answers
            }
            Err(_) => {
                tracing::error!(events = deliveries.len(), "webhook batch panicked; ingesting one by one");
                let mut answers = Vec::with_capacity(deliveries.len());
                for delivery in &deliveries {
                    let alone = AssertUnwindSafe(service.ingest_delivered(
                        &delivery.event,
                        &delivery.raw,
                        delivery.request_id.as_deref(),
                    ))
                    .catch_unwind()
                    .await;
                    answers.push(alone.unwrap_or_else(|_| {
                        tracing::error!(event_id = %delivery.event.id, "webhook ingestion panicked; the processor will retry");
                        Err(IngestError::Store(StoreError::Other("ingestion failed".into())))
                    }));
                }
                answers
            }
        };
        tracing::debug!(events = deliveries.len(), micros = started.elapsed().as_micros() as u64, "group commit");
        for (reply, answer) in replies.into_iter().zip(answers) {
            // The sender gave up (client gone): its event is durable all the same.
            let _ = reply.send(answer);
        }
    }
}
