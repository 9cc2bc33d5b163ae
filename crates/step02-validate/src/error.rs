//! Errors of the validate step: problems with the schema itself, not with the data (data problems
//! are findings in the [`Report`](crate::Report)).

/// What stops validation from running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValidateError {
    /// A column's `regex` does not compile.
    #[error("schema: column `{column}`: invalid regex {pattern:?}: {message}")]
    Regex {
        /// The column.
        column: String,
        /// The pattern.
        pattern: String,
        /// What the regex parser said.
        message: String,
    },
    /// A rule's expression does not parse.
    #[error("schema: rule `{rule}`: {source}")]
    Rule {
        /// The rule's name.
        rule: String,
        /// The expression error.
        #[source]
        source: Box<mlops_core::CoreError>,
    },
    /// A foreign key names a source that was not given.
    #[error("schema: foreign key on {}: no source named `{source_name}` (sources: {})", columns.join(", "), available.join(", "))]
    UnknownSource {
        /// The referencing columns.
        columns: Vec<String>,
        /// The referenced source.
        source_name: String,
        /// The sources that were given.
        available: Vec<String>,
    },
    /// A check is impossible as written (min above max, a foreign key with unequal column lists).
    #[error("schema: {0}")]
    Invalid(String),
    /// A shared-layer error (reading the schema file, a polars failure).
    #[error(transparent)]
    Core(#[from] mlops_core::CoreError),
}

/// Result with [`ValidateError`] as the default error.
pub type Result<T, E = ValidateError> = std::result::Result<T, E>;
