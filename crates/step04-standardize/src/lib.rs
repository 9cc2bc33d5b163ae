//! Step 4, standardize: uniform column names, ISO 8601 dates, text case, categorical value maps,
//! numeric rounding and unit conversion.
//!
//! In: a frame and [`StandardizeParams`]. Out: [`Standardized`] — the frame, the operations (they
//! join the `FeaturePipeline`, so a served raw record is standardized the same way) and a
//! [`StandardizeReport`] (renames, name collisions, unparsable dates).
//!
//! Invariants:
//! - names are standardized first; every other key refers to the standardized names;
//! - two columns never end up with the same name: collisions get `_2`, `_3` suffixes and are
//!   reported;
//! - a key naming an absent column is a [`StandardizeError`] naming the key and the column.
//!
//! ```
//! use step04_standardize::snake_case;
//! assert_eq!(snake_case("Culmen Length (mm)"), "culmen_length_mm");
//! assert_eq!(snake_case("studyName"), "study_name");
//! ```

use std::collections::BTreeMap;

use mlops_core::frame::{Stage, column_names, dtype_of};
use mlops_core::ops::{CastTo, OnError, Op, TextStep, Unmapped};
use mlops_core::{DType, Scalar, Value};
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

/// What stops standardizing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StandardizeError {
    /// The config names a column the data does not have (after renaming).
    #[error("standardize.{key}: column `{column}` not found (available: {})", available.join(", "))]
    MissingColumn {
        /// Config key under `standardize`.
        key: String,
        /// The column.
        column: String,
        /// Columns the data has at that point.
        available: Vec<String>,
    },
    /// A setting does not fit the column.
    #[error("standardize.{key}: {message}")]
    Invalid {
        /// Config key under `standardize`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// An operation failed on the data.
    #[error(transparent)]
    Core(#[from] mlops_core::CoreError),
}

/// Result with [`StandardizeError`] as the default error.
pub type Result<T, E = StandardizeError> = std::result::Result<T, E>;

/// Column naming convention.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Naming {
    /// Leave names as they are.
    #[default]
    Keep,
    /// `culmen_length_mm`.
    SnakeCase,
    /// `culmenLengthMm`.
    CamelCase,
}

/// Output of a date column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateOutput {
    /// A date column.
    #[default]
    Date,
    /// A date-time column.
    Datetime,
    /// ISO 8601 text (`2007-11-11`, `2007-11-11T09:30:00`).
    String,
}

/// How to read a date column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateSpec {
    /// chrono formats to try in order; ISO 8601 first by default.
    #[serde(default = "default_formats")]
    pub formats: Vec<String>,
    /// What the column becomes.
    #[serde(default)]
    pub output: DateOutput,
    /// Whether a time of day is kept (`datetime` output) or dropped.
    #[serde(default)]
    pub on_error: OnError,
}

fn default_formats() -> Vec<String> {
    ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%d/%m/%Y", "%m/%d/%Y %H:%M", "%d.%m.%Y", "%Y%m%d"]
        .into_iter()
        .map(String::from)
        .collect()
}

/// Letter case of a text column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Case {
    /// `adelie`.
    Lower,
    /// `ADELIE`.
    Upper,
    /// `Adelie Penguin`.
    Title,
}

/// What happens to a value that a map does not mention: `keep`, `null` (written bare, as YAML's
/// null, or as text) or `{value: X}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum UnmappedSpec {
    /// Keep it.
    #[default]
    Keep,
    /// Make it null.
    Null,
    /// Replace it with this.
    Value(Scalar),
}

/// A categorical value map (`ACTIVE: A`), pandas' `replace` (unmapped kept) or `map` (unmapped
/// become null).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueMap {
    /// Old value (as text) to new value.
    pub map: BTreeMap<String, Scalar>,
    /// Values not in the map.
    #[serde(default, deserialize_with = "mlops_core::config::bare_or_tagged")]
    pub unmapped: UnmappedSpec,
    /// Column to write; the mapped column itself when absent.
    #[serde(default)]
    pub output: Option<String>,
}

impl ValueMap {
    /// The fitted operation for `column` of `df`; `key` names the config entry in errors. The
    /// mapped values must share one type (with the kept values, when unmapped values are kept).
    pub fn op(&self, df: &DataFrame, key: &str, column: &str) -> Result<Op> {
        require(df, key, column)?;
        let outputs: Vec<Value> = self.map.values().map(Scalar::value).collect();
        let mut types: Vec<DType> = outputs.iter().filter_map(Value::dtype).collect();
        let unmapped = match &self.unmapped {
            UnmappedSpec::Keep => {
                types.extend(df.column(column).ok().and_then(|c| dtype_of(c.dtype())));
                Unmapped::Keep
            }
            UnmappedSpec::Null => Unmapped::Null,
            UnmappedSpec::Value(v) => {
                types.extend(v.value().dtype());
                Unmapped::Value(v.value())
            }
        };
        types.sort();
        types.dedup();
        if types.len() > 1 && !types.iter().all(|t| t.is_numeric()) {
            return Err(StandardizeError::Invalid {
                key: format!("{key}.{column}"),
                message: format!(
                    "mapped values would mix types ({}); map every value to the same type or set `unmapped: null`",
                    types.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ),
            });
        }
        // Ints beside floats are stored as floats, on the frame and on a served row alike.
        let widen = types.contains(&DType::Float);
        let widen_value = |v: Value| match v {
            Value::Int(i) if widen => Value::Float(i as f64),
            other => other,
        };
        if widen && matches!(self.unmapped, UnmappedSpec::Keep) && types.contains(&DType::Int) {
            return Err(StandardizeError::Invalid {
                key: format!("{key}.{column}"),
                message: "kept whole numbers beside mapped decimals would mix types; map to whole numbers or set `unmapped: null`".into(),
            });
        }
        let mapping = self.map.iter().map(|(k, v)| (k.clone(), widen_value(v.value()))).collect();
        let unmapped = match unmapped {
            Unmapped::Value(v) => Unmapped::Value(widen_value(v)),
            other => other,
        };
        Ok(Op::MapValues { column: column.to_string(), output: self.output.clone(), mapping, unmapped })
    }
}

/// A linear unit conversion: `new = old * factor + offset`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    /// Multiplier (grams to kilograms: 0.001).
    pub factor: f64,
    /// Added after multiplying.
    #[serde(default)]
    pub offset: f64,
    /// New column name (`body_mass_kg`); the old column is replaced.
    #[serde(default)]
    pub rename: Option<String>,
}

/// Everything standardize can do, in this order: names, dates, case, value maps, rounding, units.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandardizeParams {
    /// Naming convention for every column.
    #[serde(default)]
    pub column_names: Naming,
    /// Explicit names (original name to new name); they win over the convention.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Date columns to parse and write as ISO 8601.
    #[serde(default)]
    pub dates: BTreeMap<String, DateSpec>,
    /// Letter case per text column.
    #[serde(default)]
    pub case: BTreeMap<String, Case>,
    /// Value maps per column.
    #[serde(default)]
    pub values: BTreeMap<String, ValueMap>,
    /// Decimals to round to per numeric column.
    #[serde(default)]
    pub round: BTreeMap<String, i32>,
    /// Unit conversions per numeric column.
    #[serde(default)]
    pub units: BTreeMap<String, Unit>,
}

/// What standardizing did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StandardizeReport {
    /// Old name and new name of every renamed column.
    pub renamed: Vec<(String, String)>,
    /// Names that several columns mapped to, with the names they got instead.
    pub collisions: Vec<String>,
    /// Per date column, values that did not parse and became null.
    pub unparsed_dates: BTreeMap<String, usize>,
}

/// A standardized frame with its operations and report.
#[derive(Debug, Clone)]
pub struct Standardized {
    /// The frame.
    pub frame: DataFrame,
    /// Operations, in order.
    pub ops: Vec<Op>,
    /// What changed.
    pub report: StandardizeReport,
}

fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1).copied();
        // A word starts at a lower-to-upper step (studyName) and before the last capital of an
        // acronym (HTTPServer -> HTTP Server).
        let boundary = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase() || p.is_ascii_digit() || (p.is_uppercase() && next.is_some_and(char::is_lowercase))
            });
        if boundary && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// `Culmen Length (mm)` → `culmen_length_mm`, `studyName` → `study_name`.
pub fn snake_case(name: &str) -> String {
    words(name).iter().map(|w| w.to_lowercase()).collect::<Vec<_>>().join("_")
}

/// `Culmen Length (mm)` → `culmenLengthMm`.
pub fn camel_case(name: &str) -> String {
    words(name)
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let lower = w.to_lowercase();
            if i == 0 {
                lower
            } else {
                let mut cs = lower.chars();
                cs.next().map(|f| f.to_uppercase().chain(cs).collect()).unwrap_or_default()
            }
        })
        .collect()
}

fn require(df: &DataFrame, key: &str, column: &str) -> Result<()> {
    if df.column(column).is_err() {
        return Err(StandardizeError::MissingColumn {
            key: key.into(),
            column: column.into(),
            available: column_names(df),
        });
    }
    Ok(())
}

impl StandardizeParams {
    /// The new name of every column, with collisions resolved by suffixes.
    fn names(&self, columns: &[String], report: &mut StandardizeReport) -> Result<Vec<(String, String)>> {
        for from in self.rename.keys() {
            if !columns.contains(from) {
                return Err(StandardizeError::MissingColumn {
                    key: "rename".into(),
                    column: from.clone(),
                    available: columns.to_vec(),
                });
            }
        }
        let mut taken: BTreeMap<String, usize> = BTreeMap::new();
        let mut mapping = Vec::new();
        for (i, c) in columns.iter().enumerate() {
            let mut new = match self.rename.get(c) {
                Some(explicit) => explicit.clone(),
                None => match self.column_names {
                    Naming::Keep => c.clone(),
                    Naming::SnakeCase => snake_case(c),
                    Naming::CamelCase => camel_case(c),
                },
            };
            if new.is_empty() {
                new = format!("column_{}", i + 1);
            }
            let seen = taken.entry(new.clone()).or_insert(0);
            *seen += 1;
            if *seen > 1 {
                let unique = format!("{new}_{seen}");
                tracing::warn!(column = %c, name = %new, renamed = %unique, "column name collision");
                report.collisions.push(format!("`{c}` -> `{new}` is taken; named `{unique}`"));
                new = unique;
            }
            if new != *c {
                mapping.push((c.clone(), new));
            }
        }
        Ok(mapping)
    }

    /// Applies every part in order and returns the frame, the operations and a report.
    pub fn fit_transform(&self, df: DataFrame) -> Result<Standardized> {
        let mut df = df;
        let mut ops = Vec::new();
        let mut report = StandardizeReport::default();
        let apply = |df: DataFrame, op: Op, ops: &mut Vec<Op>| -> Result<DataFrame> {
            let started = std::time::Instant::now();
            let out = op.apply_frame(df, Stage::Training)?;
            tracing::debug!(op = %op.describe(), ms = started.elapsed().as_secs_f64() * 1e3, "standardize");
            ops.push(op);
            Ok(out)
        };

        let mapping = self.names(&column_names(&df), &mut report)?;
        if !mapping.is_empty() {
            report.renamed.clone_from(&mapping);
            df = apply(df, Op::Rename { mapping }, &mut ops)?;
        }

        for (name, spec) in &self.dates {
            require(&df, "dates", name)?;
            let t = df.column(name).ok().and_then(|c| dtype_of(c.dtype()));
            let before = df.column(name).map(|c| c.null_count()).unwrap_or(0);
            let parse_to = match spec.output {
                DateOutput::Datetime => CastTo::Datetime { formats: spec.formats.clone() },
                DateOutput::Date | DateOutput::String => CastTo::Date { formats: spec.formats.clone() },
            };
            if !matches!(t, Some(DType::Str | DType::Date | DType::Datetime)) {
                return Err(StandardizeError::Invalid {
                    key: format!("dates.{name}"),
                    message: format!(
                        "`{name}` is {}, not text or a date",
                        t.map_or_else(|| "?".into(), |t| t.to_string())
                    ),
                });
            }
            df = apply(df, Op::Cast { column: name.clone(), to: parse_to, on_error: spec.on_error }, &mut ops)?;
            let unparsed = df.column(name).map(|c| c.null_count()).unwrap_or(0) - before;
            if unparsed > 0 {
                report.unparsed_dates.insert(name.clone(), unparsed);
            }
            if spec.output == DateOutput::String {
                df =
                    apply(df, Op::Cast { column: name.clone(), to: CastTo::Str, on_error: OnError::Coerce }, &mut ops)?;
            }
        }

        for (name, case) in &self.case {
            require(&df, "case", name)?;
            let step = match case {
                Case::Lower => TextStep::Lower,
                Case::Upper => TextStep::Upper,
                Case::Title => TextStep::Title,
            };
            df = apply(df, Op::Text { column: name.clone(), steps: vec![step] }, &mut ops)?;
        }

        for (name, map) in &self.values {
            let op = map.op(&df, "values", name)?;
            df = apply(df, op, &mut ops)?;
        }

        for (name, decimals) in &self.round {
            require(&df, "round", name)?;
            numeric(&df, "round", name)?;
            df = apply(df, Op::Round { column: name.clone(), decimals: *decimals }, &mut ops)?;
        }

        for (name, unit) in &self.units {
            require(&df, "units", name)?;
            numeric(&df, "units", name)?;
            let output = unit.rename.clone().filter(|r| r != name);
            df = apply(
                df,
                Op::Linear { column: name.clone(), output: output.clone(), factor: unit.factor, offset: unit.offset },
                &mut ops,
            )?;
            if output.is_some() {
                df = apply(df, Op::Drop { columns: vec![name.clone()] }, &mut ops)?;
            }
        }
        tracing::info!(ops = ops.len(), renamed = report.renamed.len(), "standardized");
        Ok(Standardized { frame: df, ops, report })
    }
}

fn numeric(df: &DataFrame, key: &str, name: &str) -> Result<()> {
    match mlops_core::frame::not_numeric(df, name) {
        None => Ok(()),
        Some(message) => Err(StandardizeError::Invalid { key: format!("{key}.{name}"), message }),
    }
}

#[cfg(test)]
mod tests;
