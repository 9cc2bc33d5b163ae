//! Unit tests: JSON with Python's non-finite tokens, cell conversion against the signature
//! (property tests), and the direct reader of records and split frames.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/fixture/mod.rs"]
mod fixture;

use mlops_core::{ColumnSchema, DType, TaskKind, Value};
use proptest::prelude::*;

use crate::protocol::{self, non_finite_tokens};
use crate::{CategoryPolicy, Cell, ModelSource, cell_value};

#[test]
fn python_non_finite_tokens_are_rewritten_outside_strings_only() {
    let body = br#"{"a": [1, NaN, "NaN \" Infinity", -Infinity], "b": {"c": Infinity}}"#;
    let fixed = non_finite_tokens(body).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&fixed).unwrap();
    let expected =
        serde_json::json!({"a": [1, null, "NaN \" Infinity", protocol::NEG_INFINITY], "b": {"c": protocol::INFINITY}});
    assert_eq!(json, expected);
    assert_eq!(non_finite_tokens(br#"{"a": "NaN"}"#), None);
}

/// One rule for infinity: refused with 422 naming the column, whether it arrives as Python's
/// `Infinity` in JSON, as `inf`, `Infinity` or `1e999` in a CSV cell, or as a typed value.
#[test]
fn an_infinite_number_is_refused_the_same_way_from_every_reader() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = fixture::package(dir.path(), "pkg", TaskKind::BinaryClassification, 1.0);
    let scorer = ModelSource::Package(pkg).load(CategoryPolicy::Warn).unwrap();
    for x in ["Infinity", "-Infinity"] {
        let body = format!(r#"{{"instances": [{{"x": {x}, "n": 1, "color": "red", "day": "2024-01-01"}}]}}"#);
        let err = protocol::mlflow_json(&scorer, body.as_bytes(), 10).unwrap_err();
        assert_eq!((err.status(), err.column.as_deref()), (422, Some("x")), "{x}: {err}");
        assert!(err.message.contains("not a finite number"), "{err}");
    }
    // A column that allows missing values still refuses an infinity (it is not read as missing).
    let float = column(DType::Float);
    assert!(float.nullable);
    for text in ["inf", "Infinity", "-inf", "1e999"] {
        let err = cell_value(&float, Cell::Text(text), 3).unwrap_err();
        assert_eq!((err.status(), err.row), (422, Some(3)), "{text}: {err}");
    }
    let err = cell_value(&float, Cell::Value(&Value::Float(f64::INFINITY)), 0).unwrap_err();
    assert_eq!(err.status(), 422);
}

#[test]
fn a_pandas_body_with_nan_is_read_and_the_nan_is_a_missing_value() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = fixture::package(dir.path(), "pkg", TaskKind::BinaryClassification, 1.0);
    let scorer = ModelSource::Package(pkg).load(CategoryPolicy::Warn).unwrap();
    let body = br#"{"dataframe_split": {"index": [0], "columns": ["x", "n", "color", "day", "flag", "note"],
        "data": [[1.5, NaN, "red", "2024-01-01T00:00:00", true, NaN]]}}"#;
    let rows = protocol::mlflow_json(&scorer, body, 10).unwrap().to_rows(&scorer);
    assert_eq!(rows[0]["n"], Value::Null);
    assert_eq!(rows[0]["note"], Value::Null);
    assert_eq!(rows[0]["day"], Value::Date(19723));
    let body = br#"{"instances": [{"x": NaN, "n": 1, "color": "red", "day": "2024-01-01"}]}"#;
    let err = protocol::mlflow_json(&scorer, body, 10).unwrap_err();
    assert_eq!((err.status(), err.column.as_deref()), (422, Some("x")));
    let err = protocol::mlflow_json(&scorer, b"{\"instances\": [Nope]}", 10).unwrap_err();
    assert!(err.message.contains("not valid JSON"), "{err}");
}

fn column(dtype: DType) -> ColumnSchema {
    ColumnSchema::new("c", dtype, true)
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
        prop_assert_eq!(non_finite_tokens(&body), None);
    }

    /// The direct `YYYY-MM-DD` reading answers what chrono's `%Y-%m-%d` parse answers.
    #[test]
    fn dates_read_as_chrono_reads_them(t in "[0-9+-]{0,2}[0-9]{1,4}-[0-9]{1,2}-[0-9]{1,3}|.{0,12}") {
        prop_assert_eq!(Value::parse_date(&t), chrono::NaiveDate::parse_from_str(&t, "%Y-%m-%d").ok());
    }

    /// Text goes into the prediction log exactly as serde_json writes it.
    #[test]
    fn logged_text_is_the_json_of_the_text(s in "\\PC*|[\"\\\\\u{0}-\u{1f}a-z]{0,8}") {
        let mut out = String::new();
        crate::log::string_into(&mut out, &s);
        prop_assert_eq!(out, serde_json::to_string(&s).unwrap());
    }

    /// Numbers go into the prediction log as their shortest text, whole ones included.
    #[test]
    fn logged_numbers_are_their_shortest_text(
        f in prop_oneof![any::<f64>(), (-2_000_000_000i64..2_000_000_000).prop_map(|i| i as f64), Just(-0.0)]
    ) {
        let mut out = String::new();
        crate::log::float_into(&mut out, f);
        let expected = if f.is_finite() { zmij::Buffer::new().format_finite(f).to_owned() } else { "null".to_owned() };
        prop_assert_eq!(out, expected);
    }

    /// Dates go into the prediction log as chrono writes them.
    #[test]
    fn logged_dates_are_iso_dates(days in -1_000_000i32..3_000_000) {
        let date = Value::date_from_days(days).unwrap();
        let mut out = String::new();
        crate::log::date_into(&mut out, date);
        prop_assert_eq!(out, format!("\"{}\"", date.format("%Y-%m-%d")));
    }

    /// Dates round-trip through the text a client sends.
    #[test]
    fn dates_round_trip(days in -20_000i32..40_000) {
        let date = Value::Date(days);
        let text = date.to_string();
        prop_assert_eq!(cell_value(&column(DType::Date), Cell::Text(&text), 0).unwrap(), date);
    }
}

/// A JSON cell of any type a client might send for the fixture's columns, right or wrong.
fn any_cell() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(|b| json!(b)),
        any::<i64>().prop_map(|i| json!(i)),
        (0u64..4).prop_map(|k| json!(u64::MAX - k)),
        (-100i64..100).prop_map(|i| json!(i as f64)),
        (-1.0e3..1.0e3f64).prop_map(|f| json!(f)),
        prop::sample::select(vec![
            "red",
            "blue",
            "green",
            "2024-02-29",
            "2024-13-01",
            "2024-01-01T00:00:00",
            "x\"y",
            "é"
        ])
        .prop_map(|s| json!(s)),
        Just(json!([1, 2])),
        Just(json!({"a": 1})),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Records and split frames read straight into cells give what the general reader gives:
    /// the same rows, or the same error (status, column, row and words), whatever the columns'
    /// order, extra or missing columns and wrong types.
    #[test]
    fn the_direct_reader_answers_what_the_general_one_answers(
        rows in prop::collection::vec(prop::collection::vec((0u8..10, any_cell(), 0usize..1000), 7), 0..6),
        columns in Just(vec!["x", "n", "color", "day", "flag", "note", "extra"]).prop_shuffle(),
        keep in 4usize..=7,
        split in any::<bool>(),
        max in 3usize..8,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let pkg = fixture::package(dir.path(), "pkg", TaskKind::BinaryClassification, 1.0);
        let scorer = ModelSource::Package(pkg).load(CategoryPolicy::Strict).unwrap();
        let columns = &columns[..keep];
        // Mostly values the column takes (so that most bodies are read), sometimes anything.
        let rows: Vec<Vec<serde_json::Value>> = rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .zip(columns.iter().chain(std::iter::repeat(&"extra")))
                    .map(|((k, cell, i), c)| if k < 9 { fixture::raw(i)[*c].clone() } else { cell })
                    .collect()
            })
            .collect();
        let body = if split {
            serde_json::json!({ "dataframe_split": { "index": (0..rows.len()).collect::<Vec<_>>(), "columns": columns,
                "data": rows.iter().map(|r| r[..keep].to_vec()).collect::<Vec<_>>() } })
        } else {
            let records: Vec<serde_json::Map<String, serde_json::Value>> =
                rows.iter().map(|r| columns.iter().map(|c| c.to_string()).zip(r.iter().cloned()).collect()).collect();
            serde_json::json!({ "dataframe_records": records, "params": {"a": 1} })
        };
        let body = serde_json::to_vec(&body).unwrap();
        prop_assert_eq!(protocol::mlflow_json(&scorer, &body, max), protocol::mlflow_json_general(&scorer, &body, max));
    }
}

/// The well-formed case takes the direct reader, and its rows are the general reader's.
#[test]
fn records_and_split_frames_are_read_directly() {
    let names = ["x", "n", "color", "day", "flag", "note"];
    let records: Vec<_> = (0..50).map(fixture::raw).collect();
    let records_body = serde_json::json!({ "dataframe_records": records }).to_string();
    let split_body = serde_json::json!({ "dataframe_split": { "columns": names,
        "data": records.iter().map(|r| names.iter().map(|n| r[*n].clone()).collect::<Vec<_>>()).collect::<Vec<_>>() } })
    .to_string();
    let dir = tempfile::tempdir().unwrap();
    let pkg = fixture::package(dir.path(), "pkg", TaskKind::BinaryClassification, 1.0);
    let scorer = ModelSource::Package(pkg).load(CategoryPolicy::Strict).unwrap();
    for body in [records_body, split_body] {
        let cells = crate::direct::read(body.as_bytes(), &names, 100).ok().expect("read directly");
        assert!(crate::direct::read(body.as_bytes(), &names, 49).is_err(), "more rows than the limit");
        assert_eq!(cells.rows, 50);
        let parsed = protocol::mlflow_json(&scorer, body.as_bytes(), 100).unwrap();
        assert_eq!(parsed.to_rows(&scorer), (0..50).map(fixture::row).collect::<Vec<_>>());
        assert_eq!(parsed, protocol::mlflow_json_general(&scorer, body.as_bytes(), 100).unwrap());
    }
}

proptest! {
    /// The direct reader's parser hands over the token of the JSON value it reads, so a cell
    /// converts the same whichever reader read it: the same value or the same error.
    #[test]
    fn parsed_tokens_are_the_tokens_of_json_values(cell in any_cell(), dtype in prop::sample::select(vec![
        DType::Float, DType::Int, DType::Str, DType::Bool, DType::Date, DType::Datetime,
    ])) {
        let text = cell.to_string();
        let token: crate::Token<'_> = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&token, &crate::Token::of(&cell));
        prop_assert_eq!(cell_value(&column(dtype), Cell::Token(&token), 3), cell_value(&column(dtype), Cell::Json(&cell), 3));
    }
}
