//! Fitting transform parameters on training rows and applying them.

use std::collections::BTreeMap;

use mlops_core::frame::{self, Stage, column_names, column_values, dtype_of, schema_of};
use mlops_core::ops::{Op, UnknownPolicy};
use mlops_core::{DType, Expr, Value, stats};
use polars::functions::concat_df_diagonal;
use polars::prelude::{DataFrame, IntoLazy, JoinArgs, JoinCoalesce, JoinType, MaintainOrderJoin, col};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TransformError};
use crate::params::{Encoding, How, Join, Scaler, TransformParams};

/// One join's effect.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JoinReport {
    /// The joined source.
    pub right: String,
    /// Join type.
    pub how: How,
    /// Rows before.
    pub rows_before: usize,
    /// Rows after.
    pub rows_after: usize,
    /// Right-side keys that occur more than once, so left rows were repeated.
    pub duplicate_right_keys: usize,
    /// The right side's columns the join added, as named in the result.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Whether the right side is embedded as a lookup op (at most [`LOOKUP_ROWS`] rows), so that
    /// inference joins it too; otherwise a caller sends its columns.
    #[serde(default)]
    pub embedded: bool,
}

/// The most rows a joined source may have to be embedded in the pipeline as a lookup table.
pub const LOOKUP_ROWS: usize = 100_000;

/// What transform did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TransformReport {
    /// Appended sources and their rows.
    pub concatenated: Vec<(String, usize)>,
    /// Joins.
    pub joins: Vec<JoinReport>,
    /// Derived columns.
    pub derived: Vec<String>,
    /// Per encoded column, the columns it became.
    pub encoded: BTreeMap<String, Vec<String>>,
    /// Per scaled column, the fitted center and scale.
    pub scaled: BTreeMap<String, (f64, f64)>,
    /// Warnings worth a user's attention (join fan-out).
    pub warnings: Vec<String>,
}

/// A transformed frame with its operations and report.
#[derive(Debug, Clone)]
pub struct Transformed {
    /// The frame.
    pub frame: DataFrame,
    /// Fitted operations for the `FeaturePipeline`. A join with a small source is among them as a
    /// lookup op; concatenation (and a join with a large source) assembles the training set only.
    pub ops: Vec<Op>,
    /// What changed.
    pub report: TransformReport,
}

fn require(df: &DataFrame, key: &str, column: &str) -> Result<()> {
    if df.column(column).is_err() {
        return Err(TransformError::MissingColumn {
            key: key.into(),
            column: column.into(),
            available: column_names(df),
        });
    }
    Ok(())
}

fn numbers(df: &DataFrame, key: &str, name: &str) -> Result<Vec<f64>> {
    if let Some(message) = frame::not_numeric(df, name) {
        return Err(TransformError::Invalid { key: format!("{key}.{name}"), message });
    }
    Ok(frame::numbers(df, name)?)
}

fn categories(df: &DataFrame, name: &str) -> Result<Vec<String>> {
    Ok(frame::categories(df, name)?)
}

/// Joins `spec.right` onto `df`; the lookup op that does the same at inference, when the right
/// side is small enough to embed.
fn join(
    df: DataFrame,
    spec: &Join,
    sources: &BTreeMap<String, DataFrame>,
    report: &mut TransformReport,
) -> Result<(DataFrame, Option<Op>)> {
    let right = sources.get(&spec.right).ok_or_else(|| TransformError::UnknownSource {
        key: "joins".into(),
        source_name: spec.right.clone(),
        available: sources.keys().cloned().collect(),
    })?;
    let (left_on, right_on) = if !spec.on.is_empty() {
        if !spec.left_on.is_empty() || !spec.right_on.is_empty() {
            return Err(TransformError::Invalid {
                key: format!("joins.{}", spec.right),
                message: "use either `on` or `left_on`/`right_on`".into(),
            });
        }
        (spec.on.clone(), spec.on.clone())
    } else {
        (spec.left_on.clone(), spec.right_on.clone())
    };
    if left_on.is_empty() || left_on.len() != right_on.len() {
        return Err(TransformError::Invalid {
            key: format!("joins.{}", spec.right),
            message: format!(
                "needs key columns on both sides in equal number (left {}, right {})",
                left_on.len(),
                right_on.len()
            ),
        });
    }
    for k in &left_on {
        require(&df, &format!("joins.{}.left_on", spec.right), k)?;
    }
    for k in &right_on {
        if right.column(k).is_err() {
            return Err(TransformError::MissingColumn {
                key: format!("joins.{}.right_on", spec.right),
                column: k.clone(),
                available: column_names(right),
            });
        }
    }
    for (l, r) in left_on.iter().zip(&right_on) {
        let (lt, rt) = (df.column(l).map(|c| c.dtype().clone()), right.column(r).map(|c| c.dtype().clone()));
        if let (Ok(lt), Ok(rt)) = (lt, rt) {
            let (a, b) = (dtype_of(&lt), dtype_of(&rt));
            if a != b && !(a.is_some_and(DType::is_numeric) && b.is_some_and(DType::is_numeric)) {
                return Err(TransformError::Invalid {
                    key: format!("joins.{}", spec.right),
                    message: format!("key `{l}` is {lt} on the left but `{r}` is {rt} on the right"),
                });
            }
        }
    }
    let duplicate_right_keys = right
        .select(right_on.iter().map(String::as_str))
        .and_then(|keys| keys.is_duplicated())
        .map(|d| d.sum().unwrap_or(0) as usize)
        .unwrap_or(0);
    let (how, order) = match spec.how {
        How::Inner => (JoinType::Inner, MaintainOrderJoin::LeftRight),
        How::Left => (JoinType::Left, MaintainOrderJoin::LeftRight),
        How::Right => (JoinType::Right, MaintainOrderJoin::RightLeft),
        How::Outer => (JoinType::Full, MaintainOrderJoin::LeftRight),
    };
    let mut args =
        JoinArgs::new(how).with_suffix(Some(spec.suffix.as_str().into())).with_coalesce(JoinCoalesce::CoalesceColumns);
    args.maintain_order = order;
    let rows_before = df.height();
    let columns: Vec<String> = column_names(right)
        .into_iter()
        .filter(|c| !right_on.contains(c))
        .map(|c| if df.column(&c).is_ok() { format!("{c}{}", spec.suffix) } else { c })
        .collect();
    let lookup =
        if right.height() <= LOOKUP_ROWS { Some(lookup(right, spec, &left_on, &right_on, &columns)?) } else { None };
    let left_exprs: Vec<_> = left_on.iter().map(|c| col(c.as_str())).collect();
    let right_exprs: Vec<_> = right_on.iter().map(|c| col(c.as_str())).collect();
    let out = df
        .lazy()
        .join(right.clone().lazy(), left_exprs, right_exprs, args)
        .collect()
        .map_err(|e| TransformError::Invalid { key: format!("joins.{}", spec.right), message: e.to_string() })?;
    if duplicate_right_keys > 0 && matches!(spec.how, How::Left | How::Inner | How::Outer) {
        let message = format!(
            "join with `{}` fans out: {duplicate_right_keys} right-side rows share a key ({rows_before} rows became {})",
            spec.right,
            out.height()
        );
        tracing::warn!("{message}");
        report.warnings.push(message);
    }
    report.joins.push(JoinReport {
        right: spec.right.clone(),
        how: spec.how,
        rows_before,
        rows_after: out.height(),
        duplicate_right_keys,
        embedded: lookup.is_some(),
        columns,
    });
    Ok((out, lookup))
}

/// The right side of a join as a lookup table: key to the row's other values (the first row of a
/// repeated key, as a served record gets one answer; a NaN stored as null).
fn lookup(right: &DataFrame, spec: &Join, left_on: &[String], right_on: &[String], outputs: &[String]) -> Result<Op> {
    let failed = |e: mlops_core::CoreError| TransformError::Invalid {
        key: format!("joins.{}", spec.right),
        message: e.to_string(),
    };
    let values_of = |name: &str| frame::column(right, name).and_then(column_values).map_err(failed);
    let keys: Vec<Vec<Value>> = right_on.iter().map(|k| values_of(k)).collect::<Result<_>>()?;
    let names: Vec<String> = column_names(right).into_iter().filter(|c| !right_on.contains(c)).collect();
    let mut values = Vec::with_capacity(names.len());
    let mut dtypes = Vec::with_capacity(names.len());
    for name in &names {
        let column = frame::column(right, name).map_err(failed)?;
        dtypes.push(dtype_of(column.dtype()).unwrap_or(DType::Str));
        values.push(values_of(name)?);
    }
    let mut table = BTreeMap::new();
    for i in 0..right.height() {
        if let Some(key) = mlops_core::ops::lookup_key(keys.iter().map(|k| &k[i])) {
            table.entry(key).or_insert_with(|| {
                values
                    .iter()
                    .map(|v| match &v[i] {
                        Value::Float(f) if f.is_nan() => Value::Null,
                        v => v.clone(),
                    })
                    .collect::<Vec<_>>()
            });
        }
    }
    Ok(Op::Lookup { source: spec.right.clone(), on: left_on.to_vec(), outputs: outputs.to_vec(), dtypes, table })
}

/// Fits one categorical encoding of `name` on `df`: the op and the columns it writes.
pub fn fit_encoding(df: &DataFrame, name: &str, encoding: &Encoding) -> Result<(Op, Vec<String>)> {
    require(df, "encode", name)?;
    let name = &name.to_string();
    let encoded = match encoding {
        Encoding::OneHot { unknown, keep_input } => {
            let cats = categories(df, name)?;
            let outputs: Vec<String> =
                cats.iter().map(|c| format!("{name}_{}", step04_standardize::snake_case(c))).collect();
            let op = Op::OneHot {
                column: name.clone(),
                categories: cats,
                outputs: outputs.clone(),
                unknown: *unknown,
                drop_input: !keep_input,
            };
            (op, outputs)
        }
        Encoding::Ordinal { categories: given, unknown } => {
            let cats = match given {
                Some(c) => c.clone(),
                None => categories(df, name)?,
            };
            (
                Op::Ordinal { column: name.clone(), output: None, categories: cats, unknown: *unknown },
                vec![name.clone()],
            )
        }
        Encoding::Label => {
            let cats = categories(df, name)?;
            (
                Op::Ordinal { column: name.clone(), output: None, categories: cats, unknown: UnknownPolicy::Ignore },
                vec![name.clone()],
            )
        }
        Encoding::Target { target, smoothing, keep_input } => {
            require(df, &format!("encode.{name}.target"), target)?;
            if !(smoothing.is_finite() && *smoothing >= 0.0) {
                return Err(TransformError::Invalid {
                    key: format!("encode.{name}.smoothing"),
                    message: format!("{smoothing} must be zero or more"),
                });
            }
            let op = fit_target_encoding(df, name, target, *smoothing, *keep_input)?;
            let outputs = match &op {
                Op::TargetEncode { outputs, .. } => outputs.clone(),
                _ => Vec::new(),
            };
            (op, outputs)
        }
    };
    Ok(encoded)
}

/// A fitted target encoding: output suffixes, smoothed means per category, and the prior.
struct TargetTable {
    suffixes: Vec<String>,
    table: BTreeMap<String, Vec<f64>>,
    prior: Vec<f64>,
}

/// Turns a target value into one number per output (`None` for a missing target).
type TargetCoding = Box<dyn Fn(&Value) -> Option<Vec<f64>>>;

/// Per category: smoothed means of each target output.
fn target_table(df: &DataFrame, column: &str, target: &str, smoothing: f64) -> Result<TargetTable> {
    let key = format!("encode.{column}.target");
    let t = df.column(target).ok().and_then(|c| dtype_of(c.dtype()));
    let targets = column_values(df.column(target).map_err(|e| mlops_core::CoreError::polars(target, e))?)?;
    let cats = column_values(df.column(column).map_err(|e| mlops_core::CoreError::polars(column, e))?)?;
    // One output per class for a text target (one for a two-class target), one for a number.
    let (suffixes, encode): (Vec<String>, TargetCoding) = match t {
        Some(DType::Int | DType::Float | DType::Bool) => {
            (vec![String::new()], Box::new(|v: &Value| v.as_f64().filter(|x| !x.is_nan()).map(|x| vec![x])))
        }
        Some(DType::Str) => {
            let classes = categories(df, target)?;
            if classes.len() < 2 {
                return Err(TransformError::Invalid {
                    key,
                    message: format!("target `{target}` needs at least two classes in the training rows"),
                });
            }
            let used: Vec<String> = if classes.len() == 2 { vec![classes[1].clone()] } else { classes };
            let suffixes = used.iter().map(|c| format!("_{}", step04_standardize::snake_case(c))).collect();
            (
                suffixes,
                Box::new(move |v: &Value| v.key().map(|k| used.iter().map(|c| f64::from(u8::from(*c == k))).collect())),
            )
        }
        _ => {
            return Err(TransformError::Invalid {
                key,
                message: format!("target `{target}` must be a number, bool or text column"),
            });
        }
    };
    let width = suffixes.len();
    let mut sums: BTreeMap<String, (Vec<f64>, usize)> = BTreeMap::new();
    let mut total = vec![0.0; width];
    let mut n = 0usize;
    for (c, y) in cats.iter().zip(&targets) {
        let Some(y) = encode(y) else { continue };
        for (t, v) in total.iter_mut().zip(&y) {
            *t += v;
        }
        n += 1;
        if let Some(k) = c.key() {
            let entry = sums.entry(k).or_insert_with(|| (vec![0.0; width], 0));
            for (s, v) in entry.0.iter_mut().zip(&y) {
                *s += v;
            }
            entry.1 += 1;
        }
    }
    if n == 0 {
        return Err(TransformError::Invalid {
            key,
            message: format!("target `{target}` has no values in the training rows"),
        });
    }
    let prior: Vec<f64> = total.iter().map(|t| t / n as f64).collect();
    let table = sums
        .into_iter()
        .map(|(k, (s, count))| {
            let c = count as f64;
            let enc = s.iter().zip(&prior).map(|(sum, p)| (sum + smoothing * p) / (c + smoothing)).collect();
            (k, enc)
        })
        .collect();
    Ok(TargetTable { suffixes, table, prior })
}

/// Fits a scaler on a numeric column of the training rows (`scale.<column>` names it in errors).
/// A constant column is scaled by 1, as scikit-learn does.
pub fn fit_scaler(df: &DataFrame, name: &str, scaler: Scaler) -> Result<Op> {
    let xs = numbers(df, "scale", name)?;
    let empty = || TransformError::Invalid {
        key: format!("scale.{name}"),
        message: "no values in the training rows to fit a scaler".into(),
    };
    let (center, scale) = match scaler {
        Scaler::Standard => (stats::mean(&xs).ok_or_else(empty)?, stats::std_dev(&xs).unwrap_or(0.0)),
        Scaler::Minmax => {
            let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if xs.is_empty() {
                return Err(empty());
            }
            (lo, hi - lo)
        }
        Scaler::Robust => {
            let mut xs = xs;
            let median = stats::quantile_of(&mut xs, 0.5).ok_or_else(empty)?;
            let iqr =
                stats::quantile_of(&mut xs, 0.75).zip(stats::quantile_of(&mut xs, 0.25)).map_or(0.0, |(a, b)| a - b);
            (median, iqr)
        }
    };
    let scale = if scale == 0.0 || !scale.is_finite() { 1.0 } else { scale };
    Ok(Op::Scale { column: name.to_string(), center, scale })
}

/// Fits a smoothed target encoding of `column` on the rows of `df`: per category
/// `(sum + smoothing · prior) / (count + smoothing)` of the target (one output per class for a text
/// target, one for a number), the prior for unseen categories. Outputs are `<column>_te[_class]`.
pub fn fit_target_encoding(df: &DataFrame, column: &str, target: &str, smoothing: f64, keep_input: bool) -> Result<Op> {
    let TargetTable { suffixes, table, prior } = target_table(df, column, target, smoothing)?;
    Ok(Op::TargetEncode {
        column: column.to_string(),
        outputs: suffixes.iter().map(|s| format!("{column}_te{s}")).collect(),
        table,
        prior,
        unknown: UnknownPolicy::Ignore,
        drop_input: !keep_input,
    })
}

impl TransformParams {
    /// Fits on `train` and applies every part in order. `sources` holds the frames that joins and
    /// concatenation name.
    pub fn fit_transform(&self, train: DataFrame, sources: &BTreeMap<String, DataFrame>) -> Result<Transformed> {
        let mut df = train;
        let mut ops = Vec::new();
        let mut report = TransformReport::default();
        let apply = |df: DataFrame, op: Op, ops: &mut Vec<Op>| -> Result<DataFrame> {
            let started = std::time::Instant::now();
            let out = op.apply_frame(df, Stage::Training)?;
            tracing::debug!(op = %op.describe(), ms = started.elapsed().as_secs_f64() * 1e3, "transform");
            ops.push(op);
            Ok(out)
        };

        if !self.concat.is_empty() {
            let mut frames = vec![df];
            for name in &self.concat {
                let other = sources.get(name).ok_or_else(|| TransformError::UnknownSource {
                    key: "concat".into(),
                    source_name: name.clone(),
                    available: sources.keys().cloned().collect(),
                })?;
                report.concatenated.push((name.clone(), other.height()));
                frames.push(other.clone());
            }
            df = concat_df_diagonal(&frames).map_err(|e| TransformError::Invalid {
                key: "concat".into(),
                message: format!("columns do not line up: {e}"),
            })?;
        }

        // The join itself is polars' (with its join type and fan-out); inference repeats it
        // through the lookup op, one answer per row.
        for spec in &self.joins {
            let (joined, lookup) = join(df, spec, sources, &mut report)?;
            df = joined;
            ops.extend(lookup);
        }

        for derive in &self.derive {
            let mut expr = Expr::parse(&derive.expr)
                .map_err(|source| TransformError::Expr { name: derive.name.clone(), source: Box::new(source) })?;
            let schema = schema_of(&df);
            let dtype = expr
                .check(&|c| schema.get(c).copied(), &column_names(&df))
                .map_err(|source| TransformError::Expr { name: derive.name.clone(), source: Box::new(source) })?;
            df = apply(df, Op::Derive { output: derive.name.clone(), expr, dtype }, &mut ops)?;
            report.derived.push(derive.name.clone());
        }

        for (name, map) in &self.maps {
            let op = map.op(&df, "maps", name).map_err(|e| TransformError::Map(Box::new(e)))?;
            df = apply(df, op, &mut ops)?;
        }

        for (name, bins) in &self.bins {
            require(&df, "bins", name)?;
            numbers(&df, "bins", name)?;
            let increasing = bins.edges.windows(2).all(|w| w[0] < w[1]);
            if !increasing || bins.edges.len() != bins.labels.len() + 1 {
                return Err(TransformError::Invalid {
                    key: format!("bins.{name}"),
                    message: format!(
                        "needs increasing edges, one more than labels ({} edges, {} labels)",
                        bins.edges.len(),
                        bins.labels.len()
                    ),
                });
            }
            let output = bins.output.clone().unwrap_or_else(|| format!("{name}_bin"));
            let op = Op::Bin {
                column: name.clone(),
                output,
                edges: bins.edges.clone(),
                labels: bins.labels.clone(),
                closed: bins.closed,
            };
            df = apply(df, op, &mut ops)?;
        }

        for (name, encoding) in &self.encode {
            let (op, outputs) = fit_encoding(&df, name, encoding)?;
            df = apply(df, op, &mut ops)?;
            report.encoded.insert(name.clone(), outputs);
        }

        for (name, scaler) in &self.scale {
            require(&df, "scale", name)?;
            let op = fit_scaler(&df, name, *scaler)?;
            if let Op::Scale { center, scale, .. } = &op {
                report.scaled.insert(name.clone(), (*center, *scale));
            }
            df = apply(df, op, &mut ops)?;
        }

        tracing::info!(ops = ops.len(), rows = df.height(), "transformed");
        Ok(Transformed { frame: df, ops, report })
    }
}
