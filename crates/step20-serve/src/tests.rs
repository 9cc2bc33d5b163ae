#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/fixture/mod.rs"]
mod fixture;

use mlops_core::{ColumnSchema, DType, TaskKind, Value};
use proptest::prelude::*;

use crate::protocol::{self, non_finite_as_null};
use crate::{CategoryPolicy, Cell, ModelSource, cell_value};

#[test]
fn python_non_finite_tokens_read_as_null_outside_strings_only() {
    let body = br#"{"a": [1, NaN, "NaN \" Infinity", -Infinity], "b": {"c": Infinity}}"#;
    let fixed = String::from_utf8(non_finite_as_null(body).unwrap()).unwrap();
    assert_eq!(fixed, r#"{"a": [1, null, "NaN \" Infinity", null], "b": {"c": null}}"#);
    assert_eq!(non_finite_as_null(br#"{"a": "NaN"}"#), None);
}

#[test]
fn a_pandas_body_with_nan_is_read_and_the_nan_is_a_missing_value() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = fixture::package(dir.path(), "pkg", TaskKind::BinaryClassification, 1.0);
    let scorer = ModelSource::Package(pkg).load(CategoryPolicy::Warn).unwrap();
    let body = br#"{"dataframe_split": {"index": [0], "columns": ["x", "n", "color", "day", "flag", "note"],
        "data": [[1.5, NaN, "red", "2024-01-01T00:00:00", true, NaN]]}}"#;
    let parsed = protocol::mlflow_json(&scorer, body, 10).unwrap();
    assert_eq!(parsed.rows[0]["n"], Value::Null);
    assert_eq!(parsed.rows[0]["note"], Value::Null);
    assert_eq!(parsed.rows[0]["day"], Value::Date(19723));
    let body = br#"{"instances": [{"x": NaN, "n": 1, "color": "red", "day": "2024-01-01"}]}"#;
    let err = protocol::mlflow_json(&scorer, body, 10).unwrap_err();
    assert_eq!((err.status(), err.column.as_deref()), (422, Some("x")));
    let err = protocol::mlflow_json(&scorer, b"{\"instances\": [Nope]}", 10).unwrap_err();
    assert!(err.message.contains("not valid JSON"), "{err}");
}

fn column(dtype: DType) -> ColumnSchema {
    ColumnSchema { name: "c".into(), dtype, nullable: true, categories: None, range: None }
}

proptest! {
    /// A number sent as JSON and the same number written in a CSV cell are the same value.
    #[test]
    fn json_and_csv_cells_agree(x in proptest::num::f64::NORMAL | proptest::num::f64::ZERO, i in any::<i64>()) {
        let float = column(DType::Float);
        let json = serde_json::json!(x);
        let text = x.to_string();
        prop_assert_eq!(cell_value(&float, Cell::Json(&json), 0).unwrap(), cell_value(&float, Cell::Text(&text), 0).unwrap());
        let int = column(DType::Int);
        let json = serde_json::json!(i);
        let text = i.to_string();
        prop_assert_eq!(cell_value(&int, Cell::Json(&json), 0).unwrap(), Value::Int(i));
        prop_assert_eq!(cell_value(&int, Cell::Text(&text), 0).unwrap(), Value::Int(i));
        prop_assert_eq!(cell_value(&float, Cell::Value(&Value::Int(i)), 0).unwrap(), Value::Float(i as f64));
    }

    /// Any text in a JSON string survives the non-finite rewrite untouched.
    #[test]
    fn strings_are_never_rewritten(s in ".*") {
        let body = serde_json::to_vec(&serde_json::json!({ "s": s, "n": 1 })).unwrap();
        prop_assert_eq!(non_finite_as_null(&body), None);
    }

    /// Dates round-trip through the text a client sends.
    #[test]
    fn dates_round_trip(days in -20_000i32..40_000) {
        let date = Value::Date(days);
        let text = date.to_string();
        prop_assert_eq!(cell_value(&column(DType::Date), Cell::Text(&text), 0).unwrap(), date);
    }
}
