//! Errors of the clean step.

/// What stops cleaning.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CleanError {
    /// The config names a column the data does not have.
    #[error("clean.{key}: column `{column}` not found (available: {})", available.join(", "))]
    MissingColumn {
        /// Config key path under `clean`, e.g. `fill`.
        key: String,
        /// The column.
        column: String,
        /// The columns the data has.
        available: Vec<String>,
    },
    /// A parameter is out of range or does not fit the column's type.
    #[error("clean.{key}: {message}")]
    Invalid {
        /// Config key path under `clean`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A fitted operation failed on the data (a value that cannot convert under `raise`).
    #[error(transparent)]
    Core(#[from] mlops_core::CoreError),
}

/// Result with [`CleanError`] as the default error.
pub type Result<T, E = CleanError> = std::result::Result<T, E>;
