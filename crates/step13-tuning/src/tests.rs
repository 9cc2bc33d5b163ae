//! Tests of the tuning step: fold invariants as properties, spaces against scikit-learn's sizes,
//! bad spaces named.

use mlops_core::Seed;
use proptest::prelude::*;
use step11_candidates::{LogisticParams, RidgeParams};

use crate::*;

fn space(json: &str) -> Space {
    serde_json::from_str(json).unwrap()
}

#[test]
fn grids_and_random_searches() {
    let s = space(
        r#"{"model": "random_forest_classifier", "params": {"n_estimators": [50, 100], "max_depth": [4, 8, 12]}}"#,
    );
    let grid = s.grid().unwrap();
    assert_eq!(grid.len(), 6);
    assert!(grid.iter().all(|m| m.name() == "random_forest_classifier"));
    let r = space(r#"{"model": "logistic_regression", "params": {"c": {"low": 0.001, "high": 100, "log": true}}}"#);
    let a = r.random(20, Seed(1)).unwrap();
    assert_eq!(a, r.random(20, Seed(1)).unwrap());
    assert_ne!(a, r.random(20, Seed(2)).unwrap());
    for m in &a {
        let ModelSpec::LogisticRegression(LogisticParams { c, .. }) = m else { panic!() };
        assert!((0.001..=100.0).contains(c));
    }
    assert_eq!(space(r#"{"model": "linear"}"#).grid().unwrap(), vec![ModelSpec::Linear]);
}

#[test]
fn bad_spaces_name_the_parameter() {
    let err = space(r#"{"model": "logistic_regression", "params": {"c": [1, -1]}}"#).grid().unwrap_err();
    assert_eq!(
        err,
        TuneError::Candidate {
            model: "logistic_regression".into(),
            message: "logistic_regression.c: -1 must be a positive number".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "search space of `logistic_regression`: logistic_regression.c: -1 must be a positive number"
    );
    let err = space(r#"{"model": "ridge", "params": {"alpah": [1]}}"#).grid().unwrap_err();
    assert!(
        matches!(&err, TuneError::Candidate { model, message } if model == "ridge" && message.contains("unknown field `alpah`")),
        "{err:?}"
    );
    let err = space(r#"{"model": "ridge", "params": {"alpha": {"low": 1, "high": 2}}}"#).grid().unwrap_err();
    assert!(matches!(&err, TuneError::Invalid { key, .. } if key == "params.alpha"), "{err:?}");
    assert!(err.to_string().starts_with("params.alpha: a grid search needs a list"), "{err}");
    let err = Cv::StratifiedKFold { k: 3 }.folds(5, Some(&[0, 0, 0, 1, 1]), Seed(1)).unwrap_err();
    assert_eq!(err, TuneError::SmallClass { class: 1, rows: 2, folds: 3 });
    let err = Cv::KFold { k: 1, shuffle: false }.folds(10, None, Seed(1)).unwrap_err();
    assert!(
        matches!(&err, TuneError::Invalid { key, message } if key == "cv.k" && message.contains("k >= 2")),
        "{err:?}"
    );
    let err = Cv::TimeSeries { k: 3 }.folds(3, None, Seed(1)).unwrap_err();
    assert!(
        matches!(&err, TuneError::Invalid { key, message } if key == "cv.k" && message.contains("at least 4 rows (there are 3)")),
        "{err:?}"
    );
}

#[test]
fn time_series_folds_match_scikit_learn() {
    // TimeSeriesSplit(n_splits=3) on 10 rows: train [0..4) test [4, 5]; [0..6) [6, 7]; [0..8) [8, 9].
    let folds = Cv::TimeSeries { k: 3 }.folds(10, None, Seed(1)).unwrap();
    assert_eq!(
        folds.iter().map(|f| (f.train.len(), f.validation.clone())).collect::<Vec<_>>(),
        vec![(4, vec![4, 5]), (6, vec![6, 7]), (8, vec![8, 9])]
    );
}

fn cv() -> impl Strategy<Value = Cv> {
    prop_oneof![
        (2usize..6, any::<bool>()).prop_map(|(k, shuffle)| Cv::KFold { k, shuffle }),
        (2usize..6).prop_map(|k| Cv::StratifiedKFold { k }),
        (2usize..6).prop_map(|k| Cv::TimeSeries { k }),
    ]
}

proptest! {
    #[test]
    fn no_row_is_both_training_and_validation(scheme in cv(), n in 15usize..120, seed in 0u64..50) {
        // At least five rows per class, so that five stratified folds are always possible.
        let classes: Vec<usize> = (0..n).map(|i| i % 3).collect();
        let folds = scheme.folds(n, Some(&classes), Seed(seed)).unwrap();
        let mut validated = vec![0usize; n];
        for f in &folds {
            prop_assert!(f.train.iter().all(|t| f.validation.binary_search(t).is_err()));
            f.validation.iter().for_each(|&v| validated[v] += 1);
            if let Cv::TimeSeries { .. } = scheme {
                prop_assert!(f.train.iter().max() < f.validation.iter().min());
            } else {
                prop_assert_eq!(f.train.len() + f.validation.len(), n);
            }
        }
        if !matches!(scheme, Cv::TimeSeries { .. }) {
            prop_assert!(validated.iter().all(|&c| c == 1));
            let sizes: Vec<usize> = folds.iter().map(|f| f.validation.len()).collect();
            prop_assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{:?}", sizes);
        }
        if let Cv::StratifiedKFold { .. } = scheme {
            // Every class is spread over the folds within one row of even.
            for c in 0..3 {
                let per: Vec<usize> = folds.iter().map(|f| f.validation.iter().filter(|&&v| classes[v] == c).count()).collect();
                prop_assert!(per.iter().max().unwrap() - per.iter().min().unwrap() <= 1, "class {}: {:?}", c, per);
            }
        }
        prop_assert_eq!(scheme.folds(n, Some(&classes), Seed(seed)).unwrap(), folds);
    }
}

fn params(yaml: &str) -> TuneParams {
    serde_json::from_str(yaml).unwrap()
}

/// Scores a ridge by how close its alpha is to 1, fails lasso on fold 1.
struct Toy;
impl Objective for Toy {
    fn score(&self, spec: &ModelSpec, fold: usize) -> std::result::Result<(f64, f64), String> {
        match spec {
            ModelSpec::Ridge(RidgeParams { alpha }) => Ok((-(alpha - 1.0).abs() + fold as f64 * 0.01, 0.001)),
            ModelSpec::Lasso(_) if fold == 1 => Err("diverged".into()),
            _ => Ok((-5.0, 0.001)),
        }
    }
}

#[test]
fn tuning_records_every_trial_as_a_child_run_and_picks_the_best() {
    let p = params(
        r#"{"candidates": [{"model": "ridge", "params": {"alpha": [0.1, 1.0, 10.0]}}, {"model": "lasso"}, {"model": "linear"}]}"#,
    );
    let specs = p.candidates(false, 100, Seed(42)).unwrap();
    assert_eq!(specs.len(), 5);
    let dir = tempfile::tempdir().unwrap();
    let store = step12_training::Store::open(&dir.path().join("runs.db")).unwrap();
    let parent = store.start_run(&step12_training::RunInfo { experiment: "toy".into(), ..Default::default() }).unwrap();
    let info =
        step12_training::RunInfo { experiment: "toy".into(), parent: Some(parent.clone()), ..Default::default() };
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let tuned = tune(&store, &info, &specs, 3, &Toy, ("r2", true), &|_, total| {
        assert_eq!(total, 15);
        calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(calls.into_inner(), 15);
    let best = tuned.best().unwrap();
    assert_eq!(tuned.trials[best].spec, ModelSpec::Ridge(RidgeParams { alpha: 1.0 }));
    assert!((tuned.trials[best].mean - 0.01).abs() < 1e-12);
    assert!((tuned.trials[best].std - (0.0002f64 / 3.0).sqrt()).abs() < 1e-12);
    let lasso = &tuned.trials[3];
    assert_eq!(lasso.error.as_deref(), Some("fold 1: diverged"));
    // Best per family: ridge (alpha 1), then linear; the failed lasso has none.
    let families: Vec<&str> = tuned.best_per_family().iter().map(|&i| tuned.trials[i].model.as_str()).collect();
    assert_eq!(families, ["ridge", "linear"]);
    let runs = store.runs(Some("toy")).unwrap();
    let children: Vec<_> = runs.iter().filter(|r| r.info.parent.as_deref() == Some(parent.as_str())).collect();
    assert_eq!(children.len(), 5);
    let failed = children.iter().find(|r| r.id == lasso.run_id).unwrap();
    assert_eq!(failed.status, step12_training::RunStatus::Failed);
    let ridge = children.iter().find(|r| r.id == tuned.trials[best].run_id).unwrap();
    assert_eq!(ridge.params["alpha"], "1.0");
    assert_eq!(ridge.history["cv_r2"].len(), 3);
    assert_eq!(ridge.tags["kind"], "trial");
}

#[test]
fn candidates_are_checked_against_the_task_and_the_rows() {
    let p = params(r#"{"candidates": [{"model": "linear"}, {"model": "gaussian_nb"}]}"#);
    let e = p.candidates(false, 100, Seed(42)).unwrap_err();
    assert!(
        matches!(&e, TuneError::Invalid { key, message } if key == "candidates[1].model" && message.contains("classifier")),
        "{e:?}"
    );
    let p = params(r#"{"candidates": [{"model": "knn_classifier", "params": {"k": [3, 500]}}]}"#);
    let e = p.candidates(true, 100, Seed(42)).unwrap_err();
    assert!(
        matches!(&e, TuneError::Candidate { model, message }
            if model == "knn_classifier" && message.contains("knn_classifier.k") && message.contains("100 training rows")),
        "{e:?}"
    );
    let p = params(r#"{"search": {"random": {"n": 0}}, "candidates": [{"model": "linear"}]}"#);
    let e = p.candidates(false, 100, Seed(42)).unwrap_err();
    assert!(matches!(&e, TuneError::Invalid { key, .. } if key == "search.random.n"), "{e:?}");
    // Random draws from lists do not repeat a candidate.
    let p =
        params(r#"{"search": {"random": {"n": 10}}, "candidates": [{"model": "ridge", "params": {"alpha": [1, 2]}}]}"#);
    assert_eq!(p.candidates(false, 100, Seed(42)).unwrap().len(), 2);
    // No candidates: the workflow's suggestion by size.
    let names = |rows| -> Vec<&str> {
        TuneParams::default().candidates(true, rows, Seed(42)).unwrap().iter().map(ModelSpec::name).collect()
    };
    assert_eq!(names(300), ["logistic_regression", "gaussian_nb"]);
    assert_eq!(names(5_000), ["random_forest_classifier", "gradient_boosting_classifier"]);
    assert_eq!(names(50_000), ["gradient_boosting_classifier"]);
    assert_eq!(TuneParams::default().cv_for(true), Cv::StratifiedKFold { k: 5 });
}
