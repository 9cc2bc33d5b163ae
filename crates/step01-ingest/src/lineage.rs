//! Lineage: where a frame came from, recorded at every ingest.

use serde::{Deserialize, Serialize};

/// The facts of one ingest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lineage {
    /// The source's name in the config.
    pub source: String,
    /// Where it was read: `file:///abs/path.csv`, `sqlite:///abs/db?query=...`,
    /// `postgres://user@host:port/db?query=...` (never a password).
    pub uri: String,
    /// Reader used: csv, excel, parquet, json, ndjson, sqlite, postgres.
    pub format: String,
    /// Bytes of the file read (of the values received, for a server).
    pub size_bytes: u64,
    /// Rows read.
    pub rows: usize,
    /// Columns read.
    pub columns: usize,
    /// SHA-256 of the file's bytes, or of the query result's content for SQL.
    pub sha256: String,
    /// When it was read (RFC 3339, UTC).
    pub ingested_at: String,
}
