//! Errors of the EDA step.

/// What stops a profile or its report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdaError {
    /// There is nothing to profile.
    #[error("eda: the dataset has no rows")]
    Empty,
    /// `eda.columns` names a column the data does not have.
    #[error("eda.columns: column `{column}` not found (available: {})", available.join(", "))]
    MissingColumn {
        /// The column.
        column: String,
        /// The columns there are.
        available: Vec<String>,
    },
    /// A setting is out of range.
    #[error("eda.{key}: {message}")]
    Invalid {
        /// The key under `eda`.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Reading the frame or writing the report failed.
    #[error(transparent)]
    Core(#[from] mlops_core::CoreError),
}

/// Result of the EDA step.
pub type Result<T, E = EdaError> = std::result::Result<T, E>;
