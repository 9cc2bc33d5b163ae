//! Errors of the features step.

/// What stops feature fitting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeatureError {
    /// A setting names a column the data does not have.
    #[error("features.{key}: column `{column}` not found (available: {})", available.join(", "))]
    MissingColumn {
        /// Key under `features`.
        key: String,
        /// The column.
        column: String,
        /// The columns at that point.
        available: Vec<String>,
    },
    /// A column has the wrong type for the feature.
    #[error("features.{key}: column `{column}` is {found}; {needed}")]
    WrongType {
        /// Key under `features`.
        key: String,
        /// The column.
        column: String,
        /// Its type.
        found: String,
        /// What is needed.
        needed: String,
    },
    /// A setting is out of range or contradicts the data.
    #[error("features.{key}: {message}")]
    Invalid {
        /// Key under `features`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A derived or polynomial feature's expression failed.
    #[error("features.{key}: {source}")]
    Expr {
        /// Key under `features`.
        key: String,
        /// The expression error.
        #[source]
        source: Box<mlops_core::CoreError>,
    },
    /// Model-based importance was asked for, but no model was given to compute it.
    #[error(
        "features.select.importance: needs a model to rank features (the model crates provide one); none was given"
    )]
    NoImportanceModel,
    /// Target encoding failed.
    #[error("features.target_encode.{column}: {source}")]
    TargetEncode {
        /// The encoded column.
        column: String,
        /// Step 5's error.
        #[source]
        source: Box<step05_transform::TransformError>,
    },
    /// A scaler could not be fitted.
    #[error("features.scale.{column}: {source}")]
    Scale {
        /// The column.
        column: String,
        /// Step 5's error.
        #[source]
        source: Box<step05_transform::TransformError>,
    },
    /// An encoding could not be fitted.
    #[error("features.encode.{column}: {source}")]
    Encode {
        /// The column.
        column: String,
        /// Step 5's error.
        #[source]
        source: Box<step05_transform::TransformError>,
    },
    /// A frame operation failed.
    #[error(transparent)]
    Core(Box<mlops_core::CoreError>),
}

impl From<mlops_core::CoreError> for FeatureError {
    fn from(e: mlops_core::CoreError) -> Self {
        FeatureError::Core(Box::new(e))
    }
}

/// Result of the features step.
pub type Result<T, E = FeatureError> = std::result::Result<T, E>;

/// A setting (`key` under `features`) names a column the frame does not have.
pub(crate) fn missing(df: &polars::prelude::DataFrame, key: &str, column: &str) -> FeatureError {
    FeatureError::MissingColumn {
        key: key.to_string(),
        column: column.to_string(),
        available: mlops_core::frame::column_names(df),
    }
}
