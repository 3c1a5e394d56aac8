//! Usage events: recorded a batch at a time, once per (workspace, id), and counted in every range of their
//! workspace that holds them; a range's totals are kept exact, and a range never opened is read from its events.

use std::str::FromStr;

use billing_domain::ports::{PlacedEvent, UnitOfWork, UsageEvent, UsageRepository, WorkspaceRepository};
use billing_domain::usage::{UsageRange, UsageTotals};
use billing_store::Store;
use rust_decimal::Decimal;

use crate::helpers::{at, now, workspace, ws_id};

fn range(from: i64, to: i64) -> UsageRange {
    UsageRange { start: at(from), end: at(to) }
}

fn placed(id: &str, workspace: &str, metric: &str, quantity: &str, secs: i64, period: UsageRange) -> PlacedEvent {
    let event = UsageEvent {
        id: id.into(),
        workspace_id: ws_id(workspace),
        metric: metric.into(),
        quantity: Decimal::from_str(quantity).unwrap(),
        at: at(secs),
    };
    PlacedEvent { event, period }
}

fn d(raw: &str) -> Decimal {
    Decimal::from_str(raw).unwrap()
}

fn sum(totals: &UsageTotals, metric: &str) -> Decimal {
    totals.get(metric).map_or(Decimal::ZERO, |t| t.sum)
}

async fn record(store: &Store, events: &[PlacedEvent]) -> Vec<bool> {
    let tx = store.begin().await.unwrap();
    let recorded = tx.usage().record(events, now()).await.unwrap();
    tx.commit().await.unwrap();
    recorded
}

both!(a_batch_records_each_event_once_and_keeps_exact_totals, |store: Store| async move {
    let month = range(0, 1000);
    let batch = [
        placed("e1", "team_1", "compute_hours", "1.5", 0, month),
        placed("e2", "team_1", "compute_hours", "2.25", 5, month),
        placed("e2", "team_1", "compute_hours", "999", 6, month), // the same id again in the batch
        placed("e3", "team_1", "storage_gb", "7", 9, month),
        placed("e4", "team_1", "storage_gb", "0.000000001", 10, month),
        placed("e1", "team_2", "compute_hours", "100", 1, month), // ids are per workspace
    ];
    assert_eq!(record(&store, &batch).await, [true, true, false, true, true, true]);
    // Sent again, whole: every event is a duplicate, whatever it carries, and nothing moves.
    let again =
        [placed("e1", "team_1", "compute_hours", "50", 0, month), placed("e9", "team_1", "alerts", "1", 7, month)];
    assert_eq!(record(&store, &again).await, [false, true]);

    let totals = store.totals(&ws_id("team_1"), month).await.unwrap();
    assert_eq!(sum(&totals, "compute_hours"), d("3.75"));
    assert_eq!(totals["compute_hours"].events, 2);
    assert_eq!(totals["storage_gb"].max, d("7"), "the peak");
    assert_eq!(totals["storage_gb"].sum, d("7.000000001"));
    assert_eq!(sum(&totals, "alerts"), d("1"));
    assert_eq!(sum(&store.totals(&ws_id("team_2"), month).await.unwrap(), "compute_hours"), d("100"));
    assert!(store.contains(&ws_id("team_1"), "e2").await.unwrap());
    assert!(!store.contains(&ws_id("team_1"), "e5").await.unwrap());
    assert!(store.totals(&ws_id("nobody"), month).await.unwrap().is_empty());
});

both!(a_range_never_opened_is_read_from_its_events, |store: Store| async move {
    record(
        &store,
        &[
            placed("e1", "team_1", "alerts", "1", 10, range(0, 1000)),
            placed("e2", "team_1", "alerts", "2", 20, range(0, 1000)),
            placed("e3", "team_1", "alerts", "4", 30, range(0, 1000)),
        ],
    )
    .await;
    // Any window: half-open, exact.
    assert_eq!(sum(&store.totals(&ws_id("team_1"), range(10, 30)).await.unwrap(), "alerts"), d("3"));
    assert_eq!(sum(&store.totals(&ws_id("team_1"), range(30, 31)).await.unwrap(), "alerts"), d("4"));
    assert!(store.totals(&ws_id("team_1"), range(31, 40)).await.unwrap().is_empty());
});

both!(events_count_in_every_range_that_holds_them_and_late_ones_in_their_own, |store: Store| async move {
    let calendar = range(0, 1000);
    let billing = range(500, 1500); // a subscription's period, starting mid-month
    // Before the subscription is known, usage lands in the calendar month.
    record(&store, &[placed("e1", "team_1", "alerts", "1", 600, calendar)]).await;
    // Then the subscription's period is known: the first event in it opens it, with what it already holds.
    record(&store, &[placed("e2", "team_1", "alerts", "10", 700, billing)]).await;
    // A late event of the calendar month, before the period: only the month holds it. One in both: counted in both.
    record(
        &store,
        &[
            placed("e3", "team_1", "alerts", "100", 100, calendar),
            placed("e4", "team_1", "alerts", "1000", 800, billing),
        ],
    )
    .await;
    assert_eq!(sum(&store.totals(&ws_id("team_1"), billing).await.unwrap(), "alerts"), d("1011"));
    assert_eq!(sum(&store.totals(&ws_id("team_1"), calendar).await.unwrap(), "alerts"), d("1111"));
    // The kept totals equal a scan of the same events (a window that was never opened).
    assert_eq!(sum(&store.totals(&ws_id("team_1"), range(500, 1499)).await.unwrap(), "alerts"), d("1011"));
});

// Concurrent batches over the same workspaces, overlapping in their events: every event counts once, in any
// interleaving — the read-add-write of the totals is serialized by the workspaces' locks. (On SQLite the writers
// queue; the race is PostgreSQL's.)
both!(concurrent_batches_never_lose_or_double_an_event, |store: Store| async move {
    for name in ["team_1", "team_2", "team_3"] {
        WorkspaceRepository::insert(&store, &workspace(name)).await.unwrap();
    }
    let month = range(0, 100_000);
    let batches: Vec<Vec<PlacedEvent>> = (0..16)
        .map(|b| {
            (0..60)
                .map(|i| {
                    // Batches share half their events with the next one.
                    let n = b * 30 + i;
                    let ws = ["team_1", "team_2", "team_3"][n % 3];
                    placed(&format!("e{n}"), ws, "alerts", "1.5", (n % 900) as i64, month)
                })
                .collect()
        })
        .collect();
    let runs = futures::future::join_all(batches.iter().map(|batch| {
        let store = store.clone();
        async move {
            loop {
                let tx = store.begin().await.unwrap();
                match tx.usage().record(batch, now()).await {
                    Ok(recorded) => {
                        tx.commit().await.unwrap();
                        return recorded.into_iter().filter(|new| *new).count();
                    }
                    Err(billing_domain::error::StoreError::Conflict(_)) => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }))
    .await;
    let distinct = 15 * 30 + 60;
    assert_eq!(runs.iter().sum::<usize>(), distinct, "each event is new exactly once");
    let mut total = Decimal::ZERO;
    for name in ["team_1", "team_2", "team_3"] {
        let kept = store.totals(&ws_id(name), month).await.unwrap();
        let scanned = store.totals(&ws_id(name), range(0, 99_999)).await.unwrap();
        assert_eq!(kept, scanned, "{name}: the kept totals equal its events");
        total += sum(&kept, "alerts");
    }
    assert_eq!(total, Decimal::from(distinct) * d("1.5"));
});
