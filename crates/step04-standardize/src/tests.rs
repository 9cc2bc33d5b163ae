//! Standardize tests.

use std::path::Path;

use mlops_core::frame::{Stage, column_names, rows_from_frame};
use mlops_core::{FeaturePipeline, Value};
use polars::prelude::{DataFrame, df};
use proptest::prelude::*;

use super::*;

fn params(yaml: &str) -> StandardizeParams {
    mlops_core::config::parse_yaml(yaml, Path::new("std.yaml")).unwrap()
}

fn raw() -> DataFrame {
    df!(
        "Culmen Length (mm)" => [39.1234, 40.0],
        "studyName" => ["PAL0708", "PAL0809"],
        "Date Egg" => ["2007-11-11", "11/12/2008"],
        "Species" => ["adelie penguin", "GENTOO penguin"],
        "Status" => ["ACTIVE", "INACTIVE"],
        "Body Mass (g)" => [3750i64, 3800],
        "culmen_length_mm" => [1.0, 2.0],
    )
    .unwrap()
}

#[test]
fn names_follow_the_convention_and_collisions_are_reported() {
    assert_eq!(snake_case("Delta 15 N (o/oo)"), "delta_15_n_o_oo");
    assert_eq!(snake_case("HTTPServer2Go"), "http_server2_go");
    assert_eq!(camel_case("Culmen Length (mm)"), "culmenLengthMm");
    let out = params("column_names: snake_case\n").fit_transform(raw()).unwrap();
    assert_eq!(
        column_names(&out.frame),
        vec!["culmen_length_mm", "study_name", "date_egg", "species", "status", "body_mass_g", "culmen_length_mm_2"]
    );
    assert_eq!(out.report.collisions.len(), 1);
    assert!(out.report.collisions[0].contains("culmen_length_mm_2"));
}

#[test]
fn dates_case_maps_round_and_units() {
    let out = params(
        r#"
column_names: snake_case
rename: {"Body Mass (g)": mass}
dates:
  date_egg: {formats: ['%Y-%m-%d', '%d/%m/%Y'], output: string}
case: {species: title}
values:
  status: {map: {ACTIVE: A, INACTIVE: I}}
round: {culmen_length_mm: 2}
units:
  mass: {factor: 0.001, rename: mass_kg}
"#,
    )
    .fit_transform(raw())
    .unwrap();
    let rows = rows_from_frame(&out.frame).unwrap();
    assert_eq!(rows[1]["date_egg"], Value::Str("2008-12-11".into()));
    assert_eq!(rows[0]["species"], Value::Str("Adelie Penguin".into()));
    assert_eq!(rows[1]["status"], Value::Str("I".into()));
    assert_eq!(rows[0]["culmen_length_mm"], Value::Float(39.12));
    assert_eq!(rows[0]["mass_kg"], Value::Float(3.75));
    assert!(!rows[0].contains_key("mass"));
    assert!(out.report.unparsed_dates.is_empty());

    // Serving a raw record through the same operations gives the same row.
    let pipeline = FeaturePipeline { ops: out.ops, ..FeaturePipeline::new() };
    let mut raw_rows = rows_from_frame(&raw()).unwrap();
    pipeline.transform_rows(&mut raw_rows).unwrap();
    assert_eq!(raw_rows[1], rows[1]);
}

#[test]
fn bad_keys_and_types_are_named() {
    let err = params("column_names: snake_case\ncase: {Species: title}\n").fit_transform(raw()).unwrap_err();
    assert!(err.to_string().starts_with("standardize.case: column `Species` not found"), "{err}");
    let err = params("round: {Species: 1}\n").fit_transform(raw()).unwrap_err();
    assert!(err.to_string().contains("standardize.round.Species: `Species` is string, not a number"), "{err}");
    let err = params("values:\n  Status: {map: {ACTIVE: 1}}\n").fit_transform(raw()).unwrap_err();
    assert!(err.to_string().contains("mix types"), "{err}");
    let err = params("rename: {Nope: x}\n").fit_transform(raw()).unwrap_err();
    assert!(err.to_string().contains("standardize.rename: column `Nope`"), "{err}");
    let err =
        mlops_core::config::parse_yaml::<StandardizeParams>("column_names: kebab\n", Path::new("s.yaml")).unwrap_err();
    assert!(err.to_string().contains("s.yaml: line 1") && err.to_string().contains("kebab"), "{err}");
}

#[test]
fn unparsable_dates_are_counted() {
    let data = df!("d" => ["2008-01-02", "someday", "2009-02-30"]).unwrap();
    let out = params("dates: {d: {formats: ['%Y-%m-%d']}}\n").fit_transform(data).unwrap();
    assert_eq!(out.report.unparsed_dates["d"], 2);
    let _ = Stage::Inference;
}

proptest! {
    #[test]
    fn standardized_names_are_unique_and_snake_case(names in prop::collection::vec("[A-Za-z0-9 ()/_-]{0,12}", 1..8)) {
        let mut seen = std::collections::BTreeSet::new();
        let unique: Vec<String> = names.into_iter().filter(|n| seen.insert(n.clone())).collect();
        let columns: Vec<polars::prelude::Column> = unique.iter().map(|n| polars::prelude::Column::new(n.as_str().into(), [1i64])).collect();
        let data = DataFrame::new(1, columns).unwrap();
        let out = params("column_names: snake_case\n").fit_transform(data).unwrap();
        let got = column_names(&out.frame);
        let set: std::collections::BTreeSet<&String> = got.iter().collect();
        prop_assert_eq!(set.len(), got.len());
        for n in &got {
            prop_assert!(n.chars().all(|c| c.is_lowercase() || c.is_ascii_digit() || c == '_'), "{}", n);
        }
    }
}
