//! What goes wrong in the lifecycle.

use std::path::PathBuf;

/// What goes wrong in the lifecycle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    /// A policy value is out of range.
    #[error("{key}: {message}")]
    Config {
        /// The key path.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Another lifecycle run holds the lock.
    #[error("{path}: another lifecycle run holds the lock ({holder}); this one changed nothing")]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// What the holder wrote into it (process id and start time).
        holder: String,
    },
    /// A rollback found no earlier version behind the alias.
    #[error("{name}: `{alias}` never pointed at another version, so there is nothing to roll back to")]
    NoPreviousVersion {
        /// The model.
        name: String,
        /// The alias.
        alias: String,
    },
    /// A change the lifecycle refuses, with the reason.
    #[error("{0}")]
    Refused(String),
    /// The registry refused or failed.
    #[error(transparent)]
    Registry(#[from] step17_registry::RegistryError),
    /// The store's lifecycle tables could not be read or written.
    #[error("lifecycle state: {0}")]
    Store(#[from] mlops_core::store::StoreError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The lifecycle's result type.
pub type Result<T, E = LifecycleError> = std::result::Result<T, E>;
