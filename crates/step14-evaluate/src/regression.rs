//! Regression metrics.

use serde::{Deserialize, Serialize};

use crate::{EvalError, Result, same_length};

/// scikit-learn's regression metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    /// Mean absolute error.
    pub mae: f64,
    /// Mean squared error.
    pub mse: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Coefficient of determination.
    pub r2: f64,
    /// Mean absolute percentage error, as a fraction (`|e| / max(|y|, ε)`).
    pub mape: f64,
    /// Residuals `y - ŷ`, in row order.
    pub residuals: Vec<f64>,
}

/// Metrics of predicted values against the true ones.
pub fn regression(truth: &[f64], predicted: &[f64]) -> Result<RegressionMetrics> {
    same_length("predictions", truth.len(), predicted.len())?;
    if let Some(i) = truth.iter().chain(predicted).position(|v| !v.is_finite()) {
        let (what, row) = if i < truth.len() { ("truth", i) } else { ("predictions", i - truth.len()) };
        return Err(EvalError::BadInput { what, message: format!("row {row} is not a finite number") });
    }
    let n = truth.len() as f64;
    let residuals: Vec<f64> = truth.iter().zip(predicted).map(|(y, p)| y - p).collect();
    let mae = residuals.iter().map(|e| e.abs()).sum::<f64>() / n;
    let ss_res: f64 = residuals.iter().map(|e| e * e).sum();
    let mse = ss_res / n;
    let mean = truth.iter().sum::<f64>() / n;
    let ss_tot: f64 = truth.iter().map(|y| (y - mean).powi(2)).sum();
    // scikit-learn's `force_finite`: a constant truth scores 1 when predicted exactly, else 0.
    let r2 = if ss_tot == 0.0 { if ss_res == 0.0 { 1.0 } else { 0.0 } } else { 1.0 - ss_res / ss_tot };
    let mape = truth.iter().zip(&residuals).map(|(y, e)| e.abs() / y.abs().max(f64::EPSILON)).sum::<f64>() / n;
    Ok(RegressionMetrics { mae, mse, rmse: mse.sqrt(), r2, mape, residuals })
}
