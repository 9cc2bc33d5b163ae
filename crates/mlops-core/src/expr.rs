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

/// Rounds half away from zero to `digits` decimals; the one rounding used on every path.
pub fn round_to(x: f64, digits: i32) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let factor = 10f64.powi(digits);
    let scaled = x * factor;
    if !scaled.is_finite() {
        return x;
    }
    scaled.round() / factor
}

// ---------------------------------------------------------------------------------------------
// Parsing

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64, bool),
    Str(String),
    Ident(String),
    Quoted(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn tokenize(src: &str) -> std::result::Result<Vec<(usize, Tok)>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if let Some(len) = date_literal_len(&chars[i..]) {
            out.push((start, Tok::Str(chars[i..i + len].iter().collect())));
            i += len;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let mut is_float = false;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.' || chars[i] == '_') {
                is_float |= chars[i] == '.';
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    is_float = true;
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().filter(|c| **c != '_').collect();
            let v: f64 = text.parse().map_err(|_| format!("bad number `{text}` at column {}", start + 1))?;
            out.push((start, Tok::Num(v, is_float)));
            continue;
        }
        if c == '\'' || c == '"' || c == '`' {
            i += 1;
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None => return Err(format!("unterminated {c} quote starting at column {}", start + 1)),
                    Some(&d) if d == c => {
                        if chars.get(i + 1) == Some(&c) {
                            s.push(c);
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    }
                    Some(&d) => {
                        s.push(d);
                        i += 1;
                    }
                }
            }
            out.push((start, if c == '`' { Tok::Quoted(s) } else { Tok::Str(s) }));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((start, Tok::Ident(chars[start..i].iter().collect())));
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op2 = ["==", "!=", "<>", "<=", ">=", "&&", "||"].into_iter().find(|op| *op == two);
        if let Some(op) = op2 {
            out.push((start, Tok::Op(if op == "<>" { "!=" } else { op })));
            i += 2;
            continue;
        }
        let tok = match c {
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '+' => Tok::Op("+"),
            '-' => Tok::Op("-"),
            '*' => Tok::Op("*"),
            '/' => Tok::Op("/"),
            '%' => Tok::Op("%"),
            '<' => Tok::Op("<"),
            '>' => Tok::Op(">"),
            '!' => Tok::Op("!"),
            '=' => return Err(format!("single `=` at column {}; use `==` to compare", start + 1)),
            other => return Err(format!("unexpected character `{other}` at column {}", start + 1)),
        };
        out.push((start, tok));
        i += 1;
    }
    Ok(out)
}

/// Length of a bare date or timestamp at the start of `chars` (`2023-01-31`, `2023-01-31T08:30`,
/// `2023-01-31 08:30:00`), if there is one.
fn date_literal_len(chars: &[char]) -> Option<usize> {
    let digits = |from: usize, n: usize| (from..from + n).all(|k| chars.get(k).is_some_and(char::is_ascii_digit));
    if !(digits(0, 4) && chars.get(4) == Some(&'-') && digits(5, 2) && chars.get(7) == Some(&'-') && digits(8, 2)) {
        return None;
    }
    let mut len = 10;
    if matches!(chars.get(10), Some('T' | ' ')) && digits(11, 2) && chars.get(13) == Some(&':') && digits(14, 2) {
        len = 16;
        if chars.get(16) == Some(&':') && digits(17, 2) {
            len = 19;
        }
    }
    let next = chars.get(len);
    (!next.is_some_and(|c| c.is_alphanumeric() || *c == '_')).then_some(len)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    len: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }
    fn col(&self) -> usize {
        self.toks.get(self.pos).map_or(self.len + 1, |(c, _)| c + 1)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(_, t)| t.clone());
        self.pos += 1;
        t
    }
    fn is_op(&self, ops: &[&str]) -> Option<&'static str> {
        match self.peek() {
            Some(Tok::Op(op)) if ops.contains(op) => Some(op),
            Some(Tok::Ident(word)) => {
                let op = match word.to_ascii_lowercase().as_str() {
                    "and" => "&&",
                    "or" => "||",
                    "not" => "!",
                    _ => return None,
                };
                ops.contains(&op).then_some(op)
            }
            _ => None,
        }
    }

    fn or(&mut self) -> std::result::Result<Node, String> {
        let mut left = self.and()?;
        while self.is_op(&["||"]).is_some() {
            self.pos += 1;
            left = Node::Bin(BinOp::Or, Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> std::result::Result<Node, String> {
        let mut left = self.not()?;
        while self.is_op(&["&&"]).is_some() {
            self.pos += 1;
            left = Node::Bin(BinOp::And, Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }
    fn not(&mut self) -> std::result::Result<Node, String> {
        if self.is_op(&["!"]).is_some() {
            self.pos += 1;
            return Ok(Node::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> std::result::Result<Node, String> {
        let left = self.add()?;
        if let Some(Tok::Ident(word)) = self.peek() {
            let func = match word.to_ascii_lowercase().as_str() {
                "contains" => Some(Func::Contains),
                "starts_with" | "startswith" => Some(Func::StartsWith),
                "ends_with" | "endswith" => Some(Func::EndsWith),
                _ => None,
            };
            if let Some(func) = func {
                self.pos += 1;
                let right = self.add()?;
                return Ok(Node::Call(func, vec![left, right], None));
            }
        }
        if let Some(op) = self.is_op(&["==", "!=", "<", "<=", ">", ">="]) {
            self.pos += 1;
            let op = match op {
                "==" => BinOp::Eq,
                "!=" => BinOp::Ne,
                "<" => BinOp::Lt,
                "<=" => BinOp::Le,
                ">" => BinOp::Gt,
                _ => BinOp::Ge,
            };
            let right = self.add()?;
            return Ok(Node::Bin(op, Box::new(left), Box::new(right)));
        }
        Ok(left)
    }
    fn add(&mut self) -> std::result::Result<Node, String> {
        let mut left = self.mul()?;
        while let Some(op) = self.is_op(&["+", "-"]) {
            self.pos += 1;
            let op = if op == "+" { BinOp::Add } else { BinOp::Sub };
            left = Node::Bin(op, Box::new(left), Box::new(self.mul()?));
        }
        Ok(left)
    }
    fn mul(&mut self) -> std::result::Result<Node, String> {
        let mut left = self.unary()?;
        while let Some(op) = self.is_op(&["*", "/", "%"]) {
            self.pos += 1;
            let op = match op {
                "*" => BinOp::Mul,
                "/" => BinOp::Div,
                _ => BinOp::Mod,
            };
            left = Node::Bin(op, Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }
    fn unary(&mut self) -> std::result::Result<Node, String> {
        if self.is_op(&["-"]).is_some() {
            self.pos += 1;
            return Ok(match self.unary()? {
                Node::Lit(Value::Float(v)) => Node::Lit(Value::Float(-v)),
                Node::Lit(Value::Int(v)) => Node::Lit(Value::Int(-v)),
                other => Node::Neg(Box::new(other)),
            });
        }
        self.primary()
    }
    fn primary(&mut self) -> std::result::Result<Node, String> {
        let col = self.col();
        match self.next() {
            Some(Tok::Num(v, is_float)) => Ok(if !is_float && v.abs() < 9.0e15 {
                #[allow(clippy::cast_possible_truncation)]
                Node::Lit(Value::Int(v as i64))
            } else {
                Node::Lit(Value::Float(v))
            }),
            Some(Tok::Str(s)) => Ok(Node::Lit(Value::Str(s))),
            Some(Tok::Quoted(name)) => Ok(Node::Col(name)),
            Some(Tok::Ident(name)) => {
                if matches!(name.to_ascii_lowercase().as_str(), "and" | "or" | "contains" | "starts_with" | "ends_with")
                {
                    return Err(format!("expected a value at column {col}, found `{name}`"));
                }
                match name.as_str() {
                    "true" | "True" | "TRUE" => return Ok(Node::Lit(Value::Bool(true))),
                    "false" | "False" | "FALSE" => return Ok(Node::Lit(Value::Bool(false))),
                    "null" | "NULL" | "None" => return Ok(Node::Lit(Value::Null)),
                    _ => {}
                }
                if self.peek() == Some(&Tok::LParen) {
                    let func = Func::from_name(&name.to_ascii_lowercase())
                        .ok_or_else(|| format!("unknown function `{name}` at column {col}"))?;
                    self.pos += 1;
                    let mut args = Vec::new();
                    if self.peek() != Some(&Tok::RParen) {
                        loop {
                            args.push(self.or()?);
                            match self.next() {
                                Some(Tok::Comma) => continue,
                                Some(Tok::RParen) => break,
                                _ => {
                                    return Err(format!(
                                        "expected `,` or `)` in call to `{name}` at column {}",
                                        self.toks.get(self.pos - 1).map_or(self.len + 1, |(c, _)| c + 1)
                                    ));
                                }
                            }
                        }
                    } else {
                        self.pos += 1;
                    }
                    let (lo, hi) = func.arity();
                    if args.len() < lo || args.len() > hi {
                        let want = if lo == hi { lo.to_string() } else { format!("{lo} to {hi}") };
                        return Err(format!("`{name}` takes {want} argument(s), got {}", args.len()));
                    }
                    Ok(Node::Call(func, args, None))
                } else {
                    Ok(Node::Col(name))
                }
            }
            Some(Tok::LParen) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Tok::RParen) => Ok(inner),
                    _ => Err(format!("missing `)` for the `(` at column {col}")),
                }
            }
            Some(other) => Err(format!("unexpected {other:?} at column {col}")),
            None => Err(format!("unexpected end of expression at column {col}")),
        }
    }
}

impl Expr {
    /// Parses expression text.
    pub fn parse(source: &str) -> Result<Expr> {
        let err = |message: String| CoreError::Expr { source_text: source.to_string(), message };
        let toks = tokenize(source).map_err(err)?;
        if toks.is_empty() {
            return Err(err("empty expression".into()));
        }
        let mut parser = Parser { toks, pos: 0, len: source.chars().count() };
        let root = parser.or().map_err(err)?;
        if parser.pos < parser.toks.len() {
            return Err(err(format!("unexpected text at column {}", parser.col())));
        }
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
        eval(&self.root, row)
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

// ---------------------------------------------------------------------------------------------
// Type checking

fn text_test(func: Func) -> fn(&str, &str) -> bool {
    match func {
        Func::StartsWith => |s, p| s.starts_with(p),
        Func::EndsWith => |s, p| s.ends_with(p),
        _ => |s, p| s.contains(p),
    }
}

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

fn is_temporal(t: DType) -> bool {
    matches!(t, DType::Date | DType::Datetime)
}

fn check_node(
    node: &mut Node,
    schema: &dyn Fn(&str) -> Option<DType>,
    available: &[String],
) -> std::result::Result<Option<DType>, String> {
    let numeric = |t: Option<DType>, what: &str| -> std::result::Result<(), String> {
        match t {
            None => Ok(()),
            Some(t) if t.is_numeric() => Ok(()),
            Some(t) => Err(format!("{what} needs numbers, got {t}")),
        }
    };
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
    let numeric = |t: Option<DType>, what: &str| -> std::result::Result<(), String> {
        match t {
            None => Ok(()),
            Some(t) if t.is_numeric() => Ok(()),
            Some(t) => Err(format!("{what} needs numbers, got {t}")),
        }
    };
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

// ---------------------------------------------------------------------------------------------
// Row evaluation

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

pub(crate) const MICROS_PER_DAY: i64 = 86_400_000_000;

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
fn min_max(func: Func, a: f64, b: f64) -> f64 {
    let a_first = cmp_f64(a, b) != std::cmp::Ordering::Greater;
    if (func == Func::Min) == a_first { a } else { b }
}

/// Floor modulo, the `%` of the expression language.
pub(crate) fn floor_mod(a: f64, b: f64) -> f64 {
    a - b * (a / b).floor()
}

fn arith(op: BinOp, a: f64, b: f64) -> f64 {
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

fn eval(node: &Node, row: &Row) -> Value {
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

// ---------------------------------------------------------------------------------------------
// Frame compilation

#[cfg(feature = "frame")]
mod frame {
    use polars::prelude::{self as pl, ChunkApply, DataType, Expr as PlExpr, IntoColumn, TimeUnit, lit, when};

    use super::*;

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
        let mut e = Expr::parse("missing + 1").unwrap();
        let err = e.check(&|_| None, &["a".into()]).unwrap_err().to_string();
        assert!(err.contains("column `missing` not found"), "{err}");
        let mut e = Expr::parse("name + 1").unwrap();
        let err = e.check(&|_| Some(DType::Str), &["name".into()]).unwrap_err().to_string();
        assert!(err.contains("arithmetic needs numbers"), "{err}");
    }
}
