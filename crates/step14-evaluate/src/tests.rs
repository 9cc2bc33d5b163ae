//! Tests of the evaluate step: every metric against the value scikit-learn 1.8 computes for the
//! same inputs, edge cases, bad input, and properties.

use mlops_core::TaskKind;
use proptest::prelude::*;

use crate::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

fn multiclass() -> (Vec<usize>, Vec<usize>, Vec<Vec<f64>>) {
    let truth = vec![0, 1, 2, 2, 1, 0, 2, 1, 1, 0, 2, 2];
    let predicted = vec![0, 2, 2, 2, 1, 0, 1, 1, 0, 0, 2, 1];
    let proba = [
        [0.8, 0.1, 0.1],
        [0.2, 0.3, 0.5],
        [0.1, 0.2, 0.7],
        [0.1, 0.1, 0.8],
        [0.2, 0.6, 0.2],
        [0.7, 0.2, 0.1],
        [0.2, 0.5, 0.3],
        [0.1, 0.8, 0.1],
        [0.5, 0.4, 0.1],
        [0.6, 0.3, 0.1],
        [0.1, 0.2, 0.7],
        [0.2, 0.45, 0.35],
    ];
    (truth, predicted, proba.iter().map(|r| r.to_vec()).collect())
}

#[test]
fn multiclass_metrics_match_scikit_learn() {
    let (t, p, proba) = multiclass();
    let m = classification(&t, &p, Some(&proba), 3).unwrap();
    assert!(close(m.accuracy, 0.6666666666666666));
    assert!(close(m.balanced_accuracy, 0.7000000000000001));
    assert!(close(m.precision.macro_avg, 0.6666666666666666));
    assert!(close(m.recall.macro_avg, 0.7000000000000001));
    assert!(close(m.f1.macro_avg, 0.6746031746031745));
    assert!(close(m.precision.weighted, 0.6666666666666666));
    assert!(close(m.recall.weighted, 0.6666666666666666));
    assert!(close(m.f1.weighted, 0.6587301587301587));
    assert!(close(m.roc_auc.unwrap(), 0.934077380952381));
    assert!(close(m.log_loss.unwrap(), 0.594597099859626));
    assert_eq!(m.confusion, vec![vec![3, 0, 0], vec![1, 2, 1], vec![0, 2, 3]]);
    assert_eq!(m.precision.binary, None);
    assert_eq!(m.report.iter().map(|r| r.support).collect::<Vec<_>>(), vec![3, 4, 5]);
}

fn binary() -> (Vec<bool>, Vec<f64>) {
    let truth = [0, 0, 1, 1, 0, 1, 1, 0, 1, 1].iter().map(|&t| t == 1).collect();
    (truth, vec![0.1, 0.4, 0.35, 0.8, 0.4, 0.9, 0.6, 0.2, 0.4, 0.7])
}

#[test]
fn binary_metrics_and_curves_match_scikit_learn() {
    let (t, s) = binary();
    let truth: Vec<usize> = t.iter().map(|&b| usize::from(b)).collect();
    let predicted: Vec<usize> = s.iter().map(|&x| usize::from(x >= 0.5)).collect();
    let proba: Vec<Vec<f64>> = s.iter().map(|&x| vec![1.0 - x, x]).collect();
    let m = classification(&truth, &predicted, Some(&proba), 2).unwrap();
    assert_eq!((m.precision.binary, m.recall.binary), (Some(1.0), Some(0.6666666666666666)));
    assert!(close(m.f1.binary.unwrap(), 0.8));
    assert!(close(m.roc_auc.unwrap(), 0.875));
    assert!(close(m.log_loss.unwrap(), 0.451227280555361));
    assert!(close(average_precision(&t, &s).unwrap(), 0.9107142857142857));

    let roc = roc_curve(&t, &s).unwrap();
    assert_eq!(roc.fpr, vec![0.0, 0.0, 0.0, 0.5, 0.5, 1.0]);
    let want_tpr = [0.0, 0.16666666666666666, 0.6666666666666666, 0.8333333333333334, 1.0, 1.0];
    assert!(roc.tpr.iter().zip(want_tpr).all(|(a, b)| close(*a, b)), "{:?}", roc.tpr);
    assert_eq!(roc.thresholds, vec![f64::INFINITY, 0.9, 0.6, 0.4, 0.35, 0.1]);

    let pr = pr_curve(&t, &s).unwrap();
    let want_p = [0.6, 0.6666666666666666, 0.75, 0.7142857142857143, 1.0, 1.0, 1.0, 1.0, 1.0];
    let want_r =
        [1.0, 1.0, 1.0, 0.8333333333333334, 0.6666666666666666, 0.5, 0.3333333333333333, 0.16666666666666666, 0.0];
    assert!(pr.precision.iter().zip(want_p).all(|(a, b)| close(*a, b)), "{:?}", pr.precision);
    assert!(pr.recall.iter().zip(want_r).all(|(a, b)| close(*a, b)), "{:?}", pr.recall);
    assert_eq!(pr.thresholds, vec![0.1, 0.2, 0.35, 0.4, 0.6, 0.7, 0.8, 0.9]);

    let cal = calibration_curve(&t, &s, 4).unwrap();
    assert_eq!(cal.prob_true, vec![0.0, 0.5, 1.0, 1.0]);
    let want_pred = [0.15000000000000002, 0.38749999999999996, 0.6499999999999999, 0.8500000000000001];
    assert!(cal.prob_pred.iter().zip(want_pred).all(|(a, b)| close(*a, b)), "{:?}", cal.prob_pred);
}

#[test]
fn regression_metrics_match_scikit_learn() {
    let m = regression(&[3.0, -0.5, 2.0, 7.0, 4.2], &[2.5, 0.0, 2.1, 7.8, 3.9]).unwrap();
    assert!(close(m.mae, 0.44000000000000006));
    assert!(close(m.mse, 0.24799999999999994));
    assert!(close(m.rmse, 0.49799598391954925));
    assert!(close(m.r2, 0.9594665271966527));
    assert!(close(m.mape, 0.2804761904761905));
    assert_eq!(m.residuals.len(), 5);
    // scikit-learn's force_finite: a constant truth.
    assert_eq!(regression(&[2.0, 2.0], &[2.0, 2.0]).unwrap().r2, 1.0);
    assert_eq!(regression(&[2.0, 2.0], &[2.0, 3.0]).unwrap().r2, 0.0);
}

#[test]
fn edge_cases_and_bad_input_are_named() {
    // A class never predicted: its precision counts 0 (zero_division=0), as scikit-learn warns.
    let m = classification(&[0, 1, 2], &[0, 0, 0], None, 3).unwrap();
    assert_eq!(m.report[1].precision, 0.0);
    assert!(close(m.precision.macro_avg, 1.0 / 9.0));
    assert_eq!(roc_auc(&[true, true], &[0.2, 0.9]).unwrap(), None);
    assert!(matches!(
        classification(&[0, 1], &[0], None, 2),
        Err(EvalError::Length { what: "predictions", truth: 2, predicted: 1 })
    ));
    assert_eq!(classification(&[], &[], None, 2).unwrap_err(), EvalError::Empty);
    assert!(matches!(classification(&[0, 3], &[0, 1], None, 2), Err(EvalError::BadLabel { label: 3, classes: 2 })));
    let err = classification(&[0, 1], &[0, 1], Some(&[vec![0.5, 0.5], vec![0.5]]), 2).unwrap_err();
    assert_eq!(err, EvalError::BadInput { what: "probabilities", message: "row 1 has 1 values for 2 classes".into() });
    let err = regression(&[1.0, f64::NAN], &[1.0, 2.0]).unwrap_err();
    assert_eq!(err, EvalError::BadInput { what: "truth", message: "row 1 is not a finite number".into() });
    let err = Metric::R2.check(TaskKind::MulticlassClassification).unwrap_err();
    assert!(matches!(&err, EvalError::WrongTask { metric, .. } if metric == "r2"), "{err:?}");
    assert!(err.to_string().contains("metric `r2` does not fit a multiclass classification task"), "{err}");
    assert!(err.to_string().contains("accuracy") && !err.to_string().contains("f1,"), "{err}");
    assert!(Metric::F1.check(TaskKind::BinaryClassification).is_ok());
    assert!(!Metric::LogLoss.greater_is_better() && Metric::RocAuc.greater_is_better());
    let parsed: Metric = serde_json::from_str("\"balanced_accuracy\"").unwrap();
    assert_eq!(parsed, Metric::BalancedAccuracy);
}

proptest! {
    #[test]
    fn auc_is_the_probability_a_positive_outranks_a_negative(pairs in proptest::collection::vec((any::<bool>(), 0u8..20), 2..60)) {
        let truth: Vec<bool> = pairs.iter().map(|p| p.0).collect();
        let scores: Vec<f64> = pairs.iter().map(|p| f64::from(p.1)).collect();
        let auc = roc_auc(&truth, &scores).unwrap();
        let (mut wins, mut total) = (0.0, 0.0);
        for (i, &a) in truth.iter().enumerate() {
            for (j, &b) in truth.iter().enumerate() {
                if a && !b {
                    total += 1.0;
                    wins += if scores[i] > scores[j] { 1.0 } else if scores[i] == scores[j] { 0.5 } else { 0.0 };
                }
            }
        }
        match auc {
            Some(v) => prop_assert!((v - wins / total).abs() < 1e-12),
            None => prop_assert_eq!(total, 0.0),
        }
        let curve = roc_curve(&truth, &scores).unwrap();
        prop_assert!(curve.fpr.windows(2).all(|w| w[0] <= w[1] || w[1].is_nan()));
    }

    #[test]
    fn classification_metrics_stay_in_range(rows in proptest::collection::vec((0usize..4, 0usize..4), 1..50)) {
        let (t, p): (Vec<usize>, Vec<usize>) = rows.into_iter().unzip();
        let m = classification(&t, &p, None, 4).unwrap();
        for v in [m.accuracy, m.balanced_accuracy, m.precision.macro_avg, m.recall.weighted, m.f1.macro_avg, m.f1.weighted] {
            prop_assert!((0.0..=1.0).contains(&v));
        }
        prop_assert_eq!(m.confusion.iter().flatten().sum::<usize>(), t.len());
    }
}

#[test]
fn an_evaluation_holds_every_metric_and_renders_a_self_contained_report() {
    let labels = vec!["<no>".to_string(), "yes".to_string()];
    let truth = [0, 0, 1, 1, 1];
    let proba: Vec<Vec<f64>> = [0.1, 0.6, 0.35, 0.8, 0.9].iter().map(|&p| vec![1.0 - p, p]).collect();
    let e = evaluate(Outputs::Classes { truth: &truth, proba: &proba, labels: &labels, predicted: None }).unwrap();
    let m = e.metrics();
    // sklearn: accuracy_score -> 0.6, roc_auc_score -> 0.8333..., log_loss -> 0.4764...
    assert_eq!(m["accuracy"], 0.6);
    assert!((m["roc_auc"] - 5.0 / 6.0).abs() < 1e-12);
    // An SVM's votes can disagree with its likeliest class: its own labels are scored, the
    // probabilities still rank.
    let votes = [0, 0, 1, 1, 1];
    let voted =
        evaluate(Outputs::Classes { truth: &truth, proba: &proba, labels: &labels, predicted: Some(&votes) }).unwrap();
    assert_eq!(voted.metrics()["accuracy"], 1.0);
    assert_eq!(voted.metrics()["roc_auc"], m["roc_auc"]);
    let short = Outputs::Classes { truth: &truth, proba: &proba, labels: &labels, predicted: Some(&votes[..2]) };
    assert_eq!(
        evaluate(short).unwrap_err(),
        EvalError::BadInput { what: "predicted", message: "2 predictions for 5 rows".into() }
    );
    assert!(m.contains_key("log_loss") && m.contains_key("f1") && !m.contains_key("r2"));
    assert_eq!(e.roc.len(), 1);
    assert_eq!(e.roc[0].class, "yes");
    assert_eq!(e.calibration.as_ref().unwrap().counts.iter().sum::<usize>(), 5);
    let meta = ReportMeta { title: "t".into(), part: "test".into(), ..ReportMeta::default() };
    let html = render_html(&e, &meta, &[("ROC".into(), "<svg></svg>".into())]);
    for (id, _) in SECTIONS {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(html.contains("&lt;no&gt;") && !html.contains("<no>"));
    assert!(!html.contains("<script") && !html.contains("http"));

    let r = evaluate(Outputs::Values { truth: &[1.0, 2.0, 3.0], predicted: &[1.5, 2.0, 2.5] }).unwrap();
    assert_eq!(r.task, mlops_core::TaskKind::Regression);
    assert!((r.metrics()["mae"] - 1.0 / 3.0).abs() < 1e-12);
    assert!(render_html(&r, &meta, &[]).contains("Residuals"));
    let one = vec!["only".to_string()];
    let err =
        evaluate(Outputs::Classes { truth: &[0], proba: &[vec![1.0]], labels: &one, predicted: None }).unwrap_err();
    assert_eq!(err, EvalError::BadInput { what: "labels", message: "needs at least two classes".into() });
}
