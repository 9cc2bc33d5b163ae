//! Type checking against a frame's column types: every node's type, literals read as the
//! dates they are compared with, and the error that names the problem.

use super::*;

/// A date (`2023-01-31`, as [`Value::Date`]) or a timestamp (`2023-01-31T08:30[:00[.000]]`, as
/// [`Value::Datetime`]) written in config or an expression.
pub fn time_literal(s: &str) -> Option<Value> {
    parse_temporal_literal(s, DType::Date)
}

fn parse_temporal_literal(s: &str, want: DType) -> Option<Value> {
    use chrono::NaiveDateTime;
    if let Some(d) = Value::parse_date(s) {
        return Some(match want {
            DType::Date => Value::Date(Value::days_from_date(d)),
            _ => Value::Datetime(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros()),
        });
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Value::Datetime(dt.and_utc().timestamp_micros()));
        }
    }
    None
}

pub(super) fn check_node(
    node: &mut Node,
    schema: &dyn Fn(&str) -> Option<DType>,
    available: &[String],
) -> std::result::Result<Option<DType>, String> {
    match node {
        Node::Lit(v) => Ok(v.dtype()),
        Node::Col(name) => match schema(name) {
            Some(t) => Ok(Some(t)),
            None => Err(if available.iter().any(|a| a == name) {
                format!("column `{name}` has a type expressions cannot use")
            } else {
                format!("column `{name}` not found (available: {})", available.join(", "))
            }),
        },
        Node::Neg(a) => {
            numeric(check_node(a, schema, available)?, "`-`")?;
            Ok(Some(DType::Float))
        }
        Node::Not(a) => {
            let t = check_node(a, schema, available)?;
            if t.is_some_and(|t| t != DType::Bool) {
                return Err("`not` needs a condition".into());
            }
            Ok(Some(DType::Bool))
        }
        Node::Bin(op, a, b) => {
            let op = *op;
            let ta = check_node(a, schema, available)?;
            let tb = check_node(b, schema, available)?;
            if op.is_arith() {
                numeric(ta, "arithmetic")?;
                numeric(tb, "arithmetic")?;
                return Ok(Some(DType::Float));
            }
            if matches!(op, BinOp::And | BinOp::Or) {
                for t in [ta, tb].into_iter().flatten() {
                    if t != DType::Bool {
                        return Err(format!("`and`/`or` need conditions, got {t}"));
                    }
                }
                return Ok(Some(DType::Bool));
            }
            // Comparison. Text literals next to dates become dates.
            for (lit, other) in [(&mut **a, tb), (&mut **b, ta)] {
                if let (Node::Lit(Value::Str(s)), Some(t)) = (&*lit, other)
                    && is_temporal(t)
                {
                    let parsed = parse_temporal_literal(s, t).ok_or_else(|| format!("`{s}` is not a date"))?;
                    *lit = Node::Lit(parsed);
                }
            }
            let ta = check_node(a, schema, available)?;
            let tb = check_node(b, schema, available)?;
            if let (Some(x), Some(y)) = (ta, tb) {
                let ok = (x.is_numeric() && y.is_numeric()) || (is_temporal(x) && is_temporal(y)) || x == y;
                if !ok {
                    return Err(format!("cannot compare {x} with {y}"));
                }
            }
            Ok(Some(DType::Bool))
        }
        Node::Call(func, args, out) => {
            let func = *func;
            let result = check_call(func, args, schema, available)?;
            *out = result;
            Ok(result)
        }
    }
}

fn check_call(
    func: Func,
    args: &mut [Node],
    schema: &dyn Fn(&str) -> Option<DType>,
    available: &[String],
) -> std::result::Result<Option<DType>, String> {
    {
        {
            let types = args
                .iter_mut()
                .map(|a| check_node(a, schema, available))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            match func {
                Func::IsNull | Func::NotNull => Ok(Some(DType::Bool)),
                Func::Contains | Func::StartsWith | Func::EndsWith => {
                    if types[0].is_some_and(|t| t != DType::Str) {
                        return Err(format!("`{}` needs text on its left", func.name()));
                    }
                    if !matches!(args[1], Node::Lit(Value::Str(_))) {
                        return Err(format!("`{}` needs a quoted text on its right, as in `email contains \"@\"`", func.name()));
                    }
                    Ok(Some(DType::Bool))
                }
                Func::Quantile => Err("`q(p)` must be compared with a column, as in `score >= q(0.9)`, and resolved on the rows being filtered".into()),
                Func::Len | Func::Lower | Func::Upper => {
                    if types[0].is_some_and(|t| t != DType::Str) {
                        return Err(format!("`{func:?}` needs text").to_lowercase());
                    }
                    Ok(Some(if func == Func::Len { DType::Float } else { DType::Str }))
                }
                Func::Year | Func::Month | Func::Day => {
                    if types[0].is_some_and(|t| !is_temporal(t)) {
                        return Err(format!("`{func:?}` needs a date").to_lowercase());
                    }
                    Ok(Some(DType::Float))
                }
                Func::DaysBetween => {
                    let other = |i: usize| types[1 - i].filter(|t| is_temporal(*t)).unwrap_or(DType::Date);
                    for (i, arg) in args.iter_mut().enumerate() {
                        if let Node::Lit(Value::Str(s)) = &*arg {
                            let parsed =
                                parse_temporal_literal(s, other(i)).ok_or_else(|| format!("`{s}` is not a date"))?;
                            *arg = Node::Lit(parsed);
                        }
                    }
                    let types: Vec<Option<DType>> = args
                        .iter()
                        .map(|a| match a {
                            Node::Lit(v) => v.dtype(),
                            _ => None,
                        })
                        .zip(&types)
                        .map(|(lit, t)| lit.or(*t))
                        .collect();
                    for t in types.iter().flatten() {
                        if !is_temporal(*t) {
                            return Err("`days_between` needs dates".into());
                        }
                    }
                    Ok(Some(DType::Float))
                }
                Func::If | Func::Coalesce | Func::Min | Func::Max => {
                    if func == Func::If && types[0].is_some_and(|t| t != DType::Bool) {
                        return Err("`if` needs a condition first".into());
                    }
                    let branches = if func == Func::If { &types[1..] } else { &types[..] };
                    let known: Vec<DType> = branches.iter().flatten().copied().collect();
                    if func != Func::If && func != Func::Coalesce {
                        for t in &known {
                            numeric(Some(*t), "`min`/`max`")?;
                        }
                    }
                    unify(&known)
                }
                Func::Round => {
                    numeric(types[0], "`round`")?;
                    if let Some(digits) = args.get(1)
                        && !matches!(digits, Node::Lit(Value::Int(_)))
                    {
                        return Err("`round` takes a whole number of digits".into());
                    }
                    Ok(Some(DType::Float))
                }
                _ => {
                    numeric(types[0], &format!("`{func:?}`").to_lowercase())?;
                    Ok(Some(DType::Float))
                }
            }
        }
    }
}

fn unify(types: &[DType]) -> std::result::Result<Option<DType>, String> {
    let Some(first) = types.first().copied() else { return Ok(None) };
    if types.iter().all(|t| t.is_numeric()) {
        return Ok(Some(if types.iter().all(|t| *t == first) { first } else { DType::Float }));
    }
    if types.iter().all(|t| *t == first) {
        return Ok(Some(first));
    }
    Err(format!(
        "branches have different types: {}",
        types.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    ))
}

/// A type that arithmetic or a numeric function accepts: a number, or not known yet.
fn numeric(t: Option<DType>, what: &str) -> std::result::Result<(), String> {
    match t {
        None => Ok(()),
        Some(t) if t.is_numeric() => Ok(()),
        Some(t) => Err(format!("{what} needs numbers, got {t}")),
    }
}
