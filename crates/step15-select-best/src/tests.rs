//! Tests of the weighted choice, its constraints and the comparisons of two models.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use mlops_core::Seed;
use proptest::prelude::*;
use step14_evaluate::Metric;

use crate::*;

fn entry(name: &str, metrics: &[(&str, f64)], fit_seconds: f64, complexity: f64) -> Entry {
    Entry {
        name: name.into(),
        metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        fit_seconds,
        latency_p99_ms: Some(fit_seconds / 10.0),
        complexity,
        cv: None,
    }
}

fn params(json: &str) -> SelectParams {
    serde_json::from_str(json).unwrap()
}

#[test]
fn by_default_the_ranking_metric_decides() {
    let entries = [
        entry("knn", &[("f1_macro", 0.95)], 0.001, 10_000.0),
        entry("forest", &[("f1_macro", 0.98)], 0.3, 90_000.0),
        entry("logistic", &[("f1_macro", 0.97)], 0.01, 100.0),
    ];
    let s = select(&entries, &SelectParams::default(), Metric::F1Macro).unwrap();
    assert_eq!(s.winner.as_deref(), Some("forest"));
    let names: Vec<&str> = s.ranked.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["forest", "logistic", "knn"]);
    assert_eq!(s.ranked[0].score, Some(1.0));
    assert_eq!(s.ranked[2].score, Some(0.0));
    assert!(!s.tie_broken);
}

#[test]
fn weights_trade_metrics_against_time_and_lower_is_better_is_turned_round() {
    let entries = [
        entry("boosting", &[("rmse", 50.0), ("r2", 0.50)], 4.0, 90_000.0),
        entry("ridge", &[("rmse", 55.0), ("r2", 0.45)], 0.01, 100.0),
    ];
    // rmse: lower is better, so boosting's 50 normalises to 1; fit time favours ridge.
    let mostly_error = params(r#"{"weights": {"rmse": 3, "fit_seconds": 1}}"#);
    let s = select(&entries, &mostly_error, Metric::R2).unwrap();
    assert_eq!(s.winner.as_deref(), Some("boosting"));
    assert_eq!(s.weights["rmse"], 0.75);
    assert_eq!(s.ranked[0].normalised["rmse"], 1.0);
    assert_eq!(s.ranked[0].normalised["fit_seconds"], 0.0);
    assert_eq!(s.ranked[0].score, Some(0.75));
    let mostly_time = params(r#"{"weights": {"rmse": 1, "fit_seconds": 3}}"#);
    assert_eq!(select(&entries, &mostly_time, Metric::R2).unwrap().winner.as_deref(), Some("ridge"));
}

#[test]
fn constraints_rule_candidates_out_with_the_reason() {
    let entries = [
        entry("svm", &[("roc_auc", 0.95), ("recall", 0.70)], 30.0, 5_000.0),
        entry("boosting", &[("roc_auc", 0.94), ("recall", 0.85)], 4.0, 90_000.0),
        entry("logistic", &[("roc_auc", 0.90), ("recall", 0.82)], 0.2, 100.0),
    ];
    let p = params(r#"{"constraints": {"max_fit_seconds": 10, "min": {"recall": 0.8}}}"#);
    let s = select(&entries, &p, Metric::RocAuc).unwrap();
    assert_eq!(s.winner.as_deref(), Some("boosting"));
    let svm = s.ranked.last().unwrap();
    assert_eq!(svm.name, "svm");
    assert_eq!(svm.score, None);
    assert_eq!(svm.violations, ["fit took 30.000 s > max_fit_seconds 10", "recall 0.7000 < min 0.8"]);
    // Latency: measured 0.4 ms for boosting, 0.02 for logistic.
    let fast = params(r#"{"constraints": {"max_latency_p99_ms": 0.1}}"#);
    assert_eq!(select(&entries, &fast, Metric::RocAuc).unwrap().winner.as_deref(), Some("logistic"));
    let none = params(r#"{"constraints": {"max": {"roc_auc": 0.5}}}"#);
    let s = select(&entries, &none, Metric::RocAuc).unwrap();
    assert_eq!(s.winner, None);
    assert!(s.ranked.iter().all(|r| r.score.is_none() && !r.violations.is_empty()));
}

#[test]
fn a_tie_goes_to_the_simpler_model() {
    let entries = [
        entry("forest", &[("accuracy", 0.9700)], 0.5, 80_000.0),
        entry("logistic", &[("accuracy", 0.9695)], 0.01, 200.0),
        entry("tree", &[("accuracy", 0.9000)], 0.01, 50.0),
    ];
    let p = params(r#"{"tie_tolerance": 0.01}"#);
    let s = select(&entries, &p, Metric::Accuracy).unwrap();
    // Normalised: forest 1.0, logistic 0.9929, tree 0: the first two tie, logistic is smaller.
    assert_eq!(s.winner.as_deref(), Some("logistic"));
    assert!(s.tie_broken);
    assert_eq!(s.ranked[1].name, "forest");
    let strict = params(r#"{"tie_tolerance": 0}"#);
    assert_eq!(select(&entries, &strict, Metric::Accuracy).unwrap().winner.as_deref(), Some("forest"));
}

/// Six models tie at a perfect score on a small validation part: the out-of-fold score breaks
/// the tie before size does (the smallest model had the worst cross-validation), and `[size]`
/// gives the earlier behaviour back.
#[test]
fn a_tie_goes_to_the_better_cross_validation_score_then_to_the_smaller_model() {
    let with_cv =
        |name: &str, size: f64, cv: f64| Entry { cv: Some(cv), ..entry(name, &[("f1_macro", 1.0)], 0.01, size) };
    let entries = [
        with_cv("logistic", 391.0, 1.0),
        with_cv("svc", 3_000.0, 1.0),
        with_cv("knn", 29_000.0, 0.9945),
        with_cv("tree", 305.0, 0.9568),
        Entry { cv: None, ..entry("unscored", &[("f1_macro", 1.0)], 0.01, 10.0) },
    ];
    let s = select(&entries, &SelectParams::default(), Metric::F1Macro).unwrap();
    assert_eq!(s.winner.as_deref(), Some("logistic"), "{s:?}");
    assert!(s.tie_broken);
    // Logistic and svc tie on cross-validation too: size decided between them.
    assert_eq!(s.tie_won_on, Some(TieBreak::Size));
    let without_svc: Vec<Entry> = entries.iter().filter(|e| e.name != "svc").cloned().collect();
    assert_eq!(select(&without_svc, &SelectParams::default(), Metric::F1Macro).unwrap().tie_won_on, Some(TieBreak::Cv));
    let by_size = params(r#"{"tie_break": ["size"]}"#);
    assert_eq!(select(&entries, &by_size, Metric::F1Macro).unwrap().winner.as_deref(), Some("unscored"));
    // A lower-is-better metric: the lower cross-validation error wins.
    let errors = [
        Entry { cv: Some(3.0), ..entry("a", &[("rmse", 2.0)], 0.01, 10.0) },
        Entry { cv: Some(2.5), ..entry("b", &[("rmse", 2.0)], 0.01, 20.0) },
    ];
    assert_eq!(select(&errors, &SelectParams::default(), Metric::Rmse).unwrap().winner.as_deref(), Some("b"));
    let err = serde_json::from_str::<SelectParams>(r#"{"tie_break": ["speed"]}"#).unwrap_err().to_string();
    assert!(err.contains("unknown variant `speed`"), "{err}");
}

#[test]
fn bad_settings_name_their_key() {
    let entries = [entry("a", &[("accuracy", 0.9)], 1.0, 1.0)];
    // Each bad setting is an `Invalid` error carrying its key; the message starts with that key.
    let err = |json: &str| match select(&entries, &params(json), Metric::Accuracy) {
        Err(SelectBestError::Invalid { key, message }) => (key, message),
        other => panic!("{json}: expected an invalid setting, got {other:?}"),
    };
    let (key, message) = err(r#"{"weights": {"acuracy": 1}}"#);
    assert_eq!(key, "weights.acuracy");
    assert!(message.starts_with("unknown criterion `acuracy`"), "{message}");
    assert_eq!(err(r#"{"weights": {"accuracy": -1}}"#), ("weights.accuracy".into(), "-1 must be a number >= 0".into()));
    assert_eq!(
        err(r#"{"weights": {"accuracy": 0}}"#),
        ("weights".into(), "at least one weight must be above 0".into())
    );
    assert_eq!(
        err(r#"{"weights": {"roc_auc": 1}}"#),
        ("weights.roc_auc".into(), "candidate `a` has no value of `roc_auc`".into())
    );
    assert_eq!(
        err(r#"{"constraints": {"max_fit_seconds": 0}}"#),
        ("constraints.max_fit_seconds".into(), "0 must be a positive number".into())
    );
    let (key, message) = err(r#"{"constraints": {"min": {"speed": 1}}}"#);
    assert_eq!(key, "constraints.min.speed");
    assert!(message.starts_with("unknown criterion"), "{message}");
    assert_eq!(err(r#"{"tie_tolerance": -0.5}"#), ("tie_tolerance".into(), "-0.5 must be a number >= 0".into()));
    assert_eq!(
        err(r#"{"compare": {"confidence": 95}}"#),
        ("compare.confidence".into(), "95 must be between 0 and 1".into())
    );
    assert_eq!(
        err(r#"{"compare": {"bootstrap_samples": 0}}"#),
        ("compare.bootstrap_samples".into(), "must be at least 1".into())
    );
    // The message a user reads puts the key first.
    let shown = select(&entries, &params(r#"{"weights": {"accuracy": -1}}"#), Metric::Accuracy).unwrap_err();
    assert_eq!(shown.to_string(), "weights.accuracy: -1 must be a number >= 0");
    let err = serde_json::from_str::<SelectParams>(r#"{"wieghts": {}}"#).unwrap_err();
    assert!(err.is_data() && err.to_string().contains("unknown field `wieghts`"), "{err}");
}

#[test]
fn the_z_test_is_the_workflows_and_matches_scipy() {
    // scipy: z = 0.05 / sqrt(.85*.15/100 + .8*.2/100), p = 2 * norm.sf(|z|).
    let t = two_proportion_z(85, 80, 100, 0.95).unwrap();
    assert!((t.z - 0.9325048082403126).abs() < 1e-12, "{t:?}");
    assert!((t.p_value - 0.3510757029555033).abs() < 1e-9, "{t:?}");
    assert!(!t.significant);
    let clear = two_proportion_z(95, 60, 100, 0.95).unwrap();
    assert!(clear.significant && clear.p_value < 1e-6);
    assert_eq!(two_proportion_z(100, 100, 100, 0.95).unwrap().p_value, 1.0);
    let err = two_proportion_z(101, 1, 100, 0.95).unwrap_err();
    assert!(
        matches!(&err, SelectBestError::Mismatch { what: "counts", message } if message == "101 and 1 right answers out of 100 rows"),
        "{err:?}"
    );
    let err = two_proportion_z(1, 1, 10, 1.5).unwrap_err();
    assert!(
        matches!(&err, SelectBestError::Invalid { key, message } if key == "confidence" && message.starts_with("1.5")),
        "{err:?}"
    );
}

#[test]
fn mcnemar_is_exact_for_few_discordant_rows_and_chi_squared_otherwise() {
    // 10 rows only A gets right, 3 only B: scipy.stats.binomtest(3, 13, 0.5) -> 0.09228515625.
    let truth = vec![1usize; 13];
    let a: Vec<usize> = (0..13).map(|i| usize::from(i < 10)).collect();
    let b: Vec<usize> = (0..13).map(|i| usize::from(i >= 10)).collect();
    let m = mcnemar(&truth, &a, &b, 0.95).unwrap();
    assert_eq!((m.only_a, m.only_b, m.exact), (10, 3, true));
    assert!((m.p_value - 0.09228515625).abs() < 1e-12, "{m:?}");
    // 30 against 15 (and 55 both right): chi2 = (|30-15|-1)^2/45, scipy chi2.sf -> 0.036888...
    let truth = vec![0usize; 100];
    let a: Vec<usize> = (0..100).map(|i| usize::from((30..45).contains(&i))).collect();
    let b: Vec<usize> = (0..100).map(|i| usize::from(i < 30)).collect();
    let m = mcnemar(&truth, &a, &b, 0.95).unwrap();
    assert_eq!((m.only_a, m.only_b, m.exact), (30, 15, false));
    assert!((m.statistic - 4.355555555555555).abs() < 1e-12);
    assert!((m.p_value - 0.036888425707049914).abs() < 1e-10, "{m:?}");
    assert!(m.significant);
    assert_eq!(mcnemar(&[0, 1], &[0, 1], &[0, 1], 0.95).unwrap().p_value, 1.0);
    let err = mcnemar(&[0, 1], &[0], &[0, 1], 0.95).unwrap_err();
    assert!(
        matches!(&err, SelectBestError::Mismatch { what: "predictions", message } if message == "1 and 2 predictions for 2 rows"),
        "{err:?}"
    );
}

/// Accuracy of two fixed prediction vectors on a set of rows.
fn accuracies<'a>(truth: &'a [usize], a: &'a [usize], b: &'a [usize]) -> impl Fn(&[usize]) -> Option<(f64, f64)> + 'a {
    move |rows: &[usize]| {
        let share = |p: &[usize]| rows.iter().filter(|&&r| p[r] == truth[r]).count() as f64 / rows.len() as f64;
        Some((share(a), share(b)))
    }
}

#[test]
fn the_paired_bootstrap_is_seeded_and_brackets_the_difference() {
    let truth: Vec<usize> = (0..400).map(|i| i % 2).collect();
    let a = truth.clone();
    let b: Vec<usize> = truth.iter().enumerate().map(|(i, &t)| if i % 5 == 0 { 1 - t } else { t }).collect();
    let metric = accuracies(&truth, &a, &b);
    let run = |seed| {
        paired_bootstrap(
            "accuracy",
            400,
            &CompareParams { bootstrap_samples: 500, confidence: 0.95 },
            Seed(seed),
            &metric,
        )
        .unwrap()
    };
    let x = run(42);
    assert_eq!(x, run(42), "the same seed gives the same interval");
    assert!((x.difference - 0.2).abs() < 1e-12);
    assert!(x.low < 0.2 && 0.2 < x.high && x.low > 0.1, "{x:?}");
    assert_eq!(x.samples, 500);
    assert!(x.p_value < 0.01);
    assert_ne!(x.low, run(7).low, "another seed draws other resamples");
    // The same predictions: no difference at all.
    let same = accuracies(&truth, &a, &a);
    let s =
        paired_bootstrap("accuracy", 400, &CompareParams { bootstrap_samples: 100, confidence: 0.9 }, Seed(1), &same)
            .unwrap();
    assert_eq!((s.difference, s.low, s.high, s.p_value), (0.0, 0.0, 0.0, 1.0));
    let undefined = |_: &[usize]| None;
    let err =
        paired_bootstrap("roc_auc", 10, &CompareParams { bootstrap_samples: 10, confidence: 0.9 }, Seed(1), &undefined)
            .unwrap_err();
    assert!(
        matches!(&err, SelectBestError::Mismatch { what: "metric", message } if message == "`roc_auc` is undefined on the 10 rows"),
        "{err:?}"
    );
    let err =
        paired_bootstrap("accuracy", 400, &CompareParams { bootstrap_samples: 0, confidence: 0.9 }, Seed(1), &metric)
            .unwrap_err();
    assert!(matches!(&err, SelectBestError::Invalid { key, .. } if key == "bootstrap.samples"), "{err:?}");
}

/// Two classifiers' outputs on `n` rows with heavy ties: probabilities on a grid of `levels`
/// steps, so many rows share a score.
struct Classified {
    truth: Vec<usize>,
    classes: usize,
    predicted: [Vec<usize>; 2],
    proba: [Vec<Vec<f64>>; 2],
}

impl Classified {
    fn new(n: usize, classes: usize, levels: u64, seed: u64) -> Classified {
        let mut draws = Seed(seed).draws();
        let truth: Vec<usize> = (0..n).map(|_| draws.below(classes as u64) as usize).collect();
        let mut model = |skill: u64| {
            let proba: Vec<Vec<f64>> = truth
                .iter()
                .map(|&t| {
                    let raw: Vec<f64> = (0..classes)
                        .map(|c| (draws.below(levels) + if c == t { draws.below(skill + 1) } else { 0 }) as f64 + 0.5)
                        .collect();
                    let sum: f64 = raw.iter().sum();
                    raw.iter().map(|v| v / sum).collect()
                })
                .collect();
            let predicted = proba
                .iter()
                .map(|p: &Vec<f64>| (0..classes).fold(0, |best, c| if p[c] > p[best] { c } else { best }))
                .collect();
            (predicted, proba)
        };
        let (pa, qa) = model(levels);
        let (pb, qb) = model(levels / 2);
        Classified { truth, classes, predicted: [pa, pb], proba: [qa, qb] }
    }

    fn outputs(&self) -> PairedOutputs<'_> {
        let model = |m: usize| ClassifierOutputs { predicted: &self.predicted[m], proba: Some(&self.proba[m]) };
        PairedOutputs::Classes { truth: &self.truth, classes: self.classes, a: model(0), b: model(1) }
    }

    /// Model `m`'s metric on the materialised rows, by step 14, as the training run computed it.
    fn on_rows(&self, m: usize, metric: Metric, rows: &[usize]) -> Option<f64> {
        let t: Vec<usize> = rows.iter().map(|&r| self.truth[r]).collect();
        let p: Vec<usize> = rows.iter().map(|&r| self.predicted[m][r]).collect();
        let proba: Vec<Vec<f64>> = rows.iter().map(|&r| self.proba[m][r].clone()).collect();
        metric.of_classification(&step14_evaluate::classification(&t, &p, Some(&proba), self.classes).ok()?)
    }
}

/// Two regressors' predictions on `n` rows, the truth on a coarse grid (ties).
struct Regressed {
    truth: Vec<f64>,
    predicted: [Vec<f64>; 2],
}

impl Regressed {
    fn new(n: usize, seed: u64) -> Regressed {
        let mut draws = Seed(seed).draws();
        let truth: Vec<f64> = (0..n).map(|_| draws.below(20) as f64 / 4.0 - 1.0).collect();
        let mut model = |noise: f64| truth.iter().map(|y| y + noise * (draws.unit() - 0.5)).collect();
        Regressed { predicted: [model(0.5), model(2.0)], truth }
    }

    fn outputs(&self) -> PairedOutputs<'_> {
        PairedOutputs::Values { truth: &self.truth, a: &self.predicted[0], b: &self.predicted[1] }
    }

    fn on_rows(&self, m: usize, metric: Metric, rows: &[usize]) -> Option<f64> {
        let t: Vec<f64> = rows.iter().map(|&r| self.truth[r]).collect();
        let p: Vec<f64> = rows.iter().map(|&r| self.predicted[m][r]).collect();
        metric.of_regression(&step14_evaluate::regression(&t, &p).ok()?)
    }
}

const CLASSIFICATION: [Metric; 9] = [
    Metric::Accuracy,
    Metric::BalancedAccuracy,
    Metric::Precision,
    Metric::Recall,
    Metric::F1,
    Metric::F1Macro,
    Metric::F1Weighted,
    Metric::RocAuc,
    Metric::LogLoss,
];
const REGRESSION: [Metric; 5] = [Metric::Mae, Metric::Mse, Metric::Rmse, Metric::R2, Metric::Mape];

/// Model `m`'s metric on the rows drawn, by step 14.
type OnRows<'a> = dyn Fn(usize, Metric, &[usize]) -> Option<f64> + 'a;

/// Asserts that resamples `0..resamples` scored from their counts per row give step 14's metric
/// on the rows drawn, for both models, to 1e-12 (relative above 1).
fn assert_counts_match_rows(
    outputs: &PairedOutputs<'_>,
    metrics: &[Metric],
    seed: Seed,
    resamples: usize,
    on_rows: &OnRows<'_>,
) -> usize {
    let n = match outputs {
        PairedOutputs::Classes { truth, .. } => truth.len(),
        PairedOutputs::Values { truth, .. } => truth.len(),
    };
    let draws = crate::bootstrap::Resamples::new(seed, n);
    let (mut rows, mut counts) = (vec![0usize; n], vec![0u32; n]);
    let mut defined = 0;
    for i in 0..resamples {
        draws.rows(i, &mut rows);
        draws.counts(i, &mut counts);
        let mut histogram = vec![0u32; n];
        rows.iter().for_each(|&r| histogram[r] += 1);
        assert_eq!(counts, histogram, "resample {i}: the counts are the rows drawn");
        for &metric in metrics {
            let pair = crate::weighted::Weighted::pair(metric, outputs);
            for m in [0, 1] {
                let weighted = pair.as_ref().map(|(a, b)| if m == 0 { a.on(&counts) } else { b.on(&counts) });
                let expected = on_rows(m, metric, &rows);
                match (weighted.flatten(), expected) {
                    (Some(x), Some(y)) => {
                        assert!(
                            (x - y).abs() <= 1e-12 * y.abs().max(1.0),
                            "{metric:?}, model {m}, resample {i}: {x} != {y}"
                        );
                        defined += 1;
                    }
                    (None, None) => {}
                    other => panic!("{metric:?}, model {m}, resample {i}: {other:?}"),
                }
            }
        }
    }
    defined
}

#[test]
fn a_resample_scored_from_its_counts_equals_the_metric_on_its_drawn_rows() {
    for (classes, levels) in [(2, 3), (2, 1000), (4, 2), (5, 10)] {
        let data = Classified::new(300, classes, levels, 11 + classes as u64);
        let on_rows = |m: usize, metric: Metric, rows: &[usize]| data.on_rows(m, metric, rows);
        let defined = assert_counts_match_rows(&data.outputs(), &CLASSIFICATION, Seed(3), 8, &on_rows);
        // Binary metrics are undefined with more classes; everything else must have been compared.
        let expected = if classes == 2 { 9 } else { 6 };
        assert_eq!(defined, 8 * 2 * expected, "{classes} classes");
    }
    let data = Regressed::new(300, 5);
    let on_rows = |m: usize, metric: Metric, rows: &[usize]| data.on_rows(m, metric, rows);
    assert_eq!(assert_counts_match_rows(&data.outputs(), &REGRESSION, Seed(4), 8, &on_rows), 8 * 2 * 5);
}

#[test]
fn a_resample_draws_the_rows_seed_draws_gives() {
    for n in [1usize, 2, 3, 1000, 100_003] {
        let resamples = crate::bootstrap::Resamples::new(Seed(5), n);
        let mut rows = vec![0usize; n];
        resamples.rows(4, &mut rows);
        let mut draws = Seed(5).derive("paired_bootstrap").derive("resample 4").draws();
        let expected: Vec<usize> = (0..n).map(|_| draws.below(n as u64) as usize).collect();
        assert_eq!(rows, expected, "{n} rows");
    }
}

#[test]
fn roc_auc_from_counts_is_undefined_on_a_resample_of_one_class_and_counts_ties_half() {
    // Eight rows, two scores: every positive ties with two negatives at 0.5, or sits alone at 0.9.
    let truth = [1, 0, 0, 1, 0, 0, 1, 0];
    let score = [0.9, 0.5, 0.5, 0.5, 0.1, 0.5, 0.9, 0.1];
    let proba: Vec<Vec<f64>> = score.iter().map(|&s| vec![1.0 - s, s]).collect();
    let predicted: Vec<usize> = score.iter().map(|&s| usize::from(s > 0.5)).collect();
    let model = ClassifierOutputs { predicted: &predicted, proba: Some(&proba) };
    let outputs = PairedOutputs::Classes { truth: &truth, classes: 2, a: model, b: model };
    let (auc, _) = crate::weighted::Weighted::pair(Metric::RocAuc, &outputs).unwrap();
    // All rows once: scikit-learn's roc_auc_score gives 0.9 (each tie with a negative counts half).
    assert_eq!(auc.on(&[1; 8]), Some(0.9));
    // Row 3 (positive at 0.5) four times, rows 1 and 4 (negatives at 0.5 and 0.1) twice each:
    // pairs ranked right 4 * 2 (with 0.1), tied 4 * 2 (with 0.5): (8 + 4) / 16 = 0.75.
    assert_eq!(auc.on(&[0, 2, 0, 4, 2, 0, 0, 0]), Some(0.75));
    // Negatives only.
    assert_eq!(auc.on(&[0, 2, 1, 0, 1, 0, 0, 4]), None);
}

#[test]
fn the_interval_is_the_same_on_any_number_of_threads() {
    let data = Classified::new(2_000, 3, 5, 21);
    let params = CompareParams { bootstrap_samples: 75, confidence: 0.9 };
    for metric in [Metric::RocAuc, Metric::F1Macro, Metric::LogLoss] {
        let one = crate::bootstrap::paired_bootstrap_on(metric, &data.outputs(), &params, Seed(8), 1).unwrap();
        for workers in [2, 3, 8] {
            let many =
                crate::bootstrap::paired_bootstrap_on(metric, &data.outputs(), &params, Seed(8), workers).unwrap();
            assert_eq!(one, many, "{metric:?} on {workers} threads");
        }
        assert_eq!(one, paired_bootstrap_metric(metric, &data.outputs(), &params, Seed(8)).unwrap());
        assert_eq!(one.samples, 75);
    }
}

#[test]
fn the_bootstrap_of_a_metric_matches_the_bootstrap_of_a_function_of_the_rows() {
    let params = CompareParams { bootstrap_samples: 60, confidence: 0.95 };
    let data = Classified::new(500, 2, 4, 9);
    for metric in CLASSIFICATION {
        let both = |rows: &[usize]| Some((data.on_rows(0, metric, rows)?, data.on_rows(1, metric, rows)?));
        let slow = paired_bootstrap(&metric.name(), 500, &params, Seed(13), &both).unwrap();
        let fast = paired_bootstrap_metric(metric, &data.outputs(), &params, Seed(13)).unwrap();
        // ROC-AUC and the confusion metrics are computed operation for operation as step 14 does.
        if metric == Metric::LogLoss {
            assert!((slow.low - fast.low).abs() < 1e-12 && (slow.high - fast.high).abs() < 1e-12, "{slow:?} {fast:?}");
            assert_eq!((slow.difference, slow.samples, slow.p_value), (fast.difference, fast.samples, fast.p_value));
        } else {
            assert_eq!(slow, fast, "{metric:?}");
        }
    }
    let data = Regressed::new(500, 2);
    for metric in REGRESSION {
        let both = |rows: &[usize]| Some((data.on_rows(0, metric, rows)?, data.on_rows(1, metric, rows)?));
        let slow = paired_bootstrap(&metric.name(), 500, &params, Seed(13), &both).unwrap();
        let fast = paired_bootstrap_metric(metric, &data.outputs(), &params, Seed(13)).unwrap();
        assert_eq!((slow.difference, slow.samples, slow.p_value), (fast.difference, fast.samples, fast.p_value));
        // MAPE of a truth of 0 is huge (|e| / ε): the tolerance is relative.
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-12 * y.abs().max(1.0);
        assert!(close(slow.low, fast.low) && close(slow.high, fast.high), "{slow:?} {fast:?}");
    }
}

#[test]
fn the_bootstrap_of_a_metric_refuses_what_it_cannot_compute() {
    let data = Classified::new(50, 2, 3, 1);
    let params = CompareParams { bootstrap_samples: 10, confidence: 0.9 };
    let run =
        |metric, outputs: &PairedOutputs<'_>| paired_bootstrap_metric(metric, outputs, &params, Seed(1)).unwrap_err();
    let undefined = |err: &SelectBestError, name: &str| matches!(err, SelectBestError::Mismatch { what: "metric", message } if message == &format!("`{name}` is undefined on the 50 rows"));
    let err = run(Metric::Rmse, &data.outputs());
    assert!(undefined(&err, "rmse"), "{err:?}");
    let no_proba = ClassifierOutputs { predicted: &data.predicted[0], proba: None };
    let without = PairedOutputs::Classes { truth: &data.truth, classes: 2, a: no_proba, b: no_proba };
    let err = run(Metric::RocAuc, &without);
    assert!(undefined(&err, "roc_auc"), "{err:?}");
    // Accuracy needs no probabilities.
    assert!(paired_bootstrap_metric(Metric::Accuracy, &without, &params, Seed(1)).is_ok());
    // A label outside the classes is step 14's to reject.
    let mut bad = data.truth.clone();
    bad[7] = 2;
    let model = ClassifierOutputs { predicted: &data.predicted[0], proba: Some(&data.proba[0]) };
    let err = run(Metric::Accuracy, &PairedOutputs::Classes { truth: &bad, classes: 2, a: model, b: model });
    assert!(undefined(&err, "accuracy"), "{err:?}");
    let short = ClassifierOutputs { predicted: &data.predicted[0][..49], proba: None };
    let err = run(Metric::Accuracy, &PairedOutputs::Classes { truth: &data.truth, classes: 2, a: short, b: no_proba });
    assert!(
        matches!(&err, SelectBestError::Mismatch { what: "predictions", message } if message == "49 and 50 predictions for 50 rows"),
        "{err:?}"
    );
    let one_proba = ClassifierOutputs { predicted: &data.predicted[0], proba: Some(&data.proba[0][..3]) };
    let err = run(Metric::LogLoss, &PairedOutputs::Classes { truth: &data.truth, classes: 2, a: model, b: one_proba });
    assert!(matches!(&err, SelectBestError::Mismatch { what: "probabilities", .. }), "{err:?}");
    let values = [1.0, 2.0, f64::NAN];
    let err = run(Metric::Mae, &PairedOutputs::Values { truth: &[1.0, 2.0, 3.0], a: &values, b: &values });
    assert!(matches!(&err, SelectBestError::Mismatch { what: "metric", .. }), "{err:?}");
    let zero = CompareParams { bootstrap_samples: 0, confidence: 0.9 };
    let err = paired_bootstrap_metric(Metric::Accuracy, &data.outputs(), &zero, Seed(1)).unwrap_err();
    assert!(matches!(&err, SelectBestError::Invalid { key, .. } if key == "bootstrap.samples"), "{err:?}");
}

proptest! {
    #[test]
    fn any_resample_scored_from_counts_equals_step_14_on_the_rows(
        rows in proptest::collection::vec((0usize..3, 0u8..4, 0u8..4, 0u8..4), 1..60),
        picks in proptest::collection::vec(0usize..1000, 60),
    ) {
        // Three classes, scores on a grid of four values per class: ties everywhere.
        let truth: Vec<usize> = rows.iter().map(|r| r.0).collect();
        let proba: Vec<Vec<f64>> =
            rows.iter().map(|r| [r.1, r.2, r.3].iter().map(|&v| f64::from(v) / 3.0).collect()).collect();
        let predicted: Vec<usize> = rows.iter().map(|r| usize::from(r.1) % 3).collect();
        // A resample as large as the data.
        let drawn: Vec<usize> = picks[..rows.len()].iter().map(|p| p % rows.len()).collect();
        let mut counts = vec![0u32; rows.len()];
        drawn.iter().for_each(|&r| counts[r] += 1);
        for classes in [2, 3] {
            // The binary task reads the first two classes.
            let t: Vec<usize> = truth.iter().map(|&t| t % classes).collect();
            let p: Vec<usize> = predicted.iter().map(|&p| p % classes).collect();
            let q: Vec<Vec<f64>> = proba.iter().map(|r| r[..classes].to_vec()).collect();
            let model = ClassifierOutputs { predicted: &p, proba: Some(&q) };
            let outputs = PairedOutputs::Classes { truth: &t, classes, a: model, b: model };
            let tt: Vec<usize> = drawn.iter().map(|&r| t[r]).collect();
            let pp: Vec<usize> = drawn.iter().map(|&r| p[r]).collect();
            let qq: Vec<Vec<f64>> = drawn.iter().map(|&r| q[r].clone()).collect();
            let m = step14_evaluate::classification(&tt, &pp, Some(&qq), classes).unwrap();
            for metric in CLASSIFICATION {
                let weighted = crate::weighted::Weighted::pair(metric, &outputs).and_then(|(a, _)| a.on(&counts));
                let expected = metric.of_classification(&m);
                prop_assert_eq!(weighted.is_some(), expected.is_some(), "{:?}", metric);
                if let (Some(x), Some(y)) = (weighted, expected) {
                    prop_assert!((x - y).abs() <= 1e-12, "{:?}: {} != {}", metric, x, y);
                }
            }
        }
        let y: Vec<f64> = rows.iter().map(|r| f64::from(r.1) - 1.5).collect();
        let yhat: Vec<f64> = rows.iter().map(|r| f64::from(r.2) * 0.7 - 1.0).collect();
        let outputs = PairedOutputs::Values { truth: &y, a: &yhat, b: &yhat };
        let yy: Vec<f64> = drawn.iter().map(|&r| y[r]).collect();
        let pp: Vec<f64> = drawn.iter().map(|&r| yhat[r]).collect();
        let m = step14_evaluate::regression(&yy, &pp).unwrap();
        for metric in REGRESSION {
            let weighted = crate::weighted::Weighted::pair(metric, &outputs).and_then(|(a, _)| a.on(&counts));
            let (x, want) = (weighted.unwrap(), metric.of_regression(&m).unwrap());
            prop_assert!((x - want).abs() <= 1e-12 * want.abs().max(1.0), "{:?}: {} != {}", metric, x, want);
        }
    }
}

proptest! {
    #[test]
    fn the_winner_is_eligible_and_within_the_tie_of_the_best(
        values in proptest::collection::vec((0.0f64..1.0, 0.001f64..100.0, 1.0f64..1e6), 1..12),
        w_metric in 0.1f64..10.0,
        w_time in 0.0f64..10.0,
        max_fit in 0.001f64..100.0,
    ) {
        let entries: Vec<Entry> = values
            .iter()
            .enumerate()
            .map(|(i, &(auc, fit, size))| entry(&format!("m{i}"), &[("roc_auc", auc)], fit, size))
            .collect();
        let p = SelectParams {
            weights: BTreeMap::from([("roc_auc".to_string(), w_metric), ("fit_seconds".to_string(), w_time)]),
            constraints: Constraints { max_fit_seconds: Some(max_fit), ..Constraints::default() },
            tie_tolerance: 0.01,
            ..SelectParams::default()
        };
        let s = select(&entries, &p, Metric::RocAuc).unwrap();
        let eligible: Vec<&Ranked> = s.ranked.iter().filter(|r| r.violations.is_empty()).collect();
        prop_assert_eq!(s.ranked.len(), entries.len());
        prop_assert!(eligible.iter().all(|r| r.score.is_some_and(|v| (-1e-12..=1.0 + 1e-12).contains(&v))));
        match &s.winner {
            None => prop_assert!(eligible.is_empty()),
            Some(w) => {
                let best = eligible.iter().filter_map(|r| r.score).fold(f64::NEG_INFINITY, f64::max);
                let winner = &s.ranked[0];
                prop_assert_eq!(&winner.name, w);
                prop_assert!(winner.violations.is_empty());
                prop_assert!(best - winner.score.unwrap_or(0.0) <= 0.01 + 1e-12);
            }
        }
    }
}
