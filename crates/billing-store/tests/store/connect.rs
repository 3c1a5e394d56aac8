//! Connecting, migrating and readiness.

use billing_domain::error::StoreError;
use billing_domain::ports::UnitOfWork;
use billing_store::Store;

use crate::helpers::{create_postgres_database, drop_postgres_database, now};

both!(migrate_is_idempotent_and_ping_answers, |store: Store| async move {
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    assert!(["sqlite", "postgres"].contains(&store.backend()));
});

#[tokio::test]
async fn unreachable_postgres_is_unavailable() {
    // Port 1 on localhost refuses connections at once.
    let result = billing_store::connect("postgres://postgres@127.0.0.1:1/tollgate").await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
}

#[tokio::test]
async fn a_lost_database_makes_begin_and_ping_unavailable() {
    let (url, name) = create_postgres_database().await;
    let store = billing_store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    // Dropping the database kills the pool's connections, and new ones cannot open.
    drop_postgres_database(&name).await;
    let begin = UnitOfWork::begin(&store).await;
    assert!(matches!(begin, Err(StoreError::Unavailable(_))), "{:?}", begin.err());
    let ping = store.ping().await;
    assert!(matches!(ping, Err(StoreError::Unavailable(_))), "{ping:?}");
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    let result = billing_store::connect("mysql://localhost/tollgate").await;
    assert!(matches!(result, Err(StoreError::Other(_))), "{result:?}");
}

#[tokio::test]
async fn sqlite_creates_its_directory_and_file() {
    let dir = std::env::temp_dir().join(format!("tollgate-test-{}", uuid::Uuid::new_v4()));
    let file = dir.join("nested/deeper/tollgate.db");
    let store = billing_store::connect(&format!("sqlite://{}", file.display())).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    assert!(file.exists());
    store.close().await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn in_memory_sqlite_works_with_one_connection() {
    let store = billing_store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
}

/// SQLite compiles a statement against the schema its connection last loaded, and an `ON CONFLICT` target that
/// matches no unique index there is a compile error that SQLite does not re-check against the file. So a pooled
/// connection that saw `usage_events` created but not yet its unique index fails every upsert there. With the pool
/// filled before migrating, a migration run statement by statement lands on its connections in turn; every
/// connection then upserts. A few rounds, because the order connections are handed out in depends on timing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pooled_sqlite_connection_keeps_a_half_migrated_schema() {
    use billing_domain::ports::{PlacedEvent, UsageEvent, UsageRepository};
    use billing_domain::usage::UsageRange;

    for round in 0..10 {
        let dir = std::env::temp_dir().join(format!("tollgate-test-{}", uuid::Uuid::new_v4()));
        let store = billing_store::connect(&format!("sqlite://{}/tollgate.db", dir.display())).await.unwrap();
        // Each ping holds its connection until answered, so together they open all the pool's connections.
        let pings = futures::future::join_all((0..8).map(|_| store.ping())).await;
        assert!(pings.iter().all(Result::is_ok), "{pings:?}");
        store.migrate().await.unwrap();

        let records = futures::future::join_all((0..8).map(|i| {
            let store = store.clone();
            async move {
                let event = UsageEvent {
                    id: format!("e{i}"),
                    workspace_id: crate::helpers::ws_id("team_1"),
                    metric: "compute_hours".into(),
                    quantity: 1.into(),
                    at: crate::helpers::at(i),
                };
                let period = UsageRange { start: crate::helpers::at(0), end: crate::helpers::at(100) };
                store.record(&[PlacedEvent { event, period }], now()).await
            }
        }))
        .await;
        store.close().await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
        assert!(records.iter().all(|r| matches!(r.as_deref(), Ok([true]))), "round {round}: {records:?}");
    }
}
