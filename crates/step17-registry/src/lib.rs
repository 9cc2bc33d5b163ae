//! Step 17: the model registry.
//!
//! On the embedded SQLite store (WAL, busy timeout, every change in one `BEGIN IMMEDIATE`
//! transaction together with its audit entry): registered models, versions numbered per model
//! from a counter (concurrent registrations get distinct, gap-free numbers; a deleted number is
//! never reused), aliases (`champion`, `challenger`, any name; one version per alias), tags,
//! descriptions, status (active, retired), lineage to the run and dataset version, and an
//! append-only audit log (triggers refuse updates and deletes) of who changed what, when, from
//! which value.
//!
//! Packages are verified (step 16) and copied into a content-addressed store,
//! `<artifacts>/<sha[0..2]>/<sha>/`, keyed by the SHA-256 of their manifest (which covers every
//! file): registering the same package twice stores it once. `models:/NAME@ALIAS`,
//! `models:/NAME/VERSION` and `models:/NAME` (the newest active version) resolve to versions.

#[cfg(test)]
mod fixture;
mod registry;
#[cfg(test)]
mod tests;

pub use registry::{AuditEntry, ModelSummary, ModelUri, RegisterInfo, Registry, Version, VersionStatus, validate_name};

use std::path::PathBuf;

/// What goes wrong in the registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// SQLite refused (a locked database past the busy timeout, a read-only file, ...).
    #[error("registry {path}: {source}")]
    Sql {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A model or alias name that is not allowed.
    #[error("{what} {name:?}: {message}")]
    BadName {
        /// `model name` or `alias`.
        what: &'static str,
        /// The name.
        name: String,
        /// Why.
        message: String,
    },
    /// Nothing by that name, version or alias.
    #[error("{0}")]
    NotFound(String),
    /// The operation does not fit the version's state.
    #[error("{0}")]
    Refused(String),
    /// The package failed verification.
    #[error(transparent)]
    Package(#[from] step16_package::PackageError),
    /// Files could not be copied.
    #[error(transparent)]
    Core(#[from] mlops_core::CoreError),
}

/// Result with [`RegistryError`].
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
