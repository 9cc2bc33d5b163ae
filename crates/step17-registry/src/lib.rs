//! Step 17: the model registry.
//!
//! On the store (`mlops_core::store`: the embedded SQLite file, or PostgreSQL for a team; every
//! change in one transaction together with its audit entry): registered models, versions
//! numbered per model from a counter read and advanced under a lock on the model (concurrent
//! registrations from any process or machine get distinct, gap-free numbers; a deleted number is
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

use std::path::{Path, PathBuf};

/// Checks that the package in `dir` has the manifest the registry recorded: its SHA-256 is
/// `expected`. The manifest covers every file's checksum (step 16 checks those on load), so a
/// package that passes both is byte for byte the one registered.
pub fn verify_manifest(dir: &Path, expected: &str) -> Result<()> {
    let path = dir.join("manifest.json");
    let bytes = std::fs::read(&path).map_err(|e| mlops_core::CoreError::io("cannot read", &path, e))?;
    let found = mlops_core::hash::to_hex(&mlops_core::hash::sha256_bytes(&bytes));
    if found != expected {
        tracing::warn!(path = %path.display(), expected, found, "a registered package was changed");
        return Err(RegistryError::Tampered { path, expected: expected.to_string(), found });
    }
    Ok(())
}

/// The SHA-256 a package folder of the content-addressed store is named by
/// (`<artifacts>/ab/ab12…`: 64 lowercase hex digits under a folder of its first two), or `None`
/// for any other folder.
pub fn content_address(dir: &Path) -> Option<&str> {
    let name = dir.file_name()?.to_str()?;
    let parent = dir.parent()?.file_name()?.to_str()?;
    let hex = name.len() == 64 && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (hex && name.get(..2) == Some(parent)).then_some(name)
}

/// What goes wrong in the registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The store refused (a locked SQLite file past the busy timeout, a read-only file, an
    /// unreachable PostgreSQL server, a schema newer than the binary, ...).
    #[error("registry {0}")]
    Store(#[from] mlops_core::store::StoreError),
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
    /// The artifact bucket refused, or could not be reached.
    #[error("artifacts {0}")]
    Objects(#[from] mlops_core::objects::ObjectError),
    /// A registered package's manifest is not the one registered: its files were changed and the
    /// manifest rewritten to match them.
    #[error(
        "{}: the manifest's SHA-256 is {found}, but the registry recorded {expected}: the package was changed after it was registered (register it again from its source)",
        path.display()
    )]
    Tampered {
        /// The manifest.
        path: PathBuf,
        /// The SHA-256 the registry recorded (the content address).
        expected: String,
        /// The manifest's SHA-256 now.
        found: String,
    },
}

/// Result with [`RegistryError`].
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
