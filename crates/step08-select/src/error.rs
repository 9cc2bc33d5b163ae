//! Errors of the selection step.

/// What stops a selection, a sample or a split.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SelectError {
    /// A setting names a column the data does not have.
    #[error("{key}: column `{column}` not found (available: {})", available.join(", "))]
    MissingColumn {
        /// Config key (`select.columns.names`, `split.method.stratified.by`, ...).
        key: String,
        /// The column.
        column: String,
        /// The columns there are.
        available: Vec<String>,
    },
    /// A row filter does not parse or does not fit the columns; the message gives the position.
    #[error("{key}: {source}")]
    Filter {
        /// Config key.
        key: String,
        /// The expression error.
        #[source]
        source: Box<mlops_core::CoreError>,
    },
    /// A column has the wrong type for what is asked of it.
    #[error("{key}: column `{column}` is {found}; {needed}")]
    WrongType {
        /// Config key.
        key: String,
        /// The column.
        column: String,
        /// Its type.
        found: String,
        /// What is needed.
        needed: String,
    },
    /// A stratified split or sample meets a class too small to divide.
    #[error("{key}: class `{class}` of `{column}` has {rows} row(s); stratifying needs at least {needed} per class")]
    TinyClass {
        /// Config key.
        key: String,
        /// The stratify column.
        column: String,
        /// The class.
        class: String,
        /// Its rows.
        rows: usize,
        /// The fewest rows that work.
        needed: usize,
    },
    /// A setting is out of range or contradicts another.
    #[error("{key}: {message}")]
    Invalid {
        /// Config key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// There are no rows to work on.
    #[error("{key}: no rows to {action}")]
    Empty {
        /// Config key.
        key: String,
        /// What was to be done.
        action: &'static str,
    },
    /// A frame operation failed.
    #[error(transparent)]
    Core(Box<mlops_core::CoreError>),
}

impl From<mlops_core::CoreError> for SelectError {
    fn from(e: mlops_core::CoreError) -> Self {
        SelectError::Core(Box::new(e))
    }
}

/// Result of the selection step.
pub type Result<T, E = SelectError> = std::result::Result<T, E>;

pub(crate) fn available(df: &polars::prelude::DataFrame) -> Vec<String> {
    df.get_column_names().iter().map(|s| s.to_string()).collect()
}

pub(crate) fn missing(df: &polars::prelude::DataFrame, key: &str, column: &str) -> SelectError {
    SelectError::MissingColumn { key: key.to_string(), column: column.to_string(), available: available(df) }
}

pub(crate) fn polars_error(context: &str) -> impl FnOnce(polars::prelude::PolarsError) -> SelectError + '_ {
    move |e| SelectError::Core(Box::new(mlops_core::CoreError::polars(context, e)))
}
