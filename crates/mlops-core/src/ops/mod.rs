//! Fitted operations: the serializable result of fitting a step's parameters on training rows.
//!
//! Each [`Op`] transforms a whole frame (`Op::apply_frame`, with the `frame` feature) and one row
//! ([`Op::apply_row`]) with identical results; the frame path calls the same scalar functions the
//! row path does wherever polars' own kernels could round or parse differently. Steps 3-5 (and
//! later
//! feature engineering) fit their parameters into these operations; the [`FeaturePipeline`] keeps
//! them in order.
//!
//! [`FeaturePipeline`]: crate::pipeline::FeaturePipeline

//!
//! The operations are grouped by family, each family's row path and frame path side by side in
//! its own module; [`Op`] is the serialized form and dispatches to them.

mod cast;
mod columns;
mod derive;
mod encode;
pub mod features;
mod fill;
mod lookup;
mod numeric;
#[cfg(feature = "frame")]
mod rows;
mod text;

use std::collections::BTreeMap;

#[cfg(feature = "frame")]
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

pub use crate::dedup::Keep;
pub use cast::{
    CastTo, NotConvertible, OnError, cast_value, parse_bool, parse_date, parse_datetime, parse_float, parse_int,
};
pub use encode::{Closed, UnknownPolicy, Unmapped};
use features::{DatePart, GroupStat, GroupSummary, TextStat};
pub use fill::FillDirection;
pub use lookup::lookup_key;
pub use text::{TextStep, clean_text, clean_text_into, title_case};

use crate::expr::Expr;
#[cfg(feature = "frame")]
use crate::frame::Stage;
use crate::value::{DType, Row, Value};
use crate::{CoreError, Result};

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
    /// Columns looked up in a small table by key: a step 5 join with a lookup source, embedded
    /// so that a served record is joined as the training rows were. A key missing from the table
    /// (or null) gives nulls; every row is kept, whatever the join type was in training.
    Lookup {
        /// The source the table came from.
        source: String,
        /// Key columns of the row, in order.
        on: Vec<String>,
        /// Columns written, in order.
        outputs: Vec<String>,
        /// Their types.
        dtypes: Vec<DType>,
        /// Key (see [`lookup_key`]) to one value per output.
        table: BTreeMap<String, Vec<Value>>,
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
            Op::Lookup { source, on, outputs, .. } => {
                format!("look up {} column(s) of `{source}` by {}", outputs.len(), on.join(", "))
            }
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
            Op::Lookup { on, .. } => on.clone(),
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

    /// The columns the op writes (in place or new). Row filters and drops write none; a rename
    /// writes its new names.
    pub fn writes(&self) -> Vec<String> {
        match self {
            Op::Rename { mapping } => mapping.iter().map(|(_, to)| to.clone()).collect(),
            Op::Drop { .. } | Op::FilterRange { .. } | Op::DropNullRows { .. } | Op::Deduplicate { .. } => Vec::new(),
            Op::MapValues { column, output, .. }
            | Op::Linear { column, output, .. }
            | Op::Ordinal { column, output, .. } => {
                vec![output.clone().unwrap_or_else(|| column.clone())]
            }
            Op::Bin { output, .. } | Op::Derive { output, .. } => vec![output.clone()],
            Op::OneHot { outputs, .. }
            | Op::TargetEncode { outputs, .. }
            | Op::DateParts { outputs, .. }
            | Op::TextStats { outputs, .. }
            | Op::Lag { outputs, .. }
            | Op::GroupStats { outputs, .. }
            | Op::Lookup { outputs, .. } => outputs.clone(),
            Op::Cast { column, .. }
            | Op::FillNull { column, .. }
            | Op::FillNullByGroup { column, .. }
            | Op::FillSequence { column, .. }
            | Op::Clip { column, .. }
            | Op::Text { column, .. }
            | Op::Round { column, .. }
            | Op::Scale { column, .. } => vec![column.clone()],
        }
    }

    /// Transforms one row in place, as inference does. Row filters keep every row.
    pub fn apply_row(&self, row: &mut Row) -> Result<()> {
        match self {
            Op::Rename { mapping } => columns::rename_row(row, mapping),
            Op::Drop { columns } => columns::drop_row(row, columns),
            Op::Cast { column, to, on_error } => cast::cast_row(row, column, to, on_error),
            Op::FillNull { column, value } => fill::fill_null_row(row, column, value),
            Op::FillNullByGroup { column, by, values, fallback } => {
                fill::fill_null_by_group_row(row, column, by, values, fallback)
            }
            Op::FillSequence { column, fallback, .. } => fill::fill_sequence_row(row, column, fallback),
            Op::Clip { column, lower, upper } => numeric::clip_row(row, column, lower, upper),
            Op::Text { column, steps } => text::text_row(row, column, steps),
            Op::MapValues { column, output, mapping, unmapped } => {
                encode::map_values_row(row, column, output, mapping, unmapped)
            }
            Op::Bin { column, output, edges, labels, closed } => {
                encode::bin_row(row, column, output, edges, labels, closed)
            }
            Op::Round { column, decimals } => numeric::round_row(row, column, decimals),
            Op::Linear { column, output, factor, offset } => numeric::linear_row(row, column, output, factor, offset),
            Op::Scale { column, center, scale } => numeric::scale_row(row, column, center, scale),
            Op::OneHot { column, categories, outputs, unknown, drop_input } => {
                encode::one_hot_row(row, column, categories, outputs, unknown, drop_input)
            }
            Op::Ordinal { column, output, categories, unknown } => {
                encode::ordinal_row(row, column, output, categories, unknown)
            }
            Op::TargetEncode { column, outputs, table, prior, unknown, drop_input } => {
                encode::target_encode_row(row, column, outputs, table, prior, unknown, drop_input)
            }
            Op::DateParts { column, parts, outputs } => features::date_parts_row(row, column, parts, outputs),
            Op::TextStats { column, stats, outputs } => features::text_stats_row(row, column, stats, outputs),
            Op::Lag { column, by, lags, windows, outputs, history, .. } => {
                features::lag_row(row, column, by, lags, windows, outputs, history)
            }
            Op::GroupStats { column, by, stats, outputs, table, fallback } => {
                features::group_stats_row(row, column, by, stats, outputs, table, fallback)
            }
            Op::Derive { output, expr, dtype } => derive::derive_row(row, output, expr, dtype),
            Op::Lookup { on, outputs, table, .. } => lookup::lookup_row(row, on, outputs, table),
            Op::FilterRange { .. } | Op::DropNullRows { .. } | Op::Deduplicate { .. } => Ok(()),
        }
    }

    /// Transforms a frame. At [`Stage::Inference`] row filters pass every row through, and the
    /// result equals [`Op::apply_row`] on each row.
    #[cfg(feature = "frame")]
    pub fn apply_frame(&self, df: DataFrame, stage: Stage) -> Result<DataFrame> {
        match self {
            Op::Rename { mapping } => columns::rename_frame(df, mapping),
            Op::Drop { columns } => columns::drop_frame(df, columns),
            Op::Cast { column, to, on_error } => cast::cast_frame(df, column, to, *on_error),
            Op::FillNull { column, value } => fill::fill_null_frame(df, column, value),
            Op::FillNullByGroup { column, by, values, fallback } => {
                fill::fill_null_by_group_frame(df, column, by, values, fallback)
            }
            Op::FillSequence { column, direction, fallback } => {
                fill::fill_sequence_frame(df, stage, column, direction, fallback)
            }
            Op::Clip { column, lower, upper } => numeric::clip_frame(df, column, lower, upper),
            Op::FilterRange { column, lower, upper } => rows::filter_range_frame(df, stage, column, lower, upper),
            Op::DropNullRows { columns, max_null_fraction } => {
                rows::drop_null_rows_frame(df, stage, columns, max_null_fraction)
            }
            Op::Deduplicate { subset, keep } => rows::deduplicate_frame(df, stage, subset, keep),
            Op::Text { column, steps } => text::text_frame(df, column, steps),
            Op::MapValues { column, output, mapping, unmapped } => {
                encode::map_values_frame(df, column, output, mapping, unmapped)
            }
            Op::Bin { column, output, edges, labels, closed } => {
                encode::bin_frame(df, column, output, edges, labels, closed)
            }
            Op::Round { column, decimals } => numeric::round_frame(df, column, decimals),
            Op::Linear { column, output, factor, offset } => numeric::linear_frame(df, column, output, factor, offset),
            Op::Scale { column, center, scale } => numeric::scale_frame(df, column, center, scale),
            Op::OneHot { column, categories, outputs, unknown, drop_input } => {
                encode::one_hot_frame(df, column, categories, outputs, unknown, drop_input)
            }
            Op::Ordinal { column, output, categories, unknown } => {
                encode::ordinal_frame(df, column, output, categories, unknown)
            }
            Op::TargetEncode { column, outputs, table, prior, unknown, drop_input } => {
                encode::target_encode_frame(df, column, outputs, table, prior, unknown, drop_input)
            }
            Op::Derive { output, expr, dtype } => derive::derive_frame(df, output, expr, dtype),
            Op::Lookup { on, outputs, dtypes, table, .. } => lookup::lookup_frame(df, on, outputs, dtypes, table),
            Op::DateParts { column, parts, outputs } => features::date_parts_frame(df, column, parts, outputs),
            Op::TextStats { column, stats, outputs } => features::text_stats_frame(df, column, stats, outputs),
            Op::Lag { column, order_by, by, lags, windows, outputs, history } => {
                let by = by.as_deref();
                features::lag_frame(
                    df,
                    stage,
                    &features::Lagging { column, order_by, by, lags, windows, outputs, history },
                )
            }
            Op::GroupStats { column, by, stats, outputs, table, fallback } => {
                features::group_stats_frame(df, column, by, stats, outputs, table, fallback)
            }
        }
    }
}

/// A row's value of `column` (null when the row lacks it).
fn cell(row: &Row, column: &str) -> Value {
    row.get(column).cloned().unwrap_or(Value::Null)
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

#[cfg(test)]
mod tests {
    use super::encode::bin_index;
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
