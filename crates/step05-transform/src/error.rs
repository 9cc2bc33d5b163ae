//! Errors of the transform step.

/// What stops a transform.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransformError {
    /// The config names a column the data does not have.
    #[error("transform.{key}: column `{column}` not found (available: {})", available.join(", "))]
    MissingColumn {
        /// Config key under `transform`.
        key: String,
        /// The column.
        column: String,
        /// The columns at that point.
        available: Vec<String>,
    },
    /// A join or concatenation names a source that was not ingested.
    #[error("transform.{key}: no source named `{source_name}` (sources: {})", available.join(", "))]
    UnknownSource {
        /// Config key under `transform`.
        key: String,
        /// The name used.
        source_name: String,
        /// The sources there are.
        available: Vec<String>,
    },
    /// A derived column's expression does not parse or does not fit the columns.
    #[error("transform.derive `{name}`: {source}")]
    Expr {
        /// The derived column.
        name: String,
        /// The expression error.
        #[source]
        source: Box<mlops_core::CoreError>,
    },
    /// A value map is invalid.
    #[error("transform.{0}")]
    Map(#[source] Box<step04_standardize::StandardizeError>),
    /// A setting does not fit the data.
    #[error("transform.{key}: {message}")]
    Invalid {
        /// Config key under `transform`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// An operation failed on the data.
    #[error(transparent)]
    Core(#[from] mlops_core::CoreError),
}

/// Result with [`TransformError`] as the default error.
pub type Result<T, E = TransformError> = std::result::Result<T, E>;
