//! The metrics a run is scored by (tuning, model selection), with their task and direction.

use mlops_core::TaskKind;
use serde::{Deserialize, Serialize};

use crate::{ClassificationMetrics, EvalError, RegressionMetrics, Result};

/// A single-number metric, named as scikit-learn's scorers are (without `neg_`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Share right.
    Accuracy,
    /// Mean recall per class.
    BalancedAccuracy,
    /// Precision of the positive class (binary).
    Precision,
    /// Recall of the positive class (binary).
    Recall,
    /// F1 of the positive class (binary).
    F1,
    /// Macro-averaged F1.
    F1Macro,
    /// Support-weighted F1.
    F1Weighted,
    /// ROC-AUC (binary) or one-vs-rest macro ROC-AUC.
    RocAuc,
    /// Log loss (lower is better).
    LogLoss,
    /// Mean absolute error (lower is better).
    Mae,
    /// Mean squared error (lower is better).
    Mse,
    /// Root mean squared error (lower is better).
    Rmse,
    /// R².
    R2,
    /// Mean absolute percentage error (lower is better).
    Mape,
}

impl Metric {
    /// Every metric.
    pub const ALL: [Metric; 14] = [
        Metric::Accuracy,
        Metric::BalancedAccuracy,
        Metric::Precision,
        Metric::Recall,
        Metric::F1,
        Metric::F1Macro,
        Metric::F1Weighted,
        Metric::RocAuc,
        Metric::LogLoss,
        Metric::Mae,
        Metric::Mse,
        Metric::Rmse,
        Metric::R2,
        Metric::Mape,
    ];

    /// Its name in config.
    pub fn name(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
    }

    /// Whether a larger value is better.
    pub fn greater_is_better(self) -> bool {
        !matches!(self, Metric::LogLoss | Metric::Mae | Metric::Mse | Metric::Rmse | Metric::Mape)
    }

    /// Whether the metric applies to a task.
    pub fn fits(self, task: TaskKind) -> bool {
        match self {
            Metric::Mae | Metric::Mse | Metric::Rmse | Metric::R2 | Metric::Mape => task == TaskKind::Regression,
            Metric::Precision | Metric::Recall | Metric::F1 => task == TaskKind::BinaryClassification,
            _ => task != TaskKind::Regression,
        }
    }

    /// An error naming the metrics that fit, when this one does not.
    pub fn check(self, task: TaskKind) -> Result<()> {
        if self.fits(task) {
            return Ok(());
        }
        Err(EvalError::WrongTask {
            metric: self.name(),
            task: match task {
                TaskKind::BinaryClassification => "binary classification",
                TaskKind::MulticlassClassification => "multiclass classification",
                TaskKind::Regression => "regression",
            }
            .to_string(),
            allowed: Metric::ALL.iter().filter(|m| m.fits(task)).map(|m| m.name()).collect(),
        })
    }

    /// Its value among classification metrics (`None` for a regression metric, or when it needs
    /// probabilities that were not given).
    pub fn of_classification(self, m: &ClassificationMetrics) -> Option<f64> {
        match self {
            Metric::Accuracy => Some(m.accuracy),
            Metric::BalancedAccuracy => Some(m.balanced_accuracy),
            Metric::Precision => m.precision.binary,
            Metric::Recall => m.recall.binary,
            Metric::F1 => m.f1.binary,
            Metric::F1Macro => Some(m.f1.macro_avg),
            Metric::F1Weighted => Some(m.f1.weighted),
            Metric::RocAuc => m.roc_auc,
            Metric::LogLoss => m.log_loss,
            _ => None,
        }
    }

    /// Its value among regression metrics (`None` for a classification metric).
    pub fn of_regression(self, m: &RegressionMetrics) -> Option<f64> {
        match self {
            Metric::Mae => Some(m.mae),
            Metric::Mse => Some(m.mse),
            Metric::Rmse => Some(m.rmse),
            Metric::R2 => Some(m.r2),
            Metric::Mape => Some(m.mape),
            _ => None,
        }
    }
}
