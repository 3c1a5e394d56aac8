//! Meter cursors: one lease holder per processor, a cursor that only moves forward under its lease, and the
//! recorded usage after it in order — never past an event a transaction is still writing.

use std::str::FromStr;
use std::time::Duration;

use billing_domain::ids::ProcessorId;
use billing_domain::ports::{Lease, MeterCursors, PlacedEvent, UnitOfWork, UsageEvent};
use billing_domain::usage::UsageRange;
use billing_store::Store;
use rust_decimal::Decimal;

use crate::helpers::{Backend, at, now, run, ws_id};

fn lease(now: i64) -> Lease {
    Lease { now: at(now), until: at(now + 60) }
}

fn stripe() -> ProcessorId {
    ProcessorId::new("stripe")
}

fn placed(id: &str, workspace: &str, quantity: &str) -> PlacedEvent {
    let event = UsageEvent {
        id: id.into(),
        workspace_id: ws_id(workspace),
        metric: "api_calls".into(),
        quantity: Decimal::from_str(quantity).unwrap(),
        at: at(10),
    };
    PlacedEvent { event, period: UsageRange { start: at(0), end: at(1000) } }
}

async fn record(store: &Store, events: &[PlacedEvent]) {
    let tx = store.begin().await.unwrap();
    tx.usage().record(events, now()).await.unwrap();
    tx.commit().await.unwrap();
}

both!(a_cursor_has_one_holder_and_moves_only_forward_under_its_lease, |store: Store| async move {
    assert_eq!(store.claim(&stripe(), "a", lease(0)).await.unwrap(), Some(0), "a fresh cursor starts at 0");
    assert_eq!(store.claim(&stripe(), "b", lease(1)).await.unwrap(), None, "a's lease is live");
    assert_eq!(store.claim(&stripe(), "a", lease(2)).await.unwrap(), Some(0), "the holder may claim again");
    assert_eq!(store.claim(&ProcessorId::new("other"), "b", lease(2)).await.unwrap(), Some(0), "one per processor");

    assert!(store.advance(&stripe(), "a", 5, lease(3)).await.unwrap());
    assert!(!store.advance(&stripe(), "b", 9, lease(3)).await.unwrap(), "only the holder moves it");
    assert!(!store.advance(&stripe(), "a", 4, lease(3)).await.unwrap(), "never backwards");

    // a's lease (extended to 63 by the advance) ends; b takes over where a stopped, and a can no longer move it.
    assert_eq!(store.claim(&stripe(), "b", lease(62)).await.unwrap(), None, "still a's until 63");
    assert_eq!(store.claim(&stripe(), "b", lease(63)).await.unwrap(), Some(5));
    assert!(!store.advance(&stripe(), "a", 7, lease(64)).await.unwrap(), "a lost the cursor");
    assert!(store.advance(&stripe(), "b", 7, lease(64)).await.unwrap());

    // Released, the cursor is anyone's and keeps its place; a release by a non-holder changes nothing.
    store.release(&stripe(), "a").await.unwrap();
    assert_eq!(store.claim(&stripe(), "c", lease(65)).await.unwrap(), None, "b still holds it");
    store.release(&stripe(), "b").await.unwrap();
    assert_eq!(store.claim(&stripe(), "c", lease(65)).await.unwrap(), Some(7));
});

both!(of_many_concurrent_claimers_exactly_one_wins, |store: Store| async move {
    let racers = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.claim(&stripe(), &format!("owner_{i}"), lease(0)).await.unwrap() })
    });
    let won: Vec<i64> =
        futures::future::join_all(racers).await.into_iter().filter_map(|claimed| claimed.unwrap()).collect();
    assert_eq!(won, [0], "one claimer, at the cursor's start");
});

both!(recorded_usage_comes_back_in_order_after_the_cursor, |store: Store| async move {
    assert!(store.recorded_after(0, 10).await.unwrap().is_empty(), "nothing recorded yet");
    record(&store, &[placed("e1", "team_1", "1.5"), placed("e2", "team_2", "2"), placed("e1", "team_1", "9")]).await;
    record(&store, &[placed("e3", "team_1", "0.25")]).await;

    let all = store.recorded_after(0, 10).await.unwrap();
    let ids: Vec<(&str, &str)> = all.iter().map(|r| (r.event.workspace_id.as_str(), r.event.id.as_str())).collect();
    assert_eq!(ids, [("team_1", "e1"), ("team_2", "e2"), ("team_1", "e3")], "a duplicate is not recorded twice");
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "in seq order");
    assert_eq!(all[0].event.quantity, Decimal::from_str("1.5").unwrap());
    assert_eq!(all[0].event.metric, "api_calls");
    assert_eq!(all[0].event.at, at(10));

    let first_two = store.recorded_after(0, 2).await.unwrap();
    assert_eq!(first_two.len(), 2, "limited");
    let rest = store.recorded_after(first_two[1].seq, 10).await.unwrap();
    assert_eq!(rest.iter().map(|r| r.event.id.as_str()).collect::<Vec<_>>(), ["e3"]);
    assert!(store.recorded_after(rest[0].seq, 10).await.unwrap().is_empty());
});

/// PostgreSQL commits need not follow the id sequence: a batch that took a lower id and commits later must not be
/// passed over by a reader that saw a higher id committed first. (SQLite has one writer, so no such gap.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_still_being_written_is_never_passed_over() {
    run(Backend::Postgres, |store: Store| async move {
        let slow = store.begin().await.unwrap();
        slow.usage().record(&[placed("slow", "team_1", "1")], now()).await.unwrap();
        record(&store, &[placed("fast", "team_2", "1")]).await;

        let reader = tokio::spawn({
            let store = store.clone();
            async move { store.recorded_after(0, 10).await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!reader.is_finished(), "the reader waits for the open batch instead of reading past it");
        slow.commit().await.unwrap();

        let read = reader.await.unwrap();
        let ids: Vec<&str> = read.iter().map(|r| r.event.id.as_str()).collect();
        assert_eq!(ids, ["slow", "fast"], "the slower batch's lower id comes first, not skipped");
    })
    .await;
}
