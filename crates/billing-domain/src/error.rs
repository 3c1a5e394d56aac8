//! Errors shared across the core: validation of input and failures of the ports.

use std::fmt;

/// One invalid field of a request; the HTTP edge turns a list of these into a 400/422 naming each field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }

    /// Prefixes the field with its parent (`address` + `country` → `address.country`).
    pub fn within(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }
}

/// Every invalid field found in one input, so the caller can fix them all at once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    pub fn push(&mut self, error: ValidationError) {
        self.0.push(error);
    }

    /// Records the error of `result` (if any) and returns its value.
    pub fn check<T>(&mut self, result: Result<T, ValidationError>) -> Option<T> {
        result.map_err(|e| self.0.push(e)).ok()
    }

    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("; "))
    }
}

impl std::error::Error for ValidationErrors {}

impl From<ValidationError> for ValidationErrors {
    fn from(error: ValidationError) -> Self {
        Self(vec![error])
    }
}

/// Failure of a storage port. Adapters map vendor codes (unique violation, busy, lost connection) onto these.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (duplicate id, key or event).
    #[error("duplicate: {0}")]
    Duplicate(String),
    /// A compare-and-set update found the row changed since it was read; the caller may reload and retry.
    #[error("concurrent update of {0}")]
    Conflict(String),
    /// The database cannot be reached or refused service; callers answer 503 (webhooks: 5xx so the processor retries).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or corrupt data. Logged, never shown to callers.
    #[error("storage failure: {0}")]
    Other(String),
}

/// Failure of a processor call. Business outcomes (a declined card) are not errors; these are transport failures.
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    /// The processor could not be reached or answered 5xx/429; retrying later may succeed. Nothing changed locally.
    #[error("processor unavailable: {0}")]
    Unavailable(String),
    /// The processor rejected the request as invalid (our bug or a bad id); not retryable.
    #[error("processor rejected the request: {0}")]
    Rejected(String),
    /// The processor does not offer this capability.
    #[error("processor does not support {0}")]
    Unsupported(&'static str),
}
