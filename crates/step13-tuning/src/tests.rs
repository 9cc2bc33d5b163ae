//! Tests of the tuning step: fold invariants as properties, spaces against scikit-learn's sizes,
//! bad spaces named.

use mlops_core::Seed;
use proptest::prelude::*;

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
        let ModelSpec::LogisticRegression { c, .. } = m else { panic!() };
        assert!((0.001..=100.0).contains(c));
    }
    assert_eq!(space(r#"{"model": "linear"}"#).grid().unwrap(), vec![ModelSpec::Linear]);
}

#[test]
fn bad_spaces_name_the_parameter() {
    let err = space(r#"{"model": "logistic_regression", "params": {"c": [1, -1]}}"#).grid().unwrap_err();
    assert_eq!(
        err.to_string(),
        "search space of `logistic_regression`: logistic_regression.c: -1 must be a positive number"
    );
    let err = space(r#"{"model": "ridge", "params": {"alpah": [1]}}"#).grid().unwrap_err();
    assert!(err.to_string().contains("alpah"), "{err}");
    let err = space(r#"{"model": "ridge", "params": {"alpha": {"low": 1, "high": 2}}}"#).grid().unwrap_err();
    assert!(err.to_string().starts_with("params.alpha: a grid search needs a list"), "{err}");
    let err = Cv::StratifiedKFold { k: 3 }.folds(5, Some(&[0, 0, 0, 1, 1]), Seed(1)).unwrap_err();
    assert_eq!(err, TuneError::SmallClass { class: 1, rows: 2, folds: 3 });
    assert!(Cv::KFold { k: 1, shuffle: false }.folds(10, None, Seed(1)).is_err());
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
