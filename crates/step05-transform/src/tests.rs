//! Transform tests.

use std::collections::BTreeMap;
use std::path::Path;

use mlops_core::frame::{Stage, column_names, frame_from_rows, rows_from_frame};
use mlops_core::{DType, FeaturePipeline, Row, Transform, Value};
use polars::prelude::{DataFrame, df};
use proptest::prelude::*;

use super::*;

fn params(yaml: &str) -> TransformParams {
    mlops_core::config::parse_yaml(yaml, Path::new("t.yaml")).unwrap()
}

fn none() -> BTreeMap<String, DataFrame> {
    BTreeMap::new()
}

fn f(df: &DataFrame, c: &str) -> Vec<Option<f64>> {
    df.column(c).unwrap().cast(&polars::prelude::DataType::Float64).unwrap().f64().unwrap().iter().collect()
}

fn penguins() -> DataFrame {
    df!(
        "species" => ["Adelie", "Adelie", "Gentoo", "Chinstrap", "Gentoo"],
        "island" => ["Torgersen", "Biscoe", "Biscoe", "Dream", "Biscoe"],
        "mass" => [3750.0, 3800.0, 5000.0, 3500.0, 5200.0],
        "sex" => [Some("MALE"), Some("FEMALE"), None, Some("FEMALE"), Some("MALE")],
    )
    .unwrap()
}

#[test]
fn scalers_use_scikit_learn_statistics() {
    let data = df!("x" => [1.0, 2.0, 3.0, 4.0, 10.0]).unwrap();
    let standard = params("scale: {x: standard}\n").fit_transform(data.clone(), &none()).unwrap();
    let (mean, std) = standard.report.scaled["x"];
    assert_eq!(mean, 4.0);
    assert!((std - 10f64.sqrt()).abs() < 1e-12); // population std of 1,2,3,4,10
    let minmax = params("scale: {x: minmax}\n").fit_transform(data.clone(), &none()).unwrap();
    assert_eq!(f(&minmax.frame, "x"), vec![Some(0.0), Some(1.0 / 9.0), Some(2.0 / 9.0), Some(3.0 / 9.0), Some(1.0)]);
    let robust = params("scale: {x: robust}\n").fit_transform(data, &none()).unwrap();
    assert_eq!(robust.report.scaled["x"], (3.0, 2.0));
    let constant = params("scale: {x: standard}\n").fit_transform(df!("x" => [5.0, 5.0]).unwrap(), &none()).unwrap();
    assert_eq!(f(&constant.frame, "x"), vec![Some(0.0), Some(0.0)]);
}

#[test]
fn encodings_one_hot_ordinal_label_and_unknowns() {
    let out = params(
        "encode:\n  island: one_hot\n  sex: label\n  species: {ordinal: {categories: [Adelie, Chinstrap, Gentoo]}}\n",
    )
    .fit_transform(penguins(), &none())
    .unwrap();
    assert_eq!(out.report.encoded["island"], vec!["island_biscoe", "island_dream", "island_torgersen"]);
    assert!(!column_names(&out.frame).contains(&"island".to_string()));
    assert_eq!(f(&out.frame, "island_biscoe"), vec![Some(0.0), Some(1.0), Some(1.0), Some(0.0), Some(1.0)]);
    assert_eq!(f(&out.frame, "sex"), vec![Some(1.0), Some(0.0), None, Some(0.0), Some(1.0)]);
    assert_eq!(f(&out.frame, "species")[3], Some(1.0));

    // Serving: an unseen island is all zeros, an unseen species code -1.
    let pipeline = FeaturePipeline { ops: out.ops, ..FeaturePipeline::new() };
    let mut row = Row::from([
        ("island".to_string(), Value::Str("Anvers".into())),
        ("species".to_string(), Value::Str("Emperor".into())),
        ("sex".to_string(), Value::Str("MALE".into())),
        ("mass".to_string(), Value::Float(4000.0)),
    ]);
    pipeline.transform_row(&mut row).unwrap();
    assert_eq!(row["island_dream"], Value::Float(0.0));
    assert_eq!(row["species"], Value::Int(-1));

    let strict = params("encode:\n  island: {one_hot: {unknown: error}}\n").fit_transform(penguins(), &none()).unwrap();
    let pipeline = FeaturePipeline { ops: strict.ops, ..FeaturePipeline::new() };
    let mut row = Row::from([("island".to_string(), Value::Str("Anvers".into()))]);
    let err = pipeline.transform_row(&mut row).unwrap_err().to_string();
    assert!(err.contains("`island`: unknown category \"Anvers\""), "{err}");
}

#[test]
fn target_encoding_smooths_towards_the_prior_on_training_rows_only() {
    let train = penguins().slice(0, 4);
    let out =
        params("encode:\n  island: {target: {target: mass, smoothing: 1}}\n").fit_transform(train, &none()).unwrap();
    // prior = mean(3750, 3800, 5000, 3500) = 4012.5; Biscoe: n=2, mean 4400 -> (8800 + 4012.5) / 3.
    let encoded = f(&out.frame, "island_te");
    assert!((encoded[1].unwrap() - (8800.0 + 4012.5) / 3.0).abs() < 1e-9);
    // The fifth row never took part in fitting: the table is unchanged by it.
    let pipeline = FeaturePipeline { ops: out.ops, ..FeaturePipeline::new() };
    let served = pipeline.transform_frame(penguins()).unwrap();
    assert_eq!(f(&served, "island_te")[4], encoded[1]);

    let multi = params("encode:\n  island: {target: {target: species, smoothing: 0}}\n")
        .fit_transform(penguins(), &none())
        .unwrap();
    assert_eq!(multi.report.encoded["island"], vec!["island_te_adelie", "island_te_chinstrap", "island_te_gentoo"]);
    assert_eq!(f(&multi.frame, "island_te_gentoo")[1], Some(2.0 / 3.0));
}

#[test]
fn derive_maps_and_bins() {
    let out = params(
        r#"
derive:
  - {name: mass_kg, expr: mass / 1000}
  - {name: heavy, expr: "mass_kg > 4 and species != 'Chinstrap'"}
maps:
  species: {map: {Adelie: A, Gentoo: G}, unmapped: null, output: code}
bins:
  mass: {edges: [0, 3600, 4500, 10000], labels: [light, medium, heavy], output: mass_class}
"#,
    )
    .fit_transform(penguins(), &none())
    .unwrap();
    let rows = rows_from_frame(&out.frame).unwrap();
    assert_eq!(rows[2]["mass_kg"], Value::Float(5.0));
    assert_eq!(rows[2]["heavy"], Value::Bool(true));
    assert_eq!(rows[3]["code"], Value::Null);
    assert_eq!(rows[0]["mass_class"], Value::Str("medium".into()));
    assert_eq!(rows[3]["mass_class"], Value::Str("light".into()));
}

#[test]
fn joins_all_kinds_with_keys_suffixes_and_fan_out() {
    let islands =
        df!("island" => ["Biscoe", "Dream", "Anvers"], "area" => [1.0, 2.0, 3.0], "mass" => [0.0, 0.0, 0.0]).unwrap();
    let sources = BTreeMap::from([("islands".to_string(), islands)]);
    let left = params("joins:\n  - {right: islands, on: [island]}\n").fit_transform(penguins(), &sources).unwrap();
    assert_eq!(left.frame.height(), 5);
    assert_eq!(f(&left.frame, "area"), vec![None, Some(1.0), Some(1.0), Some(2.0), Some(1.0)]);
    assert!(column_names(&left.frame).contains(&"mass_right".to_string()));
    let inner = params("joins:\n  - {right: islands, how: inner, on: [island], suffix: _isl}\n")
        .fit_transform(penguins(), &sources)
        .unwrap();
    assert_eq!(inner.frame.height(), 4);
    assert!(column_names(&inner.frame).contains(&"mass_isl".to_string()));
    let right =
        params("joins:\n  - {right: islands, how: right, on: [island]}\n").fit_transform(penguins(), &sources).unwrap();
    assert_eq!(right.frame.height(), 5);
    let outer =
        params("joins:\n  - {right: islands, how: outer, on: [island]}\n").fit_transform(penguins(), &sources).unwrap();
    assert_eq!(outer.frame.height(), 6);
    assert_eq!(outer.frame.column("island").unwrap().null_count(), 0, "outer join keys are coalesced");

    let visits =
        df!("where" => ["Biscoe", "Biscoe", "Dream"], "sex_seen" => ["MALE", "FEMALE", "MALE"], "visits" => [1, 2, 3])
            .unwrap();
    let sources = BTreeMap::from([("visits".to_string(), visits)]);
    let multi = params("joins:\n  - {right: visits, left_on: [island, sex], right_on: [where, sex_seen]}\n")
        .fit_transform(penguins(), &sources)
        .unwrap();
    assert_eq!(f(&multi.frame, "visits"), vec![None, Some(2.0), None, None, Some(1.0)]);
    let fan = params("joins:\n  - {right: visits, left_on: [island], right_on: [where]}\n")
        .fit_transform(penguins(), &sources)
        .unwrap();
    assert_eq!(fan.frame.height(), 8);
    assert!(fan.report.warnings[0].contains("fans out"), "{:?}", fan.report.warnings);
}

/// A join with a small source becomes a lookup op: on every training row it gives the joined
/// values the join gave, on the frame and on each row alike; a key the source lacks gives nulls.
/// A source over the limit is not embedded, and the report says which columns a caller sends.
#[test]
fn a_join_with_a_small_source_is_embedded_and_answers_as_the_join_did() {
    let islands = df!("island" => ["Biscoe", "Dream", "Torgersen"], "latitude" => [-65.4, -64.7, -64.8], "mass" => [1.0, 2.0, 3.0])
        .unwrap();
    let sources = BTreeMap::from([("islands".to_string(), islands)]);
    let out = params("joins:\n  - {right: islands, on: [island]}\nderive:\n  - {name: south, expr: latitude * 2}\n")
        .fit_transform(penguins(), &sources)
        .unwrap();
    assert!(out.report.joins[0].embedded);
    assert_eq!(out.report.joins[0].columns, ["latitude", "mass_right"]);
    let pipeline = FeaturePipeline { ops: out.ops.clone(), ..FeaturePipeline::new() };
    assert!(matches!(&out.ops[0], mlops_core::Op::Lookup { source, .. } if source == "islands"), "{:?}", out.ops);
    // The source rows without the joined columns, through the pipeline: what the join gave.
    let plain = penguins();
    let framed = pipeline.apply_frame(plain.clone(), Stage::Inference).unwrap();
    for c in ["latitude", "mass_right", "south"] {
        assert_eq!(f(&framed, c), f(&out.frame, c), "{c}");
    }
    let mut rows = rows_from_frame(&plain).unwrap();
    pipeline.transform_rows(&mut rows).unwrap();
    assert_eq!(rows_from_frame(&framed).unwrap(), rows);
    let mut unknown = Row::from([("island".to_string(), Value::Str("Anvers".into()))]);
    pipeline.transform_row(&mut unknown).unwrap();
    assert_eq!((unknown["latitude"].clone(), unknown["south"].clone()), (Value::Null, Value::Null));

    let big = df!(
        "island" => (0..=LOOKUP_ROWS as i64).map(|i| format!("i{i}")).collect::<Vec<_>>(),
        "area" => (0..=LOOKUP_ROWS as i64).collect::<Vec<_>>(),
    )
    .unwrap();
    let sources = BTreeMap::from([("islands".to_string(), big)]);
    let out = params("joins:\n  - {right: islands, on: [island]}\n").fit_transform(penguins(), &sources).unwrap();
    assert!(!out.report.joins[0].embedded && out.ops.is_empty(), "{:?}", out.report.joins);
    assert_eq!(out.report.joins[0].columns, ["area"]);
}

#[test]
fn bad_joins_and_expressions_name_what_is_wrong() {
    let islands = df!("island" => ["Biscoe"], "id" => [1]).unwrap();
    let sources = BTreeMap::from([("islands".to_string(), islands)]);
    let err = params("joins:\n  - {right: islands, on: [isle]}\n").fit_transform(penguins(), &sources).unwrap_err();
    assert!(err.to_string().starts_with("transform.joins.islands.left_on: column `isle` not found"), "{err}");
    let err = params("joins:\n  - {right: isles, on: [island]}\n").fit_transform(penguins(), &sources).unwrap_err();
    assert!(err.to_string().contains("no source named `isles` (sources: islands)"), "{err}");
    let err = params("joins:\n  - {right: islands, left_on: [island], right_on: [id]}\n")
        .fit_transform(penguins(), &sources)
        .unwrap_err();
    assert!(err.to_string().contains("key `island` is str on the left but `id` is i32"), "{err}");
    let err = params("derive:\n  - {name: x, expr: 'mass * massa'}\n").fit_transform(penguins(), &none()).unwrap_err();
    assert!(err.to_string().contains("derive `x`") && err.to_string().contains("`massa` not found"), "{err}");
    let err =
        params("bins:\n  mass: {edges: [0, 10], labels: [a, b]}\n").fit_transform(penguins(), &none()).unwrap_err();
    assert!(err.to_string().contains("transform.bins.mass"), "{err}");
    let err = params("scale: {species: standard}\n").fit_transform(penguins(), &none()).unwrap_err();
    assert!(err.to_string().contains("transform.scale.species: `species` is string, not a number"), "{err}");
}

#[test]
fn concat_appends_sources_by_column_name() {
    let extra = df!("species" => ["Emperor"], "mass" => [30000.0], "colony" => ["Cape"]).unwrap();
    let sources = BTreeMap::from([("extra".to_string(), extra)]);
    let out = params("concat: [extra]\n").fit_transform(penguins(), &sources).unwrap();
    assert_eq!(out.frame.height(), 6);
    assert_eq!(out.frame.column("colony").unwrap().null_count(), 5);
    assert_eq!(out.report.concatenated, vec![("extra".to_string(), 1)]);
}

fn arbitrary_frame() -> impl Strategy<Value = DataFrame> {
    let num = prop_oneof![Just(Value::Null), (-100.0..100.0f64).prop_map(Value::Float)];
    let cat = prop_oneof![Just(Value::Null), prop::sample::select(vec!["a", "b", "c d"]).prop_map(Value::from)];
    prop::collection::vec((num.clone(), num, cat.clone(), cat), 1..30).prop_map(|rows| {
        let rows: Vec<Row> = rows
            .into_iter()
            .map(|(x, y, c, t)| Row::from([("x".into(), x), ("y".into(), y), ("c".into(), c), ("t".into(), t)]))
            .collect();
        frame_from_rows(
            &rows,
            &[
                ("x".into(), DType::Float),
                ("y".into(), DType::Float),
                ("c".into(), DType::Str),
                ("t".into(), DType::Str),
            ],
        )
        .unwrap()
    })
}

const ALL_PARTS: &str = r#"
derive:
  - {name: z, expr: "coalesce(x, 0) * 2 - y"}
maps:
  c: {map: {a: A}, output: c2}
bins:
  y: {edges: [-100, 0, 100], labels: [neg, pos]}
encode:
  c: one_hot
  c2: label
  t: {target: {target: x, smoothing: 2}}
scale:
  x: standard
  z: robust
"#;

proptest! {
    #[test]
    fn fitted_transforms_serve_rows_like_frames(train in arbitrary_frame(), serve in arbitrary_frame()) {
        // `x` is the target of `t`'s encoding and is scaled; `z` has a value wherever `y` has one.
        // Without a value of either there is nothing to learn, and the error says which key.
        let has_values = |c: &str| train.column(c).unwrap().null_count() < train.height();
        let nothing_to_learn = if !has_values("x") {
            Some(("encode.t.target", "target `x` has no values in the training rows"))
        } else if !has_values("y") {
            Some(("scale.z", "no values in the training rows to fit a scaler"))
        } else {
            None
        };
        let out = match (nothing_to_learn, params(ALL_PARTS).fit_transform(train, &none())) {
            (None, Ok(out)) => out,
            (Some(want), Err(TransformError::Invalid { key, message })) => {
                prop_assert_eq!((key.as_str(), message.as_str()), want);
                return Ok(());
            }
            (want, got) => return Err(TestCaseError::fail(format!("expected {want:?}, got {:?}", got.map(|o| o.frame)))),
        };
        let json = serde_json::to_string(&out.ops).unwrap();
        let back: Vec<mlops_core::Op> = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &out.ops);
        let pipeline = FeaturePipeline { ops: back, ..FeaturePipeline::new() };
        let frame = pipeline.apply_frame(serve.clone(), Stage::Inference).unwrap();
        let mut rows = rows_from_frame(&serve).unwrap();
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
}
