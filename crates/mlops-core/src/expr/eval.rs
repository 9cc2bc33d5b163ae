//! Row evaluation: one row's values through the tree, with the semantics the frame compiler
//! reproduces (polars' number order, floor modulo, three-valued logic).

use super::*;
use crate::value::MICROS_PER_DAY;

/// A comparable key: numbers as floats (in polars' order, see [`cmp_f64`]), temporal values as
/// microseconds, text as text.
enum Key<'a> {
    Num(f64),
    Time(i64),
    Text(&'a str),
    Bool(bool),
}

fn key(v: &Value) -> Option<Key<'_>> {
    Some(match v {
        Value::Null => return None,
        Value::Int(_) | Value::Float(_) => Key::Num(v.as_f64()?),
        Value::Bool(b) => Key::Bool(*b),
        Value::Str(s) => Key::Text(s),
        Value::Date(d) => Key::Time(i64::from(*d) * MICROS_PER_DAY),
        Value::Datetime(us) => Key::Time(*us),
    })
}

fn compare(op: BinOp, a: &Value, b: &Value) -> Value {
    use std::cmp::Ordering;
    let (Some(x), Some(y)) = (key(a), key(b)) else { return Value::Null };
    let ord = match (x, y) {
        (Key::Num(x), Key::Num(y)) => cmp_f64(x, y),
        (Key::Time(x), Key::Time(y)) => x.cmp(&y),
        (Key::Text(x), Key::Text(y)) => x.cmp(y),
        (Key::Bool(x), Key::Bool(y)) => x.cmp(&y),
        _ => return Value::Null,
    };
    Value::Bool(match op {
        BinOp::Eq => ord == Ordering::Equal,
        BinOp::Ne => ord != Ordering::Equal,
        BinOp::Lt => ord == Ordering::Less,
        BinOp::Le => ord != Ordering::Greater,
        BinOp::Gt => ord == Ordering::Greater,
        _ => ord != Ordering::Less,
    })
}

/// Float order as polars compares: NaN equals NaN and is greater than every number.
pub(crate) fn cmp_f64(x: f64, y: f64) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (x.is_nan(), y.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
    }
}

/// `min`/`max` in the same order.
pub(super) fn min_max(func: Func, a: f64, b: f64) -> f64 {
    let a_first = cmp_f64(a, b) != std::cmp::Ordering::Greater;
    if (func == Func::Min) == a_first { a } else { b }
}

/// Floor modulo, the `%` of the expression language.
pub(crate) fn floor_mod(a: f64, b: f64) -> f64 {
    a - b * (a / b).floor()
}

pub(super) fn arith(op: BinOp, a: f64, b: f64) -> f64 {
    match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        _ => floor_mod(a, b),
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

fn micros(v: &Value) -> Option<i64> {
    match v {
        Value::Date(d) => Some(i64::from(*d) * MICROS_PER_DAY),
        Value::Datetime(us) => Some(*us),
        _ => None,
    }
}

/// Numeric branches of `if`/`coalesce`/`min`/`max` come out as floats when they mix ints and floats,
/// exactly as the frame path casts them.
fn widen(v: Value, float: bool) -> Value {
    match v {
        Value::Int(i) if float => Value::Float(i as f64),
        other => other,
    }
}

pub(super) fn eval(node: &Node, row: &Row) -> Value {
    match node {
        Node::Lit(v) => v.clone(),
        Node::Col(name) => row.get(name).cloned().unwrap_or(Value::Null),
        Node::Neg(a) => eval(a, row).as_f64().map_or(Value::Null, |x| Value::Float(-x)),
        Node::Not(a) => as_bool(&eval(a, row)).map_or(Value::Null, |b| Value::Bool(!b)),
        Node::Bin(op, a, b) => {
            let (x, y) = (eval(a, row), eval(b, row));
            match op {
                BinOp::And => match (as_bool(&x), as_bool(&y)) {
                    (Some(false), _) | (_, Some(false)) => Value::Bool(false),
                    (Some(true), Some(true)) => Value::Bool(true),
                    _ => Value::Null,
                },
                BinOp::Or => match (as_bool(&x), as_bool(&y)) {
                    (Some(true), _) | (_, Some(true)) => Value::Bool(true),
                    (Some(false), Some(false)) => Value::Bool(false),
                    _ => Value::Null,
                },
                op if op.is_cmp() => compare(*op, &x, &y),
                op => match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) => Value::Float(arith(*op, x, y)),
                    _ => Value::Null,
                },
            }
        }
        Node::Call(func, args, out) => {
            let vals: Vec<Value> = args.iter().map(|a| eval(a, row)).collect();
            let wide = *out == Some(DType::Float);
            match func {
                Func::IsNull => Value::Bool(vals[0].is_null()),
                Func::NotNull => Value::Bool(!vals[0].is_null()),
                Func::Coalesce => {
                    let v = if vals[0].is_null() { vals[1].clone() } else { vals[0].clone() };
                    widen(v, wide)
                }
                Func::If => {
                    let v = if as_bool(&vals[0]) == Some(true) { vals[1].clone() } else { vals[2].clone() };
                    widen(v, wide)
                }
                Func::Min | Func::Max => match (vals[0].as_f64(), vals[1].as_f64()) {
                    (Some(a), Some(b)) => Value::Float(min_max(*func, a, b)),
                    _ => Value::Null,
                },
                Func::Contains | Func::StartsWith | Func::EndsWith => match (vals[0].as_str(), vals[1].as_str()) {
                    (Some(text), Some(part)) => Value::Bool(text_test(*func)(text, part)),
                    _ => Value::Null,
                },
                Func::Quantile => Value::Null,
                Func::Len => vals[0].as_str().map_or(Value::Null, |s| Value::Float(s.chars().count() as f64)),
                Func::Lower => vals[0].as_str().map_or(Value::Null, |s| Value::Str(s.to_lowercase())),
                Func::Upper => vals[0].as_str().map_or(Value::Null, |s| Value::Str(s.to_uppercase())),
                Func::Year | Func::Month | Func::Day => {
                    use chrono::Datelike;
                    let Some(us) = micros(&vals[0]) else { return Value::Null };
                    let Some(dt) = Value::datetime_from_micros(us) else { return Value::Null };
                    Value::Float(f64::from(match func {
                        Func::Year => dt.year(),
                        Func::Month => dt.month() as i32,
                        _ => dt.day() as i32,
                    }))
                }
                Func::DaysBetween => match (micros(&vals[0]), micros(&vals[1])) {
                    (Some(a), Some(b)) => Value::Float((b - a) as f64 / MICROS_PER_DAY as f64),
                    _ => Value::Null,
                },
                Func::Round => {
                    let digits = match args.get(1) {
                        Some(Node::Lit(Value::Int(d))) => i32::try_from(*d).unwrap_or(0),
                        _ => 0,
                    };
                    vals[0].as_f64().map_or(Value::Null, |x| Value::Float(round_to(x, digits)))
                }
                other => match (other.unary_float(), vals[0].as_f64()) {
                    (Some(f), Some(x)) => Value::Float(f(x)),
                    _ => Value::Null,
                },
            }
        }
    }
}
