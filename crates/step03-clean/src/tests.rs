//! Clean tests: each strategy learns the right value, bad config names the key, and properties
//! over arbitrary frames.

use std::path::Path;

use mlops_core::frame::{Stage, frame_from_rows, rows_from_frame};
use mlops_core::{DType, FeaturePipeline, Fit, Row, Transform, Value};
use polars::prelude::{DataFrame, df};
use proptest::prelude::*;

use super::*;

fn params(yaml: &str) -> CleanParams {
    mlops_core::config::parse_yaml(yaml, Path::new("clean.yaml")).unwrap()
}

fn floats(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
    df.column(name).unwrap().cast(&polars::prelude::DataType::Float64).unwrap().f64().unwrap().iter().collect()
}

fn staff() -> DataFrame {
    df!(
        "id" => [1i64, 2, 3, 3, 4, 5],
        "dept" => ["eng", "eng", "ops", "ops", "ops", "hr"],
        "salary" => [Some(100.0), None, Some(50.0), Some(50.0), None, Some(80.0)],
        "age" => [Some(30i64), Some(40), None, None, Some(50), Some(40)],
        "active" => ["Yes", "no", "YES", "YES", "n/a", "No"],
        "joined" => ["2020-01-05", "2021-13-01", "2019-07-30", "2019-07-30", "", "2018-02-01"],
        "note" => [Some("  Great hire!! "), None, Some("ok."), Some("ok."), Some("Fine"), None],
    )
    .unwrap()
}

#[test]
fn fills_learn_pandas_values() {
    let data = staff();
    let cleaned = params("missing:\n  fill:\n    salary: mean\n    age: median\n    note: {constant: none}\n")
        .fit_transform(data.clone())
        .unwrap();
    // mean of 100, 50, 50, 80 = 70; median of 30, 40, 50, 40 = 40.
    assert_eq!(floats(&cleaned.frame, "salary")[1], Some(70.0));
    assert_eq!(floats(&cleaned.frame, "age")[2], Some(40.0));
    assert_eq!(cleaned.report.filled["salary"].count, 2);
    assert_eq!(cleaned.frame.column("note").unwrap().str().unwrap().get(1), Some("none"));

    let cleaned = params("missing:\n  fill:\n    salary: {group_median: {by: dept}}\n    age: mode\n")
        .fit_transform(data.clone())
        .unwrap();
    assert_eq!(
        floats(&cleaned.frame, "salary"),
        vec![Some(100.0), Some(100.0), Some(50.0), Some(50.0), Some(50.0), Some(80.0)]
    );
    assert_eq!(floats(&cleaned.frame, "age")[2], Some(40.0));

    let cleaned = params("missing:\n  fill:\n    salary: forward\n").fit_transform(data).unwrap();
    assert_eq!(floats(&cleaned.frame, "salary")[1], Some(100.0));
    assert_eq!(floats(&cleaned.frame, "salary")[4], Some(50.0));
}

#[test]
fn fills_learned_together_equal_fills_learned_one_by_one() {
    // `b` groups by `a` after `a` is filled; `a` groups by `z` before `z` is filled (the
    // fills run in name order), so a row whose `z` is null gets `a`'s overall median.
    let data = df!(
        "a" => [Some(1.0), None, Some(3.0), Some(5.0), None, Some(9.0)],
        "b" => [Some(10.0), None, Some(30.0), None, Some(50.0), Some(60.0)],
        "c" => [Some(2i64), None, Some(2), Some(7), None, Some(7)],
        "z" => [Some("x"), Some("x"), None, Some("y"), None, Some("y")],
    )
    .unwrap();
    let together = params(
        "missing:\n  fill:\n    a: {group_median: {by: z}}\n    b: {group_median: {by: a}}\n    c: mode\n    z: mode\n",
    )
    .fit_transform(data.clone())
    .unwrap();
    let mut frame = data;
    let mut ops = Vec::new();
    for fill in ["a: {group_median: {by: z}}", "b: {group_median: {by: a}}", "c: mode", "z: mode"] {
        let one = params(&format!("missing:\n  fill:\n    {fill}\n")).fit_transform(frame).unwrap();
        frame = one.frame;
        ops.extend(one.ops);
    }
    assert!(together.frame.equals_missing(&frame), "{}\n{frame}", together.frame);
    assert_eq!(together.ops, ops);
    // The median of 1, 3, 5 and 9; `b`'s second row groups with the rows whose filled `a` is 1.
    assert_eq!(floats(&together.frame, "a")[4], Some(4.0));
    assert_eq!(floats(&together.frame, "b")[1], Some(10.0));
}

#[test]
fn types_convert_and_count_coerced_values() {
    let cleaned = params("types:\n  active: bool\n  joined: {date: {formats: ['%Y-%m-%d']}}\n  dept: categorical\n")
        .fit_transform(staff())
        .unwrap();
    let active: Vec<Option<bool>> = cleaned.frame.column("active").unwrap().bool().unwrap().iter().collect();
    assert_eq!(active, vec![Some(true), Some(false), Some(true), Some(true), None, Some(false)]);
    assert_eq!(cleaned.report.coerced["active"], 1);
    assert_eq!(cleaned.report.coerced["joined"], 2); // month 13 and the empty text
    assert_eq!(cleaned.frame.column("joined").unwrap().dtype(), &polars::prelude::DataType::Date);
    assert_eq!(cleaned.report.categories["dept"], vec!["eng", "hr", "ops"]);

    let err = params("type_errors: raise\ntypes:\n  joined: {date: {formats: ['%Y-%m-%d']}}\n")
        .fit_transform(staff())
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("`joined` row 1") && text.contains("2021-13-01"), "{text}");
}

#[test]
fn duplicates_missing_drops_and_text() {
    let cleaned = params("duplicates: {subset: [id], keep: last}\n").fit_transform(staff()).unwrap();
    assert_eq!(cleaned.report.duplicates_dropped, 1);
    assert_eq!(cleaned.frame.height(), 5);

    let cleaned = params("missing:\n  drop_columns_over: 0.3\n").fit_transform(staff()).unwrap();
    assert_eq!(cleaned.report.columns_dropped, vec!["salary", "age", "note"]);
    let cleaned = params("missing:\n  drop_rows: {columns: [salary, age], max_null_fraction: 0.5}\n")
        .fit_transform(staff())
        .unwrap();
    assert_eq!(cleaned.report.rows_dropped_for_nulls, 0);
    let cleaned = params("missing:\n  drop_rows: {columns: [salary, age]}\n").fit_transform(staff()).unwrap();
    assert_eq!(cleaned.report.rows_dropped_for_nulls, 4);

    let cleaned = params("text:\n  note: [trim, lower, strip_punctuation]\n").fit_transform(staff()).unwrap();
    assert_eq!(cleaned.frame.column("note").unwrap().str().unwrap().get(0), Some("great hire"));
}

#[test]
fn outliers_clip_or_drop_with_fitted_bounds() {
    let data = df!("x" => [1.0, 2.0, 3.0, 4.0, 100.0]).unwrap();
    let cleaned =
        params("outliers:\n  x: {method: {iqr: {k: 1.5}}, action: clip}\n").fit_transform(data.clone()).unwrap();
    // q1 = 2, q3 = 4, iqr = 2: bounds [-1, 7].
    let o = &cleaned.report.outliers["x"];
    assert_eq!((o.lower, o.upper, o.count), (-1.0, 7.0, 1));
    assert_eq!(floats(&cleaned.frame, "x")[4], Some(7.0));

    let cleaned =
        params("outliers:\n  x: {method: {zscore: {threshold: 1.5}}, action: drop}\n").fit_transform(data).unwrap();
    assert_eq!(cleaned.frame.height(), 4);
    // At inference the filter keeps every row.
    let pipeline = FeaturePipeline { ops: cleaned.ops, ..FeaturePipeline::new() };
    assert_eq!(pipeline.transform_frame(df!("x" => [1.0, 1000.0]).unwrap()).unwrap().height(), 2);
}

#[test]
fn bad_config_names_key_and_column() {
    let err = params("missing:\n  fill:\n    salry: median\n").fit_transform(staff()).unwrap_err();
    assert!(err.to_string().starts_with("clean.missing.fill: column `salry` not found"), "{err}");
    let err = params("missing:\n  fill:\n    dept: mean\n").fit_transform(staff()).unwrap_err();
    assert!(err.to_string().contains("clean.missing.fill.dept: `dept` is string, not a number"), "{err}");
    let err = params("missing:\n  fill:\n    dept: {group_median: {by: id}}\n").fit_transform(staff()).unwrap_err();
    assert!(err.to_string().contains("clean.missing.fill.dept: `dept` is string, not a number"), "{err}");
    let err = params("missing:\n  fill:\n    salary: {group_median: {by: team}}\n").fit_transform(staff()).unwrap_err();
    assert!(err.to_string().contains("missing.fill.salary.by") && err.to_string().contains("`team`"), "{err}");
    let err = params("missing:\n  drop_columns_over: 1.5\n").fit_transform(staff()).unwrap_err();
    assert!(err.to_string().contains("clean.missing.drop_columns_over: 1.5 is not a fraction"), "{err}");
    let err = mlops_core::config::parse_yaml::<CleanParams>("missing:\n  fill:\n    a: average\n", Path::new("c.yaml"))
        .unwrap_err();
    assert!(err.to_string().contains("c.yaml: line 3") && err.to_string().contains("average"), "{err}");
}

#[test]
fn fit_sees_only_training_rows() {
    let train = df!("x" => [Some(1.0), None, Some(3.0)]).unwrap();
    let ops = params("missing:\n  fill:\n    x: mean\n").fit(&train).unwrap();
    let pipeline = FeaturePipeline { ops, ..FeaturePipeline::new() };
    // New data with very different values is filled with the training mean.
    let mut row = Row::from([("x".to_string(), Value::Null)]);
    pipeline.transform_row(&mut row).unwrap();
    assert_eq!(row["x"], Value::Float(2.0));
}

/// One row of `a` (float, NaN or null), `b` (int), `c` and `d` (text).
fn arbitrary_row() -> impl Strategy<Value = Row> {
    let num = prop_oneof![Just(Value::Null), (-50.0..50.0f64).prop_map(Value::Float), Just(Value::Float(f64::NAN))];
    let int = prop_oneof![Just(Value::Null), (-5i64..5).prop_map(Value::Int)];
    let text = prop_oneof![Just(Value::Null), "[ a-cA-C!.0-9-]{0,6}".prop_map(Value::Str)];
    (num, int, text.clone(), text).prop_map(|(a, b, c, d)| row(a, b, c, d))
}

fn row(a: Value, b: Value, c: Value, d: Value) -> Row {
    Row::from([("a".into(), a), ("b".into(), b), ("c".into(), c), ("d".into(), d)])
}

fn frame_of(rows: &[Row]) -> DataFrame {
    frame_from_rows(
        rows,
        &[("a".into(), DType::Float), ("b".into(), DType::Int), ("c".into(), DType::Str), ("d".into(), DType::Str)],
    )
    .unwrap()
}

fn arbitrary_frame() -> impl Strategy<Value = DataFrame> {
    prop::collection::vec(arbitrary_row(), 0..25).prop_map(|rows| frame_of(&rows))
}

/// Frames [`ALL_PARTS`] can learn from: the first row has a number in `a` and a value in `b`,
/// so it survives deduplication on `b` and the dropping of rows without `b`, and the fill of `a`
/// by `b` has a median to fall back on.
fn trainable_frame() -> impl Strategy<Value = DataFrame> {
    let first = (-50.0..50.0f64, -5i64..5, arbitrary_row())
        .prop_map(|(a, b, r)| row(Value::Float(a), Value::Int(b), r["c"].clone(), r["d"].clone()));
    (first, prop::collection::vec(arbitrary_row(), 0..25)).prop_map(|(first, rest)| {
        let rows: Vec<Row> = std::iter::once(first).chain(rest).collect();
        frame_of(&rows)
    })
}

/// Whether [`ALL_PARTS`] has a number of `a` to learn its fill from: some row is the first with
/// its value of `b` (deduplication keeps it, dropping rows without `b` does not) and has a
/// number in `a`.
fn has_a_number_to_learn_from(df: &DataFrame) -> bool {
    let mut seen = Vec::new();
    rows_from_frame(df).unwrap().iter().any(|r| {
        let b = &r["b"];
        if b.is_null() || seen.contains(b) {
            return false;
        }
        seen.push(b.clone());
        r["a"].as_f64().is_some_and(|a| !a.is_nan())
    })
}

const ALL_PARTS: &str = r#"
types:
  d: {date: {formats: ['%Y-%m-%d']}}
  b: float
text:
  c: [trim, upper]
duplicates: {subset: [b], keep: first}
missing:
  drop_rows: {columns: [b], max_null_fraction: 0}
  fill:
    a: {group_median: {by: b}}
    b: mode
outliers:
  a: {method: {iqr: {k: 1.0}}, action: clip}
"#;

proptest! {
    #[test]
    fn fitted_cleaning_serves_rows_like_frames(data in trainable_frame()) {
        let cleaned = match params(ALL_PARTS).fit_transform(data.clone()) {
            Ok(cleaned) => cleaned,
            Err(e) => return Err(TestCaseError::fail(format!("a trainable frame was refused: {e}"))),
        };
        prop_assert!(cleaned.frame.height() <= data.height());
        let json = serde_json::to_string(&cleaned.ops).unwrap();
        let back: Vec<mlops_core::Op> = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &cleaned.ops);
        let pipeline = FeaturePipeline { ops: cleaned.ops, ..FeaturePipeline::new() };
        let frame = pipeline.apply_frame(data.clone(), Stage::Inference).unwrap();
        let mut rows = rows_from_frame(&data).unwrap();
        pipeline.transform_rows(&mut rows).unwrap();
        let got = rows_from_frame(&frame).unwrap();
        prop_assert_eq!(got.len(), rows.len());
        for (g, e) in got.iter().zip(&rows) {
            prop_assert_eq!(g.len(), e.len());
            for (k, v) in g {
                prop_assert!(v.same_as(&e[k]), "{}: {:?} vs {:?}", k, v, e[k]);
            }
        }
    }

    #[test]
    fn cleaning_refuses_a_frame_only_when_the_fill_has_nothing_to_learn(data in arbitrary_frame()) {
        let result = params(ALL_PARTS).fit_transform(data.clone());
        match (has_a_number_to_learn_from(&data), result) {
            (true, Ok(cleaned)) => prop_assert!(cleaned.frame.height() <= data.height()),
            (false, Err(CleanError::Invalid { key, message })) => {
                prop_assert_eq!(key, "missing.fill.a");
                prop_assert_eq!(message, "no values in the training rows to learn a median from");
            }
            (learnable, other) => prop_assert!(false, "learnable: {}, got {:?}", learnable, other.map(|c| c.frame)),
        }
    }
}
