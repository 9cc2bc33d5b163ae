//! Validation tests: every check kind finds what it should, schema mistakes are errors, and
//! properties over arbitrary frames.

use std::collections::BTreeMap;
use std::path::Path;

use mlops_core::frame::frame_from_rows;
use mlops_core::{DType, Row, Value};
use polars::prelude::{DataFrame, SerReader, df};
use proptest::prelude::*;

use super::*;

fn schema(yaml: &str) -> Schema {
    mlops_core::config::parse_yaml(yaml, Path::new("schema.yaml")).unwrap()
}

fn run(data: &DataFrame, yaml: &str) -> Report {
    validate(data, &schema(yaml), &BTreeMap::new()).unwrap()
}

fn failure<'a>(report: &'a Report, check: &str) -> &'a Failure {
    report.failures.iter().find(|f| f.check == check).unwrap_or_else(|| panic!("no `{check}` failure in {report}"))
}

fn people() -> DataFrame {
    df!(
        "id" => [1i64, 2, 3, 3, 5],
        "name" => [Some("ana"), Some("Bo"), None, Some("cy"), Some("dee")],
        "age" => [Some(34.0), Some(-1.0), Some(51.0), Some(130.0), None],
        "dept" => ["eng", "ops", "eng", "hr", "eng"],
        "email" => ["a@x.io", "bo@x.io", "nope", "c@x.io", "d@x.io"],
        "dep_time" => [900, 1000, 1200, 800, 700],
        "arr_time" => [Some(1100), Some(950), None, Some(900), Some(650)],
    )
    .unwrap()
}

#[test]
fn each_column_check_counts_and_samples() {
    let report = run(
        &people(),
        r#"
columns:
  id: {type: int, unique: true}
  name: {nullable: false, regex: '^[a-z]+$', min_length: 3}
  age: {type: float, min: 0, max: 120}
  dept: {allowed: [eng, ops], severity: warn}
  email: {regex: '^[^@]+@[^@]+$'}
  salary: {type: float}
"#,
    );
    let unique = failure(&report, "unique");
    assert_eq!((unique.count, unique.samples.len()), (2, 2));
    assert_eq!(unique.samples[0].row, 2);
    assert_eq!(failure(&report, "nullable").samples[0].row, 2);
    let regex = report.failures.iter().filter(|f| f.check == "regex").count();
    assert_eq!(regex, 2, "{report}");
    assert_eq!(failure(&report, "min_length").count, 2); // "Bo", "cy"
    let min = failure(&report, "min");
    assert_eq!((min.count, min.samples[0].row, min.samples[0].value.as_str()), (1, 1, "-1.0"));
    assert_eq!(failure(&report, "max").count, 1);
    let allowed = failure(&report, "allowed");
    assert_eq!((allowed.count, allowed.severity), (1, Severity::Warn));
    assert!((allowed.percent - 20.0).abs() < 1e-9);
    let required = failure(&report, "required");
    assert_eq!(required.column.as_deref(), Some("salary"));
    assert!(!report.passed());
}

#[test]
fn rules_compare_columns_and_ignore_nulls() {
    let report = run(&people(), "rules:\n  - {name: arrives_after_departure, expr: 'arr_time >= dep_time'}\n");
    let rule = failure(&report, "rule:arrives_after_departure");
    assert_eq!(rule.count, 2, "{report}");
    assert_eq!(rule.samples[0].row, 1);
    assert_eq!(rule.samples[0].value, "arr_time=950, dep_time=1000");
}

#[test]
fn rule_on_a_missing_column_is_a_finding() {
    let report = run(&people(), "rules:\n  - {name: r, expr: 'height > 0', severity: warn}\n");
    let rule = failure(&report, "rule:r");
    assert!(rule.message.contains("column `height` not found"), "{}", rule.message);
    assert!(report.passed(), "warn severity must not fail the run");
}

#[test]
fn type_mismatch_is_reported() {
    let data = df!("n" => ["1", "2", "x"]).unwrap();
    let report = run(&data, "columns:\n  n: {type: int}\n");
    let t = failure(&report, "type");
    assert_eq!(t.count, 3);
    assert!(t.message.contains("stored as string"), "{}", t.message);
}

#[test]
fn compound_unique_rows_extra_columns_and_dates() {
    let data = df!("a" => [1, 1, 2], "b" => ["x", "x", "y"], "c" => [0, 0, 0]).unwrap();
    let report =
        run(&data, "columns: {a: {}, b: {}}\nextra_columns: warn\nunique: [{columns: [a, b]}]\nrows: {min: 5}\n");
    assert_eq!(failure(&report, "compound_unique").count, 2);
    assert_eq!(failure(&report, "extra_column").column.as_deref(), Some("c"));
    assert!(failure(&report, "rows").message.contains("found 3"));

    let rows: Vec<Row> = [13_000, 14_000].iter().map(|d| Row::from([("when".to_string(), Value::Date(*d))])).collect();
    let dates = frame_from_rows(&rows, &[("when".into(), DType::Date)]).unwrap();
    let report = run(&dates, "columns:\n  when: {type: date, min: '2006-01-01'}\n");
    assert_eq!(failure(&report, "min").count, 1, "{report}");
}

#[test]
fn foreign_keys_single_and_composite() {
    let orders = df!("dept" => ["eng", "ops", "law", "eng"], "site" => ["a", "b", "a", "z"]).unwrap();
    let depts = df!("name" => ["eng", "ops"], "site" => ["a", "b"]).unwrap();
    let sources = BTreeMap::from([("departments".to_string(), depts)]);
    let single = schema("foreign_keys:\n  - {columns: [dept], source: departments, references: [name]}\n");
    let report = validate(&orders, &single, &sources).unwrap();
    assert_eq!(failure(&report, "foreign_key").samples[0].value, "law");
    let pair = schema("foreign_keys:\n  - {columns: [dept, site], source: departments, references: [name, site]}\n");
    let report = validate(&orders, &pair, &sources).unwrap();
    assert_eq!(failure(&report, "foreign_key").count, 2);

    let unknown = schema("foreign_keys:\n  - {columns: [dept], source: depts, references: [name]}\n");
    let err = validate(&orders, &unknown, &sources).unwrap_err();
    assert!(err.to_string().contains("no source named `depts` (sources: departments)"), "{err}");
}

#[test]
fn schema_mistakes_are_errors_naming_what_is_wrong() {
    let data = people();
    let err = validate(&data, &schema("columns:\n  email: {regex: '[a-'}\n"), &BTreeMap::new()).unwrap_err();
    assert!(err.to_string().starts_with("schema: column `email`: invalid regex"), "{err}");
    let err = validate(&data, &schema("rules:\n  - {name: r1, expr: 'a = b'}\n"), &BTreeMap::new()).unwrap_err();
    assert!(err.to_string().contains("rule `r1`") && err.to_string().contains("use `==`"), "{err}");
    let err = validate(&data, &schema("columns:\n  age: {min: 10, max: 1}\n"), &BTreeMap::new()).unwrap_err();
    assert!(err.to_string().contains("min is above max"), "{err}");
    let err = mlops_core::config::parse_yaml::<Schema>("columns:\n  age:\n    nulable: false\n", Path::new("s.yaml"))
        .unwrap_err();
    assert!(err.to_string().contains("s.yaml: line 3") && err.to_string().contains("nulable"), "{err}");
}

#[test]
fn report_prints_as_table_and_json() {
    let report = run(&people(), "columns:\n  age: {max: 120}\n");
    let text = report.to_string();
    assert!(text.contains("1 checks on 5 rows x 7 columns: 0 passed, 1 error(s)"), "{text}");
    assert!(text.contains("3: 130.0"), "{text}");
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    assert_eq!(json["failures"][0]["check"], "max");
    assert_eq!(json["failures"][0]["samples"][0]["row"], 3);
}

#[test]
fn shipped_penguins_pass_their_inferred_schema() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/raw/penguins-raw.csv");
    let data = polars::prelude::CsvReadOptions::default()
        .with_has_header(true)
        .map_parse_options(|p| p.with_null_values(Some(polars::prelude::NullValues::AllColumns(vec!["NA".into()]))))
        .try_into_reader_with_file_path(Some(path))
        .unwrap()
        .finish()
        .unwrap();
    let inferred = infer(&data).unwrap();
    assert_eq!(inferred.columns["Species"].allowed.as_ref().map(Vec::len), Some(3));
    assert_eq!(inferred.columns["Sample Number"].dtype, Some(DType::Int));
    let yaml = schema_to_yaml(&inferred).unwrap();
    let reloaded: Schema = mlops_core::config::parse_yaml(&yaml, Path::new("inferred.yaml")).unwrap();
    let report = validate(&data, &reloaded, &BTreeMap::new()).unwrap();
    assert!(report.failures.is_empty(), "{report}");
}

fn arbitrary_frame() -> impl Strategy<Value = DataFrame> {
    let cell = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::Int),
        prop::num::f64::ANY.prop_map(Value::Float),
        "[a-c ]{0,3}".prop_map(Value::Str),
    ];
    prop::collection::vec(prop::collection::vec(cell, 3), 0..20).prop_map(|rows| {
        let rows: Vec<Row> = rows
            .into_iter()
            .map(|cells| cells.into_iter().enumerate().map(|(i, v)| (format!("c{i}"), v)).collect())
            .collect();
        let types = [DType::Int, DType::Float, DType::Str];
        let columns: Vec<(String, DType)> = types.iter().enumerate().map(|(i, t)| (format!("c{i}"), *t)).collect();
        frame_from_rows(&rows, &columns).unwrap()
    })
}

proptest! {
    #[test]
    fn validation_never_panics_and_infer_passes(data in arbitrary_frame()) {
        let inferred = infer(&data).unwrap();
        let report = validate(&data, &inferred, &BTreeMap::new()).unwrap();
        prop_assert!(report.failures.is_empty(), "{}", report);
        let strict = schema(
            "columns:\n  c0: {type: float, min: 0, max: 10, unique: true, nullable: false}\n  c2: {allowed: [a, b], regex: '^a', min_length: 1}\nrules:\n  - {name: r, expr: 'c0 + c1 > 0 or len(c2) == 2'}\n",
        );
        let report = validate(&data, &strict, &BTreeMap::new()).unwrap();
        for f in &report.failures {
            prop_assert!(f.count <= data.height().max(1));
            prop_assert!(f.samples.len() <= 5);
        }
    }
}
