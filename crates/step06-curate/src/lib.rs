//! Step 6, curate: write the prepared dataset as versioned Parquet with metadata, and keep a
//! catalog of versions.
//!
//! In: the final frame of steps 1-5, its lineage and reports, the fitted `FeaturePipeline` and the
//! config hash. Out: a version directory `<dir>/<name>/<version>/` holding `data.parquet` (or one
//! hive-style folder per value of `partition_by`), `metadata.json` (shape, schema, null and unique
//! counts, source lineage, parent versions, config hash, a manifest of files with SHA-256) and
//! `pipeline.json`; and `<dir>/catalog.json` listing every version.
//!
//! Invariants:
//! - the version is the content hash of the data ([`mlops_core::frame::frame_hash`]): the same
//!   data gives the same version whatever the row groups, compression or partitioning;
//! - a version directory appears complete or not at all (built under a temporary name, then
//!   renamed); an existing version is never rewritten;
//! - the catalog is rebuilt from the version directories, so it cannot drift from them;
//! - with `postgres:`, the curated table is written in one transaction that commits only once
//!   the version directory is in place; a failure before leaves the server's table as it was.
//!
//! ```no_run
//! use step06_curate::{Catalog, CurateParams};
//! let catalog = Catalog::open("data/processed");
//! for entry in catalog.list()? {
//!     println!("{} {} {} rows", entry.name, entry.version, entry.rows);
//! }
//! # Ok::<(), step06_curate::CurateError>(())
//! ```

mod catalog;
mod metadata;
pub mod postgres;
mod write;

pub use catalog::{Catalog, CatalogEntry};
pub use metadata::{ColumnProfile, FileEntry, Metadata};
pub use postgres::{IfExists, PostgresSink};
pub use write::{Compression, CurateParams, Curated, METADATA_FORMAT_VERSION, Provenance, curate, curate_with_env};

use std::path::PathBuf;

/// What can go wrong while curating or reading the catalog.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CurateError {
    /// `partition_by` names a column the data does not have.
    #[error("curate.partition_by: column `{column}` not found (available: {})", available.join(", "))]
    MissingColumn {
        /// The column.
        column: String,
        /// The columns there are.
        available: Vec<String>,
    },
    /// The dataset name cannot be a folder name.
    #[error("curate.name: {name:?} is not a valid dataset name (letters, digits, `-`, `_`, `.`)")]
    BadName {
        /// The name.
        name: String,
    },
    /// No version starts with the given text.
    #[error("no dataset version matches {query:?} in {dir}")]
    NotFound {
        /// What was asked for.
        query: String,
        /// The catalog folder.
        dir: PathBuf,
    },
    /// Several versions start with the given text.
    #[error("{query:?} matches several versions: {}", matches.join(", "))]
    Ambiguous {
        /// What was asked for.
        query: String,
        /// The versions it matches.
        matches: Vec<String>,
    },
    /// The dataset is written, but the offsets its Kafka source read could not be committed to
    /// the consumer group: the next run reads them again (and writes the same version for them).
    #[error(
        "dataset version {version} is written, but consumer group {group:?} could not commit its offsets: {message}"
    )]
    Commit {
        /// The version written.
        version: String,
        /// The consumer group.
        group: String,
        /// What the broker said.
        message: String,
    },
    /// Writing the curated table to PostgreSQL failed (nothing was committed there).
    #[error("curate.postgres: {message}")]
    Sink {
        /// What went wrong, with the server's message.
        message: String,
    },
    /// Writing Parquet failed.
    #[error("cannot write {path}: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What polars said.
        message: String,
    },
    /// A data file does not match the checksum in its version's manifest.
    #[error("{path}: checksum mismatch (manifest {expected}, file {actual}); the version is damaged or was edited")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// SHA-256 in the manifest.
        expected: String,
        /// SHA-256 of the file.
        actual: String,
    },
    /// A version's metadata file is unreadable.
    #[error("{path}: not a dataset metadata file: {message}")]
    BadMetadata {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The catalog index is unreadable; it can be rebuilt from the version folders.
    #[error("{path}: unreadable catalog ({message}); delete it and it is rebuilt from the version folders")]
    BadCatalog {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A shared-layer error (I/O, hashing).
    #[error(transparent)]
    Core(#[from] mlops_core::CoreError),
}

/// Result with [`CurateError`] as the default error.
pub type Result<T, E = CurateError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;
