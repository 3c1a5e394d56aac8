//! The one place where SeaORM/driver errors become the domain's `StoreError`, so every adapter method reports
//! unique violations, outages and bugs the same way.

use std::fmt::Display;

use billing_domain::error::StoreError;
use sea_orm::sqlx;
use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// Maps a database error: unique violation → `Duplicate`, connection trouble or a busy database → `Unavailable`,
/// a lost serialization race → `Conflict`, anything else → `Other`.
pub(crate) fn map_db_err(err: DbErr) -> StoreError {
    if let Some(SqlErr::UniqueConstraintViolation(message)) = err.sql_err() {
        return StoreError::Duplicate(message);
    }
    match &err {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => StoreError::Unavailable(err.to_string()),
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => match classify_sqlx(e) {
            Class::Unavailable => StoreError::Unavailable(err.to_string()),
            Class::Conflict => StoreError::Conflict(err.to_string()),
            Class::Other => StoreError::Other(err.to_string()),
        },
        _ => StoreError::Other(err.to_string()),
    }
}

/// A value read from the database that the domain refuses: corrupt data or a bug, never the caller's fault.
pub(crate) fn corrupt(what: &str, err: impl Display) -> StoreError {
    StoreError::Other(format!("corrupt {what} in storage: {err}"))
}

enum Class {
    Unavailable,
    Conflict,
    Other,
}

fn classify_sqlx(err: &sqlx::Error) -> Class {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => Class::Unavailable,
        sqlx::Error::Database(db) => classify_code(db.code().as_deref().unwrap_or_default()),
        _ => Class::Other,
    }
}

/// SQLSTATE (PostgreSQL) or extended result codes (SQLite) that mean "try again later" rather than "bug".
fn classify_code(code: &str) -> Class {
    match code {
        // PostgreSQL: serialization failure and deadlock; the transaction lost a race and may be retried.
        "40001" | "40P01" => Class::Conflict,
        // PostgreSQL: connection exceptions, insufficient resources, operator intervention (shutdown, …).
        c if c.starts_with("08") || c.starts_with("53") || c.starts_with("57P") => Class::Unavailable,
        // SQLite: BUSY/LOCKED and their extended codes; the busy timeout expired while another writer held the lock.
        "5" | "6" | "261" | "262" | "517" | "773" => Class::Unavailable,
        _ => Class::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_errors_are_unavailable() {
        let err = map_db_err(DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout));
        assert!(matches!(err, StoreError::Unavailable(_)));
        let err = map_db_err(DbErr::Conn(RuntimeErr::Internal("refused".into())));
        assert!(matches!(err, StoreError::Unavailable(_)));
    }

    #[test]
    fn vendor_codes_are_classified() {
        assert!(matches!(classify_code("40001"), Class::Conflict));
        assert!(matches!(classify_code("08006"), Class::Unavailable));
        assert!(matches!(classify_code("57P01"), Class::Unavailable));
        assert!(matches!(classify_code("5"), Class::Unavailable));
        assert!(matches!(classify_code("23502"), Class::Other));
    }

    #[test]
    fn other_errors_stay_other() {
        let err = map_db_err(DbErr::Custom("bug".into()));
        assert!(matches!(err, StoreError::Other(_)));
    }
}
