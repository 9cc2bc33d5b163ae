//! Champion against challenger on the same test rows.

use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, ChiSquared, ContinuousCDF, DiscreteCDF, Normal};

use crate::{Bootstrap, Result, SelectBestError};

/// The workflow's A/B test of two accuracies on `n` rows each: `z = (a - b) / se` with the
/// unpooled standard error `√(a(1-a)/n + b(1-b)/n)`, two-sided.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProportionTest {
    /// Accuracy of the first model.
    pub accuracy_a: f64,
    /// Accuracy of the second.
    pub accuracy_b: f64,
    /// `accuracy_a - accuracy_b`.
    pub difference: f64,
    /// The z statistic.
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Whether `p_value < 1 - confidence`.
    pub significant: bool,
}

/// McNemar's test on the rows exactly one of two classifiers gets right: exact (binomial) when
/// fewer than 25 such rows, else χ² with continuity correction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct McNemar {
    /// Rows only the first model gets right.
    pub only_a: usize,
    /// Rows only the second gets right.
    pub only_b: usize,
    /// The χ² statistic, or the smaller count for the exact test.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Whether the exact binomial test was used.
    pub exact: bool,
    /// Whether `p_value < 1 - confidence`.
    pub significant: bool,
}

/// Every comparison of two models on the same test rows: `a` (a challenger, or the selected
/// model) against `b` (the champion, or the runner-up); differences are `a - b`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The first model.
    pub a: String,
    /// The model it is measured against.
    pub b: String,
    /// The two-proportion z-test on accuracy (classifiers).
    pub z_test: Option<ProportionTest>,
    /// McNemar's test (classifiers).
    pub mcnemar: Option<McNemar>,
    /// The paired bootstrap interval of the ranking metric's difference.
    pub bootstrap: Bootstrap,
}

pub(crate) fn check_confidence(confidence: f64) -> Result<()> {
    if confidence > 0.0 && confidence < 1.0 {
        return Ok(());
    }
    Err(SelectBestError::Invalid { key: "confidence".into(), message: format!("{confidence} must be between 0 and 1") })
}

/// The two-proportion z-test of `right_a` and `right_b` correct answers out of `n` rows each.
pub fn two_proportion_z(right_a: usize, right_b: usize, n: usize, confidence: f64) -> Result<ProportionTest> {
    check_confidence(confidence)?;
    if n == 0 || right_a > n || right_b > n {
        return Err(SelectBestError::Mismatch {
            what: "counts",
            message: format!("{right_a} and {right_b} right answers out of {n} rows"),
        });
    }
    let (a, b) = (right_a as f64 / n as f64, right_b as f64 / n as f64);
    let se = (a * (1.0 - a) / n as f64 + b * (1.0 - b) / n as f64).sqrt();
    let difference = a - b;
    let (z, p_value) = if se > 0.0 {
        let z = difference / se;
        (z, 2.0 * normal_sf(z.abs()))
    } else if difference == 0.0 {
        (0.0, 1.0)
    } else {
        (difference.signum() * f64::INFINITY, 0.0)
    };
    Ok(ProportionTest { accuracy_a: a, accuracy_b: b, difference, z, p_value, significant: p_value < 1.0 - confidence })
}

fn normal_sf(z: f64) -> f64 {
    Normal::standard().sf(z)
}

/// McNemar's test of two classifiers' predictions `a` and `b` against `truth`.
pub fn mcnemar(truth: &[usize], a: &[usize], b: &[usize], confidence: f64) -> Result<McNemar> {
    check_confidence(confidence)?;
    if a.len() != truth.len() || b.len() != truth.len() {
        return Err(SelectBestError::Mismatch {
            what: "predictions",
            message: format!("{} and {} predictions for {} rows", a.len(), b.len(), truth.len()),
        });
    }
    let (mut only_a, mut only_b) = (0usize, 0usize);
    for ((t, pa), pb) in truth.iter().zip(a).zip(b) {
        match (pa == t, pb == t) {
            (true, false) => only_a += 1,
            (false, true) => only_b += 1,
            _ => {}
        }
    }
    let discordant = only_a + only_b;
    let (statistic, p_value, exact) = if discordant == 0 {
        (0.0, 1.0, true)
    } else if discordant < 25 {
        let k = only_a.min(only_b);
        let binomial = Binomial::new(0.5, discordant as u64)
            .map_err(|e| SelectBestError::Mismatch { what: "counts", message: e.to_string() })?;
        (k as f64, (2.0 * binomial.cdf(k as u64)).min(1.0), true)
    } else {
        let chi2 = ((only_a as f64 - only_b as f64).abs() - 1.0).powi(2) / discordant as f64;
        let dist =
            ChiSquared::new(1.0).map_err(|e| SelectBestError::Mismatch { what: "counts", message: e.to_string() })?;
        (chi2, dist.sf(chi2), false)
    };
    Ok(McNemar { only_a, only_b, statistic, p_value, exact, significant: p_value < 1.0 - confidence })
}
