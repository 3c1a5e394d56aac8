//! Opening the pool: SQLite (embedded, single node) or PostgreSQL, chosen by the URL scheme.

use std::sync::Arc;
use std::time::Duration;

use billing_domain::error::StoreError;
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sea_orm::{ConnectOptions, Database};

use crate::changes::Changes;
use crate::errors::map_db_err;
use crate::repo::Repo;
use crate::store::Store;

/// How long a SQLite writer waits for the write lock before the call fails as `Unavailable`.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite has one writer; a few connections still let readers run beside it under WAL.
const SQLITE_POOL_SIZE: u32 = 4;
/// PostgreSQL's pool when the caller names no size.
const POSTGRES_POOL_SIZE: u32 = 10;
/// Bounds both opening a connection and waiting for a free one, so an outage surfaces as a 503 quickly.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to `sqlite:…` or `postgres:…`/`postgresql:…`. A SQLite file and its directory are created when
/// missing. `Unavailable` when the database cannot be reached; `Other` for a URL that cannot work at all.
pub async fn connect(url: &str) -> Result<Store, StoreError> {
    connect_with(url, None).await
}

/// [`connect`] with a PostgreSQL pool of `pool_size` connections (the application sizes it to its workers and
/// webhook lanes); SQLite ignores it.
#[tracing::instrument(skip_all)]
pub async fn connect_with(url: &str, pool_size: Option<u32>) -> Result<Store, StoreError> {
    let mut options = ConnectOptions::new(url);
    options
        .connect_timeout(ACQUIRE_TIMEOUT)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // Statements are traced through `tracing` spans; sqlx's own per-statement log lines would only be noise.
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        prepare_sqlite(url, &mut options)?;
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        options.max_connections(pool_size.unwrap_or(POSTGRES_POOL_SIZE).max(1));
        options.map_sqlx_postgres_opts(|opts| opts.statement_cache_capacity(1000));
    } else {
        return Err(StoreError::Other("unsupported database URL: expected sqlite: or postgres:".to_owned()));
    }
    let conn = Database::connect(options).await.map_err(map_db_err)?;
    let mut store = Repo::new(conn, Changes::new());
    if url.starts_with("sqlite:") {
        store.writers = Some(Arc::default());
    }
    Ok(store)
}

fn prepare_sqlite(url: &str, options: &mut ConnectOptions) -> Result<(), StoreError> {
    let parsed: SqliteConnectOptions =
        url.parse().map_err(|e| StoreError::Other(format!("invalid SQLite URL: {e}")))?;
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    if in_memory {
        // Every connection to `:memory:` would see its own empty database, so the pool must be one connection.
        options.max_connections(1);
    } else {
        if let Some(dir) = parsed.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
        }
        // Several connections are safe because every write transaction is `BEGIN IMMEDIATE` (see
        // `Repo::begin_write`), queued in this process before it begins (`UnitOfWork::begin`), and single
        // statements wait out `busy_timeout`; WAL lets reads run beside a writer.
        options.max_connections(SQLITE_POOL_SIZE);
    }
    options.map_sqlx_sqlite_opts(move |opts| {
        let opts = opts
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true)
            .create_if_missing(true)
            // Statement and savepoint journals in memory: on disk, a usage batch's multi-row insert wrote every
            // page it touched twice, once to a temporary file (a fifth of the writer's time, measured with perf).
            .pragma("temp_store", "memory")
            // 32 MiB of page cache per connection (SQLite's default is 2 MiB): a batch's index pages stay cached
            // instead of being spilled mid-transaction and read back.
            .pragma("cache_size", "-32768")
            // A checkpoint every 4,000 WAL pages (16 MiB) instead of 1,000: a page rewritten by several batches in
            // between is copied back once.
            .pragma("wal_autocheckpoint", "4000");
        if in_memory { opts } else { opts.journal_mode(SqliteJournalMode::Wal) }
    });
    Ok(())
}
