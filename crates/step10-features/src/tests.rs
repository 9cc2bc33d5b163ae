//! Tests of the features step: each feature against hand-computed or scikit-learn numbers,
//! selection, bad input, and the frame == rows property of every fitted op.

use mlops_core::frame::{Stage, rows_from_frame};
use mlops_core::{Seed, Value};
use polars::prelude::*;
use proptest::prelude::*;

use crate::*;

fn params(yaml: &str) -> FeatureParams {
    mlops_core::config::parse_yaml(yaml, std::path::Path::new("features.yaml")).unwrap()
}

fn sales() -> DataFrame {
    df!(
        "day" => [19797i32, 19798, 19799, 19797, 19798, 19799, 19800, 19800],
        "store" => ["a", "a", "a", "b", "b", "b", "a", "b"],
        "units" => [Some(10.0), Some(12.0), None, Some(3.0), Some(5.0), Some(4.0), Some(11.0), Some(6.0)],
        "price" => [2.0, 2.0, 2.5, 3.0, 3.0, 3.5, 2.5, 3.0],
        "note" => [Some("Great!"), Some("ok then"), None, Some("fine"), Some("late, again"), Some("x"), Some("(promo)"), Some("")],
        "sold_out" => ["no", "no", "yes", "no", "yes", "yes", "no", "yes"],
    )
    .unwrap()
    .lazy()
    .with_column(col("day").cast(DataType::Date))
    .collect()
    .unwrap()
}

fn f(df: &DataFrame, c: &str) -> Vec<Option<f64>> {
    df.column(c).unwrap().cast(&DataType::Float64).unwrap().f64().unwrap().iter().collect()
}

#[test]
fn extraction_matches_pandas_semantics() {
    let p = params(
        "dates: {day: []}\ntext: {note: []}\nbins: {price: {edges: [0, 2.5, 10], labels: [cheap, dear]}}\n\
         derive: [{name: revenue, expr: units * price}]\npolynomial: {columns: [units, price], degree: 2}\n",
    );
    let out = fit(&p, sales(), Seed(1), None).unwrap();
    let df = &out.frame;
    // 2024-03-16 (day 19798) is a Saturday: pandas dayofweek 5.
    assert_eq!(f(df, "day_day_of_week")[1], Some(5.0));
    assert_eq!(f(df, "day_is_weekend")[..4], [Some(0.0), Some(1.0), Some(1.0), Some(0.0)]);
    assert_eq!(f(df, "day_month")[0], Some(3.0));
    assert_eq!(f(df, "note_length")[..3], [Some(6.0), Some(7.0), None]);
    assert_eq!(f(df, "note_word_count")[4], Some(2.0));
    assert_eq!(f(df, "note_has_special")[..2], [Some(1.0), Some(0.0)]);
    assert_eq!(f(df, "note_has_special")[6], Some(1.0));
    let bins: Vec<Option<&str>> = df.column("price_bin").unwrap().str().unwrap().iter().collect();
    assert_eq!(bins[..3], [Some("cheap"), Some("cheap"), Some("cheap")]);
    assert_eq!(bins[3], Some("dear"));
    assert_eq!(f(df, "revenue")[0], Some(20.0));
    // scikit-learn's PolynomialFeatures(2).get_feature_names_out(["units", "price"]) without
    // the bias and the degree-1 terms: units^2, units price, price^2.
    let poly: Vec<&String> = out.report.created.iter().filter(|c| c.contains('^') || c.contains(' ')).collect();
    assert_eq!(poly, ["units^2", "units price", "price^2"]);
    assert_eq!(f(df, "units price")[3], Some(9.0));
}

#[test]
fn quantile_bins_learn_edges_on_training_rows() {
    let p = params("bins: {price: {quantiles: 2, labels: [low, high]}}\n");
    let out = fit(&p, sales(), Seed(1), None).unwrap();
    let Op::Bin { edges, .. } = &out.ops[0] else { panic!("{:?}", out.ops[0]) };
    // Median of the prices: 2.75; the outer edges are open.
    assert_eq!(edges, &vec![f64::MIN, 2.75, f64::MAX]);
}

use mlops_core::Op;

#[test]
fn lags_and_rolling_means_per_store_in_time_order() {
    let p = params("lags: [{column: units, order_by: day, by: store, lags: [1], rolling: [2]}]\n");
    let out = fit(&p, sales(), Seed(1), None).unwrap();
    // Store a by day: 10 (row 0), 12 (row 1), null (row 2), 11 (row 6).
    assert_eq!(
        f(&out.frame, "units_lag1"),
        vec![None, Some(10.0), Some(12.0), None, Some(3.0), Some(5.0), None, Some(4.0)]
    );
    assert_eq!(f(&out.frame, "units_rolling_mean2")[..2], [None, Some(11.0)]);
    assert_eq!(f(&out.frame, "units_rolling_mean2")[7], Some(5.0));
    // A new row of store a looks back at the last training value of store a (11 on day 19800).
    let mut row = mlops_core::Row::from([
        ("units".to_string(), Value::Float(13.0)),
        ("store".to_string(), Value::Str("a".into())),
        ("day".to_string(), Value::Date(19801)),
    ]);
    out.ops[0].apply_row(&mut row).unwrap();
    assert_eq!(
        (row["units_lag1"].clone(), row["units_rolling_mean2"].clone()),
        (Value::Float(11.0), Value::Float(12.0))
    );
}

#[test]
fn group_statistics_and_target_encoding() {
    let p = params(
        "group_stats: [{column: price, by: store}]\ntarget_encode: {store: {target: sold_out, smoothing: 0, folds: 2}}\n",
    );
    let out = fit(&p, sales(), Seed(7), None).unwrap();
    let mean = f(&out.frame, "price_mean_by_store");
    assert_eq!((mean[0], mean[3]), (Some(2.25), Some(3.125)));
    // Store b's prices 3, 3, 3, 3.5: the 1%-quantiles 0 to 66 are 3, so a 3 ranks in the middle
    // of that run, 0.33 (pandas' rank(pct=True) would say 0.5; this is the training percentile).
    assert_eq!(f(&out.frame, "price_rank_by_store")[3], Some(0.33));
    // Out of fold: each row's encoding comes from the other fold only; with no smoothing it is the
    // other fold's share of `yes` for the same store, which can never use the row's own target.
    let te = f(&out.frame, "store_te_yes");
    assert!(te.iter().all(|v| v.is_some_and(|x| (0.0..=1.0).contains(&x))), "{te:?}");
    // With one fold per row it is leave-one-out: the share of `yes` among the store's other rows.
    // Store a (rows 0, 1, 2, 6) has one `yes` (row 2); store b (3, 4, 5, 7) has three (4, 5, 7).
    let loo =
        fit(&params("target_encode: {store: {target: sold_out, smoothing: 0, folds: 8}}\n"), sales(), Seed(7), None)
            .unwrap();
    let third = 1.0 / 3.0;
    let expected = [third, third, 0.0, 1.0, 2.0 * third, 2.0 * third, third, 2.0 * third];
    for (got, want) in f(&loo.frame, "store_te_yes").iter().zip(expected) {
        assert!((got.unwrap() - want).abs() < 1e-12, "{got:?} against {want}");
    }
    let Some(Op::TargetEncode { table, .. }) = out.ops.iter().find(|o| matches!(o, Op::TargetEncode { .. })) else {
        panic!()
    };
    // Fitted on all rows: store a is 1 yes in 4, store b 3 in 4.
    assert_eq!((table["a"][0], table["b"][0]), (0.25, 0.75));
    assert!(out.frame.column("store").is_err(), "the encoded column is dropped");
}

#[test]
fn selection_filters_and_scores_like_scikit_learn() {
    let x0 = [1.0, 2.0, 3.0, 8.0, 9.0, 10.0];
    let x1 = [5.0, 3.0, 4.0, 1.0, 2.0, 0.5];
    let y = class_codes(&["a", "a", "a", "b", "b", "b"].iter().map(|s| Some(s.to_string())).collect::<Vec<_>>());
    let opt = |v: &[f64]| v.to_vec();
    // sklearn.feature_selection.f_classif / chi2 / f_regression on the same columns.
    assert!((anova_f(&opt(&x0), &y).unwrap() - 73.5).abs() < 1e-9);
    assert!((anova_f(&opt(&x1), &y).unwrap() - 15.21052631578949).abs() < 1e-9);
    assert!((chi2(&opt(&x0), &y).unwrap().unwrap() - 13.363636363636363).abs() < 1e-9);
    assert!((chi2(&opt(&x1), &y).unwrap().unwrap() - 4.661290322580645).abs() < 1e-9);
    let yr = opt(&[1.0, 2.0, 2.5, 8.0, 9.0, 11.0]);
    assert!((f_regression(&opt(&x0), &yr).unwrap() - 457.5887207703039).abs() < 1e-6);

    let df = df!(
        "x0" => x0, "x1" => x1, "copy" => x0.map(|v| v * 2.0 + 1.0), "flat" => [1.0; 6], "noise" => [0.3, 0.1, 0.2, 0.2, 0.1, 0.3],
        "y" => ["a", "a", "a", "b", "b", "b"],
    )
    .unwrap();
    let p = params("select: {target: y, variance: 0.0, correlation: 0.95, k_best: {k: 1, score: anova_f}}\n");
    let out = fit(&p, df.clone(), Seed(1), None).unwrap();
    let sel = out.report.selection.as_ref().unwrap();
    assert_eq!(sel.kept, ["x0"]);
    let reasons: Vec<(&str, &str)> =
        sel.dropped.iter().map(|d| (d.column.as_str(), d.reason.split(' ').next().unwrap())).collect();
    assert_eq!(reasons, [("flat", "variance"), ("copy", "|r|"), ("x1", "anova_f"), ("noise", "anova_f")]);
    assert_eq!(out.frame.get_column_names(), ["x0", "y"]);

    let p = params("select: {target: y, importance: {top: 2}}\n");
    assert!(matches!(fit(&p, df.clone(), Seed(1), None), Err(FeatureError::NoImportanceModel)));
    struct ByVariance;
    impl Importance for ByVariance {
        fn importances(
            &self,
            x: &ndarray::Array2<f64>,
            _: &[f64],
            _: &[String],
        ) -> std::result::Result<Vec<f64>, String> {
            Ok(x.columns().into_iter().map(|c| c.var(0.0)).collect())
        }
    }
    let out = fit(&p, df.clone(), Seed(1), Some(&ByVariance)).unwrap();
    assert_eq!(out.report.selection.unwrap().kept, ["x0", "copy"]);
    let neg = df!("x" => [-1.0, 2.0], "y" => ["a", "b"]).unwrap();
    let err = fit(&params("select: {target: y, k_best: {k: 1, score: chi2}}\n"), neg, Seed(1), None).unwrap_err();
    assert!(err.to_string().contains("non-negative") && err.to_string().contains("`x`"), "{err}");
}

#[test]
fn bad_settings_name_the_key_and_column() {
    let err = fit(&params("dates: {note: []}\n"), sales(), Seed(1), None).unwrap_err();
    assert!(matches!(&err, FeatureError::WrongType { column, .. } if column == "note"), "{err}");
    assert!(err.to_string().starts_with("features.dates.note: column `note` is str"), "{err}");
    let err = fit(&params("lags: [{column: units, order_by: when, lags: [1]}]\n"), sales(), Seed(1), None).unwrap_err();
    assert!(err.to_string().starts_with("features.lags[0].order_by: column `when` not found"), "{err}");
    let err = fit(&params("bins: {price: {edges: [0, 1, 5], labels: [a]}}\n"), sales(), Seed(1), None).unwrap_err();
    assert!(err.to_string().contains("1 label(s) for 2 bin(s)"), "{err}");
    let err = fit(&params("derive: [{name: r, expr: 'units / '}]\n"), sales(), Seed(1), None).unwrap_err();
    assert!(err.to_string().contains("derive[0]") && err.to_string().contains("column"), "{err}");
    let empty = sales().lazy().with_column(lit(NULL).cast(DataType::Float64).alias("units")).collect().unwrap();
    let err = fit(&params("group_stats: [{column: units, by: store}]\n"), empty, Seed(1), None).unwrap_err();
    assert_eq!(err.to_string(), "features.group_stats[0]: `units` has no values");
    let err = fit(&params("target_encode: {store: {target: nope}}\n"), sales(), Seed(1), None).unwrap_err();
    assert!(err.to_string().contains("`nope` not found"), "{err}");
    let err = mlops_core::config::parse_yaml::<FeatureParams>(
        "lags: [{column: a, order_by: b, lag: [1]}]\n",
        std::path::Path::new("f.yaml"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("lag"), "{err}");
}

#[test]
fn flags_are_imputed_but_not_scaled() {
    let df = df!(
        "units" => [Some(1.0), Some(2.0), None, Some(4.0), Some(5.0)],
        "clutch" => [Some(true), Some(true), Some(false), None, Some(true)],
    )
    .unwrap();
    let out = fit(&params("impute: {strategy: median}\nscale: {method: standard}\n"), df, Seed(1), None).unwrap();
    let described: Vec<String> = out.ops.iter().map(|op| op.describe()).collect();
    assert!(described.iter().any(|d| d.starts_with("fill nulls in clutch with 1")), "{described:?}");
    assert!(described.iter().any(|d| d.starts_with("scale units")), "{described:?}");
    assert!(!described.iter().any(|d| d.starts_with("scale clutch")), "{described:?}");
    assert_eq!(f(&out.frame, "clutch"), [Some(1.0), Some(1.0), Some(0.0), Some(1.0), Some(1.0)]);
    // A served row without the flag (or one the cleaning read as missing) reaches the model as
    // the training median on both paths.
    let served = df!("units" => [Some(3.0), None], "clutch" => [None::<bool>, Some(false)]).unwrap();
    assert_ops_agree(&out.ops, &served);
    let mut frame = served;
    for op in &out.ops {
        frame = op.apply_frame(frame, Stage::Inference).unwrap();
    }
    assert_eq!(f(&frame, "clutch"), [Some(1.0), Some(0.0)]);
}

/// Every op at inference gives the same numbers on the frame and on each row alone.
fn assert_ops_agree(ops: &[Op], df: &DataFrame) {
    let mut frame = df.clone();
    for op in ops {
        frame = op.apply_frame(frame, Stage::Inference).unwrap();
    }
    let expected = rows_from_frame(&frame).unwrap();
    for (i, mut row) in rows_from_frame(df).unwrap().into_iter().enumerate() {
        for op in ops {
            op.apply_row(&mut row).unwrap();
        }
        for (k, v) in &expected[i] {
            let got = row.get(k).cloned().unwrap_or(Value::Null);
            let same = match (v.as_f64(), got.as_f64()) {
                (Some(a), Some(b)) => a == b || (a.is_nan() && b.is_nan()),
                _ => *v == got,
            };
            assert!(same, "row {i} column {k}: frame {v:?}, row {got:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn fitted_features_agree_on_frames_and_single_rows(
        first in 0.0f64..100.0,
        rest in proptest::collection::vec(proptest::option::of(0.0f64..100.0), 7..29),
        seed in 0u64..100,
    ) {
        // Valid input only: `units` has a value (a column with none is a named error, tested in
        // bad_settings_name_the_key_and_column), and each class of `sold_out` fills every other
        // row, more than the ceil(n / 3) rows of a fold, so the rows outside any fold hold both
        // classes and each out-of-fold target encoding has two classes to learn.
        let units: Vec<Option<f64>> = std::iter::once(Some(first)).chain(rest).collect();
        let n = units.len();
        let df = df!(
            "day" => (0..n as i32).map(|i| 19_700 + (i * 7) % 11).collect::<Vec<_>>(),
            "store" => (0..n).map(|i| ["a", "b", "c"][i % 3]).collect::<Vec<_>>(),
            "units" => units,
            "price" => (0..n).map(|i| 1.0 + (i % 5) as f64).collect::<Vec<_>>(),
            "note" => (0..n).map(|i| ["Great!", "ok then", "fine", "x y z"][i % 4]).collect::<Vec<_>>(),
            "sold_out" => (0..n).map(|i| if (i + seed as usize).is_multiple_of(2) { "yes" } else { "no" }).collect::<Vec<_>>(),
        )
        .unwrap()
        .lazy()
        .with_column(col("day").cast(DataType::Date))
        .collect()
        .unwrap();
        let p = params(
            "dates: {day: []}\ntext: {note: []}\nbins: {price: {quantiles: 3}}\nderive: [{name: revenue, expr: units * price}]\n\
             polynomial: {columns: [units, price], degree: 3}\nlags: [{column: units, order_by: day, by: store, lags: [1, 2], rolling: [3]}]\n\
             group_stats: [{column: units, by: store}]\ntarget_encode: {store: {target: sold_out, folds: 3, keep_input: true}}\n",
        );
        let out = match fit(&p, df.clone(), Seed(seed), None) {
            Ok(out) => out,
            Err(e) => return Err(TestCaseError::fail(format!("valid input refused: {e}"))),
        };
        assert_ops_agree(&out.ops, &df);
        for op in &out.ops {
            let back: Op = serde_json::from_str(&serde_json::to_string(op).unwrap()).unwrap();
            prop_assert_eq!(&back, op);
        }
    }
}
