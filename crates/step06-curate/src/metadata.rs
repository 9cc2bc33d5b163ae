//! `metadata.json` of a dataset version: what the catalog reads and the writer writes.

use mlops_core::DType;
use serde::{Deserialize, Serialize};
use step01_ingest::Lineage;

/// One column's profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    /// Name.
    pub name: String,
    /// Logical type.
    pub dtype: Option<DType>,
    /// Storage type as polars names it.
    pub storage: String,
    /// Null count.
    pub nulls: usize,
    /// Distinct values (null counts as one).
    pub unique: usize,
}

/// A file of the version, with its checksum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the version directory.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file.
    pub sha256: String,
}

/// `metadata.json` of a version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// Format of this file.
    pub format_version: u32,
    /// Dataset name.
    pub name: String,
    /// Version: the first 16 hex digits of `sha256`.
    pub version: String,
    /// Content hash of the data ([`mlops_core::frame::frame_hash`]: SHA-256 over the shape and
    /// one BLAKE3 digest per column).
    pub sha256: String,
    /// When the version was first written (RFC 3339, UTC).
    pub created_at: String,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub columns: usize,
    /// Per-column profile.
    pub schema: Vec<ColumnProfile>,
    /// Partition column, if any.
    pub partition_by: Option<String>,
    /// Files with checksums.
    pub files: Vec<FileEntry>,
    /// Where the data came from.
    pub sources: Vec<Lineage>,
    /// Versions (or source hashes) this one was made from.
    pub parents: Vec<String>,
    /// SHA-256 of the configuration that made it.
    pub config_sha256: String,
    /// Key of the run that made it: configuration, source hashes and toolkit version together. A
    /// rerun with the same key can reuse this version without recomputing.
    pub run_key: String,
    /// Operations in `pipeline.json`.
    pub pipeline_ops: usize,
    /// Reports of the steps that made it.
    pub steps: serde_json::Value,
}
