//! The reporter against an in-memory cursor (a fair model of the store's compare-and-set) and a mocked processor
//! that records what it accepted.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::Duration;
use rust_decimal::Decimal;

use super::*;
use crate::ids::ProcessorId;
use crate::ports::MockWorkspaceRepository;
use crate::services::test_support::{clock, now};
use crate::services::tests::processor_mock::MockProcessor;
use crate::usage::UsageEvent;

#[derive(Default)]
struct Cursor {
    seq: i64,
    owner: Option<String>,
    saves: u32,
}

/// The events as recorded, and one cursor; `steal_after_saves` hands the lease to another owner after that many
/// saves, as an expired lease taken by another replica would.
#[derive(Default)]
struct FakeCursors {
    events: Vec<RecordedUsage>,
    cursor: Mutex<Cursor>,
    steal_after_saves: Option<u32>,
}

#[async_trait]
impl MeterCursors for FakeCursors {
    async fn claim(&self, _: &ProcessorId, owner: &str, _: Lease) -> Result<Option<i64>, StoreError> {
        let mut cursor = self.cursor.lock().unwrap();
        if cursor.owner.as_deref().is_some_and(|o| o != owner) {
            return Ok(None);
        }
        cursor.owner = Some(owner.to_owned());
        Ok(Some(cursor.seq))
    }
    async fn advance(&self, _: &ProcessorId, owner: &str, seq: i64, _: Lease) -> Result<bool, StoreError> {
        let mut cursor = self.cursor.lock().unwrap();
        if self.steal_after_saves == Some(cursor.saves) {
            cursor.owner = Some("other-replica".into());
        }
        if cursor.owner.as_deref() != Some(owner) {
            return Ok(false);
        }
        cursor.seq = seq;
        cursor.saves += 1;
        Ok(true)
    }
    async fn release(&self, _: &ProcessorId, owner: &str) -> Result<(), StoreError> {
        let mut cursor = self.cursor.lock().unwrap();
        if cursor.owner.as_deref() == Some(owner) {
            cursor.owner = None;
        }
        Ok(())
    }
    async fn recorded_after(&self, after: i64, limit: u32) -> Result<Vec<RecordedUsage>, StoreError> {
        Ok(self.events.iter().filter(|r| r.seq > after).take(limit as usize).cloned().collect())
    }
}

fn recorded(seq: i64, workspace: &str, metric: &str) -> RecordedUsage {
    RecordedUsage {
        seq,
        event: UsageEvent {
            id: format!("evt_{seq}"),
            workspace_id: WorkspaceId::parse(workspace).unwrap(),
            metric: metric.into(),
            quantity: Decimal::new(seq * 10 + 5, 1),
            at: now() - Duration::minutes(seq),
        },
    }
}

/// Accepted identifiers, in order; the `fail_at`-th send (1-based, counting every attempt) answers 429.
type Accepted = Arc<Mutex<Vec<(String, String, Decimal)>>>;

fn processor(accepted: Accepted, fail_at: Option<usize>) -> MockProcessor {
    let mut processor = MockProcessor::new();
    processor.expect_id().return_const(ProcessorId::new("stripe"));
    let attempts = Mutex::new(0usize);
    processor.expect_report_usage().returning(move |customer, meter, quantity, _, identifier| {
        let mut attempt = attempts.lock().unwrap();
        *attempt += 1;
        if Some(*attempt) == fail_at {
            return Err(ProcessorError::Unavailable("429 rate limited".into()));
        }
        assert_eq!(customer.as_str(), "cus_acme", "only acme has a customer");
        accepted.lock().unwrap().push((identifier.to_owned(), meter.to_owned(), quantity));
        Ok(())
    });
    processor
}

fn workspaces() -> MockWorkspaceRepository {
    let mut workspaces = MockWorkspaceRepository::new();
    workspaces
        .expect_customer_of_workspace()
        .returning(|_, workspace| Ok((workspace.as_str() == "acme").then(|| CustomerId::new("cus_acme"))));
    workspaces
}

fn service(cursors: Arc<FakeCursors>, processor: MockProcessor, owner: &str, save_every: u32) -> MeterReportingService {
    let meters = BTreeMap::from([("compute_hours".to_owned(), "tollgate_compute_hours".to_owned())]);
    let policy = MeterReportPolicy { lease: Duration::seconds(60), page: 4, save_every };
    MeterReportingService::new(
        Arc::new(processor),
        cursors,
        Arc::new(workspaces()),
        meters,
        clock(),
        owner.into(),
        policy,
    )
}

/// Eleven events: acme's compute hours (reported), acme's storage (no meter) and globex's compute hours (no
/// customer at the processor).
fn stream() -> Vec<RecordedUsage> {
    (1..=11)
        .map(|seq| match seq % 4 {
            1 => recorded(seq, "acme", "storage_gb"),
            2 => recorded(seq, "globex", "compute_hours"),
            _ => recorded(seq, "acme", "compute_hours"),
        })
        .collect()
}

fn reported_ids(events: &[RecordedUsage]) -> Vec<String> {
    events
        .iter()
        .filter(|r| r.event.workspace_id.as_str() == "acme" && r.event.metric == "compute_hours")
        .map(|r| meter_event_identifier(&r.event.workspace_id, &r.event.id))
        .collect()
}

fn never() -> bool {
    false
}

#[test]
fn each_metered_event_is_reported_once_in_order_and_the_cursor_saved() {
    futures::executor::block_on(async {
        let cursors = Arc::new(FakeCursors { events: stream(), ..FakeCursors::default() });
        let accepted = Accepted::default();
        let reporter = service(cursors.clone(), processor(accepted.clone(), None), "a", 2);
        let report = reporter.run_until(&never).await.unwrap();
        assert_eq!((report.reported, report.passed, report.cursor), (5, 6, 11));
        assert!(report.stopped_by.is_none() && !report.lease_lost && !report.held_elsewhere);
        let sent: Vec<String> = accepted.lock().unwrap().iter().map(|(id, _, _)| id.clone()).collect();
        assert_eq!(sent, reported_ids(&stream()));
        assert!(accepted.lock().unwrap().iter().all(|(_, meter, _)| meter == "tollgate_compute_hours"));
        assert_eq!(accepted.lock().unwrap()[0].2, Decimal::new(35, 1), "the event's own quantity");
        {
            let cursor = cursors.cursor.lock().unwrap();
            assert_eq!((cursor.seq, cursor.owner.as_deref()), (11, None), "saved and released");
        }

        let again = reporter.run_until(&never).await.unwrap();
        assert_eq!((again.reported, again.cursor), (0, 11), "nothing is reported twice");
        assert_eq!(accepted.lock().unwrap().len(), 5);
    })
}

#[test]
fn a_failed_send_stops_the_run_on_the_last_accepted_event_and_the_next_run_resumes_there() {
    futures::executor::block_on(async {
        let cursors = Arc::new(FakeCursors { events: stream(), ..FakeCursors::default() });
        let accepted = Accepted::default();
        // The third send (acme's evt_7) answers 429.
        let first = service(cursors.clone(), processor(accepted.clone(), Some(3)), "a", 50);
        let report = first.run_until(&never).await.unwrap();
        let (workspace, event, error) = report.stopped_by.expect("the 429 stops the run");
        assert_eq!((workspace.as_str(), event.as_str()), ("acme", "evt_7"));
        assert!(matches!(error, ProcessorError::Unavailable(_)));
        assert_eq!((report.reported, report.cursor), (2, 6), "the cursor waits on the failed event");
        assert_eq!(cursors.cursor.lock().unwrap().seq, 6, "saved though fewer than save_every were sent");

        let second = service(cursors.clone(), processor(accepted.clone(), None), "b", 50);
        let report = second.run_until(&never).await.unwrap();
        assert_eq!((report.reported, report.cursor), (3, 11));
        let sent: Vec<String> = accepted.lock().unwrap().iter().map(|(id, _, _)| id.clone()).collect();
        assert_eq!(sent, reported_ids(&stream()), "every event once: none skipped, none repeated");
    })
}

#[test]
fn a_cursor_leased_to_another_replica_is_left_alone() {
    futures::executor::block_on(async {
        let cursors = Arc::new(FakeCursors { events: stream(), ..FakeCursors::default() });
        cursors.cursor.lock().unwrap().owner = Some("other-replica".into());
        let accepted = Accepted::default();
        let report = service(cursors.clone(), processor(accepted.clone(), None), "a", 2).run_until(&never).await;
        assert!(report.unwrap().held_elsewhere);
        assert!(accepted.lock().unwrap().is_empty());
        assert_eq!(cursors.cursor.lock().unwrap().owner.as_deref(), Some("other-replica"));
    })
}

#[test]
fn a_reporter_whose_lease_was_taken_stops_at_its_next_save() {
    futures::executor::block_on(async {
        let cursors = Arc::new(FakeCursors { events: stream(), steal_after_saves: Some(1), ..FakeCursors::default() });
        let accepted = Accepted::default();
        let report =
            service(cursors.clone(), processor(accepted.clone(), None), "a", 2).run_until(&never).await.unwrap();
        assert!(report.lease_lost);
        assert_eq!(accepted.lock().unwrap().len(), 4, "two saves of two sends; the second found the lease gone");
        let cursor = cursors.cursor.lock().unwrap();
        assert_eq!(cursor.seq, 4, "the cursor stays where the last kept save put it");
        assert_eq!(cursor.owner.as_deref(), Some("other-replica"), "not released: it is no longer ours");
    })
}

#[test]
fn stopping_between_pages_saves_what_was_sent() {
    futures::executor::block_on(async {
        let cursors = Arc::new(FakeCursors { events: stream(), ..FakeCursors::default() });
        let accepted = Accepted::default();
        let pages = Mutex::new(0);
        let stop_after_first_page = || {
            let mut asked = pages.lock().unwrap();
            *asked += 1;
            *asked > 1
        };
        let reporter = service(cursors.clone(), processor(accepted.clone(), None), "a", 50);
        let report = reporter.run_until(&stop_after_first_page).await.unwrap();
        assert_eq!(report.cursor, 4, "one page of four");
        assert_eq!(cursors.cursor.lock().unwrap().seq, 4);
        assert_eq!(accepted.lock().unwrap().len(), 2);
    })
}
