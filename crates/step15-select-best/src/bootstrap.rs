//! The paired bootstrap of a metric's difference between two models on the same rows.
//!
//! Resample `i` draws `n` row indices with replacement from its own stream, derived from the
//! seed and `i` alone, so a resample is the same whichever thread draws it and however the
//! resamples are shared out: the interval depends on the seed, never on the number of cores.
//! [`paired_bootstrap_metric`] knows the metric: it ranks the rows once per model and scores each
//! resample from its counts per row ([`crate::weighted`]), on every core.
//! [`paired_bootstrap`] takes the metric as a function of the drawn rows and calls it on each
//! resample in turn, on the same resamples.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use mlops_core::Seed;
use serde::{Deserialize, Serialize};
use step14_evaluate::Metric;

use crate::compare::check_confidence;
use crate::weighted::Weighted;
use crate::{CompareParams, Result, SelectBestError};

/// A paired bootstrap of the difference of a metric between two models on the same rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bootstrap {
    /// The metric.
    pub metric: String,
    /// `metric(a) - metric(b)` on all rows.
    pub difference: f64,
    /// Lower end of the confidence interval of the difference.
    pub low: f64,
    /// Upper end.
    pub high: f64,
    /// Confidence level of the interval.
    pub confidence: f64,
    /// Resamples the metric was defined on (a resample with a single class has no ROC-AUC).
    pub samples: usize,
    /// Two-sided bootstrap p-value of "no difference".
    pub p_value: f64,
}

/// A classifier's outputs on the test rows.
#[derive(Clone, Copy, Debug)]
pub struct ClassifierOutputs<'a> {
    /// Predicted class per row (`0..classes`).
    pub predicted: &'a [usize],
    /// Class probabilities per row (`proba[row][class]`), when the model gives them; ROC-AUC and
    /// log loss need them.
    pub proba: Option<&'a [Vec<f64>]>,
}

/// Two models' outputs on the same test rows, with the truth: what [`paired_bootstrap_metric`]
/// resamples.
#[derive(Clone, Copy, Debug)]
pub enum PairedOutputs<'a> {
    /// Two classifiers.
    Classes {
        /// True class per row (`0..classes`).
        truth: &'a [usize],
        /// How many classes.
        classes: usize,
        /// The first model (a challenger, or the selected model).
        a: ClassifierOutputs<'a>,
        /// The model it is measured against.
        b: ClassifierOutputs<'a>,
    },
    /// Two regressors.
    Values {
        /// True value per row.
        truth: &'a [f64],
        /// The first model's predictions.
        a: &'a [f64],
        /// The second's.
        b: &'a [f64],
    },
}

impl PairedOutputs<'_> {
    fn rows(&self) -> usize {
        match self {
            PairedOutputs::Classes { truth, .. } => truth.len(),
            PairedOutputs::Values { truth, .. } => truth.len(),
        }
    }

    /// Lengths that do not line up, which step 14 cannot be asked about.
    fn check_lengths(&self) -> Result<()> {
        let n = self.rows();
        let mismatch = |what: &'static str, a: usize, b: usize| SelectBestError::Mismatch {
            what,
            message: format!("{a} and {b} {what} for {n} rows"),
        };
        match self {
            PairedOutputs::Classes { a, b, .. } => {
                if a.predicted.len() != n || b.predicted.len() != n {
                    return Err(mismatch("predictions", a.predicted.len(), b.predicted.len()));
                }
                let len = |p: Option<&[Vec<f64>]>| p.map_or(n, <[Vec<f64>]>::len);
                if len(a.proba) != n || len(b.proba) != n {
                    return Err(mismatch("probabilities", len(a.proba), len(b.proba)));
                }
            }
            PairedOutputs::Values { a, b, .. } => {
                if a.len() != n || b.len() != n {
                    return Err(mismatch("predictions", a.len(), b.len()));
                }
            }
        }
        Ok(())
    }

    /// Both models' `metric` on all rows, by step 14; `None` where it is undefined or step 14
    /// rejects the inputs.
    fn on_all_rows(&self, metric: Metric) -> Option<(f64, f64)> {
        match *self {
            PairedOutputs::Classes { truth, classes, a, b } => {
                let of = |m: ClassifierOutputs<'_>| {
                    let all = step14_evaluate::classification(truth, m.predicted, m.proba, classes).ok()?;
                    metric.of_classification(&all)
                };
                Some((of(a)?, of(b)?))
            }
            PairedOutputs::Values { truth, a, b } => {
                let of = |p: &[f64]| metric.of_regression(&step14_evaluate::regression(truth, p).ok()?);
                Some((of(a)?, of(b)?))
            }
        }
    }
}

/// Both models' values of a metric on a set of rows (indices, repeats allowed), or `None` where
/// the metric is undefined.
pub type PairedMetric<'a> = dyn Fn(&[usize]) -> Option<(f64, f64)> + 'a;

/// A paired bootstrap of `metric(a) - metric(b)` over the rows of `outputs`: as
/// [`paired_bootstrap`] on the same resamples, with the metric computed as step 14 does, but each
/// resample scored in one pass over rows ranked once, and the resamples shared out over the
/// cores. The interval is the same for the same seed on any number of cores.
///
/// ```
/// use mlops_core::Seed;
/// use step14_evaluate::Metric;
/// use step15_select_best::{ClassifierOutputs, CompareParams, PairedOutputs, paired_bootstrap_metric};
///
/// let truth: Vec<usize> = (0..200).map(|i| i % 2).collect();
/// let right = truth.clone();
/// let wrong_a_fifth: Vec<usize> = truth.iter().enumerate().map(|(i, &t)| if i % 5 == 0 { 1 - t } else { t }).collect();
/// let outputs = PairedOutputs::Classes {
///     truth: &truth,
///     classes: 2,
///     a: ClassifierOutputs { predicted: &right, proba: None },
///     b: ClassifierOutputs { predicted: &wrong_a_fifth, proba: None },
/// };
/// let params = CompareParams { bootstrap_samples: 200, confidence: 0.95 };
/// let b = paired_bootstrap_metric(Metric::Accuracy, &outputs, &params, Seed(42))?;
/// assert!((b.difference - 0.2).abs() < 1e-12);
/// assert!(b.low > 0.1 && b.high < 0.3 && b.p_value < 0.01);
/// # Ok::<(), step15_select_best::SelectBestError>(())
/// ```
pub fn paired_bootstrap_metric(
    metric: Metric,
    outputs: &PairedOutputs<'_>,
    params: &CompareParams,
    seed: Seed,
) -> Result<Bootstrap> {
    paired_bootstrap_on(metric, outputs, params, seed, mlops_core::par::cores())
}

/// [`paired_bootstrap_metric`] on `workers` threads.
pub(crate) fn paired_bootstrap_on(
    metric: Metric,
    outputs: &PairedOutputs<'_>,
    params: &CompareParams,
    seed: Seed,
    workers: usize,
) -> Result<Bootstrap> {
    let name = metric.name();
    check(params)?;
    outputs.check_lengths()?;
    let n = outputs.rows();
    let undefined =
        || SelectBestError::Mismatch { what: "metric", message: format!("`{name}` is undefined on the {n} rows") };
    let (a, b) = outputs.on_all_rows(metric).ok_or_else(undefined)?;
    // Step 14 accepted the inputs, which is what `Weighted::pair` asks.
    let (weighted_a, weighted_b) = Weighted::pair(metric, outputs).ok_or_else(undefined)?;
    let resamples = Resamples::new(seed, n);
    let differences = spread(params.bootstrap_samples, workers, |range| {
        let mut counts = vec![0u32; n];
        range
            .filter_map(|i| {
                resamples.counts(i, &mut counts);
                difference(weighted_a.on(&counts), weighted_b.on(&counts))
            })
            .collect()
    });
    summarise(&name, a - b, differences, params.confidence)
}

/// A paired bootstrap of `metric(a) - metric(b)` over `n` rows: `params.bootstrap_samples`
/// resamples of the row indices with replacement (drawn from `seed`), the percentile interval at
/// `params.confidence`. `metric` returns both models' values on a set of rows, or `None` where
/// the metric is undefined.
///
/// `metric` is called once per resample, one after the other, on rows in the order drawn; when
/// the metric is one of step 14's, [`paired_bootstrap_metric`] gives the same interval (the same
/// resamples, the metric equal to rounding) far faster.
pub fn paired_bootstrap(
    name: &str,
    n: usize,
    params: &CompareParams,
    seed: Seed,
    metric: &PairedMetric<'_>,
) -> Result<Bootstrap> {
    check(params)?;
    let all: Vec<usize> = (0..n).collect();
    let (a, b) = metric(&all).ok_or_else(|| SelectBestError::Mismatch {
        what: "metric",
        message: format!("`{name}` is undefined on the {n} rows"),
    })?;
    let resamples = Resamples::new(seed, n);
    let mut rows = vec![0usize; n];
    let differences = (0..params.bootstrap_samples)
        .filter_map(|i| {
            resamples.rows(i, &mut rows);
            metric(&rows).and_then(|(x, y)| difference(Some(x), Some(y)))
        })
        .collect();
    summarise(name, a - b, differences, params.confidence)
}

fn check(params: &CompareParams) -> Result<()> {
    check_confidence(params.confidence)?;
    if params.bootstrap_samples == 0 {
        return Err(SelectBestError::Invalid { key: "bootstrap.samples".into(), message: "must be at least 1".into() });
    }
    Ok(())
}

/// `x - y` when both are finite numbers.
fn difference(x: Option<f64>, y: Option<f64>) -> Option<f64> {
    let (x, y) = (x?, y?);
    (x.is_finite() && y.is_finite()).then_some(x - y)
}

/// The resamples of `n` rows drawn from a seed.
pub(crate) struct Resamples {
    seed: Seed,
    n: usize,
}

impl Resamples {
    pub(crate) fn new(seed: Seed, n: usize) -> Resamples {
        Resamples { seed: seed.derive("paired_bootstrap"), n }
    }

    /// Resample `i`'s `n` draws of a row, in order: `Seed::draws().below(n)` `n` times.
    fn draws(&self, i: usize) -> impl Iterator<Item = usize> {
        let n = self.n as u64;
        self.seed.derive(&format!("resample {i}")).draws().below_many(n, self.n).map(|d| d as usize)
    }

    /// Resample `i` as the rows drawn, in order (`rows` holds `n`).
    pub(crate) fn rows(&self, i: usize, rows: &mut [usize]) {
        rows.iter_mut().zip(self.draws(i)).for_each(|(r, d)| *r = d);
    }

    /// Resample `i` as the number of times each row is drawn (`counts` holds `n`).
    pub(crate) fn counts(&self, i: usize, counts: &mut [u32]) {
        counts.fill(0);
        for row in self.draws(i) {
            if let Some(c) = counts.get_mut(row) {
                *c += 1;
            }
        }
    }
}

/// Resamples handed out to a worker at a time: small enough to balance two to a few cores, large
/// enough that a worker's buffer is allocated rarely.
const CHUNK: usize = 16;

/// `work` on `0..items` in chunks over `workers` threads, the results in item order: the same
/// whatever the number of workers, since each item's result depends on the item alone.
fn spread<R: Send>(items: usize, workers: usize, work: impl Fn(Range<usize>) -> Vec<R> + Sync) -> Vec<R> {
    let chunks: Vec<Range<usize>> = (0..items).step_by(CHUNK).map(|s| s..(s + CHUNK).min(items)).collect();
    let workers = workers.clamp(1, chunks.len().max(1));
    if workers == 1 {
        return chunks.into_iter().flat_map(&work).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, Vec<R>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (next, work, chunks) = (&next, &work, &chunks);
                s.spawn(move || {
                    let mut own = Vec::new();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(range) = chunks.get(k) else { break own };
                        own.push((k, work(range.clone())));
                    }
                })
            })
            .collect();
        // A worker's panic is a bug here, not bad input: pass it on as it is.
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    done.sort_unstable_by_key(|(k, _)| *k);
    done.into_iter().flat_map(|(_, r)| r).collect()
}

/// The interval and p-value of the resamples' differences.
fn summarise(name: &str, difference: f64, mut differences: Vec<f64>, confidence: f64) -> Result<Bootstrap> {
    if differences.is_empty() {
        return Err(SelectBestError::Mismatch {
            what: "metric",
            message: format!("`{name}` is undefined on every resample"),
        });
    }
    let share =
        |f: &dyn Fn(f64) -> bool| differences.iter().filter(|&&d| f(d)).count() as f64 / differences.len() as f64;
    let p_value = (2.0 * share(&|d| d <= 0.0).min(share(&|d| d >= 0.0))).min(1.0);
    let samples = differences.len();
    let tail = (1.0 - confidence) / 2.0;
    let low = mlops_core::stats::quantile_of(&mut differences, tail).unwrap_or(f64::NAN);
    let high = mlops_core::stats::quantile_of(&mut differences, 1.0 - tail).unwrap_or(f64::NAN);
    Ok(Bootstrap { metric: name.to_string(), difference, low, high, confidence, samples, p_value })
}
