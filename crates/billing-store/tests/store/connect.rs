//! Connecting, migrating and readiness.

use billing_domain::error::StoreError;
use billing_domain::ports::UnitOfWork;
use billing_store::Store;

use crate::helpers::{create_postgres_database, drop_postgres_database};

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
