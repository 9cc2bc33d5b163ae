//! Cell values and rows: the data model of the row path, which serving uses without building a
//! frame.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

/// Microseconds in a day: a [`Value::Date`] counts days, a [`Value::Datetime`] microseconds.
pub(crate) const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The logical column types the toolkit distinguishes.
///
/// Frames may hold narrower physical types (`Int32`, `Float32`, `Categorical`); they map onto these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DType {
    /// `true` / `false`.
    Bool,
    /// 64-bit signed integer.
    Int,
    /// 64-bit float.
    Float,
    /// UTF-8 text (also categorical columns).
    #[serde(rename = "string", alias = "str", alias = "text")]
    Str,
    /// Calendar date.
    Date,
    /// Date and time without a time zone, microsecond precision.
    Datetime,
}

impl DType {
    /// Whether arithmetic applies to the type.
    pub fn is_numeric(self) -> bool {
        matches!(self, DType::Int | DType::Float)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::Bool => "bool",
            DType::Int => "int",
            DType::Float => "float",
            DType::Str => "string",
            DType::Date => "date",
            DType::Datetime => "datetime",
        })
    }
}

/// One cell.
///
/// Serialized externally tagged (`{"float": 3.5}`) so that a stored value keeps its type through a
/// round trip; [`Value::from_json`] and [`Value::to_json`] give the plain JSON a client sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// Missing.
    Null,
    /// Boolean.
    Bool(bool),
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// Text.
    Str(String),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01T00:00:00.
    Datetime(i64),
}

/// One record: column name to value. A column absent from the map reads as [`Value::Null`].
pub type Row = BTreeMap<String, Value>;

/// The Unix epoch as a date; dates are stored as days from it.
pub(crate) fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

impl Value {
    /// The logical type, `None` for null.
    pub fn dtype(&self) -> Option<DType> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(_) => DType::Bool,
            Value::Int(_) => DType::Int,
            Value::Float(_) => DType::Float,
            Value::Str(_) => DType::Str,
            Value::Date(_) => DType::Date,
            Value::Datetime(_) => DType::Datetime,
        })
    }

    /// Whether the value is missing.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as a float, for numbers and booleans.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(v) => Some(*v as f64),
            Value::Float(v) => Some(*v),
            Value::Bool(v) => Some(f64::from(u8::from(*v))),
            _ => None,
        }
    }

    /// The value as text, for strings only.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Text form used for category keys: strings as they are, other values as displayed.
    pub fn key(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Str(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// Builds a value from plain JSON: numbers become `Int` when integral, strings stay strings.
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => n.as_f64().map_or(Value::Null, Value::Float),
            },
            serde_json::Value::String(s) => Value::Str(s.clone()),
            other => Value::Str(other.to_string()),
        }
    }

    /// Plain JSON for a client: dates as ISO 8601 text, non-finite floats as null.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into),
            Value::Str(s) => s.clone().into(),
            Value::Date(_) | Value::Datetime(_) => self.to_string().into(),
        }
    }

    /// Equality that treats two NaNs as the same value, for comparing outputs of two paths.
    pub fn same_as(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            _ => self == other,
        }
    }

    /// The date as a chrono date.
    pub fn date_from_days(days: i32) -> Option<NaiveDate> {
        epoch().checked_add_signed(chrono::TimeDelta::days(i64::from(days)))
    }

    /// The datetime as a chrono datetime.
    pub fn datetime_from_micros(micros: i64) -> Option<NaiveDateTime> {
        DateTime::from_timestamp_micros(micros).map(|d| d.naive_utc())
    }

    /// `text` read as `%Y-%m-%d`; the common `YYYY-MM-DD` shape directly, without parsing the
    /// format (the serving path reads a date per row).
    pub fn parse_date(text: &str) -> Option<NaiveDate> {
        let b = text.as_bytes();
        let digits = |r: std::ops::Range<usize>| {
            b[r].iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
        };
        if b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10))
        {
            return NaiveDate::from_ymd_opt(y as i32, m, d);
        }
        NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
    }

    /// Days since the epoch of a chrono date.
    pub fn days_from_date(date: NaiveDate) -> i32 {
        // A NaiveDate spans about ±262,000 years, which fits in i32 days.
        i32::try_from(date.signed_duration_since(epoch()).num_days()).unwrap_or(i32::MAX)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Str(s) => f.write_str(s),
            Value::Date(d) => match Value::date_from_days(*d) {
                Some(date) => write!(f, "{}", date.format("%Y-%m-%d")),
                None => write!(f, "date({d})"),
            },
            Value::Datetime(us) => match Value::datetime_from_micros(*us) {
                Some(dt) => write!(f, "{}", dt.format("%Y-%m-%dT%H:%M:%S%.f")),
                None => write!(f, "datetime({us})"),
            },
        }
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A literal written in a config file (`allowed: [a, b]`, `min: 0`, `constant: unknown`): number,
/// text or boolean, as YAML spells it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// `true` / `false`.
    Bool(bool),
    /// Whole number.
    Int(i64),
    /// Number with a fraction.
    Float(f64),
    /// Text (also dates, `2008-01-01`).
    Str(String),
}

impl Scalar {
    /// As a cell value.
    pub fn value(&self) -> Value {
        match self {
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Int(i) => Value::Int(*i),
            Scalar::Float(f) => Value::Float(*f),
            Scalar::Str(s) => Value::Str(s.clone()),
        }
    }
}
