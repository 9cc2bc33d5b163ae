//! Tests of the candidates step: each family against scikit-learn 1.8 on 50 rows of iris (every
//! third row of `load_iris()`), probabilities, serde round trips, and bad input.

use ndarray::Array2;
use proptest::prelude::*;

use crate::*;

/// Sepal length, sepal width, petal length, petal width, class.
const IRIS: [[f64; 5]; 50] = [
    [5.1, 3.5, 1.4, 0.2, 0.0],
    [4.6, 3.1, 1.5, 0.2, 0.0],
    [4.6, 3.4, 1.4, 0.3, 0.0],
    [4.9, 3.1, 1.5, 0.1, 0.0],
    [4.8, 3.0, 1.4, 0.1, 0.0],
    [5.7, 4.4, 1.5, 0.4, 0.0],
    [5.7, 3.8, 1.7, 0.3, 0.0],
    [5.1, 3.7, 1.5, 0.4, 0.0],
    [4.8, 3.4, 1.9, 0.2, 0.0],
    [5.2, 3.5, 1.5, 0.2, 0.0],
    [4.8, 3.1, 1.6, 0.2, 0.0],
    [5.5, 4.2, 1.4, 0.2, 0.0],
    [5.5, 3.5, 1.3, 0.2, 0.0],
    [5.1, 3.4, 1.5, 0.2, 0.0],
    [4.4, 3.2, 1.3, 0.2, 0.0],
    [4.8, 3.0, 1.4, 0.3, 0.0],
    [5.3, 3.7, 1.5, 0.2, 0.0],
    [6.4, 3.2, 4.5, 1.5, 1.0],
    [6.5, 2.8, 4.6, 1.5, 1.0],
    [4.9, 2.4, 3.3, 1.0, 1.0],
    [5.0, 2.0, 3.5, 1.0, 1.0],
    [6.1, 2.9, 4.7, 1.4, 1.0],
    [5.6, 3.0, 4.5, 1.5, 1.0],
    [5.6, 2.5, 3.9, 1.1, 1.0],
    [6.3, 2.5, 4.9, 1.5, 1.0],
    [6.6, 3.0, 4.4, 1.4, 1.0],
    [6.0, 2.9, 4.5, 1.5, 1.0],
    [5.5, 2.4, 3.7, 1.0, 1.0],
    [5.4, 3.0, 4.5, 1.5, 1.0],
    [6.3, 2.3, 4.4, 1.3, 1.0],
    [5.5, 2.6, 4.4, 1.2, 1.0],
    [5.0, 2.3, 3.3, 1.0, 1.0],
    [5.7, 2.9, 4.2, 1.3, 1.0],
    [5.7, 2.8, 4.1, 1.3, 1.0],
    [7.1, 3.0, 5.9, 2.1, 2.0],
    [7.6, 3.0, 6.6, 2.1, 2.0],
    [6.7, 2.5, 5.8, 1.8, 2.0],
    [6.4, 2.7, 5.3, 1.9, 2.0],
    [5.8, 2.8, 5.1, 2.4, 2.0],
    [7.7, 3.8, 6.7, 2.2, 2.0],
    [6.9, 3.2, 5.7, 2.3, 2.0],
    [6.3, 2.7, 4.9, 1.8, 2.0],
    [6.2, 2.8, 4.8, 1.8, 2.0],
    [7.2, 3.0, 5.8, 1.6, 2.0],
    [6.4, 2.8, 5.6, 2.2, 2.0],
    [7.7, 3.0, 6.1, 2.3, 2.0],
    [6.0, 3.0, 4.8, 1.8, 2.0],
    [6.9, 3.1, 5.1, 2.3, 2.0],
    [6.7, 3.3, 5.7, 2.5, 2.0],
    [6.5, 3.0, 5.2, 2.0, 2.0],
];

fn iris() -> (Array2<f64>, Vec<usize>) {
    let x = Array2::from_shape_fn((50, 4), |(i, j)| IRIS[i][j]);
    (x, IRIS.iter().map(|r| r[4] as usize).collect())
}

fn names(d: usize) -> Vec<String> {
    (0..d).map(|j| format!("f{j}")).collect()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

#[test]
fn logistic_regression_matches_scikit_learn() {
    let (x, y) = iris();
    let spec = ModelSpec::LogisticRegression { c: 1.0, max_iter: 1000 };
    let m = fit(&spec, &x, &Target::Classes { y: &y, classes: 3 }, &names(4)).unwrap();
    let Model::Logistic { coef, intercept, .. } = &m else { panic!() };
    let want = [
        [-0.3556414101825559, 0.6201044560850559, -1.76559275522426, -0.7327726300796188],
        [-0.2260011299944056, -0.636242991905867, 0.15022362552363208, -0.6014730472774805],
        [0.5816425401769548, 0.01613853582081023, 1.6153691297006285, 1.3342456773570988],
    ];
    for (got, want) in coef.iter().flatten().zip(want.iter().flatten()) {
        assert!(close(*got, *want, 1e-4), "{coef:?}");
    }
    for (got, want) in intercept.iter().zip([7.330280375058874, 4.9944610351997385, -12.324741410257795]) {
        assert!(close(*got, want, 1e-4), "{intercept:?}");
    }
    let p = m.predict_proba(&Array2::from_shape_fn((2, 4), |(i, j)| x[[i, j]])).unwrap().unwrap();
    assert!(close(p[0][0], 0.9665363543809168, 1e-5) && close(p[1][1], 0.06098665089321662, 1e-4), "{p:?}");

    // Two classes: one coefficient row, a sigmoid (C = 0.5).
    let yb: Vec<usize> = y.iter().map(|&c| usize::from(c == 2)).collect();
    let b = fit(
        &ModelSpec::LogisticRegression { c: 0.5, max_iter: 1000 },
        &x,
        &Target::Classes { y: &yb, classes: 2 },
        &names(4),
    )
    .unwrap();
    let Model::Logistic { coef, intercept, .. } = &b else { panic!() };
    for (got, want) in
        coef[0].iter().zip([0.6196716072792833, 0.12962434686063826, 1.310575674198755, 1.027913395130698])
    {
        assert!(close(*got, want, 1e-4), "{coef:?}");
    }
    assert!(close(intercept[0], -12.409862227839543, 1e-4));
}

#[test]
fn naive_bayes_and_knn_match_scikit_learn() {
    let (x, y) = iris();
    let rows = |idx: &[usize]| Array2::from_shape_fn((idx.len(), 4), |(i, j)| IRIS[idx[i]][j]);
    let nb = fit(&ModelSpec::GaussianNb { var_smoothing: 1e-9 }, &x, &Target::Classes { y: &y, classes: 3 }, &names(4))
        .unwrap();
    let p = nb.predict_proba(&rows(&[0, 20, 40])).unwrap().unwrap();
    assert!(close(p[0][0], 1.0, 1e-12) && close(p[0][1], 1.6217586151852775e-17, 1e-6));
    assert!(close(p[1][1], 0.9999999992460911, 1e-9) && close(p[1][2], 7.539093567379174e-10, 1e-6));
    let knn = fit(&ModelSpec::KnnClassifier { k: 5 }, &x, &Target::Classes { y: &y, classes: 3 }, &names(4)).unwrap();
    let p = knn.predict_proba(&rows(&[0, 20, 40, 25])).unwrap().unwrap();
    assert_eq!(p, vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0], vec![0.0, 0.0, 1.0], vec![0.0, 1.0, 0.0]]);
    assert_eq!(knn.predict(&rows(&[20])).unwrap(), vec![1.0]);
}

#[test]
fn linear_models_match_scikit_learn() {
    let (x, _) = iris();
    let xr = Array2::from_shape_fn((50, 3), |(i, j)| x[[i, j]]);
    let y: Vec<f64> = x.column(3).to_vec();
    let coef = |spec: ModelSpec| match fit(&spec, &xr, &Target::Values(&y), &names(3)).unwrap() {
        Model::Linear { coef, intercept } => (coef, intercept),
        other => panic!("{other:?}"),
    };
    let (ols, _) = coef(ModelSpec::Linear);
    for (g, w) in ols.iter().zip([-0.14933611582488507, 0.20302862143044037, 0.5154781553907879]) {
        assert!(close(*g, w, 1e-9), "{ols:?}");
    }
    let (r, b) = coef(ModelSpec::Ridge { alpha: 1.0 });
    for (g, w) in r.iter().zip([-0.0662384218390787, 0.1243327777842152, 0.4680977973357489]) {
        assert!(close(*g, w, 1e-9), "{r:?}");
    }
    assert!(close(b, -0.5509555300908964, 1e-9));
    let (l, b) = coef(ModelSpec::Lasso { alpha: 0.1, max_iter: 1000 });
    assert!(l[0] == 0.0 && l[1] == 0.0 && close(l[2], 0.39582667134971355, 1e-4), "{l:?}");
    assert!(close(b, -0.29089191073553544, 1e-4));
    let (e, b) = coef(ModelSpec::ElasticNet { alpha: 0.1, l1_ratio: 0.5, max_iter: 1000 });
    assert!(e[0] == 0.0 && e[1] == 0.0 && close(e[2], 0.40556466753316417, 1e-4), "{e:?}");
    assert!(close(b, -0.32707830455323794, 1e-4));
}

#[test]
fn bad_input_names_the_model_and_parameter_or_column() {
    let (x, y) = iris();
    let classes = Target::Classes { y: &y, classes: 3 };
    let err = fit(&ModelSpec::LogisticRegression { c: -1.0, max_iter: 100 }, &x, &classes, &names(4)).unwrap_err();
    assert_eq!(err.to_string(), "logistic_regression.c: -1 must be a positive number");
    let err = fit(&ModelSpec::KnnClassifier { k: 51 }, &x, &classes, &names(4)).unwrap_err();
    assert!(err.to_string().starts_with("knn_classifier.k: 51 must be between 1 and the 50"), "{err}");
    let err = fit(
        &ModelSpec::ElasticNet { alpha: 1.0, l1_ratio: 2.0, max_iter: 10 },
        &x,
        &Target::Values(&[0.0; 50]),
        &names(4),
    )
    .unwrap_err();
    assert!(err.to_string().contains("elastic_net.l1_ratio"), "{err}");
    let mut holes = x.clone();
    holes[[7, 2]] = f64::NAN;
    let err = fit(&ModelSpec::GaussianNb { var_smoothing: 1e-9 }, &holes, &classes, &names(4)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "gaussian_nb: feature `f2` has a NaN value in row 7; impute or drop it before training"
    );
    let one = vec![0usize; 50];
    let err =
        fit(&ModelSpec::GaussianNb { var_smoothing: 1e-9 }, &x, &Target::Classes { y: &one, classes: 3 }, &names(4))
            .unwrap_err();
    assert!(err.to_string().contains("only one class"), "{err}");
    let err = fit(&ModelSpec::Linear, &x, &classes, &names(4)).unwrap_err();
    assert!(err.to_string().contains("needs numbers"), "{err}");
    let yaml: ModelSpec = serde_json::from_str(r#"{"ridge": {"alpha": 10}}"#).unwrap();
    assert_eq!(yaml, ModelSpec::Ridge { alpha: 10.0 });
    assert!(serde_json::from_str::<ModelSpec>(r#"{"ridge": {"alpah": 10}}"#).is_err());
}

fn classifiers() -> Vec<ModelSpec> {
    vec![
        ModelSpec::LogisticRegression { c: 1.0, max_iter: 100 },
        ModelSpec::GaussianNb { var_smoothing: 1e-9 },
        ModelSpec::KnnClassifier { k: 3 },
        ModelSpec::DecisionTreeClassifier(TreeParams::default()),
        ModelSpec::RandomForestClassifier(ForestParams { n_estimators: 5, ..ForestParams::default() }),
        ModelSpec::GradientBoostingClassifier(BoostParams {
            max_iter: 5,
            min_samples_leaf: 2,
            ..BoostParams::default()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    #[test]
    fn probabilities_sum_to_one_and_models_round_trip(
        cells in proptest::collection::vec(-50.0f64..50.0, 60),
        labels in proptest::collection::vec(0usize..3, 20),
    ) {
        prop_assume!(labels.iter().collect::<std::collections::BTreeSet<_>>().len() >= 2);
        let x = Array2::from_shape_vec((20, 3), cells).unwrap();
        for spec in classifiers() {
            let m = fit(&spec, &x, &Target::Classes { y: &labels, classes: 3 }, &names(3)).unwrap();
            let p = m.predict_proba(&x).unwrap().unwrap();
            for row in &p {
                prop_assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{}: {:?}", spec.name(), row);
            }
            let back: Model = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
            prop_assert_eq!(back.predict(&x).unwrap(), m.predict(&x).unwrap());
            prop_assert_eq!(back.predict_proba(&x).unwrap(), Some(p.clone()));
            let blob = Model::from_bytes(&m.to_bytes().unwrap()).unwrap();
            prop_assert_eq!(blob.predict_proba(&x).unwrap(), Some(p));
        }
        let y: Vec<f64> = labels.iter().map(|&l| l as f64 * 1.5).collect();
        for spec in [ModelSpec::Linear, ModelSpec::Ridge { alpha: 1.0 }, ModelSpec::Lasso { alpha: 0.1, max_iter: 100 }, ModelSpec::KnnRegressor { k: 3 }, ModelSpec::RandomForestRegressor(ForestParams { n_estimators: 5, ..ForestParams::default() })] {
            let m = fit(&spec, &x, &Target::Values(&y), &names(3)).unwrap();
            let back: Model = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
            prop_assert_eq!(back.predict(&x).unwrap(), m.predict(&x).unwrap());
            let blob = Model::from_bytes(&m.to_bytes().unwrap()).unwrap();
            prop_assert_eq!(blob.predict(&x).unwrap(), m.predict(&x).unwrap());
        }
    }

    #[test]
    fn cut_blobs_are_errors_and_damaged_ones_never_panic(cut in 0usize..2000, flip in any::<u8>()) {
        let (x, y) = iris();
        let m = fit(&ModelSpec::GaussianNb { var_smoothing: 1e-9 }, &x, &Target::Classes { y: &y, classes: 3 }, &names(4)).unwrap();
        let bytes = m.to_bytes().unwrap();
        let at = cut % bytes.len();
        let err = Model::from_bytes(&bytes[..at]).unwrap_err();
        prop_assert!(err.to_string().contains("not a model blob"));
        let mut damaged = bytes.clone();
        damaged[at] ^= flip;
        // A flipped byte may still decode to some model; it must never panic.
        let _ = Model::from_bytes(&damaged);
    }
}

#[test]
fn trees_and_forests_split_like_scikit_learn() {
    let (x, y) = iris();
    let classes = Target::Classes { y: &y, classes: 3 };
    let depth2 = TreeParams { max_depth: Some(2), ..TreeParams::default() };
    let tree = fit(&ModelSpec::DecisionTreeClassifier(depth2.clone()), &x, &classes, &names(4)).unwrap();
    // scikit-learn's depth-2 tree separates these 50 rows perfectly (petal width <= 0.70, then
    // <= 1.55; petal length <= 2.45 ties with the first split).
    let predicted = tree.predict(&x).unwrap();
    assert!(predicted.iter().zip(&y).all(|(p, t)| *p as usize == *t));
    let imp = tree.feature_importances().unwrap();
    assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-12 && imp[0] == 0.0 && imp[1] == 0.0, "{imp:?}");

    // Regression on petal width from the other three: the same splits (petal length <= 3.80,
    // <= 2.60, <= 5.00) and leaf means as scikit-learn.
    let xr = Array2::from_shape_fn((50, 3), |(i, j)| x[[i, j]]);
    let width: Vec<f64> = x.column(3).to_vec();
    let reg = fit(&ModelSpec::DecisionTreeRegressor(depth2), &xr, &Target::Values(&width), &names(3)).unwrap();
    let Model::Forest { trees, .. } = &reg else { panic!() };
    let Node::Split { feature, threshold, .. } = &trees[0].nodes[0] else { panic!() };
    assert_eq!((*feature, *threshold), (2, 3.8));
    let p = reg.predict(&Array2::from_shape_fn((1, 3), |(_, j)| xr[[0, j]])).unwrap();
    assert!((p[0] - 0.2294117647058824).abs() < 1e-12, "{p:?}");

    let forest = ModelSpec::RandomForestClassifier(ForestParams { n_estimators: 30, ..ForestParams::default() });
    let rf = fit(&forest, &x, &classes, &names(4)).unwrap();
    let again = fit(&forest, &x, &classes, &names(4)).unwrap();
    assert_eq!(rf, again, "the same seed grows the same forest");
    let accuracy = rf.predict(&x).unwrap().iter().zip(&y).filter(|(p, t)| **p as usize == **t).count();
    assert!(accuracy >= 49, "{accuracy}");
    for row in rf.predict_proba(&x).unwrap().unwrap() {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
    let err = fit(
        &ModelSpec::RandomForestClassifier(ForestParams { n_estimators: 0, ..ForestParams::default() }),
        &x,
        &classes,
        &names(4),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "random_forest_classifier.n_estimators: must be at least 1 tree");
    let spec: ModelSpec =
        serde_json::from_str(r#"{"random_forest_regressor": {"n_estimators": 10, "max_depth": 12}}"#).unwrap();
    assert!(matches!(
        spec,
        ModelSpec::RandomForestRegressor(ForestParams { n_estimators: 10, max_depth: Some(12), .. })
    ));
}

#[test]
fn gradient_boosting_tracks_scikit_learns_histogram_boosting() {
    let (x, y) = iris();
    let rows = |m: &Array2<f64>, idx: &[usize]| Array2::from_shape_fn((idx.len(), m.ncols()), |(i, j)| m[[idx[i], j]]);
    let xr = Array2::from_shape_fn((50, 3), |(i, j)| x[[i, j]]);
    let width: Vec<f64> = x.column(3).to_vec();
    let spec = |leaf| BoostParams { max_iter: 10, min_samples_leaf: leaf, ..BoostParams::default() };
    // HistGradientBoostingRegressor(max_iter=10, min_samples_leaf=20, max_depth=6) on the same rows.
    let reg = fit(&ModelSpec::GradientBoostingRegressor(spec(20)), &xr, &Target::Values(&width), &names(3)).unwrap();
    let p = reg.predict(&rows(&xr, &[0, 20, 40])).unwrap();
    // Same bins, same gains, same leaf values: equal to rounding.
    for (got, want) in p.iter().zip([0.6720233459339285, 0.6720233459339285, 1.6070539019377197]) {
        assert!((got - want).abs() < 1e-6, "{p:?}");
    }
    // HistGradientBoostingClassifier(max_iter=10, min_samples_leaf=10, max_depth=6).
    let clf =
        fit(&ModelSpec::GradientBoostingClassifier(spec(10)), &x, &Target::Classes { y: &y, classes: 3 }, &names(4))
            .unwrap();
    let p = clf.predict_proba(&rows(&x, &[0, 20, 40])).unwrap().unwrap();
    let want = [
        [0.8988440178294588, 0.0517, 0.0494],
        [0.0542, 0.8937740689522558, 0.0520],
        [0.0508, 0.0553, 0.893938495176892],
    ];
    for (row, w) in p.iter().zip(want) {
        assert!(row.iter().zip(w).all(|(a, b)| (a - b).abs() < 0.02), "{p:?}");
    }
    let yb: Vec<usize> = y.iter().map(|&c| usize::from(c == 2)).collect();
    let bin =
        fit(&ModelSpec::GradientBoostingClassifier(spec(10)), &x, &Target::Classes { y: &yb, classes: 2 }, &names(4))
            .unwrap();
    let p = bin.predict_proba(&rows(&x, &[0, 40])).unwrap().unwrap();
    assert!((p[0][1] - 0.1161467575298358).abs() < 0.02 && (p[1][1] - 0.7610609883333148).abs() < 0.02, "{p:?}");
    let imp = clf.feature_importances().unwrap();
    assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    let err = fit(
        &ModelSpec::GradientBoostingClassifier(BoostParams { learning_rate: 0.0, ..BoostParams::default() }),
        &x,
        &Target::Classes { y: &y, classes: 3 },
        &names(4),
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("gradient_boosting_classifier.learning_rate"), "{err}");
}
