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
    let spec = ModelSpec::LogisticRegression(LogisticParams { c: 1.0, max_iter: 1000, tol: 1e-8 });
    let m = fit(&spec, &x, &Labels::Classes { y: y.to_vec(), classes: 3 }, &names(4)).unwrap();
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
        &ModelSpec::LogisticRegression(LogisticParams { c: 0.5, max_iter: 1000, tol: 1e-8 }),
        &x,
        &Labels::Classes { y: yb.to_vec(), classes: 2 },
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
    let nb = fit(
        &ModelSpec::GaussianNb(GaussianNbParams { var_smoothing: 1e-9 }),
        &x,
        &Labels::Classes { y: y.to_vec(), classes: 3 },
        &names(4),
    )
    .unwrap();
    let p = nb.predict_proba(&rows(&[0, 20, 40])).unwrap().unwrap();
    assert!(close(p[0][0], 1.0, 1e-12) && close(p[0][1], 1.6217586151852775e-17, 1e-6));
    assert!(close(p[1][1], 0.9999999992460911, 1e-9) && close(p[1][2], 7.539093567379174e-10, 1e-6));
    let knn = fit(
        &ModelSpec::KnnClassifier(KnnParams { k: 5 }),
        &x,
        &Labels::Classes { y: y.to_vec(), classes: 3 },
        &names(4),
    )
    .unwrap();
    let p = knn.predict_proba(&rows(&[0, 20, 40, 25])).unwrap().unwrap();
    assert_eq!(p, vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0], vec![0.0, 0.0, 1.0], vec![0.0, 1.0, 0.0]]);
    assert_eq!(knn.predict(&rows(&[20])).unwrap(), vec![1.0]);
}

#[test]
fn linear_models_match_scikit_learn() {
    let (x, _) = iris();
    let xr = Array2::from_shape_fn((50, 3), |(i, j)| x[[i, j]]);
    let y: Vec<f64> = x.column(3).to_vec();
    let coef = |spec: ModelSpec| match fit(&spec, &xr, &Labels::Values(y.to_vec()), &names(3)).unwrap() {
        Model::Linear { coef, intercept } => (coef, intercept),
        other => panic!("{other:?}"),
    };
    let (ols, _) = coef(ModelSpec::Linear);
    for (g, w) in ols.iter().zip([-0.14933611582488507, 0.20302862143044037, 0.5154781553907879]) {
        assert!(close(*g, w, 1e-9), "{ols:?}");
    }
    let (r, b) = coef(ModelSpec::Ridge(RidgeParams { alpha: 1.0 }));
    for (g, w) in r.iter().zip([-0.0662384218390787, 0.1243327777842152, 0.4680977973357489]) {
        assert!(close(*g, w, 1e-9), "{r:?}");
    }
    assert!(close(b, -0.5509555300908964, 1e-9));
    let (l, b) = coef(ModelSpec::Lasso(LassoParams { alpha: 0.1, max_iter: 1000 }));
    assert!(l[0] == 0.0 && l[1] == 0.0 && close(l[2], 0.39582667134971355, 1e-4), "{l:?}");
    assert!(close(b, -0.29089191073553544, 1e-4));
    let (e, b) = coef(ModelSpec::ElasticNet(ElasticNetParams { alpha: 0.1, l1_ratio: 0.5, max_iter: 1000 }));
    assert!(e[0] == 0.0 && e[1] == 0.0 && close(e[2], 0.40556466753316417, 1e-4), "{e:?}");
    assert!(close(b, -0.32707830455323794, 1e-4));
}

#[test]
fn bad_input_names_the_model_and_parameter_or_column() {
    let (x, y) = iris();
    let classes = Labels::Classes { y: y.to_vec(), classes: 3 };
    let err = fit(
        &ModelSpec::LogisticRegression(LogisticParams { c: -1.0, max_iter: 100, tol: 1e-4 }),
        &x,
        &classes,
        &names(4),
    )
    .unwrap_err();
    assert_eq!(
        err,
        ModelError::Parameter {
            model: "logistic_regression",
            parameter: "c",
            message: "-1 must be a positive number".into()
        }
    );
    assert_eq!(err.to_string(), "logistic_regression.c: -1 must be a positive number");
    let err = fit(&ModelSpec::KnnClassifier(KnnParams { k: 51 }), &x, &classes, &names(4)).unwrap_err();
    assert!(matches!(&err, ModelError::Parameter { model: "knn_classifier", parameter: "k", .. }), "{err:?}");
    assert!(err.to_string().starts_with("knn_classifier.k: 51 must be between 1 and the 50"), "{err}");
    // Checked before any rows are known (a tuning space), the message names no row count.
    let err = ModelSpec::KnnClassifier(KnnParams { k: 0 }).check(usize::MAX).unwrap_err();
    assert_eq!(err.to_string(), "knn_classifier.k: 0 must be at least 1");
    let err = fit(
        &ModelSpec::ElasticNet(ElasticNetParams { alpha: 1.0, l1_ratio: 2.0, max_iter: 10 }),
        &x,
        &Labels::Values(vec![0.0; 50]),
        &names(4),
    )
    .unwrap_err();
    assert!(matches!(&err, ModelError::Parameter { model: "elastic_net", parameter: "l1_ratio", .. }), "{err:?}");
    assert!(err.to_string().contains("elastic_net.l1_ratio"), "{err}");
    let mut holes = x.clone();
    holes[[7, 2]] = f64::NAN;
    let err =
        fit(&ModelSpec::GaussianNb(GaussianNbParams { var_smoothing: 1e-9 }), &holes, &classes, &names(4)).unwrap_err();
    assert_eq!(err, ModelError::NotFinite { model: "gaussian_nb", column: "f2".into(), what: "NaN", row: 7 });
    assert_eq!(
        err.to_string(),
        "gaussian_nb: feature `f2` has a NaN value in row 7; impute or drop it before training"
    );
    let one = vec![0usize; 50];
    let err = fit(
        &ModelSpec::GaussianNb(GaussianNbParams { var_smoothing: 1e-9 }),
        &x,
        &Labels::Classes { y: one.to_vec(), classes: 3 },
        &names(4),
    )
    .unwrap_err();
    assert!(matches!(&err, ModelError::Data { model: "gaussian_nb", .. }), "{err:?}");
    assert!(err.to_string().contains("only one class"), "{err}");
    let err = fit(&ModelSpec::Linear, &x, &classes, &names(4)).unwrap_err();
    assert!(matches!(&err, ModelError::Data { model: "linear", .. }), "{err:?}");
    assert!(err.to_string().contains("needs numbers"), "{err}");
    let yaml: ModelSpec = serde_json::from_str(r#"{"ridge": {"alpha": 10}}"#).unwrap();
    assert_eq!(yaml, ModelSpec::Ridge(RidgeParams { alpha: 10.0 }));
    // A misspelt hyperparameter is refused by name, with the one that was meant.
    let err = serde_json::from_str::<ModelSpec>(r#"{"ridge": {"alpah": 10}}"#).unwrap_err();
    assert!(err.is_data() && err.to_string().contains("unknown field `alpah`, expected `alpha`"), "{err}");
}

fn classifiers() -> Vec<ModelSpec> {
    vec![
        ModelSpec::LogisticRegression(LogisticParams { c: 1.0, max_iter: 100, tol: 1e-4 }),
        ModelSpec::GaussianNb(GaussianNbParams { var_smoothing: 1e-9 }),
        ModelSpec::KnnClassifier(KnnParams { k: 3 }),
        ModelSpec::DecisionTreeClassifier(TreeParams::default()),
        ModelSpec::RandomForestClassifier(ForestParams { n_estimators: 5, ..ForestParams::default() }),
        ModelSpec::GradientBoostingClassifier(BoostParams {
            max_iter: 5,
            min_samples_leaf: 2,
            ..BoostParams::default()
        }),
        svc(Kernel::Rbf),
        ModelSpec::Svc(SvcParams {
            c: 1.0,
            kernel: Kernel::Poly(Poly { degree: 2, coef0: 1.0 }),
            gamma: Gamma::Value(0.001),
            tol: 1e-3,
            max_iter: 100_000,
            random_state: 7,
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
            let m = fit(&spec, &x, &Labels::Classes { y: labels.to_vec(), classes: 3 }, &names(3)).unwrap();
            let p = m.predict_proba(&x).unwrap().unwrap();
            for row in &p {
                prop_assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{}: {:?}", spec.name(), row);
            }
            let back: Model = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
            prop_assert_eq!(back.predict(&x).unwrap(), m.predict(&x).unwrap());
            prop_assert_eq!(back.predict_proba(&x).unwrap(), Some(p.clone()));
            let blob = Model::from_bytes(&m.to_bytes().unwrap()).unwrap();
            prop_assert_eq!(blob.predict_proba(&x).unwrap(), Some(p.clone()));
            // Both at once give what each gives alone (SVC's votes included).
            let both = m.predict_with_proba(&x).unwrap();
            prop_assert_eq!(both.predicted, m.predict(&x).unwrap(), "{}", spec.name());
            prop_assert_eq!(both.proba, Some(p));
        }
        let y: Vec<f64> = labels.iter().map(|&l| l as f64 * 1.5).collect();
        for spec in [ModelSpec::Linear, ModelSpec::Ridge(RidgeParams { alpha: 1.0 }), ModelSpec::Lasso(LassoParams { alpha: 0.1, max_iter: 100 }), ModelSpec::KnnRegressor(KnnParams { k: 3 }), ModelSpec::RandomForestRegressor(ForestParams { n_estimators: 5, ..ForestParams::default() }), svr(Kernel::Rbf), svr(Kernel::Linear)] {
            let m = fit(&spec, &x, &Labels::Values(y.to_vec()), &names(3)).unwrap();
            let back: Model = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
            prop_assert_eq!(back.predict(&x).unwrap(), m.predict(&x).unwrap());
            let blob = Model::from_bytes(&m.to_bytes().unwrap()).unwrap();
            prop_assert_eq!(blob.predict(&x).unwrap(), m.predict(&x).unwrap());
            let both = m.predict_with_proba(&x).unwrap();
            prop_assert_eq!((both.predicted, both.proba), (m.predict(&x).unwrap(), None));
        }
    }

    #[test]
    fn cut_blobs_are_errors_and_damaged_ones_never_panic(cut in 0usize..2000, flip in any::<u8>()) {
        let (x, y) = iris();
        let m = fit(&ModelSpec::GaussianNb(GaussianNbParams { var_smoothing: 1e-9 }), &x, &Labels::Classes { y: y.to_vec(), classes: 3 }, &names(4)).unwrap();
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
    let classes = Labels::Classes { y: y.to_vec(), classes: 3 };
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
    let reg = fit(&ModelSpec::DecisionTreeRegressor(depth2), &xr, &Labels::Values(width.to_vec()), &names(3)).unwrap();
    let Model::Forest { trees, .. } = &reg else { panic!() };
    let Node::Split { feature, threshold, left, right } = &trees[0].nodes[0] else { panic!() };
    assert_eq!((*feature, *threshold), (2, 3.8));
    // Below the root, thresholds lie halfway between the node's own values on either side, as
    // scikit-learn's do (not at the edges of bins cut over all rows).
    let below: Vec<(usize, f64)> = [*left, *right]
        .iter()
        .filter_map(|&i| match &trees[0].nodes[i] {
            Node::Split { feature, threshold, .. } => Some((*feature, *threshold)),
            Node::Leaf { .. } => None,
        })
        .collect();
    assert!(
        below.len() == 2
            && below.iter().zip([(2, 2.6), (2, 5.0)]).all(|(&(f, t), (wf, wt))| f == wf && (t - wt).abs() < 1e-12),
        "{below:?}"
    );
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
    // HistGradientBoostingRegressor(max_iter=10, min_samples_leaf=20) on the same rows (the same
    // with max_depth=6 or None: the 31-leaf and 20-row limits bind first).
    let reg =
        fit(&ModelSpec::GradientBoostingRegressor(spec(20)), &xr, &Labels::Values(width.to_vec()), &names(3)).unwrap();
    let p = reg.predict(&rows(&xr, &[0, 20, 40])).unwrap();
    // Same bins, same gains, same leaf values: equal to rounding.
    for (got, want) in p.iter().zip([0.6720233459339285, 0.6720233459339285, 1.6070539019377197]) {
        assert!((got - want).abs() < 1e-6, "{p:?}");
    }
    // HistGradientBoostingClassifier(max_iter=10, min_samples_leaf=10), max_depth=6 or None.
    let clf = fit(
        &ModelSpec::GradientBoostingClassifier(spec(10)),
        &x,
        &Labels::Classes { y: y.to_vec(), classes: 3 },
        &names(4),
    )
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
    let bin = fit(
        &ModelSpec::GradientBoostingClassifier(spec(10)),
        &x,
        &Labels::Classes { y: yb.to_vec(), classes: 2 },
        &names(4),
    )
    .unwrap();
    let p = bin.predict_proba(&rows(&x, &[0, 40])).unwrap().unwrap();
    assert!((p[0][1] - 0.1161467575298358).abs() < 0.02 && (p[1][1] - 0.7610609883333148).abs() < 0.02, "{p:?}");
    let imp = clf.feature_importances().unwrap();
    assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    let err = fit(
        &ModelSpec::GradientBoostingClassifier(BoostParams { learning_rate: 0.0, ..BoostParams::default() }),
        &x,
        &Labels::Classes { y: y.to_vec(), classes: 3 },
        &names(4),
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("gradient_boosting_classifier.learning_rate"), "{err}");
}

#[test]
fn tree_thresholds_lie_halfway_between_the_nodes_own_values() {
    // Below the root split on `b`, the node holds `a` in {0, 1, 8, 9} only: scikit-learn splits
    // it at 1/2 + 8/2 = 4.5, not at 1.5, the edge between 1 and 2 over all rows.
    let mut rows = Vec::new();
    for a in [0.0, 1.0, 8.0, 9.0] {
        rows.extend([(a, 0.0, usize::from(a > 4.0)); 2]);
    }
    rows.extend((2..8).map(|a| (f64::from(a), 1.0, 2)));
    let x = Array2::from_shape_fn((rows.len(), 2), |(i, j)| if j == 0 { rows[i].0 } else { rows[i].1 });
    let y: Vec<usize> = rows.iter().map(|r| r.2).collect();
    let tree = fit(
        &ModelSpec::DecisionTreeClassifier(TreeParams::default()),
        &x,
        &Labels::Classes { y: y.to_vec(), classes: 3 },
        &names(2),
    )
    .unwrap();
    let unseen = Array2::from_shape_vec((2, 2), vec![3.0, 0.0, 6.0, 0.0]).unwrap();
    assert_eq!(tree.predict(&unseen).unwrap(), vec![0.0, 1.0]);
}

/// `mix` of tests/reference/boost_iterations.py: a 32-bit hash of row `i` and column `j`.
fn mix(i: u64, j: u64) -> u64 {
    let mask = 0xffff_ffff;
    let mut v = ((i + 1) * 2_654_435_761 + (j + 1) * 40_503) & mask;
    v ^= v >> 15;
    v = (v * 2_246_822_519) & mask;
    v ^ (v >> 13)
}

/// The rows of tests/reference/boost_iterations.py: six features of 200 values each, and the
/// noisy target (two classes: above 10; three: by sevens; or the number itself).
fn hashed_rows(n: usize) -> (Array2<f64>, Vec<f64>) {
    let x = Array2::from_shape_fn((n, 6), |(i, j)| (mix(i as u64, j as u64) % 200) as f64 / 10.0);
    let target = (0..n)
        .map(|i| (x[[i, 0]] - x[[i, 1]] + x[[i, 2]] * x[[i, 3]] / 20.0) + (mix(i as u64, 99) % 1000) as f64 / 100.0)
        .collect();
    (x, target)
}

/// Rounds grown and held-out losses after the first and the last.
fn stopped(model: &Model) -> (usize, f64, f64) {
    match model {
        Model::Boosted { rounds, validation_loss, .. } => (
            rounds.len(),
            validation_loss.first().copied().unwrap_or(f64::NAN),
            validation_loss.last().copied().unwrap_or(f64::NAN),
        ),
        other => panic!("not a boosted model: {other:?}"),
    }
}

#[test]
fn early_stopping_stops_at_scikit_learns_iteration() {
    // scikit-learn 1.9.1 (numpy 2.4.6) with its defaults (`early_stopping="auto"`, on above
    // 10,000 rows; random_state=42) on 12,000 rows; regenerate with
    // `python3 tests/reference/boost_iterations.py`: (n_iter_, held-out loss after the first
    // iteration, after the last).
    let want = [
        ("binary", 73, 0.6356992472070794, 0.23312996180469375),
        ("three_classes", 61, 0.9624866375810351, 0.44244804211853384),
        ("regressor", 70, 41.22211972204327, 4.509028744345685),
    ];
    let (x, target) = hashed_rows(12_000);
    let binary: Vec<usize> = target.iter().map(|&t| usize::from(t > 10.0)).collect();
    let three: Vec<usize> = target.iter().map(|&t| (t / 7.0).floor().clamp(0.0, 2.0) as usize).collect();
    let fits = [
        (ModelSpec::GradientBoostingClassifier(BoostParams::default()), Labels::Classes { y: binary, classes: 2 }),
        (ModelSpec::GradientBoostingClassifier(BoostParams::default()), Labels::Classes { y: three, classes: 3 }),
        (ModelSpec::GradientBoostingRegressor(BoostParams::default()), Labels::Values(target.clone())),
    ];
    for ((name, n_iter, first, last), (spec, labels)) in want.into_iter().zip(fits) {
        let got = stopped(&fit(&spec, &x, &labels, &names(6)).unwrap());
        // The same held-out rows, bins, splits and stopping rule: the same iteration, and the
        // same losses up to the order floating-point sums are taken in.
        assert_eq!(got.0, n_iter, "{name}: {got:?}");
        assert!(close(got.1, first, 1e-9) && close(got.2, last, 1e-9), "{name}: {got:?}");
    }
    // At 10,000 rows `auto` leaves it off, as scikit-learn's `n_samples > 10_000` does.
    let (x, target) = hashed_rows(10_000);
    let spec = ModelSpec::GradientBoostingRegressor(BoostParams::default());
    assert_eq!(stopped(&fit(&spec, &x, &Labels::Values(target), &names(6)).unwrap()).0, 100);
}

#[test]
fn early_stopping_on_refuses_a_class_it_cannot_stratify_and_off_grows_every_round() {
    let (x, mut y) = iris();
    let spec = |early_stopping| {
        ModelSpec::GradientBoostingClassifier(BoostParams {
            max_iter: 20,
            min_samples_leaf: 5,
            early_stopping,
            ..BoostParams::default()
        })
    };
    // One row of class 2: scikit-learn's stratified split raises, and so does the fit.
    y[49] = 2;
    y[34..49].fill(1);
    let target = Labels::Classes { y: y.to_vec(), classes: 3 };
    let err = fit(&spec(EarlyStopping::On), &x, &target, &names(4)).unwrap_err();
    assert!(
        matches!(&err, ModelError::Data { model: "gradient_boosting_classifier", message } if message.contains("class 2 has a single row")),
        "{err}"
    );
    // Configs written before `auto` still read; a wrong word is refused by key.
    let yaml = |text: &str| mlops_core::config::parse_yaml::<ModelSpec>(text, std::path::Path::new("training.yaml"));
    for (word, want) in [("auto", EarlyStopping::Auto), ("true", EarlyStopping::On), ("false", EarlyStopping::Off)] {
        let parsed = yaml(&format!("gradient_boosting_regressor: {{early_stopping: {word}}}")).unwrap();
        let want = BoostParams { early_stopping: want, ..BoostParams::default() };
        assert_eq!(parsed, ModelSpec::GradientBoostingRegressor(want));
    }
    let err = yaml("gradient_boosting_regressor: {early_stopping: sometimes}").unwrap_err().to_string();
    assert!(err.contains("training.yaml") && err.contains("early_stopping"), "{err}");
    // Below 10,000 rows `auto` is off, as `false` is: every round grown, no held-out loss.
    for off in [EarlyStopping::Auto, EarlyStopping::Off] {
        let m = fit(&spec(off), &x, &target, &names(4)).unwrap();
        assert!(
            matches!(&m, Model::Boosted { rounds, validation_loss, .. } if rounds.len() == 20 && validation_loss.is_empty())
        );
    }
}

#[test]
fn quantized_gradients_stay_close_to_exact_boosting_and_repeat_exactly() {
    let (x, y) = iris();
    let yb: Vec<usize> = y.iter().map(|&c| usize::from(c == 2)).collect();
    let spec = |quantized_gradients| {
        ModelSpec::GradientBoostingClassifier(BoostParams {
            max_iter: 30,
            min_samples_leaf: 5,
            quantized_gradients,
            ..BoostParams::default()
        })
    };
    let target = Labels::Classes { y: yb.to_vec(), classes: 2 };
    let exact = fit(&spec(false), &x, &target, &names(4)).unwrap().predict_proba(&x).unwrap().unwrap();
    let quantized = fit(&spec(true), &x, &target, &names(4)).unwrap();
    let q = quantized.predict_proba(&x).unwrap().unwrap();
    // The same rows end up on the same side: labels agree, probabilities within a few hundredths.
    let labels = |p: &[Vec<f64>]| p.iter().map(|r| r[1] > 0.5).collect::<Vec<_>>();
    assert_eq!(labels(&exact), labels(&q));
    assert!(exact.iter().zip(&q).all(|(a, b)| (a[1] - b[1]).abs() < 0.05), "{exact:?} vs {q:?}");
    // The rounding noise comes from the seed: a refit is identical.
    let again = fit(&spec(true), &x, &target, &names(4)).unwrap();
    assert_eq!(again, quantized);
    let parsed: ModelSpec =
        serde_json::from_str(r#"{"gradient_boosting_classifier": {"quantized_gradients": true}}"#).unwrap();
    assert_eq!(
        parsed,
        ModelSpec::GradientBoostingClassifier(BoostParams { quantized_gradients: true, ..BoostParams::default() })
    );
    // A wrong value is refused by key, as a config file's would be.
    let err = mlops_core::config::parse_yaml::<ModelSpec>(
        "gradient_boosting_classifier: {quantized_gradients: sometimes}",
        std::path::Path::new("training.yaml"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("training.yaml") && err.contains("quantized_gradients"), "{err}");
}

/// scikit-learn's defaults: `SVC(C=1.0, gamma='scale', tol=1e-3)` with the given kernel.
fn svc(kernel: Kernel) -> ModelSpec {
    svc_with(1.0, kernel, Gamma::Scale, 1e-3, 10_000_000)
}

fn svc_with(c: f64, kernel: Kernel, gamma: Gamma, tol: f64, max_iter: usize) -> ModelSpec {
    ModelSpec::Svc(SvcParams { c, kernel, gamma, tol, max_iter, random_state: 42 })
}

/// `SVR(C=1.0, epsilon=0.1, gamma='scale', tol=1e-3)` with the given kernel.
fn svr(kernel: Kernel) -> ModelSpec {
    ModelSpec::Svr(SvrParams { c: 1.0, epsilon: 0.1, kernel, gamma: Gamma::Scale, tol: 1e-3, max_iter: 10_000_000 })
}

/// Every machine's decision value on some IRIS rows (LIBSVM's sign: positive for the lower class).
fn decisions(m: &Model, x: &Array2<f64>, idx: &[usize]) -> Vec<Vec<f64>> {
    let rows = Array2::from_shape_fn((idx.len(), x.ncols()), |(i, j)| x[[idx[i], j]]);
    m.svm_view().unwrap().decisions(&rows).unwrap()
}

// The scikit-learn numbers below come from scikit-learn 1.9.1 on `X, y = load_iris(return_X_y=True);
// X, y = X[::3], y[::3]`, for example
// `python3 -c "from sklearn.datasets import load_iris; from sklearn.svm import SVC;
//  X, y = load_iris(return_X_y=True); X, y = X[::3], y[::3];
//  m = SVC(C=1.0, kernel='rbf', gamma='scale', decision_function_shape='ovo').fit(X, y);
//  print(m._gamma, m.n_support_, m.intercept_, m.decision_function(X[[0, 20, 40, 25, 33]]))"`.
// The solver takes LIBSVM's steps (same working sets, shrinking and f32 kernel cache), so the
// machines agree to rounding, not merely to `tol`; 1e-6 leaves room for another libm's `exp`.

#[test]
fn svc_matches_scikit_learns_one_vs_one_machines() {
    let (x, y) = iris();
    let m = fit(&svc(Kernel::Rbf), &x, &Labels::Classes { y: y.to_vec(), classes: 3 }, &names(4)).unwrap();
    let Model::Svm { gamma, support, machines, .. } = &m else { panic!("{m:?}") };
    assert!((gamma - 0.06365243124598552).abs() < 1e-15, "{gamma}");
    // n_support_: the union of the machines' support vectors, by class.
    let per_class =
        (0..3).map(|c| support.iter().filter(|s| IRIS.iter().any(|r| r[..4] == s[..] && r[4] == c as f64)).count());
    assert_eq!(per_class.collect::<Vec<_>>(), vec![4, 14, 11]);
    // intercept_ and decision_function(X[[0, 20, 40, 25, 33]]) for the pairs (0,1), (0,2), (1,2).
    for (m, want) in machines.iter().zip([0.06394458838683213, -0.0057318959564672655, -0.043795883655548096]) {
        assert!((m.intercept - want).abs() < 1e-6, "{machines:?}");
    }
    let want = [
        [1.1653047167546988, 1.1243579801210606, 1.5286570909489756],
        [-0.9998472515272347, -0.10867930183452788, 1.6074827430675078],
        [-0.9622144009790123, -1.1989964129665984, -1.2259214625845676],
        [-1.0336741735998018, -0.7861116766088254, 0.4528304278649904],
        [-1.1004850961420771, -0.5384268375704366, 1.087957586786759],
    ];
    let got = decisions(&m, &x, &[0, 20, 40, 25, 33]);
    for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
        assert!((g - w).abs() < 1e-6, "{got:?}");
    }
    // predict: 48 of 50 right, rows 42 and 46 (class 2) voted into class 1, as scikit-learn.
    let predicted = m.predict(&x).unwrap();
    let wrong: Vec<usize> = (0..50).filter(|&i| predicted[i] as usize != y[i]).collect();
    assert_eq!(wrong, vec![42, 46]);
    assert!(predicted[42] == 1.0 && predicted[46] == 1.0);
    assert_eq!(fit(&svc(Kernel::Rbf), &x, &Labels::Classes { y: y.to_vec(), classes: 3 }, &names(4)).unwrap(), m);
}

/// scikit-learn's `SVC(C=1, kernel='rbf', gamma='scale').decision_function` on the iris rows of
/// classes 1 and 2 (relabelled 0 and 1), in row order.
const BINARY_DECISIONS: [f64; 33] = [
    -0.4079930969602811,
    -0.2910352600533399,
    -1.6811848944845336,
    -1.5753661863607507,
    -0.43387395724290223,
    -0.7096988601547631,
    -1.3482169542609403,
    -0.11576381142824352,
    -0.47920009868083124,
    -0.5715061582352107,
    -1.5084326251617175,
    -0.77045127856082,
    -0.6600447535712243,
    -0.999999940391789,
    -1.6727099846275133,
    -1.0290765342158867,
    -1.0984337213750255,
    1.336423797670697,
    1.697290309063331,
    0.9740357620247492,
    0.5470564918012377,
    0.4668825083325352,
    1.6525384220147106,
    1.2601588379810353,
    0.0942088679865454,
    -0.032327155146332526,
    0.9999999603983254,
    0.9800874911680061,
    1.6030429121605725,
    -0.11092914727811051,
    0.8176065705722202,
    1.2997137609620069,
    0.570868139782974,
];

#[test]
fn binary_svc_decision_values_match_scikit_learn() {
    // Versicolor (0 here) against virginica (1): `SVC().fit(X[y > 0], y[y > 0]).decision_function`,
    // whose sign is LIBSVM's flipped (positive for virginica).
    let (x, y) = iris();
    let keep: Vec<usize> = (0..50).filter(|&i| y[i] > 0).collect();
    let xb = Array2::from_shape_fn((keep.len(), 4), |(i, j)| x[[keep[i], j]]);
    let yb: Vec<usize> = keep.iter().map(|&i| y[i] - 1).collect();
    let m = fit(&svc(Kernel::Rbf), &xb, &Labels::Classes { y: yb.to_vec(), classes: 2 }, &names(4)).unwrap();
    let got = decisions(&m, &xb, &(0..33).collect::<Vec<_>>());
    let worst = got.iter().zip(BINARY_DECISIONS).map(|(g, w)| (g[0] + w).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-6, "largest difference {worst}: {got:?}");
    let Model::Svm { support, machines, .. } = &m else { panic!() };
    // n_support_ [10 10]; intercept_ 0.04926145076751712, LIBSVM's sign flipped.
    assert_eq!(support.len(), 20);
    assert!((machines[0].intercept + 0.04926145076751712).abs() < 1e-6, "{}", machines[0].intercept);
    let p = m.predict_proba(&xb).unwrap().unwrap();
    for (row, f) in p.iter().zip(&got) {
        assert!((row[0] + row[1] - 1.0).abs() < 1e-12);
        // Platt's sigmoid is decreasing in A f: a clearly positive decision value is class 0.
        if f[0] > 0.5 {
            assert!(row[0] > 0.5, "{row:?} at {f:?}");
        }
    }
}

#[test]
fn platt_sigmoid_is_the_regularised_maximum_likelihood_fit() {
    // The binary decision values above with virginica as the positive class. Reference: the
    // minimiser of Platt's objective (targets (N+ + 1)/(N+ + 2) and 1/(N- + 2)) by scipy BFGS
    // with gtol 1e-12; scikit-learn's `_sigmoid_calibration` gives (-2.92704955, -0.11561168).
    let positive: Vec<bool> = (0..33).map(|i| i >= 17).collect();
    let (a, b) = svm::sigmoid_train(&BINARY_DECISIONS, &positive);
    assert!((a - -2.9270495816418487).abs() < 1e-5 && (b - -0.115611631797048).abs() < 1e-5, "{a} {b}");
}

#[test]
fn svc_probabilities_track_scikit_learns_platt_scaling() {
    // `SVC(probability=True, random_state=0).predict_proba`: its 5-fold shuffle is not ours, and
    // across random_state 0..5 scikit-learn's own rows move by up to 0.05, so compare loosely.
    let (x, y) = iris();
    let m = fit(&svc(Kernel::Rbf), &x, &Labels::Classes { y: y.to_vec(), classes: 3 }, &names(4)).unwrap();
    let p = m.predict_proba(&x).unwrap().unwrap();
    for row in &p {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{row:?}");
    }
    let want = [
        [0.9382166255961291, 0.04013495778972277, 0.02164841661414801],
        [0.04421697754112075, 0.9390481565806607, 0.016734865878218708],
        [0.02146763443460724, 0.024050357878216456, 0.9544820076871763],
        [0.033994017830932775, 0.750452297776929, 0.21555368439213804],
        [0.029436233225567852, 0.9274542216375988, 0.04310954513683325],
    ];
    for (i, w) in [0, 20, 40, 25, 33].iter().zip(want) {
        assert!(p[*i].iter().zip(w).all(|(a, b)| (a - b).abs() < 0.06), "row {i}: {:?} vs {w:?}", p[*i]);
    }
    // The most probable class is the true one except on the two borderline rows, where
    // scikit-learn's argmax itself changes with random_state.
    let argmax = |r: &Vec<f64>| (0..3).fold(0, |b, c| if r[c] > r[b] { c } else { b });
    let right = (0..50).filter(|&i| argmax(&p[i]) == y[i]).count();
    assert!(right >= 48, "{right}");
}

#[test]
fn svr_matches_scikit_learn() {
    // Petal width from the other three: `SVR(C=1.0, epsilon=0.1).fit(X[:, :3], X[:, 3])`, 22
    // support vectors, intercept_ 1.2085696214283712.
    let (x, _) = iris();
    let xr = Array2::from_shape_fn((50, 3), |(i, j)| x[[i, j]]);
    let width: Vec<f64> = x.column(3).to_vec();
    let m = fit(&svr(Kernel::Rbf), &xr, &Labels::Values(width.to_vec()), &names(3)).unwrap();
    let Model::Svm { gamma, support, machines, .. } = &m else { panic!() };
    assert!((gamma - 0.12097459065827759).abs() < 1e-15);
    assert_eq!(support.len(), 22);
    assert!((machines[0].intercept - 1.2085696214283712).abs() < 1e-6, "{}", machines[0].intercept);
    let rows = Array2::from_shape_fn((5, 3), |(i, j)| xr[[[0, 20, 40, 25, 33][i], j]]);
    let p = m.predict(&rows).unwrap();
    for (g, w) in p.iter().zip([
        0.1856122022725235,
        1.007252275862733,
        2.1940117729241426,
        1.5277545769133174,
        1.2741059999980484,
    ]) {
        assert!((g - w).abs() < 1e-6, "{p:?}");
    }
    assert_eq!(m.predict_proba(&rows).unwrap(), None);
    assert_eq!(m.feature_importances(), None, "no importances for an rbf kernel");

    // `SVR(kernel='poly', degree=2, coef0=1.0, gamma='auto')`: 27 support vectors.
    let poly = ModelSpec::Svr(SvrParams {
        c: 1.0,
        epsilon: 0.1,
        kernel: Kernel::Poly(Poly { degree: 2, coef0: 1.0 }),
        gamma: Gamma::Auto,
        tol: 1e-3,
        max_iter: 10_000_000,
    });
    let m = fit(&poly, &xr, &Labels::Values(width.to_vec()), &names(3)).unwrap();
    let Model::Svm { support, .. } = &m else { panic!() };
    assert_eq!(support.len(), 27);
    let p = m.predict(&rows).unwrap();
    for (g, w) in p.iter().zip([
        0.23332123280027173,
        0.9189703886963728,
        2.162840322106767,
        1.488220299008212,
        1.3465240571521733,
    ]) {
        assert!((g - w).abs() < 1e-6, "{p:?}");
    }
}

#[test]
fn linear_kernel_svc_matches_scikit_learn() {
    // `SVC(kernel='linear', decision_function_shape='ovo')`: n_support_ [2 6 5]; importances are
    // the shares of Σ_pairs |coef_|.
    let (x, y) = iris();
    let m = fit(&svc(Kernel::Linear), &x, &Labels::Classes { y: y.to_vec(), classes: 3 }, &names(4)).unwrap();
    let want = [
        [1.42659399949423, 1.21573822283615, 8.262211292856362],
        [-1.3822727157427686, -0.13966274076541163, 3.4495827061592816],
        [-3.105265907929571, -1.6546200484776903, -2.3225513135037748],
        [-1.7922453724045901, -0.7783012869908581, 1.3131451662073896],
        [-1.5761787020017408, -0.5157778012752803, 1.9906396041227818],
    ];
    let got = decisions(&m, &x, &[0, 20, 40, 25, 33]);
    for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
        assert!((g - w).abs() < 1e-6 * w.abs().max(1.0), "{got:?}");
    }
    let Model::Svm { support, .. } = &m else { panic!() };
    assert_eq!(support.len(), 13);
    let imp = m.feature_importances().unwrap();
    for (g, w) in imp.iter().zip([0.035599467476742246, 0.11404334478171566, 0.4578145136390246, 0.3925426741025174]) {
        assert!((g - w).abs() < 1e-6, "{imp:?}");
    }
}

#[test]
fn svm_specs_read_naturally_and_bad_ones_are_named() {
    let spec: ModelSpec = serde_json::from_str(r#"{"svc": {"c": 10, "gamma": 0.5, "kernel": "linear"}}"#).unwrap();
    assert_eq!(spec, svc_with(10.0, Kernel::Linear, Gamma::Value(0.5), 1e-3, 10_000_000));
    let spec: ModelSpec = serde_json::from_str(r#"{"svc": {}}"#).unwrap();
    assert_eq!(spec, svc(Kernel::Rbf), "defaults are scikit-learn's");
    let spec: ModelSpec =
        serde_json::from_str(r#"{"svr": {"gamma": "auto", "kernel": {"poly": {"degree": 2}}}}"#).unwrap();
    assert!(matches!(
        spec,
        ModelSpec::Svr(SvrParams {
            gamma: Gamma::Auto,
            kernel: Kernel::Poly(Poly { degree: 2, coef0: 0.0 }),
            epsilon: 0.1,
            ..
        })
    ));
    let json = serde_json::to_string(&svc(Kernel::Rbf)).unwrap();
    assert!(json.contains(r#""gamma":"scale""#) && json.contains(r#""kernel":"rbf""#), "{json}");
    let spec = svc_with(2.0, Kernel::Linear, Gamma::Value(0.5), 1e-4, 50);
    let json = serde_json::to_string(&spec).unwrap();
    assert!(json.contains(r#""gamma":0.5"#), "{json}");
    assert_eq!(serde_json::from_str::<ModelSpec>(&json).unwrap(), spec);
    // Binary formats cannot tell a word from a number: the spec still round-trips through postcard.
    let spec = svc_with(1.0, Kernel::Poly(Poly { degree: 3, coef0: 1.0 }), Gamma::Value(0.25), 1e-3, 10);
    assert_eq!(postcard::from_bytes::<ModelSpec>(&postcard::to_stdvec(&spec).unwrap()).unwrap(), spec);
    let err = serde_json::from_str::<ModelSpec>(r#"{"svc": {"gamma": "wide"}}"#).unwrap_err();
    assert!(err.to_string().contains("`scale`, `auto` or a positive number"), "{err}");
    let err = serde_json::from_str::<ModelSpec>(r#"{"svc": {"cc": 1}}"#).unwrap_err();
    assert!(err.is_data() && err.to_string().contains("unknown field `cc`"), "{err}");

    let (x, y) = iris();
    let classes = Labels::Classes { y: y.to_vec(), classes: 3 };
    let width = Labels::Values(vec![1.0; 50]);
    let error = |spec: ModelSpec, target: &Labels| fit(&spec, &x, target, &names(4)).unwrap_err().to_string();
    assert_eq!(
        error(svc_with(0.0, Kernel::Rbf, Gamma::Scale, 1e-3, 10), &classes),
        "svc.c: 0 must be a positive number"
    );
    assert!(error(svc_with(1.0, Kernel::Rbf, Gamma::Value(-1.0), 1e-3, 10), &classes).starts_with("svc.gamma"));
    assert!(error(svc_with(1.0, Kernel::Rbf, Gamma::Scale, 0.0, 10), &classes).starts_with("svc.tol"));
    assert!(error(svc_with(1.0, Kernel::Rbf, Gamma::Scale, 1e-3, 0), &classes).starts_with("svc.max_iter"));
    assert!(error(svc(Kernel::Poly(Poly { degree: 0, coef0: 0.0 })), &classes).starts_with("svc.degree"));
    assert!(
        error(
            ModelSpec::Svr(SvrParams {
                c: 1.0,
                epsilon: -0.1,
                kernel: Kernel::Rbf,
                gamma: Gamma::Auto,
                tol: 1e-3,
                max_iter: 10
            }),
            &width
        )
        .starts_with("svr.epsilon")
    );
    assert!(
        error(
            ModelSpec::Svr(SvrParams {
                c: f64::NAN,
                epsilon: 0.1,
                kernel: Kernel::Rbf,
                gamma: Gamma::Auto,
                tol: 1e-3,
                max_iter: 10
            }),
            &width
        )
        .starts_with("svr.c")
    );
    assert!(error(svr(Kernel::Rbf), &classes).contains("needs numbers"));
    let mut holes = x.clone();
    holes[[3, 1]] = f64::INFINITY;
    let err = fit(&svc(Kernel::Rbf), &holes, &classes, &names(4)).unwrap_err();
    assert_eq!(err.to_string(), "svc: feature `f1` has a infinite value in row 3; impute or drop it before training");
}

#[test]
fn svm_edge_cases_answer_without_panicking() {
    let (x, y) = iris();
    // A class absent from training gets probability 0 and no votes.
    let two: Vec<usize> = y.iter().map(|&c| if c == 1 { 3 } else { c }).collect();
    let m = fit(&svc(Kernel::Rbf), &x, &Labels::Classes { y: two.to_vec(), classes: 4 }, &names(4)).unwrap();
    let p = m.predict_proba(&x).unwrap().unwrap();
    assert!(p.iter().all(|r| r[1] == 0.0 && (r.iter().sum::<f64>() - 1.0).abs() < 1e-12));
    assert!(m.predict(&x).unwrap().iter().all(|&c| c != 1.0));
    // A flat target leaves no support vectors: SVR predicts its intercept everywhere.
    let flat = fit(&svr(Kernel::Rbf), &x, &Labels::Values(vec![2.0; 50]), &names(4)).unwrap();
    assert!(flat.predict(&x).unwrap().iter().all(|v| (v - 2.0).abs() <= 0.1 + 1e-9));
    // A damaged model is an error at prediction, not a panic.
    let Model::Svm { kernel, gamma, support, mut machines, classes, features } = m else { panic!() };
    machines[0].support.push(support.len());
    machines[0].coef.push(1.0);
    let broken = Model::Svm { kernel, gamma, support, machines, classes, features };
    let damaged = ModelError::Data { model: "svm", message: "a machine refers to a missing support vector".into() };
    assert_eq!(broken.predict(&x).unwrap_err(), damaged);
    assert_eq!(broken.predict_proba(&x).unwrap_err(), damaged);
    assert_eq!(broken.predict(&Array2::zeros((1, 3))).unwrap_err().to_string(), "model: 3 features given, 4 expected");
}
