//! What goes wrong in monitoring.

use std::path::PathBuf;

/// What goes wrong in monitoring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorError {
    /// The store does not exist (a read-only command creates nothing).
    #[error("{path}: no store there (the server writes its prediction log into the registry's store; check --store)")]
    NoStore {
        /// The path given.
        path: PathBuf,
    },
    /// Feedback joined to the log is not what the server writes.
    #[error("{path}: prediction_feedback: {message}")]
    Feedback {
        /// The store.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A window's bound is not an instant.
    #[error("--{parameter}: `{text}` {message} (give an RFC 3339 instant such as 2026-12-07T10:00:00Z)")]
    Instant {
        /// `from` or `to`.
        parameter: &'static str,
        /// What was given.
        text: String,
        /// Why it is refused.
        message: String,
    },
    /// A monitoring setting is out of range.
    #[error("{key}: {message}")]
    Config {
        /// The key path.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Alerts could not be delivered to a webhook.
    #[error("webhook {url}: {message} (after {attempts} attempt(s))")]
    Webhook {
        /// The receiver.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        message: String,
    },
    /// A worker thread stopped (a bug: nothing here panics on data).
    #[error("a worker thread stopped while sorting the window's values")]
    Worker,
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store could not be read or written (SQLite or PostgreSQL; the message names it).
    #[error(transparent)]
    Store(#[from] mlops_core::store::StoreError),
    /// An entry of the prediction log is not what the server writes.
    #[error("{path}: prediction_requests entry {seq}: {message}")]
    LogEntry {
        /// The store.
        path: PathBuf,
        /// The entry's `seq`.
        seq: i64,
        /// What is wrong.
        message: String,
    },
}

/// Results of this crate.
pub type Result<T, E = MonitorError> = std::result::Result<T, E>;
