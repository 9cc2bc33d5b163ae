//! Step 16: the model package (contract 6 of DESIGN.md).
//!
//! A package is a directory:
//!
//! | file | what |
//! | --- | --- |
//! | `manifest.json` | `format_version` and the SHA-256 and size of every other file |
//! | `model.json` | what the model predicts: task, target, classes, family, hyperparameters, feature order |
//! | `model.bin` | the fitted [`Model`] (postcard) |
//! | `pipeline.json` | the [`FeaturePipeline`] that turns raw rows into the model's features |
//! | `signature.json` | input columns (type, nullable, categories or range seen) and outputs |
//! | `metrics.json` | the metrics measured at training (cross-validation, validation, test) |
//! | `profile.json` | the reference profile for drift: per input column quantile bins and counts, or category frequencies, and the row count |
//! | `lineage.json` | dataset version, config hash, run id, source commit, toolkit version |
//! | `feature_importance.csv` | `feature,importance`, largest first (empty for families without) |
//! | `input_example.json` | a few raw input rows |
//! | `requirements.txt` | what the serving binary needs: toolkit and crate versions, file formats |
//! | `reference.parquet` | optional: a seeded sample of up to 100,000 training rows as a caller sends them (monitoring's reference) |
//! | `reference_predictions.parquet` | optional: the model's predictions on the test part (prediction drift) |
//!
//! [`write`] builds it in a temporary sibling directory and renames it into place, so a package
//! is there whole or not at all. [`load`] checks the format version first, then every file
//! against the manifest (a missing, changed or unlisted file is an error naming it), and only then
//! decodes: data formats only, nothing executes.

mod package;
mod profile;
#[cfg(test)]
mod tests;

pub use package::{
    FORMAT_VERSION, FileEntry, Lineage, Manifest, ModelInfo, Package, PackageContents, REFERENCE_PREDICTIONS,
    REFERENCE_ROWS, ReferenceData, load, read_manifest, write,
};
pub use profile::{ColumnProfile, ReferenceProfile, categorical_profile, numeric_profile};

use std::path::PathBuf;

/// What goes wrong with a package.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// Reading or writing failed.
    #[error(transparent)]
    Core(#[from] mlops_core::CoreError),
    /// The package was written by a format this build does not read.
    #[error(
        "{path}: package format version {found} is not supported (this build reads versions 1 to {supported}); re-package the model with this toolkit"
    )]
    UnknownFormat {
        /// The manifest.
        path: PathBuf,
        /// Its version.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A file does not match its checksum, is missing or is not listed.
    #[error("{path}: {message}")]
    Integrity {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file does not decode.
    #[error("{path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The target directory exists and is not empty.
    #[error("{path}: already exists; remove it or choose another directory")]
    Exists {
        /// The directory.
        path: PathBuf,
    },
}

/// Result with [`PackageError`].
pub type Result<T, E = PackageError> = std::result::Result<T, E>;

#[doc(no_inline)]
pub use mlops_core::FeaturePipeline;
#[doc(no_inline)]
pub use step11_candidates::Model;
