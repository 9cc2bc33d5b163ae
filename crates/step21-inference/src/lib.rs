//! Step 21: inference, in batch and in real time.
//!
//! - Batch ([`predict_file`]): a CSV, Parquet or NDJSON file in, predictions out (CSV, Parquet
//!   or NDJSON: an id column, `prediction`, `probability_<class>`), read and written in chunks so
//!   memory stays flat whatever the file's size. Each chunk is checked against the package's
//!   signature and scored on both cores by the same [`Scorer`](step20_serve::Scorer) the server
//!   uses: a row gives the same bits from a file and from a request. Bad rows are reported with
//!   their row numbers and either reject the file (nothing written) or are skipped.
//! - Real time ([`Client`]): an async client for the model server, over the Open Inference
//!   Protocol (labels and probabilities) or MLflow's `/invocations` (labels), with a connection
//!   pool, timeouts, retries with exponential backoff on 5xx and connection errors, and an
//!   optional bounded LRU cache of recent predictions.
//!
//! ```no_run
//! use std::path::Path;
//! use step20_serve::{CategoryPolicy, ModelSource};
//! use step21_inference::{BatchOptions, predict_file};
//!
//! let scorer = ModelSource::Package("models/runs/RUN/package".into()).load(CategoryPolicy::Warn)?;
//! let report = predict_file(&scorer, Path::new("new.csv"), Path::new("predictions.csv"), &BatchOptions::default(), &mut |_| {})?;
//! println!("{} rows predicted, {} skipped", report.predicted, report.skipped);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod batch;
mod client;

pub use batch::{BadRow, BatchOptions, BatchReport, OnBadRow, predict_file, predict_file_remote, score_columns_frame};
pub use client::{Client, ClientConfig, Prediction, Protocol};

use std::path::PathBuf;

/// What goes wrong in inference.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferenceError {
    /// A file's type is not known from its extension.
    #[error("{path}: unknown file type; use .csv, .parquet or .ndjson")]
    Format {
        /// The file.
        path: PathBuf,
    },
    /// A file could not be opened, created or moved.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was tried.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The input could not be read.
    #[error("{path}{}: {message}", row.map_or_else(String::new, |r| format!(", row {r}")))]
    Read {
        /// The file.
        path: PathBuf,
        /// The row, when known.
        row: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// Rows do not fit the signature (and the batch rejects bad rows).
    #[error("{path}: {} row(s) do not fit the model's signature; nothing was written (--on-error skip leaves them out):{}", rows.len(), list(rows))]
    BadRows {
        /// The file.
        path: PathBuf,
        /// The bad rows.
        rows: Vec<BadRow>,
    },
    /// The output could not be written.
    #[error("{path}: cannot write: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The input file lacks columns the model needs in every row (not nullable in the
    /// signature): a file-level error, whatever `on_error` says.
    #[error("{}: no column {} (the model needs it in every row)", path.display(), missing.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "))]
    MissingColumns {
        /// The input file.
        path: PathBuf,
        /// The missing columns, in the signature's order.
        missing: Vec<String>,
    },
    /// An option is wrong.
    #[error("`{name}` {message}")]
    Argument {
        /// The option.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The server answered with an error (after retries, for 5xx).
    #[error("{url}: the server answered {status}: {message}")]
    Server {
        /// The request URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
        /// The row of the request (from 0) the server named, when it named one.
        row: Option<usize>,
        /// The column the server named, when it named one.
        column: Option<String>,
    },
    /// The server could not be reached (after retries).
    #[error("{url}: {message}")]
    Http {
        /// The request URL.
        url: String,
        /// What went wrong.
        message: String,
    },
}

fn list(rows: &[BadRow]) -> String {
    let mut s = String::new();
    for r in rows.iter().take(20) {
        s.push_str(&format!("\n  row {}: ", r.row));
        if let Some(c) = &r.column {
            s.push_str(&format!("column `{c}`: "));
        }
        s.push_str(&r.message);
    }
    if rows.len() > 20 {
        s.push_str(&format!("\n  ... and {} more", rows.len() - 20));
    }
    s
}

/// Result with [`InferenceError`].
pub type Result<T, E = InferenceError> = std::result::Result<T, E>;
