//! The base error every step crate wraps.

use std::path::PathBuf;

/// What can go wrong in the shared layer: files, configuration, expressions and fitted operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A file or directory could not be read or written.
    #[error("{action} {path}")]
    Io {
        /// What was being done, e.g. "cannot write".
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// An output directory exists and is not empty, and replacing it was not asked for.
    #[error("{}: exists and is not empty; choose another directory or pass --force", .0.display())]
    NotEmpty(PathBuf),
    /// A YAML or JSON configuration did not match its typed structure.
    #[error("{file}: {}{message}", location_prefix(key, *line, *column))]
    Config {
        /// The file the configuration came from.
        file: PathBuf,
        /// Dotted key path to the offending value, empty for the document itself.
        key: String,
        /// 1-based line, when the parser knows it.
        line: Option<usize>,
        /// 1-based column, when the parser knows it.
        column: Option<usize>,
        /// What the parser or the check said.
        message: String,
    },
    /// An expression (derived column, business rule) could not be parsed or type-checked.
    #[error("expression `{source_text}`: {message}")]
    Expr {
        /// The expression as written.
        source_text: String,
        /// What is wrong with it.
        message: String,
    },
    /// A column an operation needs is not in the data.
    #[error("column `{column}` not found (available: {})", available.join(", "))]
    MissingColumn {
        /// The column that was asked for.
        column: String,
        /// The columns that exist.
        available: Vec<String>,
    },
    /// A value could not be converted as an operation demands (`on_error: raise`).
    #[error("column `{column}`{}: cannot convert {value:?} to {target}", row.map(|r| format!(" row {r}")).unwrap_or_default())]
    Conversion {
        /// Column holding the value.
        column: String,
        /// 0-based row index in the frame, when known.
        row: Option<usize>,
        /// The offending value as text.
        value: String,
        /// The type or category set that was expected.
        target: String,
    },
    /// A column has a type the operation cannot work on.
    #[error("column `{column}` has type {found}, expected {expected}")]
    WrongType {
        /// The column.
        column: String,
        /// Its type.
        found: String,
        /// What the operation accepts.
        expected: String,
    },
    /// A category never seen in training reached an operation whose policy is `error`.
    #[error("column `{column}`: unknown category {value:?} (known: {})", known.join(", "))]
    UnknownCategory {
        /// The column.
        column: String,
        /// The unseen value.
        value: String,
        /// The categories seen in training.
        known: Vec<String>,
    },
    /// A polars operation failed.
    #[cfg(feature = "frame")]
    #[error("{context}")]
    Polars {
        /// What was being done.
        context: String,
        /// The polars error.
        #[source]
        source: polars::error::PolarsError,
    },
    /// A JSON document (a fitted pipeline, metadata) could not be encoded or decoded.
    #[error("{context}")]
    Json {
        /// What was being done.
        context: String,
        /// The serde_json error.
        #[source]
        source: serde_json::Error,
    },
}

fn location_prefix(key: &str, line: Option<usize>, column: Option<usize>) -> String {
    let mut out = String::new();
    if let Some(line) = line {
        out.push_str(&format!("line {line}"));
        if let Some(column) = column {
            out.push_str(&format!(" column {column}"));
        }
        out.push_str(": ");
    }
    if !key.is_empty() {
        out.push_str(&format!("key `{key}`: "));
    }
    out
}

impl CoreError {
    /// Wraps an I/O error with the action and the path.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { action, path: path.into(), source }
    }

    /// Wraps a polars error with a short description of what was being done.
    #[cfg(feature = "frame")]
    pub fn polars(context: impl Into<String>, source: polars::error::PolarsError) -> Self {
        Self::Polars { context: context.into(), source }
    }

    /// A missing column error listing the available ones.
    pub fn missing_column<S: AsRef<str>>(column: &str, available: impl IntoIterator<Item = S>) -> Self {
        Self::MissingColumn {
            column: column.to_string(),
            available: available.into_iter().map(|s| s.as_ref().to_string()).collect(),
        }
    }
}

/// Result with [`CoreError`] as the default error.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;
