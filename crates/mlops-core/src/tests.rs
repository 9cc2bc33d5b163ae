//! Properties of the fitted operations: a frame and its rows give the same result; every op
//! survives a serde round trip; nothing panics on arbitrary frames.

use std::collections::BTreeMap;

use polars::prelude::{DataFrame, DataType};
use proptest::prelude::*;

use crate::features::{DatePart, GroupStat, GroupSummary, TextStat};
use crate::frame::{Stage, column_names, frame_from_rows, rows_from_frame};
use crate::ops::{CastTo, Closed, FillDirection, Keep, OnError, TextStep, UnknownPolicy, Unmapped};
use crate::{CoreError, DType, Expr, FeaturePipeline, Op, Row, Transform, Value};

const CATS: [&str; 4] = ["Adelie", "Gentoo", "chinstrap ", "Biscoe!"];

fn columns() -> Vec<(String, DType)> {
    vec![
        ("f".into(), DType::Float),
        ("i".into(), DType::Int),
        ("s".into(), DType::Str),
        ("b".into(), DType::Bool),
        ("d".into(), DType::Date),
        ("t".into(), DType::Str),
    ]
}

fn float_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => Just(Value::Float(f64::NAN)),
        8 => (-1.0e4..1.0e4f64).prop_map(Value::Float),
    ]
}

fn row_strategy() -> impl Strategy<Value = Row> {
    (
        float_value(),
        prop::option::of(-1000i64..1000),
        prop::option::of(prop::sample::select(CATS.to_vec())),
        prop::option::of(any::<bool>()),
        prop::option::of(-20_000i32..30_000),
        prop::option::of(prop::sample::select(vec!["12.5", " 7 ", "yes", "No", "2008-11-09", "09/11/2008", "x"])),
    )
        .prop_map(|(f, i, s, b, d, t)| {
            Row::from([
                ("f".to_string(), f),
                ("i".to_string(), i.into()),
                ("s".to_string(), s.into()),
                ("b".to_string(), b.into()),
                ("d".to_string(), d.map_or(Value::Null, Value::Date)),
                ("t".to_string(), t.into()),
            ])
        })
}

fn frame_strategy() -> impl Strategy<Value = DataFrame> {
    prop::collection::vec(row_strategy(), 0..24)
        .prop_map(|rows| frame_from_rows(&rows, &columns()).expect("frame from generated rows"))
}

/// Whether `ops` give a reason for `err`: an op that drops or renames the column a later one
/// reads, that changes the type of the column named, that raises on a value it cannot convert,
/// or that refuses an unknown category. Any other error on the generated frames is a defect.
fn refusal_explained(ops: &[Op], err: &CoreError) -> bool {
    let removed: Vec<&str> = ops
        .iter()
        .flat_map(|op| match op {
            Op::Rename { mapping } => mapping.iter().map(|(from, _)| from.as_str()).collect(),
            Op::Drop { columns } => columns.iter().map(String::as_str).collect(),
            Op::OneHot { column, drop_input: true, .. } | Op::TargetEncode { column, drop_input: true, .. } => {
                vec![column.as_str()]
            }
            _ => Vec::new(),
        })
        .collect();
    let retyped: Vec<&str> = ops
        .iter()
        .flat_map(|op| match op {
            Op::Rename { mapping } => mapping.iter().map(|(_, to)| to.as_str()).collect(),
            Op::Cast { column, .. } => vec![column.as_str()],
            _ => Vec::new(),
        })
        .collect();
    let raises = ops.iter().any(|op| matches!(op, Op::Cast { on_error: OnError::Raise, .. }));
    let refuses_unknown = ops.iter().any(|op| {
        matches!(
            op,
            Op::OneHot { unknown: UnknownPolicy::Error, .. }
                | Op::Ordinal { unknown: UnknownPolicy::Error, .. }
                | Op::TargetEncode { unknown: UnknownPolicy::Error, .. }
        )
    });
    match err {
        CoreError::MissingColumn { column, .. } => removed.contains(&column.as_str()),
        // A derived column's expression, checked again on the frame, reads a column that is gone
        // or has another type.
        CoreError::Expr { source_text, .. } => ops.iter().any(|op| {
            matches!(op, Op::Derive { expr, .. } if expr.source() == source_text
                && expr.columns().iter().any(|c| removed.contains(&c.as_str()) || retyped.contains(&c.as_str())))
        }),
        CoreError::WrongType { column, .. } => retyped.contains(&column.as_str()),
        CoreError::Conversion { .. } => raises,
        CoreError::UnknownCategory { column, .. } => refuses_unknown && column == "s",
        _ => false,
    }
}

/// What both paths must agree on when `ops` refuse `df` on the frame path: the refusal has a
/// reason in `ops`, and a refusal caused by a value (a raise, an unknown category) is one the
/// rows meet too. A column the ops removed is no error on the row path, where an absent column
/// reads as null; and a column whose type changed is refused by its type on the frame, while a
/// row only fails on a value (an empty frame, or nulls, give it none).
fn assert_refusal_agrees(
    ops: &[Op],
    df: &DataFrame,
    frame_err: &CoreError,
    rows: Result<(), CoreError>,
) -> Result<(), TestCaseError> {
    prop_assert!(
        refusal_explained(ops, frame_err),
        "frame refused without a reason in the ops: {frame_err:?} for {ops:?}"
    );
    match rows {
        Err(row_err) => {
            prop_assert!(refusal_explained(ops, &row_err), "rows refused without a reason: {row_err:?} for {ops:?}")
        }
        Ok(()) => prop_assert!(
            matches!(frame_err, CoreError::MissingColumn { .. } | CoreError::Expr { .. } | CoreError::WrongType { .. }),
            "frame failed but rows passed: {frame_err} for {ops:?} on {} row(s)",
            df.height()
        ),
    }
    Ok(())
}

/// The frame path's output, row by row, holds the same columns and values as the row path's.
fn assert_same_rows(frame: &DataFrame, rows: &[Row], ops: &[Op]) -> Result<(), TestCaseError> {
    let got = rows_from_frame(frame).expect("rows of output");
    prop_assert_eq!(got.len(), rows.len());
    for (i, (g, e)) in got.iter().zip(rows).enumerate() {
        let keys: Vec<&String> = g.keys().collect();
        prop_assert_eq!(keys, e.keys().collect::<Vec<_>>(), "row {} columns differ for {:?}", i, ops);
        for (k, v) in g {
            prop_assert!(v.same_as(&e[k]), "row {} column {}: frame {:?} row {:?} for {:?}", i, k, v, e[k], ops);
        }
    }
    Ok(())
}

/// The core property: at inference, transforming the frame equals transforming each row.
fn assert_frame_equals_rows(op: &Op, df: &DataFrame) -> Result<(), TestCaseError> {
    let ops = std::slice::from_ref(op);
    let mut rows = rows_from_frame(df).expect("rows");
    let row_out = rows.iter_mut().try_for_each(|r| op.transform_row(r));
    match op.transform_frame(df.clone()) {
        Ok(frame) => {
            row_out.map_err(|e| TestCaseError::fail(format!("frame passed but a row failed: {e} for {op:?}")))?;
            assert_same_rows(&frame, &rows, ops)?;
        }
        Err(e) => assert_refusal_agrees(ops, df, &e, row_out)?,
    }
    Ok(())
}

fn assert_serde_round_trip(op: &Op) -> Result<(), TestCaseError> {
    let json = serde_json::to_string(op).expect("encode");
    let back: Op = serde_json::from_str(&json).expect("decode");
    prop_assert_eq!(&back, op);
    Ok(())
}

fn bounds() -> impl Strategy<Value = (f64, f64)> {
    (-5.0e3..5.0e3f64, 0.0..5.0e3f64).prop_map(|(lo, width)| (lo, lo + width))
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let cast_to = prop_oneof![
        Just(CastTo::Int),
        Just(CastTo::Float),
        Just(CastTo::Str),
        Just(CastTo::Bool { true_values: vec!["yes".into(), "true".into()], false_values: vec!["no".into()] }),
        Just(CastTo::Date { formats: vec!["%Y-%m-%d".into(), "%d/%m/%Y".into()] }),
        Just(CastTo::Datetime { formats: vec!["%Y-%m-%d".into()] }),
    ];
    let on_error = prop_oneof![Just(OnError::Coerce), Just(OnError::Raise)];
    let text_steps = prop::collection::vec(
        prop::sample::select(vec![
            TextStep::Trim,
            TextStep::Lower,
            TextStep::Upper,
            TextStep::Title,
            TextStep::StripPunctuation,
            TextStep::CollapseSpaces,
            TextStep::EmptyToNull,
        ]),
        0..4,
    );
    let unknown = prop_oneof![Just(UnknownPolicy::Ignore), Just(UnknownPolicy::Error)];
    let cats = prop::sample::subsequence(CATS.to_vec(), 0..=4)
        .prop_map(|v| v.into_iter().map(String::from).collect::<Vec<_>>());
    prop_oneof![
        Just(Op::Rename { mapping: vec![("f".into(), "g".into()), ("s".into(), "f".into())] }),
        Just(Op::Drop { columns: vec!["b".into(), "t".into()] }),
        (prop::sample::select(vec!["t", "i", "f", "b", "d"]), cast_to, on_error)
            .prop_map(|(c, to, on_error)| Op::Cast { column: c.into(), to, on_error }),
        (-100.0..100.0f64).prop_map(|v| Op::FillNull { column: "f".into(), value: Value::Float(v) }),
        (-100.0..100.0f64).prop_map(|v| Op::FillNull { column: "i".into(), value: Value::Float(v) }),
        Just(Op::FillNull { column: "s".into(), value: Value::Str("unknown".into()) }),
        (-100.0..100.0f64, -100.0..100.0f64).prop_map(|(a, fb)| Op::FillNullByGroup {
            column: "f".into(),
            by: "s".into(),
            values: BTreeMap::from([("Adelie".to_string(), Value::Float(a))]),
            fallback: Value::Float(fb),
        }),
        (prop::sample::select(vec![FillDirection::Forward, FillDirection::Backward]), -9.0..9.0f64)
            .prop_map(|(direction, fb)| Op::FillSequence { column: "f".into(), direction, fallback: Value::Float(fb) }),
        bounds().prop_map(|(lower, upper)| Op::Clip { column: "f".into(), lower, upper }),
        bounds().prop_map(|(lower, upper)| Op::FilterRange { column: "i".into(), lower, upper }),
        (0.0..1.0f64).prop_map(|m| Op::DropNullRows { columns: vec![], max_null_fraction: m }),
        prop::sample::select(vec![Keep::First, Keep::Last, Keep::None])
            .prop_map(|keep| Op::Deduplicate { subset: vec!["s".into()], keep }),
        text_steps.prop_map(|steps| Op::Text { column: "s".into(), steps }),
        prop::sample::select(vec![Unmapped::Keep, Unmapped::Null, Unmapped::Value(Value::Str("other".into()))])
            .prop_map(|unmapped| Op::MapValues {
                column: "s".into(),
                output: Some("s_mapped".into()),
                mapping: BTreeMap::from([("Adelie".to_string(), Value::Str("A".into()))]),
                unmapped,
            }),
        prop::sample::select(vec![Closed::Left, Closed::Right]).prop_map(|closed| Op::Bin {
            column: "f".into(),
            output: "f_bin".into(),
            edges: vec![-1.0e4, -10.0, 0.0, 10.0, 1.0e4],
            labels: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            closed,
        }),
        (-2i32..4).prop_map(|decimals| Op::Round { column: "f".into(), decimals }),
        (-3.0..3.0f64, -50.0..50.0f64).prop_map(|(factor, offset)| Op::Linear {
            column: "i".into(),
            output: Some("i_lin".into()),
            factor,
            offset
        }),
        (-100.0..100.0f64, 0.01..100.0f64).prop_map(|(center, scale)| Op::Scale { column: "f".into(), center, scale }),
        (cats.clone(), unknown.clone(), any::<bool>()).prop_map(|(categories, unknown, drop_input)| Op::OneHot {
            column: "s".into(),
            outputs: categories.iter().map(|c| format!("s_{c}")).collect(),
            categories,
            unknown,
            drop_input,
        }),
        (cats.clone(), unknown.clone()).prop_map(|(categories, unknown)| Op::Ordinal {
            column: "s".into(),
            output: Some("s_code".into()),
            categories,
            unknown,
        }),
        (cats, unknown, any::<bool>()).prop_map(|(categories, unknown, drop_input)| Op::TargetEncode {
            column: "s".into(),
            outputs: vec!["s_te_0".into(), "s_te_1".into()],
            table: categories
                .iter()
                .enumerate()
                .map(|(i, c)| (c.clone(), vec![i as f64 * 0.25, 1.0 - i as f64 * 0.25]))
                .collect(),
            prior: vec![0.5, 0.5],
            unknown,
            drop_input,
        }),
        Just(Op::DateParts {
            column: "d".into(),
            parts: DatePart::ALL.to_vec(),
            outputs: DatePart::ALL.iter().map(|p| format!("d_{}", p.name())).collect(),
        }),
        Just(Op::TextStats {
            column: "s".into(),
            stats: TextStat::ALL.to_vec(),
            outputs: TextStat::ALL.iter().map(|p| format!("s_{}", p.name())).collect(),
        }),
        (any::<bool>(), prop::collection::vec(prop::option::of(-50.0..50.0f64), 0..4)).prop_map(|(grouped, tail)| {
            Op::Lag {
                column: "f".into(),
                order_by: "d".into(),
                by: grouped.then(|| "s".to_string()),
                lags: vec![1, 2],
                windows: vec![2, 3],
                outputs: vec!["f_lag1".into(), "f_lag2".into(), "f_mean2".into(), "f_mean3".into()],
                history: BTreeMap::from([(if grouped { "Adelie".to_string() } else { String::new() }, tail)]),
            }
        }),
        prop::collection::vec(-100.0..100.0f64, 1..20).prop_map(|mut values| {
            let fallback = GroupSummary::of(&mut values.clone()).expect("values");
            values.truncate(values.len().div_ceil(2));
            Op::GroupStats {
                column: "f".into(),
                by: "s".into(),
                stats: vec![GroupStat::Mean, GroupStat::Std, GroupStat::Rank],
                outputs: vec!["f_mean".into(), "f_std".into(), "f_rank".into()],
                table: BTreeMap::from([("Adelie".to_string(), GroupSummary::of(&mut values).expect("values"))]),
                fallback,
            }
        }),
        (
            prop::sample::select(vec![vec!["s"], vec!["i"], vec!["s", "b"], vec!["f"]]),
            prop::collection::vec((-3i64..3, prop::sample::select(CATS.to_vec()), any::<bool>()), 0..8),
            prop::collection::vec((float_value(), prop::option::of(prop::sample::select(CATS.to_vec()))), 8),
        )
            .prop_map(|(on, keys, values)| {
                let mut table = BTreeMap::new();
                for ((i, cat, flag), (x, name)) in keys.into_iter().zip(values) {
                    let key: Vec<Value> = on
                        .iter()
                        .map(|c| match *c {
                            "s" => Value::Str(cat.to_string()),
                            "b" => Value::Bool(flag),
                            // Whole floats match int keys: 2.0 finds the entry of 2.
                            "f" => Value::Float(i as f64),
                            _ => Value::Int(i),
                        })
                        .collect();
                    if let Some(k) = crate::ops::lookup_key(&key) {
                        // A fitted table holds no NaN (a join's NaN is stored as null).
                        let x = if matches!(x, Value::Float(f) if f.is_nan()) { Value::Null } else { x };
                        table.entry(k).or_insert_with(|| vec![x, name.map_or(Value::Null, |n| Value::Str(n.into()))]);
                    }
                }
                Op::Lookup {
                    source: "islands".into(),
                    on: on.into_iter().map(String::from).collect(),
                    outputs: vec!["latitude".into(), "s".into()],
                    dtypes: vec![DType::Float, DType::Str],
                    table,
                }
            }),
        prop::sample::select(vec![
            "f * 2 + i",
            "f / i",
            "i % 7",
            "-f",
            "abs(f) + sqrt(abs(i)) + ln(abs(f) + 1) + log10(abs(i) + 1) + floor(f) + ceil(f)",
            "round(f, 1)",
            "if(b, f, i)",
            "coalesce(f, i)",
            "min(f, i) + max(f, i)",
            "f > i and not b or is_null(s)",
            "len(s) + len(lower(s)) + len(upper(s))",
            "year(d) + month(d) + day(d)",
            "days_between(d, '2008-01-01') > 0",
            "s == 'Adelie' or s != 'Gentoo'",
            "d >= '2001-05-06'",
            "exp(f / 1000)",
            "i",
            "s contains 'A' or s starts_with 'G' or s ends_with '!'",
            "d >= 2008-01-01",
        ])
        .prop_map(|src| {
            let mut expr = Expr::parse(src).expect("test expression parses");
            let types: BTreeMap<String, DType> = columns().into_iter().collect();
            let names: Vec<String> = types.keys().cloned().collect();
            let dtype = expr.check(&|c| types.get(c).copied(), &names).expect("test expression checks");
            Op::Derive { output: "derived".into(), expr, dtype }
        }),
    ]
}

/// Ops after which every generated op still finds its input columns with their types, and that
/// refuse no value: a pipeline of them must run on any generated frame.
fn op_keeping_inputs() -> impl Strategy<Value = Op> {
    op_strategy().prop_filter("renames, drops, casts or refuses", |op| {
        !matches!(
            op,
            Op::Rename { .. }
                | Op::Drop { .. }
                | Op::Cast { .. }
                | Op::OneHot { drop_input: true, .. }
                | Op::TargetEncode { drop_input: true, .. }
                | Op::OneHot { unknown: UnknownPolicy::Error, .. }
                | Op::Ordinal { unknown: UnknownPolicy::Error, .. }
                | Op::TargetEncode { unknown: UnknownPolicy::Error, .. }
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn frame_equals_rows(op in op_strategy(), df in frame_strategy()) {
        assert_frame_equals_rows(&op, &df)?;
    }

    #[test]
    fn ops_round_trip_through_serde(op in op_strategy()) {
        assert_serde_round_trip(&op)?;
    }

    /// The road to some columns gives them exactly as the whole pipeline does, on rows that carry
    /// only the columns the road starts from.
    #[test]
    fn the_road_to_some_columns_gives_them_as_the_whole_pipeline_does(
        ops in prop::collection::vec(op_strategy(), 0..6),
        df in frame_strategy(),
        pick in prop::collection::vec(any::<prop::sample::Index>(), 1..4),
    ) {
        let mut pipeline = FeaturePipeline::new();
        pipeline.extend(ops);
        let mut whole = rows_from_frame(&df).expect("rows");
        if pipeline.transform_rows(&mut whole).is_err() {
            return Ok(());
        }
        let Some(first) = whole.first() else { return Ok(()) };
        let names: Vec<&String> = first.keys().collect();
        let wanted: Vec<&str> = pick.iter().map(|i| names[i.index(names.len())].as_str()).collect();
        let road = pipeline.road_to(wanted.iter().copied());
        let mut rows = rows_from_frame(&df).expect("rows");
        for row in &mut rows {
            row.retain(|k, _| road.inputs.contains(k));
        }
        let short = FeaturePipeline { ops: road.ops.clone(), ..FeaturePipeline::new() };
        short.transform_rows(&mut rows).map_err(|e| TestCaseError::fail(format!("{e} for {:?}", road.ops)))?;
        for (w, r) in whole.iter().zip(&rows) {
            for c in &wanted {
                let (a, b) = (w.get(*c).unwrap_or(&Value::Null), r.get(*c).unwrap_or(&Value::Null));
                prop_assert!(a.same_as(b), "{}: whole {:?}, road {:?}; road {:?} of {:?}", c, a, b, road.ops, pipeline.ops);
            }
        }
    }

    #[test]
    fn pipelines_that_keep_their_inputs_run_and_equal_rows(
        ops in prop::collection::vec(op_keeping_inputs(), 0..5),
        df in frame_strategy(),
    ) {
        let mut pipeline = FeaturePipeline::new();
        pipeline.extend(ops);
        let frame = match pipeline.transform_frame(df.clone()) {
            Ok(frame) => frame,
            Err(e) => return Err(TestCaseError::fail(format!("a valid pipeline failed: {e} for {:?}", pipeline.ops))),
        };
        let mut rows = rows_from_frame(&df).expect("rows");
        pipeline.transform_rows(&mut rows).map_err(|e| TestCaseError::fail(e.to_string()))?;
        assert_same_rows(&frame, &rows, &pipeline.ops)?;
    }

    #[test]
    fn pipelines_equal_rows_and_round_trip(ops in prop::collection::vec(op_strategy(), 0..4), df in frame_strategy()) {
        let mut pipeline = FeaturePipeline::new();
        pipeline.extend(ops);
        let json = serde_json::to_string(&pipeline).expect("encode");
        let back: FeaturePipeline = serde_json::from_str(&json).expect("decode");
        prop_assert_eq!(&back, &pipeline);
        let mut rows = rows_from_frame(&df).expect("rows");
        let row_out = pipeline.transform_rows(&mut rows);
        match pipeline.transform_frame(df.clone()) {
            Ok(frame) => {
                row_out.map_err(|e| TestCaseError::fail(format!("frame passed but a row failed: {e}")))?;
                assert_same_rows(&frame, &rows, &pipeline.ops)?;
            }
            // Ops that rename, drop or retype columns can starve later ones.
            Err(e) => assert_refusal_agrees(&pipeline.ops, &df, &e, row_out)?,
        }
    }

    #[test]
    fn training_stage_filters_only_with_row_filters_and_fails_only_for_a_reason(
        op in op_strategy(),
        df in frame_strategy(),
    ) {
        let before = df.height();
        match op.apply_frame(df, Stage::Training) {
            Ok(out) if op.is_row_filter() => prop_assert!(out.height() <= before),
            Ok(out) => prop_assert_eq!(out.height(), before, "{:?} changed the row count", op),
            Err(e) => prop_assert!(refusal_explained(std::slice::from_ref(&op), &e), "{:?}: {:?}", op, e),
        }
    }
}

#[test]
fn every_op_variant_is_generated() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..2000 {
        let op = op_strategy().new_tree(&mut runner).expect("tree").current();
        let json = serde_json::to_value(&op).expect("encode");
        seen.insert(json["op"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(seen.len(), 25, "variants generated: {seen:?}");
}

#[test]
fn fill_sequence_carries_values_along_the_frame() {
    let rows: Vec<Row> =
        [Some(1.0), None, Some(3.0), None].iter().map(|v| Row::from([("f".to_string(), Value::from(*v))])).collect();
    let df = frame_from_rows(&rows, &[("f".into(), DType::Float)]).unwrap();
    let op = Op::FillSequence { column: "f".into(), direction: FillDirection::Backward, fallback: Value::Float(9.0) };
    let out = op.apply_frame(df, Stage::Training).unwrap();
    let got: Vec<Option<f64>> = out.column("f").unwrap().f64().unwrap().iter().collect();
    assert_eq!(got, vec![Some(1.0), Some(3.0), Some(3.0), Some(9.0)]);
}

#[test]
fn row_filters_only_filter_in_training() {
    let rows: Vec<Row> = [1i64, 50, 2].iter().map(|v| Row::from([("i".to_string(), Value::Int(*v))])).collect();
    let df = frame_from_rows(&rows, &[("i".into(), DType::Int)]).unwrap();
    let op = Op::FilterRange { column: "i".into(), lower: 0.0, upper: 10.0 };
    assert_eq!(op.apply_frame(df.clone(), Stage::Training).unwrap().height(), 2);
    assert_eq!(op.apply_frame(df, Stage::Inference).unwrap().height(), 3);
    assert_eq!(column_names(&DataFrame::empty()).len(), 0);
}

#[test]
fn unknown_pipeline_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.json");
    std::fs::write(&path, r#"{"format_version": 99, "ops": []}"#).unwrap();
    let err = FeaturePipeline::load(&path).unwrap_err().to_string();
    assert!(err.contains("format version 99"), "{err}");
}

#[test]
fn training_lags_look_back_within_groups_in_time_order() {
    use crate::features::lags_in_training;
    let values = [Some(1.0), Some(10.0), Some(2.0), None, Some(3.0), Some(20.0)];
    let keys: Vec<Option<String>> = ["a", "b", "a", "a", "a", "b"].iter().map(|k| Some(k.to_string())).collect();
    // Row 2 comes before row 0 in time.
    let order = [2, 1, 1, 3, 4, 2];
    let out = lags_in_training(&values, &keys, &order, &[1], &[2]);
    // Group a in time order: row 2 (2.0), row 0 (1.0), row 3 (null), row 4 (3.0).
    assert_eq!(
        out[0],
        vec![Value::Float(2.0), Value::Null, Value::Null, Value::Float(1.0), Value::Null, Value::Float(10.0)]
    );
    assert_eq!(out[1], vec![Value::Float(1.5), Value::Null, Value::Null, Value::Null, Value::Null, Value::Float(15.0)]);
}

#[test]
fn group_ranks_are_percentiles_with_ties_in_the_middle() {
    let s = GroupSummary::of(&mut [1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
    assert_eq!((s.rank(0.0), s.rank(1.0), s.rank(3.0), s.rank(5.0), s.rank(9.0)), (0.0, 0.0, 0.5, 1.0, 1.0));
    assert!((s.rank(2.5) - 0.375).abs() < 1e-12);
    let flat = GroupSummary::of(&mut [7.0, 7.0, 7.0]).unwrap();
    assert_eq!(flat.rank(7.0), 0.5);
    assert_eq!(s.std, Some(2.5f64.sqrt()));
}

/// A frame of `n` rows drawn from few values (nulls and NaN among them), so that many rows repeat.
/// A fixed xorshift stream: each call draws a number below its argument.
fn draws(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut x = seed | 1;
    move |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    }
}

/// A frame of `n` rows that repeat often: floats with nulls, NaN, `0.0` and `-0.0`; integers;
/// short texts; long texts (past a view's inline bytes) also as binary; booleans; dates.
fn repetitive_frame(n: usize, seed: u64) -> DataFrame {
    let mut next = draws(seed);
    let rows: Vec<Row> = (0..n)
        .map(|_| {
            let f = match next(6) {
                0 => Value::Null,
                1 => Value::Float(f64::NAN),
                2 => Value::Float(-0.0),
                k => Value::Float(k as f64 / 2.0 - 1.5),
            };
            let i = if next(4) == 0 { Value::Null } else { Value::Int(next(3) as i64) };
            let s = match next(4) {
                0 => Value::Null,
                k => Value::Str(CATS[k as usize].to_string()),
            };
            let t = match next(3) {
                0 => Value::Null,
                k => Value::Str(format!("a text longer than twelve bytes, number {k}")),
            };
            let b = match next(3) {
                0 => Value::Null,
                k => Value::Bool(k == 1),
            };
            let d = match next(3) {
                0 => Value::Null,
                k => Value::Date(19_000 + k as i32),
            };
            Row::from([
                ("f".to_string(), f),
                ("i".to_string(), i),
                ("s".to_string(), s),
                ("b".to_string(), b),
                ("d".to_string(), d),
                ("t".to_string(), t),
            ])
        })
        .collect();
    let mut df = frame_from_rows(&rows, &columns()).expect("frame from generated rows");
    // The long texts again as bytes: a type hashed through polars.
    let bytes = df.column("t").and_then(|c| c.cast(&DataType::Binary)).expect("texts as bytes");
    df.with_column(bytes.with_name("t_bytes".into())).expect("bytes column");
    df
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Dropping duplicates keeps exactly the rows a plain first-seen (or last-seen, or seen-once)
    /// scan keeps, in order, on frames large enough to be split into several parts; nulls equal
    /// nulls and NaN equals NaN.
    #[test]
    fn deduplication_keeps_the_rows_a_plain_scan_keeps(
        n in 0usize..20_000,
        seed in any::<u64>(),
        keep in prop::sample::select(vec![Keep::First, Keep::Last, Keep::None]),
    ) {
        // Two frames stacked: chunks that end where the row ranges hashed on each core do not.
        let mut df = repetitive_frame(n / 3, seed);
        df.vstack_mut(&repetitive_frame(n - n / 3, seed ^ 0x5eed)).expect("stacked");
        let rows = rows_from_frame(&df.drop("t_bytes").expect("bytes column")).expect("rows");
        // `-0.0` equals `0.0`, as in pandas.
        let key = |r: &Row| format!("{r:?}").replace("-0.0", "0.0");
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for r in &rows {
            *counts.entry(key(r)).or_default() += 1;
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut expected: Vec<bool> = match keep {
            Keep::First => rows.iter().map(|r| seen.insert(key(r))).collect(),
            Keep::Last => rows.iter().rev().map(|r| seen.insert(key(r))).collect(),
            Keep::None => rows.iter().map(|r| counts[&key(r)] == 1).collect(),
        };
        if keep == Keep::Last {
            expected.reverse();
        }
        let expected: Vec<&Row> = rows.iter().zip(&expected).filter(|(_, k)| **k).map(|(r, _)| r).collect();
        let op = Op::Deduplicate { subset: vec![], keep };
        let out = op.apply_frame(df, Stage::Training).expect("deduplicated");
        let got = rows_from_frame(&out.drop("t_bytes").expect("bytes column")).expect("rows");
        prop_assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(expected) {
            prop_assert_eq!(key(g), key(e));
        }
    }
}

/// A frame of `n` rows with one text column `t`: numbers, flags, dates in two formats, free text
/// and nulls.
fn text_frame(n: usize, seed: u64) -> DataFrame {
    const TEXTS: [&str; 9] = ["12.5", " 7 ", "yes", "No", "2008-11-09", "09/11/2008", "x", "Hello, World!  ", "-3"];
    let mut next = draws(seed);
    let rows: Vec<Row> = (0..n)
        .map(|_| {
            let text = TEXTS.get(next(10) as usize).map_or(Value::Null, |s| Value::Str((*s).to_string()));
            Row::from([("t".to_string(), text)])
        })
        .collect();
    frame_from_rows(&rows, &[("t".to_string(), DType::Str)]).expect("frame from generated rows")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Conversions and clean-up of a text column long enough to be split over the cores give
    /// what the row path gives on every row, in order.
    #[test]
    fn text_conversions_split_over_cores_equal_rows(
        n in 100_000usize..140_000,
        seed in any::<u64>(),
        op in prop_oneof![
            prop_oneof![
                Just(CastTo::Int),
                Just(CastTo::Float),
                Just(CastTo::Bool { true_values: vec!["yes".into()], false_values: vec!["No".into()] }),
                Just(CastTo::Date { formats: vec!["%Y-%m-%d".into(), "%d/%m/%Y".into()] }),
                Just(CastTo::Datetime { formats: vec!["%Y-%m-%d".into()] }),
            ].prop_map(|to| Op::Cast { column: "t".into(), to, on_error: OnError::Coerce }),
            prop::collection::vec(
                prop::sample::select(vec![TextStep::Trim, TextStep::Lower, TextStep::StripPunctuation, TextStep::EmptyToNull]),
                1..4,
            ).prop_map(|steps| Op::Text { column: "t".into(), steps }),
        ],
    ) {
        assert_frame_equals_rows(&op, &text_frame(n, seed))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arithmetic a derived column computes straight on the columns (no query plan) gives what
    /// the row path gives on every row.
    #[test]
    fn derived_arithmetic_on_columns_equals_rows(
        src in prop::sample::select(vec!["f * 2 + i", "f / i", "i % 7", "-f", "-(f - i) / 3", "2.5 - f / (i + 0.5)", "i - f"]),
        df in frame_strategy(),
    ) {
        let mut expr = Expr::parse(src).expect("test expression parses");
        let types: BTreeMap<String, DType> = columns().into_iter().collect();
        let names: Vec<String> = types.keys().cloned().collect();
        let dtype = expr.check(&|c| types.get(c).copied(), &names).expect("test expression checks");
        prop_assert!(expr.eval_arith_frame(&df).is_some(), "{} is not evaluated on the columns", src);
        assert_frame_equals_rows(&Op::Derive { output: "derived".into(), expr, dtype }, &df)?;
    }
}

/// Text steps the plain way: one new string per step.
fn clean_text_by_steps(steps: &[TextStep], input: &str) -> Option<String> {
    let mut s = input.to_string();
    for step in steps {
        s = match step {
            TextStep::Trim => s.trim().to_string(),
            TextStep::Lower => s.to_lowercase(),
            TextStep::Upper => s.to_uppercase(),
            TextStep::Title => crate::ops::title_case(&s),
            TextStep::StripPunctuation => {
                s.chars().filter(|c| c.is_alphanumeric() || *c == '_' || c.is_whitespace()).collect()
            }
            TextStep::CollapseSpaces => s.split_whitespace().collect::<Vec<_>>().join(" "),
            TextStep::EmptyToNull if s.is_empty() => return None,
            TextStep::EmptyToNull => s,
        };
    }
    Some(s)
}

proptest! {
    /// Cleaning text into one reused buffer gives what a new string per step gives, for any
    /// steps in any order on ASCII and other text, the buffer holding anything beforehand.
    #[test]
    fn text_steps_in_one_buffer_equal_a_new_string_per_step(
        input in "[ a-zA-Z_.,!Éé\t]{0,12}",
        steps in proptest::collection::vec(
            prop::sample::select(vec![
                TextStep::Trim, TextStep::Lower, TextStep::Upper, TextStep::Title,
                TextStep::StripPunctuation, TextStep::CollapseSpaces, TextStep::EmptyToNull,
            ]),
            0..5,
        ),
        stale in "[a-z ]{0,6}",
    ) {
        let mut buf = stale;
        let got = crate::ops::clean_text_into(&steps, &input, &mut buf).then_some(buf);
        prop_assert_eq!(got, clean_text_by_steps(&steps, &input));
    }
}

#[test]
fn the_road_to_the_features_keeps_what_they_need_and_names_the_columns_to_send() {
    let expr = |src: &str| Expr::parse(src).expect("parses");
    let mut pipeline = FeaturePipeline::new();
    pipeline.extend([
        Op::Rename {
            mapping: vec![
                ("Mass".into(), "mass".into()),
                ("Isle".into(), "isle".into()),
                ("Kind".into(), "kind".into()),
            ],
        },
        Op::DropNullRows { columns: vec!["mass".into()], max_null_fraction: 0.0 },
        Op::FillNull { column: "kind".into(), value: Value::Str("x".into()) },
        Op::Linear { column: "mass".into(), output: Some("kg".into()), factor: 0.001, offset: 0.0 },
        Op::Drop { columns: vec!["mass".into()] },
        Op::Derive { output: "twice".into(), expr: expr("kg * 2"), dtype: Some(DType::Float) },
        Op::Scale { column: "unused".into(), center: 1.0, scale: 2.0 },
    ]);
    let road = pipeline.road_to(["twice", "isle"]);
    assert_eq!(road.inputs.iter().map(String::as_str).collect::<Vec<_>>(), ["Isle", "Mass"]);
    let kinds: Vec<String> = road.ops.iter().map(Op::describe).collect();
    assert_eq!(kinds, ["rename 2 column(s)", "mass * 0.001 + 0", "twice = kg * 2"], "{:?}", road.ops);
    // A column renamed away and read later is read as missing on the road too.
    let mut pipeline = FeaturePipeline::new();
    pipeline.extend([
        Op::Rename { mapping: vec![("s".into(), "f".into())] },
        Op::FillNull { column: "s".into(), value: Value::Str("unknown".into()) },
    ]);
    let road = pipeline.road_to(["s"]);
    assert!(road.inputs.is_empty(), "{road:?}");
    let mut row = Row::from([("s".to_string(), Value::Str("Adelie".into()))]);
    FeaturePipeline { ops: road.ops, ..FeaturePipeline::new() }.transform_row(&mut row).expect("runs");
    assert_eq!(row["s"], Value::Str("unknown".into()));
}

#[test]
fn many_bounded_draws_are_the_draws_one_at_a_time() {
    for n in [0u64, 1, 2, 3, 7, 1_000, u64::MAX / 3 + 7] {
        let mut one = crate::Seed(9).draws();
        let each: Vec<u64> = (0..200).map(|_| one.below(n)).collect();
        let many: Vec<u64> = crate::Seed(9).draws().below_many(n, 200).collect();
        assert_eq!(many, each, "n = {n}");
    }
}
