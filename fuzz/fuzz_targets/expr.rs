//! The expression language (derived columns, rules, filters) on any text: parsed or refused with
//! a message, never a panic; a parsed expression prints as text that parses to the same
//! expression, and checks and evaluates on a row without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mlops_core::{DType, Expr, Row, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(mut expr) = Expr::parse(text) else { return };
    let printed = expr.to_string();
    let again = Expr::parse(&printed).unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
    assert_eq!(again.to_string(), printed, "printing is not stable for {text:?}");
    let names: Vec<String> = ["a", "b", "name", "day"].iter().map(|s| (*s).to_string()).collect();
    let schema = |c: &str| match c {
        "a" => Some(DType::Float),
        "b" => Some(DType::Int),
        "name" => Some(DType::Str),
        "day" => Some(DType::Date),
        _ => None,
    };
    if expr.check(&schema, &names).is_ok() {
        let row: Row = [
            ("a".to_string(), Value::Float(1.5)),
            ("b".to_string(), Value::Int(-3)),
            ("name".to_string(), Value::Str("Biscoe".into())),
            ("day".to_string(), Value::Date(19_723)),
        ]
        .into_iter()
        .collect();
        let _ = expr.eval_row(&row);
        let nulls: Row = names.iter().map(|n| (n.clone(), Value::Null)).collect();
        let _ = expr.eval_row(&nulls);
    }
});
