//! Step 14, evaluate: metrics of predictions against the truth, with scikit-learn's definitions.
//!
//! In: true and predicted labels (class indices) with class probabilities, or true and predicted
//! values. Out: [`ClassificationMetrics`] (accuracy, balanced accuracy, precision / recall / F1
//! per class and binary, macro and weighted, ROC-AUC binary or one-vs-rest macro, log loss,
//! confusion matrix), [`RegressionMetrics`] (MAE, MSE, RMSE, R², MAPE), curve points
//! ([`roc_curve`], [`pr_curve`], [`calibration_curve`]) and the [`Metric`] a tuner optimises.
//!
//! Invariants:
//! - every number follows scikit-learn's definition, including its edge cases (a division by zero
//!   counts 0, R² of a constant truth is 1 for a perfect fit and 0 otherwise), and is tested
//!   against values scikit-learn computes;
//! - no polars: metrics run on plain slices, so serving and monitoring can use them too.
//!
//! ```
//! use step14_evaluate::{classification, regression};
//!
//! let m = classification(&[0, 1, 1, 0], &[0, 1, 0, 0], None, 2)?;
//! assert_eq!(m.accuracy, 0.75);
//! assert_eq!(m.confusion, vec![vec![2, 0], vec![1, 1]]);
//! let r = regression(&[3.0, -0.5, 2.0, 7.0], &[2.5, 0.0, 2.0, 8.0])?;
//! assert_eq!(r.mae, 0.5);
//! # Ok::<(), step14_evaluate::EvalError>(())
//! ```

mod classification;
mod curves;
mod metric;
mod regression;
mod report;

pub use classification::{Averages, ClassReport, ClassificationMetrics, classification, log_loss};
pub use curves::{Calibration, PrCurve, RocCurve, average_precision, calibration_curve, pr_curve, roc_auc, roc_curve};
pub use metric::Metric;
pub use regression::{RegressionMetrics, regression};
pub use report::{ClassCurve, Evaluation, Outputs, ReportMeta, SECTIONS, argmax, evaluate, render_html};

/// What stops an evaluation.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum EvalError {
    /// Truth and predictions differ in length.
    #[error("{what}: {truth} true values but {predicted} predictions")]
    Length {
        /// Which input.
        what: &'static str,
        /// True values.
        truth: usize,
        /// Predictions.
        predicted: usize,
    },
    /// There is nothing to evaluate.
    #[error("no rows to evaluate")]
    Empty,
    /// A label is outside the classes.
    #[error("label {label} is not one of the {classes} classes")]
    BadLabel {
        /// The label.
        label: usize,
        /// How many classes there are.
        classes: usize,
    },
    /// A probability row has the wrong width, or a value is not a finite number.
    #[error("{what}: {message}")]
    BadInput {
        /// Which input.
        what: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A metric that does not apply to the task.
    #[error("metric `{metric}` does not fit a {task} task (use one of: {})", allowed.join(", "))]
    WrongTask {
        /// The metric.
        metric: String,
        /// The task.
        task: String,
        /// The metrics that fit.
        allowed: Vec<String>,
    },
}

/// Result of the evaluate step.
pub type Result<T, E = EvalError> = std::result::Result<T, E>;

pub(crate) fn same_length(what: &'static str, truth: usize, predicted: usize) -> Result<()> {
    if truth != predicted {
        return Err(EvalError::Length { what, truth, predicted });
    }
    if truth == 0 {
        return Err(EvalError::Empty);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
