//! Computing the profile: one pass per column (spread over the cores), then correlations over
//! pairs of numeric columns.

use std::collections::{BTreeMap, HashMap};

use mlops_core::DType;
use mlops_core::frame::{dtype_of, f64_column};
use mlops_core::stats::pearson_centred;
use polars::prelude::{Column, DataFrame, DataType, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::{EdaError, EdaParams, Result};

/// Format of `eda.json`.
pub const PROFILE_FORMAT_VERSION: u32 = 1;

/// Everything the report shows, pre-aggregated: no row of the data is kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Format of this value.
    pub format_version: u32,
    /// Rows.
    pub rows: usize,
    /// Columns profiled.
    pub columns: usize,
    /// In-memory size of the frame, bytes.
    pub memory_bytes: usize,
    /// How many columns of each type.
    pub types: BTreeMap<String, usize>,
    /// One summary per column, in frame order.
    pub variables: Vec<ColumnSummary>,
    /// Pearson and Spearman correlations of the numeric columns.
    pub correlations: Correlations,
    /// Rows that repeat an earlier row exactly.
    pub duplicates: Share,
    /// Columns with at most one distinct non-null value.
    pub constant_columns: Vec<String>,
    /// What deserves a look before modelling.
    pub warnings: Vec<Warning>,
}

/// How a column is summarised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Integers and floats: moments, quantiles, histogram, outliers.
    Numeric,
    /// Text and booleans: value counts.
    Categorical,
    /// Dates and timestamps: range and histogram.
    Temporal,
    /// Anything else (lists, structs): counts only.
    Other,
}

/// A count and its share of the rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Share {
    /// How many.
    pub count: usize,
    /// Percent of all rows.
    pub percent: f64,
}

/// A value and how often it occurs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Frequency {
    /// The value as text.
    pub value: String,
    /// Occurrences.
    pub count: usize,
}

/// One column's summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnSummary {
    /// Name.
    pub name: String,
    /// Logical type, when the toolkit handles the column's type.
    pub dtype: Option<DType>,
    /// Storage type as polars names it.
    pub storage: String,
    /// How it is summarised.
    pub kind: Kind,
    /// Non-null values.
    pub count: usize,
    /// Null (or NaN) values.
    pub nulls: Share,
    /// Distinct non-null values.
    pub unique: usize,
    /// In-memory size, bytes.
    pub memory_bytes: usize,
    /// The most frequent values, most frequent first (ties: smallest value first).
    pub top: Vec<Frequency>,
    /// Statistics of a numeric column.
    pub numeric: Option<NumericStats>,
    /// Value counts of a text or boolean column.
    pub categories: Option<CategoryCounts>,
    /// Range of a date or timestamp column.
    pub temporal: Option<TemporalStats>,
}

/// Statistics of a numeric column, as pandas' `describe()`, `skew()` and `kurt()` give them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NumericStats {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (ddof = 1); `None` below two values.
    pub std: Option<f64>,
    /// Smallest value.
    pub min: f64,
    /// 25th percentile (linear interpolation).
    pub q1: f64,
    /// Median.
    pub median: f64,
    /// 75th percentile.
    pub q3: f64,
    /// Largest value.
    pub max: f64,
    /// Bias-corrected sample skewness (pandas' `skew()`); `None` below three values or when constant.
    pub skew: Option<f64>,
    /// Bias-corrected excess kurtosis (pandas' `kurt()`); `None` below four values or when constant.
    pub kurtosis: Option<f64>,
    /// Values equal to zero.
    pub zeros: usize,
    /// Equal-width histogram over `[min, max]`.
    pub histogram: Histogram,
    /// Values outside the IQR fences.
    pub outliers: Outliers,
}

/// Counts in equal-width bins; every bin but the last is half-open, the last is closed (numpy's
/// convention).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// `bins + 1` edges, ascending.
    pub edges: Vec<f64>,
    /// `bins` counts.
    pub counts: Vec<usize>,
}

/// The IQR rule's fences and what falls outside them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outliers {
    /// `q1 - k·IQR`.
    pub lower: f64,
    /// `q3 + k·IQR`.
    pub upper: f64,
    /// Values below `lower` or above `upper`.
    pub count: usize,
    /// Percent of the non-null values.
    pub percent: f64,
}

/// Value counts of a categorical column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CategoryCounts {
    /// The most frequent categories (at most `max_categories`), most frequent first.
    pub values: Vec<Frequency>,
    /// Non-null values in the categories not listed.
    pub other: usize,
}

/// Range of a date or timestamp column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemporalStats {
    /// Earliest value (ISO 8601).
    pub min: String,
    /// Latest value.
    pub max: String,
    /// Histogram over the values; edges in days since 1970-01-01 for dates, in microseconds for
    /// timestamps.
    pub histogram: Histogram,
}

/// Correlation matrices of the numeric columns on pairwise-complete rows, as pandas' `df.corr()`
/// computes them; a cell is `None` where a column is constant on those rows. Spearman's rho is,
/// as in pandas, Pearson's r of the average ranks each column has among the rows both have.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Correlations {
    /// The numeric columns, in frame order.
    pub columns: Vec<String>,
    /// Pearson's r.
    pub pearson: Vec<Vec<Option<f64>>>,
    /// Spearman's rho (Pearson on each column's average ranks).
    pub spearman: Vec<Vec<Option<f64>>>,
    /// Pairs at or over the threshold by either method, strongest first.
    pub high: Vec<CorrelatedPair>,
}

/// Two columns that move together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorrelatedPair {
    /// First column.
    pub a: String,
    /// Second column.
    pub b: String,
    /// Pearson's r.
    pub pearson: Option<f64>,
    /// Spearman's rho.
    pub spearman: Option<f64>,
}

/// Something in the data that deserves a look.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Warning {
    /// Many nulls.
    HighNulls {
        /// Column.
        column: String,
        /// Percent of rows.
        percent: f64,
    },
    /// Almost every value distinct in a text column.
    HighCardinality {
        /// Column.
        column: String,
        /// Distinct values.
        unique: usize,
        /// Percent of the non-null values.
        percent: f64,
    },
    /// One value (or none) throughout.
    Constant {
        /// Column.
        column: String,
    },
    /// A long tail on one side.
    Skewed {
        /// Column.
        column: String,
        /// Skewness.
        skew: f64,
    },
    /// Two numeric columns that carry nearly the same information.
    Correlated {
        /// First column.
        a: String,
        /// Second column.
        b: String,
        /// The stronger of |Pearson| and |Spearman|, with its sign.
        r: f64,
    },
    /// Repeated rows.
    Duplicates {
        /// How many rows repeat an earlier one.
        rows: usize,
        /// Percent of rows.
        percent: f64,
    },
}

impl Warning {
    /// The column the warning is about (the first one for pairs; `None` for the whole table).
    pub fn column(&self) -> Option<&str> {
        match self {
            Warning::HighNulls { column, .. }
            | Warning::HighCardinality { column, .. }
            | Warning::Constant { column }
            | Warning::Skewed { column, .. } => Some(column),
            Warning::Correlated { a, .. } => Some(a),
            Warning::Duplicates { .. } => None,
        }
    }

    /// One line for people.
    pub fn message(&self) -> String {
        match self {
            Warning::HighNulls { column, percent } => format!("`{column}` is {percent:.1}% null"),
            Warning::HighCardinality { column, unique, percent } => {
                format!(
                    "`{column}` has {unique} distinct values ({percent:.1}% of its values): an identifier or free text?"
                )
            }
            Warning::Constant { column } => format!("`{column}` is constant"),
            Warning::Skewed { column, skew } => format!("`{column}` is skewed (skewness {skew:.2})"),
            Warning::Correlated { a, b, r } => format!("`{a}` and `{b}` are highly correlated (r = {r:.3})"),
            Warning::Duplicates { rows, percent } => format!("{rows} duplicate row(s) ({percent:.2}%)"),
        }
    }
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 }
}

/// Profiles a frame: per-column statistics, correlations, duplicates and warnings.
pub fn profile(df: &DataFrame, params: &EdaParams) -> Result<Profile> {
    params.check()?;
    let df = select(df, &params.columns)?;
    if df.height() == 0 {
        return Err(EdaError::Empty);
    }
    let rows = df.height();
    let columns = df.columns();
    let per_column = mlops_core::par::map(columns, |c| summarise(c, rows, params))
        .ok_or(EdaError::Invalid { key: "columns", message: "a column summary failed to run".into() })?;
    let mut variables = Vec::with_capacity(columns.len());
    let mut ranked = Vec::new();
    for result in per_column {
        let (summary, numbers) = result?;
        if let Some(numbers) = numbers {
            ranked.push((summary.name.clone(), numbers));
        }
        variables.push(summary);
    }
    let correlations = correlations(&ranked, params.correlation_threshold)?;
    drop(ranked);
    let duplicate_rows = mlops_core::frame::duplicate_rows(&df)?;
    let duplicates = Share { count: duplicate_rows, percent: percent(duplicate_rows, rows) };
    let constant_columns: Vec<String> = variables.iter().filter(|v| v.unique <= 1).map(|v| v.name.clone()).collect();
    let mut types = BTreeMap::new();
    for v in &variables {
        let t = v.dtype.map_or_else(|| v.storage.clone(), |t| t.to_string());
        *types.entry(t).or_insert(0) += 1;
    }
    let warnings = warnings(&variables, &correlations, duplicates, params);
    tracing::info!(rows, columns = variables.len(), warnings = warnings.len(), "profiled");
    Ok(Profile {
        format_version: PROFILE_FORMAT_VERSION,
        rows,
        columns: variables.len(),
        memory_bytes: variables.iter().map(|v| v.memory_bytes).sum(),
        types,
        variables,
        correlations,
        duplicates,
        constant_columns,
        warnings,
    })
}

fn select(df: &DataFrame, wanted: &[String]) -> Result<DataFrame> {
    if wanted.is_empty() {
        return Ok(df.clone());
    }
    let available: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    if let Some(missing) = wanted.iter().find(|c| !available.contains(c)) {
        return Err(EdaError::MissingColumn { column: missing.clone(), available });
    }
    df.select(wanted.iter().map(String::as_str))
        .map_err(|e| EdaError::Core(mlops_core::CoreError::polars("cannot select eda.columns", e)))
}

/// What correlations need of a numeric column: its values and its average ranks by row, both
/// centred (on the column's mean and mean rank), NaN where null.
struct Centred {
    /// Value minus the column mean.
    values: Vec<f64>,
    /// Average rank minus the mean rank (NaN where the value is missing).
    ranks: Vec<f64>,
    /// Where the row's value and its ties begin among the column's values in ascending order
    /// (`u32::MAX` where it is missing); its average rank gives where they end.
    tie_start: Vec<u32>,
    /// Rows with a value, one bit per row.
    present: Vec<u64>,
    /// The mean rank, (values + 1) / 2.
    centre: f64,
}

impl Centred {
    /// Where the tie of a row with a value begins and ends among the column's values in
    /// ascending order; its average rank is (start + end + 1) / 2.
    fn tie(&self, row: usize) -> (usize, usize) {
        let start = self.tie_start[row] as usize;
        (start, (2.0 * (self.ranks[row] + self.centre)) as usize - 1 - start)
    }
}

fn kind_of(dt: &DataType) -> Kind {
    match dtype_of(dt) {
        Some(DType::Int | DType::Float) => Kind::Numeric,
        Some(DType::Str | DType::Bool) => Kind::Categorical,
        Some(DType::Date | DType::Datetime) => Kind::Temporal,
        None => Kind::Other,
    }
}

fn summarise(col: &Column, rows: usize, params: &EdaParams) -> Result<(ColumnSummary, Option<Centred>)> {
    let name = col.name().to_string();
    let kind = kind_of(col.dtype());
    let mut summary = ColumnSummary {
        name: name.clone(),
        dtype: dtype_of(col.dtype()),
        storage: col.dtype().to_string(),
        kind,
        count: rows - col.null_count(),
        nulls: Share::default(),
        unique: 0,
        memory_bytes: col.as_materialized_series().estimated_size(),
        top: Vec::new(),
        numeric: None,
        categories: None,
        temporal: None,
    };
    let mut sorted = None;
    match kind {
        Kind::Numeric => {
            let frame = DataFrame::new(rows, vec![col.clone()]).map_err(|e| mlops_core::CoreError::polars(&name, e))?;
            let values = f64_column(&frame, &name)?;
            let mut by_row: Vec<f64> = values.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
            drop(frame);
            // Sorting (key, row) pairs keeps the comparisons in cache; the key orders like
            // `f64::total_cmp`, and turns back into the value.
            let mut keyed: Vec<(u64, u32)> = by_row
                .iter()
                .enumerate()
                .filter(|(_, v)| !v.is_nan())
                .map(|(i, v)| {
                    let bits = v.to_bits();
                    (if bits >> 63 == 1 { !bits } else { bits | (1 << 63) }, i as u32)
                })
                .collect();
            keyed.sort_unstable();
            let value_of = |key: u64| f64::from_bits(if key >> 63 == 1 { key & !(1 << 63) } else { !key });
            let ascending: Vec<f64> = keyed.iter().map(|&(k, _)| value_of(k)).collect();
            summary.count = ascending.len();
            let runs = runs(&ascending);
            summary.unique = runs.len();
            summary.top = top(runs.iter().map(|&(v, n)| (v, n)), params.top_values, |a, b| a.total_cmp(b), number);
            summary.numeric = numeric_stats(&ascending, params);
            drop(ascending);
            // Average ranks, centred on the mean rank (n + 1) / 2; values centred on the mean.
            let mut ranks = vec![f64::NAN; rows];
            let mut tie_start = vec![u32::MAX; rows];
            let mut present = vec![0u64; rows.div_ceil(64)];
            let centre = (keyed.len() + 1) as f64 / 2.0;
            let mut start = 0;
            while start < keyed.len() {
                let mut end = start + 1;
                while end < keyed.len() && keyed[end].0 == keyed[start].0 {
                    end += 1;
                }
                let rank = (start + end + 1) as f64 / 2.0 - centre;
                for &(_, i) in &keyed[start..end] {
                    ranks[i as usize] = rank;
                    tie_start[i as usize] = start as u32;
                    present[i as usize / 64] |= 1 << (i % 64);
                }
                start = end;
            }
            drop(keyed);
            let mean = summary.numeric.as_ref().map_or(0.0, |n| n.mean);
            by_row.iter_mut().for_each(|v| *v -= mean);
            sorted = Some(Centred { values: by_row, ranks, tie_start, present, centre });
        }
        Kind::Temporal => {
            // Timestamps are read in microseconds whatever their stored unit, as the toolkit's values are.
            let col = match col.dtype() {
                DataType::Datetime(unit, _) if *unit != TimeUnit::Microseconds => col
                    .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
                    .map_err(|e| mlops_core::CoreError::polars(&name, e))?,
                _ => col.clone(),
            };
            let physical = col.to_physical_repr();
            let ints = physical.cast(&DataType::Int64).map_err(|e| mlops_core::CoreError::polars(&name, e))?;
            let ints = ints.i64().map_err(|e| mlops_core::CoreError::polars(&name, e))?;
            let mut ascending: Vec<i64> = ints.iter().flatten().collect();
            ascending.sort_unstable();
            let runs = runs(&ascending);
            summary.unique = runs.len();
            let is_date = matches!(col.dtype(), DataType::Date);
            let show = |v: &i64| show_time(*v, is_date);
            summary.top = top(runs.iter().copied(), params.top_values, Ord::cmp, show);
            if let (Some(first), Some(last)) = (ascending.first(), ascending.last()) {
                let floats: Vec<f64> = ascending.iter().map(|&v| v as f64).collect();
                summary.temporal = Some(TemporalStats {
                    min: show(first),
                    max: show(last),
                    histogram: histogram(&floats, params.histogram_bins),
                });
            }
        }
        Kind::Categorical => {
            let counts: Vec<(String, usize)> = match col.dtype() {
                DataType::Boolean => {
                    let b = col.bool().map_err(|e| mlops_core::CoreError::polars(&name, e))?;
                    let yes = b.sum().unwrap_or(0) as usize;
                    let no = summary.count - yes;
                    [("false".to_string(), no), ("true".to_string(), yes)].into_iter().filter(|(_, n)| *n > 0).collect()
                }
                _ => {
                    let text = col.cast(&DataType::String).map_err(|e| mlops_core::CoreError::polars(&name, e))?;
                    let text = text.str().map_err(|e| mlops_core::CoreError::polars(&name, e))?;
                    let mut counts: HashMap<&str, usize> = HashMap::new();
                    for s in text.iter().flatten() {
                        *counts.entry(s).or_insert(0) += 1;
                    }
                    counts.into_iter().map(|(s, n)| (s.to_string(), n)).collect()
                }
            };
            summary.unique = counts.len();
            let ranked = top(counts.into_iter(), usize::MAX, |a, b| a.cmp(b), Clone::clone);
            summary.top = ranked.iter().take(params.top_values).cloned().collect();
            let listed: Vec<Frequency> = ranked.iter().take(params.max_categories).cloned().collect();
            let other = summary.count - listed.iter().map(|f| f.count).sum::<usize>();
            summary.categories = Some(CategoryCounts { values: listed, other });
        }
        Kind::Other => {}
    }
    summary.nulls = Share { count: rows - summary.count, percent: percent(rows - summary.count, rows) };
    Ok((summary, sorted))
}

/// Runs of equal values in ascending values: (value, occurrences).
fn runs<T: Copy + PartialEq>(ascending: &[T]) -> Vec<(T, usize)> {
    let mut out: Vec<(T, usize)> = Vec::new();
    for &v in ascending {
        match out.last_mut() {
            Some((last, n)) if *last == v => *n += 1,
            _ => out.push((v, 1)),
        }
    }
    out
}

/// The `k` most frequent values, ties broken by the smaller value.
fn top<T>(
    counts: impl Iterator<Item = (T, usize)>,
    k: usize,
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
    show: impl Fn(&T) -> String,
) -> Vec<Frequency> {
    let mut all: Vec<(T, usize)> = counts.collect();
    all.sort_by(|(a, n), (b, m)| m.cmp(n).then_with(|| cmp(a, b)));
    all.iter().take(k).map(|(v, n)| Frequency { value: show(v), count: *n }).collect()
}

/// A number as pandas prints it in value counts: integers without a fraction.
fn number(v: &f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.0}") } else { v.to_string() }
}

fn show_time(v: i64, is_date: bool) -> String {
    let value = if is_date {
        mlops_core::Value::Date(i32::try_from(v).unwrap_or(i32::MAX))
    } else {
        mlops_core::Value::Datetime(v)
    };
    value.to_string()
}

/// Linear-interpolated quantile of ascending values (pandas' default).
fn quantile(ascending: &[f64], q: f64) -> f64 {
    let pos = q * (ascending.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(ascending.len() - 1);
    ascending[lo] + (ascending[hi] - ascending[lo]) * (pos - lo as f64)
}

fn numeric_stats(ascending: &[f64], params: &EdaParams) -> Option<NumericStats> {
    let (&min, &max) = (ascending.first()?, ascending.last()?);
    let n = ascending.len() as f64;
    let mean = ascending.iter().sum::<f64>() / n;
    let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
    for &x in ascending {
        let d = x - mean;
        let d2 = d * d;
        m2 += d2;
        m3 += d2 * d;
        m4 += d2 * d2;
    }
    // pandas' nanskew and nankurt: bias-corrected, undefined (NaN in pandas) for a constant column.
    let skew = (n >= 3.0 && m2 > 0.0).then(|| n * (n - 1.0).sqrt() / (n - 2.0) * (m3 / m2.powf(1.5)));
    let kurtosis = (n >= 4.0 && m2 > 0.0).then(|| {
        let adj = 3.0 * (n - 1.0).powi(2) / ((n - 2.0) * (n - 3.0));
        n * (n + 1.0) * (n - 1.0) * m4 / ((n - 2.0) * (n - 3.0) * m2 * m2) - adj
    });
    let (q1, median, q3) = (quantile(ascending, 0.25), quantile(ascending, 0.5), quantile(ascending, 0.75));
    let iqr = q3 - q1;
    let (lower, upper) = (q1 - params.iqr_k * iqr, q3 + params.iqr_k * iqr);
    let below = ascending.partition_point(|&x| x < lower);
    let above = ascending.len() - ascending.partition_point(|&x| x <= upper);
    let zeros = ascending.partition_point(|&x| x <= 0.0) - ascending.partition_point(|&x| x < 0.0);
    Some(NumericStats {
        mean,
        std: (n >= 2.0).then(|| (m2 / (n - 1.0)).sqrt()),
        min,
        q1,
        median,
        q3,
        max,
        skew,
        kurtosis,
        zeros,
        histogram: histogram(ascending, params.histogram_bins),
        outliers: Outliers { lower, upper, count: below + above, percent: percent(below + above, ascending.len()) },
    })
}

/// numpy's `histogram(values, bins)`: equal-width bins over `[min, max]` of the finite values,
/// the last bin closed; a constant column gets the range `[v - 0.5, v + 0.5]`. Non-finite values
/// are skipped.
pub fn histogram(values: &[f64], bins: usize) -> Histogram {
    let bins = bins.max(1);
    let finite = || values.iter().copied().filter(|x| x.is_finite());
    let (Some(first), Some(last)) = (finite().min_by(f64::total_cmp), finite().max_by(f64::total_cmp)) else {
        return Histogram { edges: Vec::new(), counts: Vec::new() };
    };
    let (lo, hi) = if first == last { (first - 0.5, last + 0.5) } else { (first, last) };
    let width = (hi - lo) / bins as f64;
    let edges: Vec<f64> = (0..=bins).map(|i| if i == bins { hi } else { lo + width * i as f64 }).collect();
    let mut counts = vec![0usize; bins];
    for x in finite() {
        let i = (((x - lo) / width) as usize).min(bins - 1);
        // Floating-point division can land a value on the wrong side of an edge; the edges decide.
        let i = if x < edges[i] {
            i.saturating_sub(1)
        } else if i + 1 < bins && x >= edges[i + 1] {
            i + 1
        } else {
            i
        };
        counts[i] += 1;
    }
    Histogram { edges, counts }
}

/// Spearman's rho as pandas computes it: Pearson's r of the average ranks among the rows both
/// columns have. Where the two are missing on the same rows, each column's own ranks are the
/// pair's. Otherwise a row's rank among the pair's rows is its column rank less the rows the pair
/// leaves out below it (half of those tied with it): a lookup in [`LeftOut`], so the pair takes
/// one pass over the rows and no sort.
fn spearman(a: &Centred, b: &Centred) -> Option<f64> {
    let (left_a, left_b) = (LeftOut::of(a, b), LeftOut::of(b, a));
    if left_a.is_none() && left_b.is_none() {
        return pearson_centred(&a.ranks, &b.ranks);
    }
    let rank = |c: &Centred, left: &Option<LeftOut>, row: usize, rank: f64| match left {
        None => rank,
        Some(left) => {
            let (start, end) = c.tie(row);
            let below = left.below(start);
            // A value without ties holds its place itself: none left out there.
            if end == start + 1 { rank - below } else { rank - (below + left.below(end)) / 2.0 }
        }
    };
    // Pearson's r in one pass, as `pearson_centred` computes it.
    let (mut n, mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (row, (&ra, &rb)) in a.ranks.iter().zip(&b.ranks).enumerate() {
        if ra.is_nan() || rb.is_nan() {
            continue;
        }
        let (x, y) = (rank(a, &left_a, row, ra), rank(b, &left_b, row, rb));
        n += 1.0;
        sx += x;
        sy += y;
        sxx += x * x;
        syy += y * y;
        sxy += x * y;
    }
    mlops_core::stats::pearson_from_sums(&mlops_core::stats::PairSums { n, sx, sy, sxx, syy, sxy })
}

/// The places, among a column's values in ascending order, of the rows a pair leaves out (the
/// column has a value, the other column not), one bit each, with a running count per 64 places:
/// how many lie below any place takes two lookups in a few hundred kilobytes.
struct LeftOut {
    bits: Vec<u64>,
    before: Vec<u32>,
}

impl LeftOut {
    /// `None` when the pair keeps every row where `column` has a value.
    fn of(column: &Centred, other: &Centred) -> Option<LeftOut> {
        let mut bits = vec![0u64; column.ranks.len().div_ceil(64) + 1];
        let mut any = false;
        // Rows of one tie share its start: each takes the next place of the tie.
        let mut taken_in_tie: HashMap<usize, usize> = HashMap::new();
        for (w, (&mine, &theirs)) in column.present.iter().zip(&other.present).enumerate() {
            let mut left = mine & !theirs;
            while left != 0 {
                let row = w * 64 + left.trailing_zeros() as usize;
                left &= left - 1;
                let (start, end) = column.tie(row);
                let place = if end == start + 1 {
                    start
                } else {
                    let taken = taken_in_tie.entry(start).or_insert(0);
                    *taken += 1;
                    start + *taken - 1
                };
                bits[place / 64] |= 1 << (place % 64);
                any = true;
            }
        }
        if !any {
            return None;
        }
        let mut before = Vec::with_capacity(bits.len());
        let mut total = 0u32;
        for word in &bits {
            before.push(total);
            total += word.count_ones();
        }
        Some(LeftOut { bits, before })
    }

    /// How many places below `place` are left out.
    fn below(&self, place: usize) -> f64 {
        let (w, b) = (place / 64, place % 64);
        f64::from(self.before[w] + (self.bits[w] & ((1u64 << b) - 1)).count_ones())
    }
}

fn correlations(columns: &[(String, Centred)], threshold: f64) -> Result<Correlations> {
    let p = columns.len();
    if p == 0 {
        return Ok(Correlations::default());
    }
    let pairs: Vec<(usize, usize)> = (0..p).flat_map(|i| (i..p).map(move |j| (i, j))).collect();
    let cells: Vec<(Option<f64>, Option<f64>)> = mlops_core::par::map(&pairs, |&(i, j)| {
        let (a, b) = (&columns[i].1, &columns[j].1);
        (pearson_centred(&a.values, &b.values), spearman(a, b))
    })
    .ok_or(EdaError::Invalid { key: "correlation_threshold", message: "a correlation thread failed".into() })?;
    let mut pearson_m = vec![vec![None; p]; p];
    let mut spearman_m = vec![vec![None; p]; p];
    for (&(i, j), &(r, rho)) in pairs.iter().zip(&cells) {
        pearson_m[i][j] = r;
        pearson_m[j][i] = r;
        spearman_m[i][j] = rho;
        spearman_m[j][i] = rho;
    }
    let strength = |v: Option<f64>| v.map_or(0.0, f64::abs);
    let mut high: Vec<CorrelatedPair> = pairs
        .iter()
        .zip(&cells)
        .filter(|((i, j), (r, rho))| i != j && (strength(*r) >= threshold || strength(*rho) >= threshold))
        .map(|(&(i, j), &(r, rho))| CorrelatedPair {
            a: columns[i].0.clone(),
            b: columns[j].0.clone(),
            pearson: r,
            spearman: rho,
        })
        .collect();
    high.sort_by(|x, y| {
        let s = |c: &CorrelatedPair| strength(c.pearson).max(strength(c.spearman));
        s(y).total_cmp(&s(x)).then_with(|| (&x.a, &x.b).cmp(&(&y.a, &y.b)))
    });
    Ok(Correlations {
        columns: columns.iter().map(|(n, _)| n.clone()).collect(),
        pearson: pearson_m,
        spearman: spearman_m,
        high,
    })
}

fn warnings(variables: &[ColumnSummary], corr: &Correlations, dups: Share, params: &EdaParams) -> Vec<Warning> {
    let at = &params.warn;
    let mut out = Vec::new();
    for v in variables {
        if v.nulls.count > 0 && v.nulls.percent >= at.nulls_percent {
            out.push(Warning::HighNulls { column: v.name.clone(), percent: v.nulls.percent });
        }
        if v.unique <= 1 {
            out.push(Warning::Constant { column: v.name.clone() });
            continue;
        }
        let share = percent(v.unique, v.count);
        if v.dtype == Some(DType::Str) && v.unique >= at.cardinality_min && share >= at.cardinality_percent {
            out.push(Warning::HighCardinality { column: v.name.clone(), unique: v.unique, percent: share });
        }
        if let Some(skew) = v.numeric.as_ref().and_then(|n| n.skew)
            && skew.abs() >= at.skew
        {
            out.push(Warning::Skewed { column: v.name.clone(), skew });
        }
    }
    for pair in &corr.high {
        let r = match (pair.pearson, pair.spearman) {
            (Some(p), Some(s)) if s.abs() > p.abs() => s,
            (Some(p), _) => p,
            (None, Some(s)) => s,
            (None, None) => continue,
        };
        out.push(Warning::Correlated { a: pair.a.clone(), b: pair.b.clone(), r });
    }
    if dups.count > 0 {
        out.push(Warning::Duplicates { rows: dups.count, percent: dups.percent });
    }
    out
}
