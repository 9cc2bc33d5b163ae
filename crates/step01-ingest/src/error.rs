//! Errors of the ingest step. Each names the file (and line, where there is one).

use std::path::PathBuf;

/// What can go wrong while reading a source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The file does not exist.
    #[error("{path}: file not found")]
    NotFound {
        /// The missing file.
        path: PathBuf,
    },
    /// The file's bytes are not valid in the declared encoding.
    #[error("{path}: line {line}: bytes are not valid {encoding} (set `encoding: latin1` for Latin-1 files)")]
    Encoding {
        /// The file.
        path: PathBuf,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// The encoding that was expected.
        encoding: &'static str,
    },
    /// A CSV record has more or fewer fields than the header.
    #[error("{path}: line {line}: expected {expected} fields, found {found}")]
    Ragged {
        /// The file.
        path: PathBuf,
        /// 1-based line where the record starts.
        line: usize,
        /// Fields in the header (or the first record).
        expected: usize,
        /// Fields in this record.
        found: usize,
    },
    /// A quoted CSV field is never closed.
    #[error("{path}: line {line}: quote opened here is never closed")]
    UnclosedQuote {
        /// The file.
        path: PathBuf,
        /// 1-based line where the quote opens.
        line: usize,
    },
    /// The file holds no data at all.
    #[error("{path}: file is empty")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A workbook has no sheet of that name.
    #[error("{path}: no sheet named {sheet:?} (sheets: {})", available.join(", "))]
    SheetNotFound {
        /// The workbook.
        path: PathBuf,
        /// The requested sheet.
        sheet: String,
        /// The sheets it has.
        available: Vec<String>,
    },
    /// A JSON or NDJSON file is not valid JSON, or not records.
    #[error("{path}: line {line} column {column}: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A SQL query failed.
    #[error("{path}: query failed: {message}\n  query: {query}")]
    Sql {
        /// The database file.
        path: PathBuf,
        /// The query.
        query: String,
        /// SQLite's message.
        message: String,
    },
    /// Columns asked for in `columns:` are not in the source.
    #[error("{path}: column(s) {} not found (available: {})", missing.join(", "), available.join(", "))]
    MissingColumns {
        /// The source file.
        path: PathBuf,
        /// Columns asked for but absent.
        missing: Vec<String>,
        /// Columns the source has.
        available: Vec<String>,
    },
    /// A reader failed for another reason (a corrupt workbook or Parquet file, a type conflict).
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        message: String,
    },
    /// A server source (PostgreSQL) failed: it could not be reached or refused the login, or
    /// the query failed (with the server's message and where in the query).
    #[error("{server}: {message}{}", query.as_ref().map(|q| format!("\n  query: {q}")).unwrap_or_default())]
    Server {
        /// The server and database, without a password (`postgres://user@host:port/db`).
        server: String,
        /// The query, when one ran.
        query: Option<String>,
        /// What went wrong.
        message: String,
    },
    /// An HTTP source failed: the server answered with an error, could not be reached, or sent
    /// something that is not JSON records.
    #[error("{url}: {message}")]
    Http {
        /// The URL asked.
        url: String,
        /// What went wrong (the status and the server's message, or the offset of bad JSON).
        message: String,
    },
    /// An HTML page has no such table, or could not be fetched.
    #[error("{origin}: {message}")]
    Html {
        /// The page (its file or URL).
        origin: String,
        /// What went wrong.
        message: String,
    },
    /// A Kafka topic could not be read: no broker answered, no such topic, a message that is not
    /// the format given.
    #[error("kafka://{brokers}/{topic}: {message}")]
    Kafka {
        /// The bootstrap brokers.
        brokers: String,
        /// The topic.
        topic: String,
        /// What went wrong.
        message: String,
    },
    /// A source's settings are wrong (a key missing, two that exclude each other).
    #[error("source `{key}`: {message}")]
    Config {
        /// The key (`postgres.url`, `postgres.password_env`, ...).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A shared-layer error (I/O, hashing).
    #[error(transparent)]
    Core(#[from] mlops_core::CoreError),
}

/// Result with [`IngestError`] as the default error.
pub type Result<T, E = IngestError> = std::result::Result<T, E>;
