//! Fitted operations: the serializable result of fitting a step's parameters on training rows.
//!
//! Each [`Op`] transforms a whole frame (`Op::apply_frame`, with the `frame` feature) and one row
//! ([`Op::apply_row`]) with identical results; the frame path calls the same scalar functions the
//! row path does wherever polars' own kernels could round or parse differently. Steps 3-5 (and later
//! feature engineering) fit their parameters into these operations; the [`FeaturePipeline`] keeps
//! them in order.
//!
//! [`FeaturePipeline`]: crate::pipeline::FeaturePipeline

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::expr::{Expr, round_to};
use crate::features::{DatePart, GroupStat, GroupSummary, TextStat};
use crate::value::{DType, Row, Value};
use crate::{CoreError, Result};

/// Target type of [`Op::Cast`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CastTo {
    /// 64-bit integer; text is parsed, floats must be whole.
    Int,
    /// 64-bit float; text is parsed.
    Float,
    /// Text; other values are formatted.
    Str,
    /// Boolean from text: values in `true_values` / `false_values` (compared case-insensitively
    /// after trimming); numbers 1 and 0.
    Bool {
        /// Text read as true.
        true_values: Vec<String>,
        /// Text read as false.
        false_values: Vec<String>,
    },
    /// Calendar date from text, trying each chrono format in order (`%Y-%m-%d`, `%d/%m/%Y`, ...).
    Date {
        /// Formats to try, in order.
        formats: Vec<String>,
    },
    /// Date and time from text, trying each chrono format in order.
    Datetime {
        /// Formats to try, in order.
        formats: Vec<String>,
    },
}

impl CastTo {
    /// The type the cast produces.
    pub fn dtype(&self) -> DType {
        match self {
            CastTo::Int => DType::Int,
            CastTo::Float => DType::Float,
            CastTo::Str => DType::Str,
            CastTo::Bool { .. } => DType::Bool,
            CastTo::Date { .. } => DType::Date,
            CastTo::Datetime { .. } => DType::Datetime,
        }
    }
}

/// What a conversion does with a value it cannot convert.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Make it null and go on (pandas' `errors="coerce"`); the step reports how many.
    #[default]
    Coerce,
    /// Stop with an error naming the column, row and value.
    Raise,
}

/// Text clean-up steps, applied in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextStep {
    /// Remove leading and trailing white space.
    Trim,
    /// Lower case.
    Lower,
    /// Upper case.
    Upper,
    /// First letter of each word upper case, the rest lower case.
    Title,
    /// Remove characters that are neither letters, digits, `_` nor white space (pandas'
    /// `str.replace(r'[^\w\s]', '')`).
    StripPunctuation,
    /// Collapse runs of white space into one space.
    CollapseSpaces,
    /// Empty text becomes null.
    EmptyToNull,
}

/// Applies text steps to one string; `None` when the result is null.
pub fn clean_text(steps: &[TextStep], input: &str) -> Option<String> {
    let mut out = String::new();
    clean_text_into(steps, input, &mut out).then_some(out)
}

/// [`clean_text`] into a buffer the caller reuses from value to value; `false` when the result
/// is null. Trimming narrows the borrowed input; the text is copied into `out` once a step
/// changes it, and changed in place there where it is ASCII.
pub fn clean_text_into(steps: &[TextStep], input: &str, out: &mut String) -> bool {
    let keep = |c: char| c.is_alphanumeric() || c == '_' || c.is_whitespace();
    // The text so far: a slice of the input until a step changes it, then `out`.
    let mut borrowed = Some(input);
    let owned = |borrowed: &mut Option<&str>, out: &mut String| {
        if let Some(b) = borrowed.take() {
            out.clear();
            out.push_str(b);
        }
    };
    // A step that makes a new text: it becomes `out`, the input left behind.
    let replace = |next: String, borrowed: &mut Option<&str>, out: &mut String| {
        *borrowed = None;
        *out = next;
    };
    for step in steps {
        let current = borrowed.unwrap_or(out.as_str());
        match step {
            TextStep::Trim => match borrowed {
                Some(b) => borrowed = Some(b.trim()),
                None => {
                    let end = out.trim_end().len();
                    out.truncate(end);
                    let start = out.len() - out.trim_start().len();
                    out.drain(..start);
                }
            },
            TextStep::Lower if current.is_ascii() => {
                if current.bytes().any(|b| b.is_ascii_uppercase()) {
                    owned(&mut borrowed, out);
                    out.make_ascii_lowercase();
                }
            }
            TextStep::Upper if current.is_ascii() => {
                if current.bytes().any(|b| b.is_ascii_lowercase()) {
                    owned(&mut borrowed, out);
                    out.make_ascii_uppercase();
                }
            }
            TextStep::Lower => replace(current.to_lowercase(), &mut borrowed, out),
            TextStep::Upper => replace(current.to_uppercase(), &mut borrowed, out),
            TextStep::Title => replace(title_case(current), &mut borrowed, out),
            TextStep::StripPunctuation => {
                if !current.chars().all(keep) {
                    owned(&mut borrowed, out);
                    out.retain(keep);
                }
            }
            TextStep::CollapseSpaces => {
                replace(current.split_whitespace().collect::<Vec<_>>().join(" "), &mut borrowed, out)
            }
            TextStep::EmptyToNull => {
                if current.is_empty() {
                    return false;
                }
            }
        }
    }
    owned(&mut borrowed, out);
    true
}

/// Python's `str.title()`: a letter after a non-letter is upper case, other letters lower case.
pub fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if c.is_alphabetic() {
            if prev_letter {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            prev_letter = true;
        } else {
            out.push(c);
            prev_letter = false;
        }
    }
    out
}

/// What [`Op::MapValues`] does with a value not in its map.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unmapped {
    /// Keep the value as it is (pandas' `replace`).
    #[default]
    Keep,
    /// Make it null (pandas' `map`).
    Null,
    /// Put this value instead.
    Value(Value),
}

/// What an encoder does with a category it did not see in training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownPolicy {
    /// Encode as "none of the known" (all zeros for one-hot, -1 for ordinal, the prior for target
    /// encoding).
    #[default]
    Ignore,
    /// Fail, naming the column and the value.
    Error,
}

/// Which side of a bin includes its edge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Closed {
    /// Bins are `(a, b]` (pandas' `cut` default).
    #[default]
    Right,
    /// Bins are `[a, b)`.
    Left,
}

/// Direction of a sequence fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillDirection {
    /// Carry the last seen value forward.
    Forward,
    /// Carry the next value backward.
    Backward,
}

/// Which duplicate to keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// The first occurrence.
    #[default]
    First,
    /// The last occurrence.
    Last,
    /// Drop every row that has a duplicate.
    None,
}

/// One fitted operation. Row filters ([`Op::FilterRange`], [`Op::DropNullRows`],
/// [`Op::Deduplicate`]) shape the training set only: at inference they pass rows through, so that
/// every input gets an answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Rename columns.
    Rename {
        /// Old name to new name, applied together.
        mapping: Vec<(String, String)>,
    },
    /// Remove columns.
    Drop {
        /// Columns to remove.
        columns: Vec<String>,
    },
    /// Convert a column's type.
    Cast {
        /// Column.
        column: String,
        /// Target type.
        to: CastTo,
        /// Coerce or raise on values that do not convert.
        #[serde(default)]
        on_error: OnError,
    },
    /// Replace nulls with a fitted value (mean, median, mode or a constant).
    FillNull {
        /// Column.
        column: String,
        /// The value; its type becomes the column's type (an int column filled with a median
        /// becomes float).
        value: Value,
    },
    /// Replace nulls with a value fitted per group (salary by department).
    FillNullByGroup {
        /// Column.
        column: String,
        /// Grouping column.
        by: String,
        /// Group key (as text) to value.
        values: BTreeMap<String, Value>,
        /// For groups not seen in training or without any value.
        fallback: Value,
    },
    /// Forward or backward fill along the row order of a training frame. At inference rows stand
    /// alone (a served row has no neighbour), so the fitted `fallback` (the last value seen in
    /// training) fills them.
    FillSequence {
        /// Column.
        column: String,
        /// Direction.
        direction: FillDirection,
        /// Value for nulls with no neighbour to copy from.
        fallback: Value,
    },
    /// Limit values to fitted bounds (outliers by IQR or z-score, action `clip`).
    Clip {
        /// Column.
        column: String,
        /// Lower bound.
        lower: f64,
        /// Upper bound.
        upper: f64,
    },
    /// Training only: drop rows outside fitted bounds (outliers, action `drop`). Nulls are kept.
    FilterRange {
        /// Column.
        column: String,
        /// Lower bound.
        lower: f64,
        /// Upper bound.
        upper: f64,
    },
    /// Training only: drop rows with nulls in the given columns (all columns when empty) once
    /// their share of nulls exceeds `max_null_fraction` (0 drops a row with any null).
    DropNullRows {
        /// Columns to look at; empty means all.
        columns: Vec<String>,
        /// Largest share of nulls a kept row may have.
        max_null_fraction: f64,
    },
    /// Training only: drop duplicate rows.
    Deduplicate {
        /// Columns that define a duplicate; empty means all.
        subset: Vec<String>,
        /// Which occurrence to keep.
        keep: Keep,
    },
    /// Clean text.
    Text {
        /// Column.
        column: String,
        /// Steps, in order.
        steps: Vec<TextStep>,
    },
    /// Replace values through a map (value maps, categorical codes like `ACTIVE -> A`).
    MapValues {
        /// Column read.
        column: String,
        /// Column written; the input column when absent.
        output: Option<String>,
        /// Input (as text) to output.
        mapping: BTreeMap<String, Value>,
        /// For values not in the map.
        #[serde(default)]
        unmapped: Unmapped,
    },
    /// Put numbers into labelled bins (pandas' `cut`).
    Bin {
        /// Column read.
        column: String,
        /// Column written.
        output: String,
        /// Bin edges, increasing; `n + 1` edges for `n` labels.
        edges: Vec<f64>,
        /// Label per bin.
        labels: Vec<String>,
        /// Which edge a bin includes.
        #[serde(default)]
        closed: Closed,
    },
    /// Round to a number of decimals, half away from zero.
    Round {
        /// Column.
        column: String,
        /// Decimals (negative rounds to tens, hundreds, ...).
        decimals: i32,
    },
    /// `x * factor + offset`: unit conversion.
    Linear {
        /// Column read.
        column: String,
        /// Column written; the input column when absent.
        output: Option<String>,
        /// Multiplier.
        factor: f64,
        /// Added after multiplying.
        offset: f64,
    },
    /// `(x - center) / scale`: standard, min-max and robust scaling.
    Scale {
        /// Column.
        column: String,
        /// Subtracted first.
        center: f64,
        /// Divided by next; never zero (a constant column gets 1).
        scale: f64,
    },
    /// One float 0/1 column per category seen in training.
    OneHot {
        /// Column read.
        column: String,
        /// Categories, in output order.
        categories: Vec<String>,
        /// Output column per category.
        outputs: Vec<String>,
        /// Unseen categories.
        #[serde(default)]
        unknown: UnknownPolicy,
        /// Remove the input column.
        drop_input: bool,
    },
    /// Integer code per category (position in `categories`); unseen give -1 or fail; null stays
    /// null.
    Ordinal {
        /// Column read.
        column: String,
        /// Column written; the input column when absent.
        output: Option<String>,
        /// Categories, in code order.
        categories: Vec<String>,
        /// Unseen categories.
        #[serde(default)]
        unknown: UnknownPolicy,
    },
    /// Smoothed mean of the target per category, fitted on training rows only. One output per
    /// target class for a categorical target, one for a numeric target.
    TargetEncode {
        /// Column read.
        column: String,
        /// Output columns.
        outputs: Vec<String>,
        /// Category to one value per output.
        table: BTreeMap<String, Vec<f64>>,
        /// The prior: for unseen categories and nulls.
        prior: Vec<f64>,
        /// Unseen categories.
        #[serde(default)]
        unknown: UnknownPolicy,
        /// Remove the input column.
        drop_input: bool,
    },
    /// A column computed from an expression.
    Derive {
        /// Column written.
        output: String,
        /// The expression.
        expr: Expr,
        /// Type the expression yields, settled when the op was fitted.
        dtype: Option<DType>,
    },
    /// Parts of a date or timestamp as new columns (year, month, day of week, ...).
    DateParts {
        /// Column read.
        column: String,
        /// Parts, one per output.
        parts: Vec<DatePart>,
        /// Columns written.
        outputs: Vec<String>,
    },
    /// Statistics of a text column as new columns (length, word count, special characters).
    TextStats {
        /// Column read.
        column: String,
        /// Statistics, one per output.
        stats: Vec<TextStat>,
        /// Columns written.
        outputs: Vec<String>,
    },
    /// Earlier values and rolling means of a column, in the order of a time column within groups.
    /// On training rows each row looks back at earlier training rows; at inference a row looks
    /// back at the last training values of its group (`history`).
    Lag {
        /// Column read.
        column: String,
        /// The time (or sequence) column.
        order_by: String,
        /// Group column (one sequence when absent).
        by: Option<String>,
        /// Lags, in rows.
        lags: Vec<usize>,
        /// Rolling-mean windows, in rows (the current row included).
        windows: Vec<usize>,
        /// Columns written: one per lag, then one per window.
        outputs: Vec<String>,
        /// Per group, its last training values, oldest first.
        history: BTreeMap<String, Vec<Option<f64>>>,
    },
    /// Statistics of a value's group learned on training rows (mean, std, percentile rank).
    GroupStats {
        /// Column read.
        column: String,
        /// Group column.
        by: String,
        /// Statistics, one per output.
        stats: Vec<GroupStat>,
        /// Columns written.
        outputs: Vec<String>,
        /// Per group.
        table: BTreeMap<String, GroupSummary>,
        /// For unseen or null groups: all training values.
        fallback: GroupSummary,
    },
}

impl Op {
    /// Whether the op only removes rows from a training set (a no-op at inference).
    pub fn is_row_filter(&self) -> bool {
        matches!(self, Op::FilterRange { .. } | Op::DropNullRows { .. } | Op::Deduplicate { .. })
    }

    /// A short human name, for reports and logs.
    pub fn describe(&self) -> String {
        match self {
            Op::Rename { mapping } => format!("rename {} column(s)", mapping.len()),
            Op::Drop { columns } => format!("drop {}", columns.join(", ")),
            Op::Cast { column, to, .. } => format!("cast {column} to {}", to.dtype()),
            Op::FillNull { column, value } => format!("fill nulls in {column} with {value}"),
            Op::FillNullByGroup { column, by, .. } => format!("fill nulls in {column} per {by}"),
            Op::FillSequence { column, direction, .. } => format!("{direction:?} fill {column}").to_lowercase(),
            Op::Clip { column, lower, upper } => format!("clip {column} to [{lower}, {upper}]"),
            Op::FilterRange { column, lower, upper } => format!("keep rows with {column} in [{lower}, {upper}]"),
            Op::DropNullRows { columns, .. } if columns.is_empty() => "drop rows with nulls".into(),
            Op::DropNullRows { columns, .. } => format!("drop rows with nulls in {}", columns.join(", ")),
            Op::Deduplicate { subset, .. } if subset.is_empty() => "drop duplicate rows".into(),
            Op::Deduplicate { subset, .. } => format!("drop duplicates on {}", subset.join(", ")),
            Op::Text { column, .. } => format!("clean text in {column}"),
            Op::MapValues { column, .. } => format!("map values of {column}"),
            Op::Bin { column, output, .. } => format!("bin {column} into {output}"),
            Op::Round { column, decimals } => format!("round {column} to {decimals} decimals"),
            Op::Linear { column, factor, offset, .. } => format!("{column} * {factor} + {offset}"),
            Op::Scale { column, center, scale } => format!("scale {column}: (x - {center}) / {scale}"),
            Op::OneHot { column, categories, .. } => format!("one-hot {column} ({} categories)", categories.len()),
            Op::Ordinal { column, .. } => format!("ordinal-encode {column}"),
            Op::TargetEncode { column, .. } => format!("target-encode {column}"),
            Op::Derive { output, expr, .. } => format!("{output} = {expr}"),
            Op::DateParts { column, outputs, .. } => format!("{} date part(s) of {column}", outputs.len()),
            Op::TextStats { column, outputs, .. } => format!("{} text statistic(s) of {column}", outputs.len()),
            Op::Lag { column, order_by, outputs, .. } => {
                format!("{} lag/rolling column(s) of {column} by {order_by}", outputs.len())
            }
            Op::GroupStats { column, by, outputs, .. } => {
                format!("{} statistic(s) of {column} per {by}", outputs.len())
            }
        }
    }

    /// The columns the op reads.
    pub fn inputs(&self) -> Vec<String> {
        match self {
            Op::Rename { mapping } => mapping.iter().map(|(from, _)| from.clone()).collect(),
            Op::Drop { columns } => columns.clone(),
            Op::DropNullRows { columns, .. } => columns.clone(),
            Op::Deduplicate { subset, .. } => subset.clone(),
            Op::FillNullByGroup { column, by, .. } => vec![column.clone(), by.clone()],
            Op::Derive { expr, .. } => expr.columns(),
            Op::Lag { column, order_by, by, .. } => {
                std::iter::once(column.clone()).chain([order_by.clone()]).chain(by.clone()).collect()
            }
            Op::GroupStats { column, by, .. } => vec![column.clone(), by.clone()],
            Op::DateParts { column, .. } | Op::TextStats { column, .. } => vec![column.clone()],
            Op::Cast { column, .. }
            | Op::FillNull { column, .. }
            | Op::FillSequence { column, .. }
            | Op::Clip { column, .. }
            | Op::FilterRange { column, .. }
            | Op::Text { column, .. }
            | Op::MapValues { column, .. }
            | Op::Bin { column, .. }
            | Op::Round { column, .. }
            | Op::Linear { column, .. }
            | Op::Scale { column, .. }
            | Op::OneHot { column, .. }
            | Op::Ordinal { column, .. }
            | Op::TargetEncode { column, .. } => vec![column.clone()],
        }
    }

    /// Transforms one row in place, as inference does.
    pub fn apply_row(&self, row: &mut Row) -> Result<()> {
        let get = |row: &Row, c: &str| row.get(c).cloned().unwrap_or(Value::Null);
        match self {
            Op::Rename { mapping } => {
                let moved: Vec<(String, Value)> =
                    mapping.iter().map(|(from, to)| (to.clone(), row.remove(from).unwrap_or(Value::Null))).collect();
                row.extend(moved);
            }
            Op::Drop { columns } => {
                for c in columns {
                    row.remove(c);
                }
            }
            Op::Cast { column, to, on_error } => {
                let v = get(row, column);
                let out = cast_value(&v, to).or_else(|NotConvertible| match on_error {
                    OnError::Coerce => Ok(Value::Null),
                    OnError::Raise => Err(CoreError::Conversion {
                        column: column.clone(),
                        row: None,
                        value: v.to_string(),
                        target: to.dtype().to_string(),
                    }),
                })?;
                row.insert(column.clone(), out);
            }
            Op::FillNull { column, value } => {
                let out = fill_cell(column, get(row, column), value)?;
                row.insert(column.clone(), out);
            }
            Op::FillNullByGroup { column, by, values, fallback } => {
                let fill = get(row, by).key().and_then(|k| values.get(&k)).unwrap_or(fallback);
                let out = fill_cell(column, get(row, column), fill)?;
                row.insert(column.clone(), out);
            }
            Op::FillSequence { column, fallback, .. } => {
                let out = fill_cell(column, get(row, column), fallback)?;
                row.insert(column.clone(), out);
            }
            Op::Clip { column, lower, upper } => {
                let v = get(row, column);
                if let Some(x) = v.as_f64() {
                    row.insert(column.clone(), Value::Float(clip(x, *lower, *upper)));
                } else if !v.is_null() {
                    return Err(wrong_type(column, &v, "number"));
                }
            }
            Op::FilterRange { .. } | Op::DropNullRows { .. } | Op::Deduplicate { .. } => {}
            Op::Text { column, steps } => {
                let v = get(row, column);
                if let Value::Str(s) = &v {
                    row.insert(column.clone(), clean_text(steps, s).map_or(Value::Null, Value::Str));
                } else if !v.is_null() {
                    return Err(wrong_type(column, &v, "text"));
                }
            }
            Op::MapValues { column, output, mapping, unmapped } => {
                let v = get(row, column);
                let out = map_value(&v, mapping, unmapped);
                row.insert(output.clone().unwrap_or_else(|| column.clone()), out);
            }
            Op::Bin { column, output, edges, labels, closed } => {
                let v = get(row, column);
                let out = match v.as_f64() {
                    Some(x) => bin_index(x, edges, *closed).map_or(Value::Null, |i| Value::Str(labels[i].clone())),
                    None if v.is_null() => Value::Null,
                    None => return Err(wrong_type(column, &v, "number")),
                };
                row.insert(output.clone(), out);
            }
            Op::Round { column, decimals } => {
                let v = get(row, column);
                if let Some(x) = v.as_f64() {
                    row.insert(column.clone(), Value::Float(round_to(x, *decimals)));
                } else if !v.is_null() {
                    return Err(wrong_type(column, &v, "number"));
                }
            }
            Op::Linear { column, output, factor, offset } => {
                let v = get(row, column);
                let out = match v.as_f64() {
                    Some(x) => Value::Float(x * factor + offset),
                    None if v.is_null() => Value::Null,
                    None => return Err(wrong_type(column, &v, "number")),
                };
                row.insert(output.clone().unwrap_or_else(|| column.clone()), out);
            }
            Op::Scale { column, center, scale } => {
                let v = get(row, column);
                let out = match v.as_f64() {
                    Some(x) => Value::Float((x - center) / scale),
                    None if v.is_null() => Value::Null,
                    None => return Err(wrong_type(column, &v, "number")),
                };
                row.insert(column.clone(), out);
            }
            Op::OneHot { column, categories, outputs, unknown, drop_input } => {
                let v = get(row, column);
                let key = v.key();
                if let (Some(k), UnknownPolicy::Error) = (&key, unknown)
                    && !categories.contains(k)
                {
                    return Err(unknown_category(column, k, categories));
                }
                for (cat, out) in categories.iter().zip(outputs) {
                    let hit = key.as_deref() == Some(cat.as_str());
                    row.insert(out.clone(), Value::Float(if hit { 1.0 } else { 0.0 }));
                }
                if *drop_input {
                    row.remove(column);
                }
            }
            Op::Ordinal { column, output, categories, unknown } => {
                let v = get(row, column);
                let out = match v.key() {
                    None => Value::Null,
                    Some(k) => match categories.iter().position(|c| *c == k) {
                        Some(i) => Value::Int(i as i64),
                        None if *unknown == UnknownPolicy::Error => {
                            return Err(unknown_category(column, &k, categories));
                        }
                        None => Value::Int(-1),
                    },
                };
                row.insert(output.clone().unwrap_or_else(|| column.clone()), out);
            }
            Op::TargetEncode { column, outputs, table, prior, unknown, drop_input } => {
                let v = get(row, column);
                let encoded = match v.key() {
                    None => prior,
                    Some(k) => match table.get(&k) {
                        Some(values) => values,
                        None if *unknown == UnknownPolicy::Error => {
                            return Err(unknown_category(column, &k, &table.keys().cloned().collect::<Vec<_>>()));
                        }
                        None => prior,
                    },
                };
                for (out, x) in outputs.iter().zip(encoded) {
                    row.insert(out.clone(), Value::Float(*x));
                }
                if *drop_input {
                    row.remove(column);
                }
            }
            Op::DateParts { column, parts, outputs } => {
                let v = get(row, column);
                for (part, out) in parts.iter().zip(outputs) {
                    let x = crate::features::date_part(&v, *part).ok_or_else(|| wrong_type(column, &v, "date"))?;
                    row.insert(out.clone(), x);
                }
            }
            Op::TextStats { column, stats, outputs } => {
                let v = get(row, column);
                for (stat, out) in stats.iter().zip(outputs) {
                    let x = crate::features::text_stat(&v, *stat).ok_or_else(|| wrong_type(column, &v, "text"))?;
                    row.insert(out.clone(), x);
                }
            }
            Op::Lag { column, by, lags, windows, outputs, history, .. } => {
                let v = get(row, column);
                if !v.is_null() && v.as_f64().is_none() {
                    return Err(wrong_type(column, &v, "number"));
                }
                let key = crate::features::lag_key(by.as_ref().map(|b| row.get(b).unwrap_or(&Value::Null)));
                let h = key.and_then(|k| history.get(&k)).map_or(&[][..], Vec::as_slice);
                for (out, x) in outputs.iter().zip(crate::features::lags_at_inference(v.as_f64(), h, lags, windows)) {
                    row.insert(out.clone(), x);
                }
            }
            Op::GroupStats { column, by, stats, outputs, table, fallback } => {
                let v = get(row, column);
                if !v.is_null() && v.as_f64().is_none() {
                    return Err(wrong_type(column, &v, "number"));
                }
                let summary = get(row, by).key().and_then(|k| table.get(&k)).unwrap_or(fallback);
                for (stat, out) in stats.iter().zip(outputs) {
                    row.insert(out.clone(), summary.stat(*stat, &v));
                }
            }
            Op::Derive { output, expr, dtype } => {
                let v = expr.eval_row(row);
                let v = match (v, dtype) {
                    (Value::Int(i), Some(DType::Float)) => Value::Float(i as f64),
                    (Value::Bool(b), Some(DType::Float)) => Value::Float(f64::from(u8::from(b))),
                    (v, _) => v,
                };
                row.insert(output.clone(), v);
            }
        }
        Ok(())
    }
}

pub(crate) fn wrong_type(column: &str, v: &Value, expected: &str) -> CoreError {
    CoreError::WrongType {
        column: column.to_string(),
        found: v.dtype().map_or_else(|| "null".to_string(), |t| t.to_string()),
        expected: expected.to_string(),
    }
}

pub(crate) fn unknown_category(column: &str, value: &str, known: &[String]) -> CoreError {
    CoreError::UnknownCategory { column: column.to_string(), value: value.to_string(), known: known.to_vec() }
}

/// Clamp that keeps NaN as NaN.
pub(crate) fn clip(x: f64, lower: f64, upper: f64) -> f64 {
    if x < lower {
        lower
    } else if x > upper {
        upper
    } else {
        x
    }
}

/// Index of the bin holding `x`, if any.
pub(crate) fn bin_index(x: f64, edges: &[f64], closed: Closed) -> Option<usize> {
    if x.is_nan() {
        return None;
    }
    edges.windows(2).position(|w| match closed {
        Closed::Right => x > w[0] && x <= w[1],
        Closed::Left => x >= w[0] && x < w[1],
    })
}

pub(crate) fn map_value(v: &Value, mapping: &BTreeMap<String, Value>, unmapped: &Unmapped) -> Value {
    let Some(k) = v.key() else { return Value::Null };
    match mapping.get(&k) {
        Some(out) => out.clone(),
        None => match unmapped {
            Unmapped::Keep => v.clone(),
            Unmapped::Null => Value::Null,
            Unmapped::Value(x) => x.clone(),
        },
    }
}

/// A cell after a fill: nulls take `fill`, other values are converted to the fill's type (an int
/// column filled with a float median becomes float). A value that cannot live in a column of the
/// fill's type is an error, on both paths.
pub(crate) fn fill_cell(column: &str, v: Value, fill: &Value) -> Result<Value> {
    Ok(match (v, fill) {
        (Value::Null, fill) => fill.clone(),
        (v, Value::Null) => v,
        (Value::Int(i), Value::Float(_)) => Value::Float(i as f64),
        (Value::Bool(b), Value::Float(_)) => Value::Float(f64::from(u8::from(b))),
        (Value::Bool(b), Value::Int(_)) => Value::Int(i64::from(b)),
        (v, fill) if v.dtype() == fill.dtype() => v,
        (v, fill) => {
            return Err(CoreError::WrongType {
                column: column.to_string(),
                found: v.dtype().map_or_else(|| "null".into(), |t| t.to_string()),
                expected: format!("values that the fill value {fill} can stand beside"),
            });
        }
    })
}

/// A value that does not convert to the requested type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotConvertible;

/// Converts one value; [`NotConvertible`] when it cannot be converted. Null stays null.
pub fn cast_value(v: &Value, to: &CastTo) -> std::result::Result<Value, NotConvertible> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    match to {
        CastTo::Str => Ok(Value::Str(v.to_string())),
        CastTo::Float => match v {
            Value::Str(s) => parse_float(s).map(Value::Float).ok_or(NotConvertible),
            other => other.as_f64().map(Value::Float).ok_or(NotConvertible),
        },
        CastTo::Int => match v {
            Value::Int(i) => Ok(Value::Int(*i)),
            Value::Bool(b) => Ok(Value::Int(i64::from(*b))),
            Value::Float(f) => float_to_int(*f).map(Value::Int).ok_or(NotConvertible),
            Value::Str(s) => parse_int(s).map(Value::Int).ok_or(NotConvertible),
            _ => Err(NotConvertible),
        },
        CastTo::Bool { true_values, false_values } => match v {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            Value::Int(1) => Ok(Value::Bool(true)),
            Value::Int(0) => Ok(Value::Bool(false)),
            Value::Str(s) => parse_bool(s, true_values, false_values).map(Value::Bool).ok_or(NotConvertible),
            _ => Err(NotConvertible),
        },
        CastTo::Date { formats } => match v {
            Value::Date(d) => Ok(Value::Date(*d)),
            Value::Datetime(us) => {
                Ok(Value::Date(i32::try_from(us.div_euclid(crate::expr::MICROS_PER_DAY)).map_err(|_| NotConvertible)?))
            }
            Value::Str(s) => parse_date(s, formats).map(Value::Date).ok_or(NotConvertible),
            _ => Err(NotConvertible),
        },
        CastTo::Datetime { formats } => match v {
            Value::Datetime(us) => Ok(Value::Datetime(*us)),
            Value::Date(d) => Ok(Value::Datetime(i64::from(*d) * crate::expr::MICROS_PER_DAY)),
            Value::Str(s) => parse_datetime(s, formats).map(Value::Datetime).ok_or(NotConvertible),
            _ => Err(NotConvertible),
        },
    }
}

/// Parses a float from trimmed text; empty text is not a number.
pub fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    t.parse::<f64>().ok()
}

/// Parses an integer from trimmed text; `"3.0"` is 3, `"3.5"` is not an integer.
pub fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    t.parse::<i64>().ok().or_else(|| parse_float(t).and_then(float_to_int))
}

#[allow(clippy::cast_possible_truncation)]
fn float_to_int(f: f64) -> Option<i64> {
    // i64::MAX as f64 rounds up to 2^63, so the upper bound is exclusive.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    (f.is_finite() && f.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&f)).then_some(f as i64)
}

/// Reads a boolean from text through the true and false lists, case-insensitively.
pub fn parse_bool(s: &str, true_values: &[String], false_values: &[String]) -> Option<bool> {
    let t = s.trim();
    if true_values.iter().any(|x| x.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if false_values.iter().any(|x| x.eq_ignore_ascii_case(t)) {
        Some(false)
    } else {
        None
    }
}

/// Days since the epoch of the first format that parses the trimmed text.
pub fn parse_date(s: &str, formats: &[String]) -> Option<i32> {
    let t = s.trim();
    formats.iter().find_map(|f| {
        // `YYYY-MM-DD` is by far the most common case; read it without chrono's format parser.
        // Text the shortcut does not take falls through to chrono, which reads it the same way.
        if f == "%Y-%m-%d"
            && let Some(days) = iso_date(t)
        {
            return Some(days);
        }
        chrono::NaiveDate::parse_from_str(t, f)
            .ok()
            .or_else(|| chrono::NaiveDateTime::parse_from_str(t, f).ok().map(|dt| dt.date()))
            .map(Value::days_from_date)
    })
}

/// Days since the epoch of a strict `YYYY-MM-DD`.
fn iso_date(t: &str) -> Option<i32> {
    let b = t.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, d| d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0')))
    };
    let date = chrono::NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?;
    Some(Value::days_from_date(date))
}

/// Microseconds since the epoch of the first format that parses the trimmed text; a format
/// without a time reads midnight.
pub fn parse_datetime(s: &str, formats: &[String]) -> Option<i64> {
    let t = s.trim();
    formats.iter().find_map(|f| {
        chrono::NaiveDateTime::parse_from_str(t, f)
            .ok()
            .or_else(|| chrono::NaiveDate::parse_from_str(t, f).ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
            .map(|dt| dt.and_utc().timestamp_micros())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_matches_python() {
        assert_eq!(title_case("hello wORLD o'neil"), "Hello World O'Neil");
    }

    #[test]
    fn strip_punctuation_keeps_words() {
        assert_eq!(
            clean_text(&[TextStep::Trim, TextStep::Lower, TextStep::StripPunctuation], "  Not enough blood!  ")
                .as_deref(),
            Some("not enough blood")
        );
    }

    #[test]
    fn bins_are_right_closed_by_default() {
        let edges = [0.0, 18.0, 65.0, 200.0];
        assert_eq!(bin_index(18.0, &edges, Closed::Right), Some(0));
        assert_eq!(bin_index(18.0, &edges, Closed::Left), Some(1));
        assert_eq!(bin_index(-1.0, &edges, Closed::Right), None);
    }

    #[test]
    fn raise_names_column_and_value() {
        let op = Op::Cast { column: "age".into(), to: CastTo::Int, on_error: OnError::Raise };
        let mut row = Row::from([("age".to_string(), Value::Str("old".into()))]);
        let err = op.apply_row(&mut row).unwrap_err().to_string();
        assert!(err.contains("`age`") && err.contains("\"old\""), "{err}");
    }
}
