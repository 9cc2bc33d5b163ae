//! A small expression language for derived columns (`total = quantity * unit_price`) and business
//! rules (`arr_time >= dep_time`).
//!
//! The same parsed [`Expr`] evaluates on one row ([`Expr::eval_row`]) and compiles to a polars
//! expression for a whole frame (`Expr::to_polars`, with the `frame` feature); both give identical
//! values. Semantics, chosen to be the same on both paths:
//!
//! - arithmetic (`+ - * / %`, unary `-`) works on numbers and always yields a float; `%` is the
//!   floor modulo `a - b * floor(a / b)`;
//! - numbers compare as polars compares them: NaN equals NaN and is greater than any number;
//! - comparisons (`== != < <= > >=`) compare numbers as floats, text lexicographically, dates and
//!   datetimes by time (a text literal compared with a date column is read as a date);
//! - `and`, `or`, `not` use three-valued logic; any other operation with a null operand is null;
//! - functions: `abs sqrt ln log10 exp floor ceil round(x[, digits]) is_null not_null
//!   coalesce(a, b) if(cond, a, b) min(a, b) max(a, b) len lower upper year month day
//!   days_between(from, to) contains(text, "part") starts_with ends_with`; `if` with a null
//!   condition takes the `else` branch; `text contains "part"` (also `starts_with`, `ends_with`)
//!   may be written between its operands;
//! - a date may be written bare (`date >= 2023-01-01`) or quoted;
//! - `q(p)` stands for the `p` quantile of the column it is compared with (`score >= q(0.9)`); a
//!   caller resolves it on the rows at hand with [`Expr::resolve_quantiles`].
//!
//! Column names that are not plain identifiers are written in backticks: `` `Body Mass (g)` ``.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::value::{DType, Row, Value};
use crate::{CoreError, Result};

mod check;
mod eval;
mod parse;
#[cfg(feature = "frame")]
mod polars;

pub use crate::stats::round_to;
use check::check_node;
pub use check::time_literal;

/// A parsed expression.
///
/// Serializes as its source text, plus the column types it was checked against once
/// [`Expr::check`] has run, so a stored expression evaluates the same way after loading.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    source: String,
    root: Node,
    /// Types of the columns the expression reads, known after [`Expr::check`].
    types: Option<BTreeMap<String, DType>>,
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Lit(Value),
    Col(String),
    Neg(Box<Node>),
    Not(Box<Node>),
    Bin(BinOp, Box<Node>, Box<Node>),
    /// A call; the last field is the result type that [`Expr::check`] settled, which both paths
    /// use to widen mixed numeric branches to float.
    Call(Func, Vec<Node>, Option<DType>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinOp {
    fn is_arith(self) -> bool {
        matches!(self, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod)
    }
    fn is_cmp(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Func {
    Abs,
    Sqrt,
    Ln,
    Log10,
    Exp,
    Floor,
    Ceil,
    Round,
    IsNull,
    NotNull,
    Coalesce,
    If,
    Min,
    Max,
    Len,
    Lower,
    Upper,
    Year,
    Month,
    Day,
    DaysBetween,
    Contains,
    StartsWith,
    EndsWith,
    /// `q(p)`: the `p` quantile of the column it is compared with, replaced by a number through
    /// [`Expr::resolve_quantiles`] before the expression is checked.
    Quantile,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "abs" => Func::Abs,
            "sqrt" => Func::Sqrt,
            "ln" | "log" => Func::Ln,
            "log10" => Func::Log10,
            "exp" => Func::Exp,
            "floor" => Func::Floor,
            "ceil" => Func::Ceil,
            "round" => Func::Round,
            "is_null" => Func::IsNull,
            "not_null" => Func::NotNull,
            "coalesce" => Func::Coalesce,
            "if" => Func::If,
            "min" => Func::Min,
            "max" => Func::Max,
            "len" => Func::Len,
            "lower" => Func::Lower,
            "upper" => Func::Upper,
            "year" => Func::Year,
            "month" => Func::Month,
            "day" => Func::Day,
            "days_between" => Func::DaysBetween,
            "contains" => Func::Contains,
            "starts_with" | "startswith" => Func::StartsWith,
            "ends_with" | "endswith" => Func::EndsWith,
            "q" | "quantile" => Func::Quantile,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Func::Contains => "contains",
            Func::StartsWith => "starts_with",
            Func::EndsWith => "ends_with",
            Func::Quantile => "q",
            _ => "function",
        }
    }

    fn arity(self) -> (usize, usize) {
        match self {
            Func::Round => (1, 2),
            Func::Coalesce
            | Func::Min
            | Func::Max
            | Func::DaysBetween
            | Func::Contains
            | Func::StartsWith
            | Func::EndsWith => (2, 2),
            Func::If => (3, 3),
            _ => (1, 1),
        }
    }

    fn unary_float(self) -> Option<fn(f64) -> f64> {
        Some(match self {
            Func::Abs => f64::abs,
            Func::Sqrt => f64::sqrt,
            Func::Ln => f64::ln,
            Func::Log10 => f64::log10,
            Func::Exp => f64::exp,
            Func::Floor => f64::floor,
            Func::Ceil => f64::ceil,
            _ => return None,
        })
    }
}

/// The text test a `contains`, `starts_with` or `ends_with` call makes.
fn text_test(func: Func) -> fn(&str, &str) -> bool {
    match func {
        Func::StartsWith => |s, p| s.starts_with(p),
        Func::EndsWith => |s, p| s.ends_with(p),
        _ => |s, p| s.contains(p),
    }
}

/// Whether values of type `t` are points in time.
fn is_temporal(t: DType) -> bool {
    matches!(t, DType::Date | DType::Datetime)
}

impl Expr {
    /// Parses expression text.
    pub fn parse(source: &str) -> Result<Expr> {
        let root =
            parse::tree(source).map_err(|message| CoreError::Expr { source_text: source.to_string(), message })?;
        Ok(Expr { source: source.to_string(), root, types: None })
    }

    /// Replaces every `q(p)` by the `p` quantile of the column it is compared with, as
    /// `quantile(column, p)` computes it on the rows at hand. `q` anywhere else is an error.
    pub fn resolve_quantiles(&mut self, quantile: &mut dyn FnMut(&str, f64) -> Result<f64>) -> Result<()> {
        fn walk(
            node: &mut Node,
            quantile: &mut dyn FnMut(&str, f64) -> Result<f64>,
        ) -> std::result::Result<(), String> {
            let p_of = |n: &Node| match n {
                Node::Call(Func::Quantile, args, _) => match args.first() {
                    Some(Node::Lit(v)) => v
                        .as_f64()
                        .filter(|p| (0.0..=1.0).contains(p))
                        .ok_or_else(|| "`q(p)` needs p between 0 and 1".to_string())
                        .map(Some),
                    _ => Err("`q(p)` needs a number p between 0 and 1".to_string()),
                },
                _ => Ok(None),
            };
            match node {
                Node::Bin(op, a, b) if op.is_cmp() => {
                    if let (Node::Col(name), Some(p)) = (&**a, p_of(b)?) {
                        let v = quantile(name, p).map_err(|e| e.to_string())?;
                        **b = Node::Lit(Value::Float(v));
                    }
                    if let (Node::Col(name), Some(p)) = (&**b, p_of(a)?) {
                        let v = quantile(name, p).map_err(|e| e.to_string())?;
                        **a = Node::Lit(Value::Float(v));
                    }
                    walk(a, quantile)?;
                    walk(b, quantile)
                }
                Node::Call(Func::Quantile, ..) => {
                    Err("`q(p)` must be compared with a column, as in `score >= q(0.9)`".into())
                }
                Node::Bin(_, a, b) => {
                    walk(a, quantile)?;
                    walk(b, quantile)
                }
                Node::Neg(a) | Node::Not(a) => walk(a, quantile),
                Node::Call(_, args, _) => args.iter_mut().try_for_each(|a| walk(a, quantile)),
                Node::Lit(_) | Node::Col(_) => Ok(()),
            }
        }
        walk(&mut self.root, quantile).map_err(|message| CoreError::Expr { source_text: self.source.clone(), message })
    }

    /// The text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The columns the expression reads, in order of first use.
    pub fn columns(&self) -> Vec<String> {
        fn walk(node: &Node, out: &mut Vec<String>) {
            match node {
                Node::Col(c) if !out.contains(c) => out.push(c.clone()),
                Node::Col(_) | Node::Lit(_) => {}
                Node::Neg(a) | Node::Not(a) => walk(a, out),
                Node::Bin(_, a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Node::Call(_, args, _) => args.iter().for_each(|a| walk(a, out)),
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }

    /// Checks columns and types against a schema and returns the result type (`None`: always null).
    ///
    /// Also rewrites text literals compared with dates into dates, so both paths compare times.
    pub fn check(&mut self, schema: &dyn Fn(&str) -> Option<DType>, available: &[String]) -> Result<Option<DType>> {
        let source = self.source.clone();
        let out = check_node(&mut self.root, schema, available)
            .map_err(|message| CoreError::Expr { source_text: source, message })?;
        self.types = Some(self.columns().into_iter().filter_map(|c| Some((c.clone(), schema(&c)?))).collect());
        Ok(out)
    }

    /// Evaluates on one row.
    pub fn eval_row(&self, row: &Row) -> Value {
        eval::eval(&self.root, row)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ExprRepr {
    Text(String),
    Checked { source: String, types: BTreeMap<String, DType> },
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match &self.types {
            None => s.serialize_str(&self.source),
            Some(types) => ExprRepr::Checked { source: self.source.clone(), types: types.clone() }.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match ExprRepr::deserialize(d)? {
            ExprRepr::Text(text) => Expr::parse(&text).map_err(serde::de::Error::custom),
            ExprRepr::Checked { source, types } => {
                let mut expr = Expr::parse(&source).map_err(serde::de::Error::custom)?;
                let names: Vec<String> = types.keys().cloned().collect();
                expr.check(&|c| types.get(c).copied(), &names).map_err(serde::de::Error::custom)?;
                Ok(expr)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, Value)]) -> Row {
        pairs.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect()
    }

    #[test]
    fn arithmetic_and_precedence() {
        let e = Expr::parse("quantity * unit_price + 1").unwrap();
        let r = row(&[("quantity", Value::Int(3)), ("unit_price", Value::Float(2.5))]);
        assert_eq!(e.eval_row(&r), Value::Float(8.5));
        let e = Expr::parse("-7 % 3").unwrap();
        assert_eq!(e.eval_row(&Row::new()), Value::Float(2.0));
    }

    #[test]
    fn three_valued_logic() {
        let e = Expr::parse("a > 1 and b > 1").unwrap();
        assert_eq!(e.eval_row(&row(&[("a", Value::Int(0)), ("b", Value::Null)])), Value::Bool(false));
        assert_eq!(e.eval_row(&row(&[("a", Value::Int(2)), ("b", Value::Null)])), Value::Null);
    }

    #[test]
    fn backtick_columns_and_dates() {
        let mut e = Expr::parse("`Date Egg` >= '2008-01-01'").unwrap();
        let types = |c: &str| (c == "Date Egg").then_some(DType::Date);
        e.check(&types, &["Date Egg".into()]).unwrap();
        let d = Value::days_from_date(chrono::NaiveDate::from_ymd_opt(2009, 3, 1).unwrap());
        assert_eq!(e.eval_row(&row(&[("Date Egg", Value::Date(d))])), Value::Bool(true));
    }

    #[test]
    fn errors_name_the_problem() {
        let err = Expr::parse("a = b").unwrap_err().to_string();
        assert!(err.contains("use `==`"), "{err}");
        let err = Expr::parse("foo(1)").unwrap_err().to_string();
        assert!(err.contains("unknown function `foo`"), "{err}");
        // The token as the user wrote it, never the parser's own name for it.
        let err = Expr::parse("latitude >> 3 &&").unwrap_err().to_string();
        assert!(err.contains("unexpected `>` at column 11") && !err.contains("Op("), "{err}");
        let err = Expr::parse("a + ,").unwrap_err().to_string();
        assert!(err.contains("unexpected `,`"), "{err}");
        // Found by fuzzing: nesting a few thousand deep overflowed the stack (SIGSEGV). Deep
        // parentheses, prefix operators and long chains are refused by name; ordinary depth reads.
        for deep in [
            format!("{}1{}", "(".repeat(5000), ")".repeat(5000)),
            format!("{}a", "-".repeat(5000)),
            format!("{}a", "!".repeat(5000)),
            vec!["1"; 3000].join("+"),
            vec!["1"; 200].join("+"),
        ] {
            let err = Expr::parse(&deep).unwrap_err().to_string();
            assert!(err.contains("at most") || err.contains("more than 128 levels"), "{err}");
        }
        let nested = format!("{}a{}", "(".repeat(60), ")".repeat(60));
        assert!(Expr::parse(&nested).is_ok());
        assert!(Expr::parse(&vec!["a"; 100].join(" + ")).is_ok());
        let mut e = Expr::parse("missing + 1").unwrap();
        let err = e.check(&|_| None, &["a".into()]).unwrap_err().to_string();
        assert!(err.contains("column `missing` not found"), "{err}");
        let mut e = Expr::parse("name + 1").unwrap();
        let err = e.check(&|_| Some(DType::Str), &["name".into()]).unwrap_err().to_string();
        assert!(err.contains("arithmetic needs numbers"), "{err}");
    }
}
