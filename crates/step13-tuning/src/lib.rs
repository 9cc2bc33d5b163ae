//! Step 13, tuning: the search spaces and cross-validation folds a tuner walks.
//!
//! In: a [`Space`] (a model family and, per hyperparameter, a list of values or a range, from
//! YAML) and a [`Cv`] scheme. Out: the candidate [`ModelSpec`]s of a grid or a seeded random
//! search, each checked against its family's domains before any fitting; and [`Fold`]s of row
//! numbers for k-fold, stratified k-fold and time-series (expanding window) cross-validation.
//! [`tune`] scores every candidate on every fold over the cores through an [`Objective`] (which
//! `pipelines` implements by refitting the FeaturePipeline inside each fold, so no validation row
//! leaks into the features) and records each candidate as a tracked child run; [`Tuned`] holds
//! every trial with the mean and std of its fold scores, the best trial and the best per family.
//!
//! Invariants:
//! - within a fold no row is both training and validation; k-fold and stratified folds validate
//!   every row exactly once; time-series folds only ever train on rows before their validation rows;
//! - the same seed gives the same folds and the same random candidates.
//!
//! ```
//! use step13_tuning::{Cv, Space};
//!
//! let space: Space = serde_json::from_str(r#"{"model": "ridge", "params": {"alpha": [0.1, 1.0, 10.0]}}"#)?;
//! assert_eq!(space.grid()?.len(), 3);
//! let folds = Cv::KFold { k: 5, shuffle: false }.folds(10, None, mlops_core::Seed(42))?;
//! assert_eq!(folds[0].validation, vec![0, 1]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cv;
mod search;
mod space;

pub use cv::{Cv, Fold};
pub use search::{Objective, Search, Trial, TuneParams, Tuned, tune};
pub use space::{Range, Space, Values};
pub use step11_candidates::ModelSpec;

/// What stops a search or a split into folds.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum TuneError {
    /// A setting out of range.
    #[error("{key}: {message}")]
    Invalid {
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A candidate's hyperparameters do not fit its family.
    #[error("search space of `{model}`: {message}")]
    Candidate {
        /// The family.
        model: String,
        /// What is wrong (from the family's check, naming the parameter).
        message: String,
    },
    /// A class with fewer rows than folds.
    #[error("cv: class {class} has {rows} row(s), fewer than the {folds} folds")]
    SmallClass {
        /// Class index.
        class: usize,
        /// Its rows.
        rows: usize,
        /// Folds asked for.
        folds: usize,
    },
}

/// Result of the tuning step.
pub type Result<T, E = TuneError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;
