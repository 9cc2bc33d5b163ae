//! Frame compilation: the tree as a polars expression that gives, on a whole frame, what
//! [`eval`](super::eval) gives on each row.

use ::polars::prelude::{self as pl, ChunkApply, DataType, Expr as PlExpr, IntoColumn, TimeUnit, lit, when};

use super::eval::{arith, min_max};
use super::*;
use crate::value::MICROS_PER_DAY;

fn float(e: PlExpr) -> PlExpr {
    e.cast(DataType::Float64)
}

/// Applies a float function element-wise with the same Rust function the row path uses.
fn map_f64(e: PlExpr, f: impl Fn(f64) -> f64 + Send + Sync + 'static) -> PlExpr {
    float(e).map(
        move |c: pl::Column| {
            let ca = c.f64()?;
            Ok(ca.apply_values(&f).into_column())
        },
        |_, field: &pl::Field| Ok(pl::Field::new(field.name().clone(), DataType::Float64)),
    )
}

/// Applies a float function of two arguments element-wise; a length-1 side broadcasts.
fn binary_f64(a: PlExpr, b: PlExpr, f: impl Fn(f64, f64) -> f64 + Send + Sync + 'static) -> PlExpr {
    float(a).map_many(
        move |cols: &mut [pl::Column]| {
            let name = cols[0].name().clone();
            let x = cols[0].f64()?;
            let y = cols[1].f64()?;
            let n = if x.is_empty() || y.is_empty() { 0 } else { x.len().max(y.len()) };
            let at = |ca: &pl::Float64Chunked, i: usize| if ca.len() == 1 { ca.get(0) } else { ca.get(i) };
            let out: pl::Float64Chunked = if x.len() == y.len() {
                x.iter().zip(y.iter()).map(|(p, q)| Some(f(p?, q?))).collect()
            } else {
                (0..n).map(|i| Some(f(at(x, i)?, at(y, i)?))).collect()
            };
            Ok(out.with_name(name).into_column())
        },
        &[float(b)],
        |_, fields: &[pl::Field]| Ok(pl::Field::new(fields[0].name().clone(), DataType::Float64)),
    )
}

fn map_str(e: PlExpr, f: fn(&str) -> String) -> PlExpr {
    e.map(
        move |c: pl::Column| {
            let ca = c.str()?;
            let out: pl::StringChunked = ca.iter().map(|o| o.map(f)).collect();
            Ok(out.with_name(c.name().clone()).into_column())
        },
        |_, field: &pl::Field| Ok(pl::Field::new(field.name().clone(), DataType::String)),
    )
}

/// Microseconds since the epoch for a date or datetime expression of known type.
fn micros(e: PlExpr, t: Option<DType>) -> PlExpr {
    match t {
        Some(DType::Date) => e.cast(DataType::Int32).cast(DataType::Int64) * lit(MICROS_PER_DAY),
        _ => e.cast(DataType::Datetime(TimeUnit::Microseconds, None)).cast(DataType::Int64),
    }
}

impl Expr {
    /// Compiles to a polars expression. Call [`Expr::check`] first with the frame's schema.
    pub fn to_polars(&self, schema: &dyn Fn(&str) -> Option<DType>) -> PlExpr {
        compile(&self.root, schema).0
    }

    /// Evaluates arithmetic on numeric columns and number literals directly on `df`'s
    /// columns, with the kernel the compiled expression runs (so the values are the same),
    /// without planning a query: on a small frame the plan costs more than the work. `None`
    /// when the expression is not arithmetic, has any other part, or reads no column;
    /// compile it then.
    pub fn eval_arith_frame(&self, df: &pl::DataFrame) -> Option<pl::PolarsResult<pl::Float64Chunked>> {
        // A bare column keeps its type; only arithmetic makes floats.
        let arithmetic = match &self.root {
            Node::Neg(_) => true,
            Node::Bin(op, _, _) => op.is_arith(),
            _ => false,
        };
        if !arithmetic {
            return None;
        }
        match arith_frame(&self.root, df)? {
            Ok(Operand::Column(ca)) => Some(Ok(ca)),
            Ok(Operand::Scalar(_)) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// A side of an arithmetic node: a column as floats, or a literal.
enum Operand {
    Column(pl::Float64Chunked),
    Scalar(Option<f64>),
}

fn arith_frame(node: &Node, df: &pl::DataFrame) -> Option<pl::PolarsResult<Operand>> {
    Some(Ok(match node {
        Node::Lit(Value::Int(i)) => Operand::Scalar(Some(*i as f64)),
        Node::Lit(Value::Float(f)) => Operand::Scalar(Some(*f)),
        Node::Col(name) => {
            let col = df.column(name).ok()?;
            if !matches!(crate::frame::dtype_of(col.dtype()), Some(DType::Int | DType::Float | DType::Bool)) {
                return None;
            }
            match col.cast(&DataType::Float64).and_then(|c| c.f64().cloned()) {
                Ok(ca) => Operand::Column(ca),
                Err(e) => return Some(Err(e)),
            }
        }
        // `-a` compiles to `a * -1.0`.
        Node::Neg(a) => {
            return arith_frame(&Node::Bin(BinOp::Mul, a.clone(), Box::new(Node::Lit(Value::Float(-1.0)))), df);
        }
        Node::Bin(op, a, b) if op.is_arith() => {
            let (x, y) = match (arith_frame(a, df)?, arith_frame(b, df)?) {
                (Ok(x), Ok(y)) => (x, y),
                (Err(e), _) | (_, Err(e)) => return Some(Err(e)),
            };
            let op = *op;
            let f = move |p: f64, q: f64| arith(op, p, q);
            match (x, y) {
                (Operand::Scalar(p), Operand::Scalar(q)) => Operand::Scalar(p.zip(q).map(|(p, q)| f(p, q))),
                (Operand::Column(x), Operand::Scalar(q)) => Operand::Column(
                    x.iter().map(|p| Some(f(p?, q?))).collect::<pl::Float64Chunked>().with_name(x.name().clone()),
                ),
                (Operand::Scalar(p), Operand::Column(y)) => Operand::Column(
                    y.iter().map(|q| Some(f(p?, q?))).collect::<pl::Float64Chunked>().with_name(y.name().clone()),
                ),
                (Operand::Column(x), Operand::Column(y)) => Operand::Column(
                    x.iter()
                        .zip(y.iter())
                        .map(|(p, q)| Some(f(p?, q?)))
                        .collect::<pl::Float64Chunked>()
                        .with_name(x.name().clone()),
                ),
            }
        }
        _ => return None,
    }))
}

/// Returns the polars expression and its logical type.
fn compile(node: &Node, schema: &dyn Fn(&str) -> Option<DType>) -> (PlExpr, Option<DType>) {
    match node {
        Node::Lit(v) => (crate::frame::literal(v), v.dtype()),
        Node::Col(name) => (pl::col(name.as_str()), schema(name)),
        Node::Neg(a) => (float(compile(a, schema).0) * lit(-1.0), Some(DType::Float)),
        Node::Not(a) => (compile(a, schema).0.not(), Some(DType::Bool)),
        Node::Bin(op, a, b) => {
            let (ea, ta) = compile(a, schema);
            let (eb, tb) = compile(b, schema);
            let e = match op {
                BinOp::And => ea.and(eb),
                BinOp::Or => ea.or(eb),
                // Arithmetic runs through the row path's own kernel: polars may rewrite
                // `x / c` as `x * (1 / c)`, which rounds differently.
                arith_op if arith_op.is_arith() => {
                    let arith_op = *arith_op;
                    binary_f64(ea, eb, move |x, y| arith(arith_op, x, y))
                }
                cmp => {
                    let (ea, eb) = match (ta, tb) {
                        (Some(x), Some(y)) if x.is_numeric() && y.is_numeric() => (float(ea), float(eb)),
                        (Some(x), Some(y)) if is_temporal(x) && is_temporal(y) => (micros(ea, ta), micros(eb, tb)),
                        _ => (ea, eb),
                    };
                    match cmp {
                        BinOp::Eq => ea.eq(eb),
                        BinOp::Ne => ea.neq(eb),
                        BinOp::Lt => ea.lt(eb),
                        BinOp::Le => ea.lt_eq(eb),
                        BinOp::Gt => ea.gt(eb),
                        _ => ea.gt_eq(eb),
                    }
                }
            };
            let t = if op.is_arith() { Some(DType::Float) } else { Some(DType::Bool) };
            (e, t)
        }
        Node::Call(func, args, out) => {
            let compiled: Vec<(PlExpr, Option<DType>)> = args.iter().map(|a| compile(a, schema)).collect();
            let e0 = compiled[0].0.clone();
            match func {
                Func::IsNull => (e0.is_null(), Some(DType::Bool)),
                Func::NotNull => (e0.is_not_null(), Some(DType::Bool)),
                Func::If | Func::Coalesce => {
                    let branches = if *func == Func::If { &compiled[1..] } else { &compiled[..] };
                    let out = *out;
                    let cast = |e: PlExpr| match out {
                        Some(DType::Float) => float(e),
                        _ => e,
                    };
                    let (a, b) = (cast(branches[0].0.clone()), cast(branches[1].0.clone()));
                    let cond = if *func == Func::If { e0 } else { compiled[0].0.clone().is_not_null() };
                    (when(cond).then(a).otherwise(b), out)
                }
                Func::Min | Func::Max => {
                    let func = *func;
                    (binary_f64(e0, compiled[1].0.clone(), move |a, b| min_max(func, a, b)), Some(DType::Float))
                }
                Func::Len => (
                    e0.map(
                        |c: pl::Column| {
                            let ca = c.str()?;
                            let out: pl::Float64Chunked =
                                ca.iter().map(|o| o.map(|s| s.chars().count() as f64)).collect();
                            Ok(out.with_name(c.name().clone()).into_column())
                        },
                        |_, f: &pl::Field| Ok(pl::Field::new(f.name().clone(), DataType::Float64)),
                    ),
                    Some(DType::Float),
                ),
                Func::Contains | Func::StartsWith | Func::EndsWith => {
                    let test = text_test(*func);
                    let part = match &args[1] {
                        Node::Lit(Value::Str(p)) => p.clone(),
                        _ => String::new(),
                    };
                    let e = e0.map(
                        move |c: pl::Column| {
                            let ca = c.str()?;
                            let out: pl::BooleanChunked = ca.iter().map(|o| o.map(|s| test(s, &part))).collect();
                            Ok(out.with_name(c.name().clone()).into_column())
                        },
                        |_, f: &pl::Field| Ok(pl::Field::new(f.name().clone(), DataType::Boolean)),
                    );
                    (e, Some(DType::Bool))
                }
                Func::Quantile => (pl::lit(pl::NULL), None),
                Func::Lower => (map_str(e0, str::to_lowercase), Some(DType::Str)),
                Func::Upper => (map_str(e0, str::to_uppercase), Some(DType::Str)),
                Func::Year | Func::Month | Func::Day => {
                    let func = *func;
                    let us = micros(e0, compiled[0].1);
                    let e = us.map(
                        move |c: pl::Column| {
                            use chrono::Datelike;
                            let ca = c.i64()?;
                            let out: pl::Float64Chunked = ca
                                .iter()
                                .map(|o| {
                                    let dt = Value::datetime_from_micros(o?)?;
                                    Some(f64::from(match func {
                                        Func::Year => dt.year(),
                                        Func::Month => dt.month() as i32,
                                        _ => dt.day() as i32,
                                    }))
                                })
                                .collect();
                            Ok(out.with_name(c.name().clone()).into_column())
                        },
                        |_, f: &pl::Field| Ok(pl::Field::new(f.name().clone(), DataType::Float64)),
                    );
                    (e, Some(DType::Float))
                }
                Func::DaysBetween => {
                    let a = micros(e0, compiled[0].1);
                    let b = micros(compiled[1].0.clone(), compiled[1].1);
                    (float(b - a) / lit(MICROS_PER_DAY as f64), Some(DType::Float))
                }
                Func::Round => {
                    let digits = match args.get(1) {
                        Some(Node::Lit(Value::Int(d))) => i32::try_from(*d).unwrap_or(0),
                        _ => 0,
                    };
                    (map_f64(e0, move |x| round_to(x, digits)), Some(DType::Float))
                }
                other => match other.unary_float() {
                    Some(f) => (map_f64(e0, f), Some(DType::Float)),
                    None => (e0, None),
                },
            }
        }
    }
}
