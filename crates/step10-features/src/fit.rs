//! Fitting the feature operations on training rows, in a fixed order.

use std::collections::BTreeMap;

use mlops_core::features::{DatePart, GroupStat, GroupSummary, TextStat, lag_groups, lag_key, order_key};
use mlops_core::frame::{Stage, column_names, column_values, dtype_of, numbers, schema_of};
use mlops_core::{DType, Expr, Op, Seed, Value};
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use crate::error::missing;
use crate::params::{BinSpec, FeatureParams, Imputer};
use crate::select::{Importance, Selected, select};
use crate::{FeatureError, Result};

/// The fitted features.
#[derive(Clone, Debug)]
pub struct Features {
    /// The training rows with every feature added (target encodings out-of-fold).
    pub frame: DataFrame,
    /// The fitted operations, in order; they join the FeaturePipeline.
    pub ops: Vec<Op>,
    /// What was built and kept.
    pub report: FeatureReport,
}

/// What fitting built.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureReport {
    /// Columns created, in order.
    pub created: Vec<String>,
    /// The selection's outcome, when there is one.
    pub selection: Option<Selected>,
}

fn require(df: &DataFrame, key: &str, column: &str, want: &[DType], needed: &str) -> Result<()> {
    let col = df.column(column).map_err(|_| missing(df, key, column))?;
    match dtype_of(col.dtype()) {
        Some(t) if want.contains(&t) => Ok(()),
        _ => Err(FeatureError::WrongType {
            key: key.to_string(),
            column: column.to_string(),
            found: col.dtype().to_string(),
            needed: needed.to_string(),
        }),
    }
}

const NUMBER: [DType; 2] = [DType::Int, DType::Float];
const NUMBER_OR_FLAG: [DType; 3] = [DType::Int, DType::Float, DType::Bool];

struct Builder {
    df: DataFrame,
    ops: Vec<Op>,
    created: Vec<String>,
}

impl Builder {
    fn push(&mut self, op: Op, outputs: Vec<String>) -> Result<()> {
        let started = std::time::Instant::now();
        self.df = op.apply_frame(std::mem::take(&mut self.df), Stage::Training)?;
        tracing::debug!(op = %op.describe(), seconds = started.elapsed().as_secs_f64(), "feature applied");
        self.created.extend(outputs);
        self.ops.push(op);
        Ok(())
    }

    fn derive(&mut self, key: &str, name: &str, text: &str) -> Result<()> {
        let expr_error = |source| FeatureError::Expr { key: key.to_string(), source: Box::new(source) };
        let mut expr = Expr::parse(text).map_err(expr_error)?;
        let schema = schema_of(&self.df);
        let dtype = expr.check(&|c| schema.get(c).copied(), &column_names(&self.df)).map_err(expr_error)?;
        self.push(Op::Derive { output: name.to_string(), expr, dtype }, vec![name.to_string()])
    }
}

fn quote(c: &str) -> String {
    format!("`{}`", c.replace('`', "``"))
}

/// Bin edges and labels: fixed, or the training quantiles (`pd.qcut`, duplicate edges merged).
fn bin_edges(df: &DataFrame, column: &str, spec: &BinSpec) -> Result<(Vec<f64>, Vec<String>)> {
    let key = format!("bins.{column}");
    let edges = match (&spec.edges, spec.quantiles) {
        (Some(e), None) => e.clone(),
        (None, Some(q)) if q >= 2 => {
            let mut xs = numbers(df, column)?;
            if xs.is_empty() {
                return Err(FeatureError::Invalid {
                    key,
                    message: format!("`{column}` has no values to take quantiles of"),
                });
            }
            let mut edges: Vec<f64> =
                (0..=q).filter_map(|i| mlops_core::stats::quantile_of(&mut xs, i as f64 / q as f64)).collect();
            edges.dedup();
            // The outer edges reach out so that values beyond the training range still fall in a
            // bin (the largest finite numbers: JSON has no infinity).
            if let Some(first) = edges.first_mut() {
                *first = f64::MIN;
            }
            if let Some(last) = edges.last_mut() {
                *last = f64::MAX;
            }
            edges
        }
        _ => {
            return Err(FeatureError::Invalid {
                key,
                message: "give `edges` (a list) or `quantiles` (2 or more)".into(),
            });
        }
    };
    if edges.len() < 2 || edges.windows(2).any(|w| w[0] >= w[1]) {
        return Err(FeatureError::Invalid {
            key: format!("{key}.edges"),
            message: "need at least two increasing edges".into(),
        });
    }
    let labels = match &spec.labels {
        Some(l) if l.len() == edges.len() - 1 => l.clone(),
        Some(l) => {
            return Err(FeatureError::Invalid {
                key: format!("{key}.labels"),
                message: format!("{} label(s) for {} bin(s)", l.len(), edges.len() - 1),
            });
        }
        None => edges
            .windows(2)
            .map(|w| {
                let show = |v: f64| match v {
                    f64::MIN => "-inf".to_string(),
                    f64::MAX => "inf".to_string(),
                    v => format!("{v}"),
                };
                match spec.closed {
                    mlops_core::ops::Closed::Right => format!("({}, {}]", show(w[0]), show(w[1])),
                    mlops_core::ops::Closed::Left => format!("[{}, {})", show(w[0]), show(w[1])),
                }
            })
            .collect(),
    };
    Ok((edges, labels))
}

/// Fits every feature of `params` on `train`, in the order of the config's sections: dates, text,
/// bins, derived columns, polynomial terms, lags, group statistics, target encodings, then the
/// selection. `model` ranks features for `select.importance`.
pub fn fit(params: &FeatureParams, train: DataFrame, seed: Seed, model: Option<&dyn Importance>) -> Result<Features> {
    let mut b = Builder { df: train, ops: Vec::new(), created: Vec::new() };

    for (column, parts) in &params.dates {
        let key = format!("dates.{column}");
        require(&b.df, &key, column, &[DType::Date, DType::Datetime], "date parts need a date or datetime column")?;
        let parts: Vec<DatePart> = if parts.is_empty() { DatePart::ALL.to_vec() } else { parts.clone() };
        let outputs: Vec<String> = parts.iter().map(|p| format!("{column}_{}", p.name())).collect();
        b.push(Op::DateParts { column: column.clone(), parts, outputs: outputs.clone() }, outputs)?;
    }
    for (column, stats) in &params.text {
        require(&b.df, &format!("text.{column}"), column, &[DType::Str], "text features need a text column")?;
        let stats: Vec<TextStat> = if stats.is_empty() { TextStat::ALL.to_vec() } else { stats.clone() };
        let outputs: Vec<String> = stats.iter().map(|s| format!("{column}_{}", s.name())).collect();
        b.push(Op::TextStats { column: column.clone(), stats, outputs: outputs.clone() }, outputs)?;
    }
    for (column, spec) in &params.bins {
        require(&b.df, &format!("bins.{column}"), column, &NUMBER, "bins need a numeric column")?;
        let (edges, labels) = bin_edges(&b.df, column, spec)?;
        let output = spec.output.clone().unwrap_or_else(|| format!("{column}_bin"));
        let op = Op::Bin { column: column.clone(), output: output.clone(), edges, labels, closed: spec.closed };
        b.push(op, vec![output])?;
    }
    for (i, d) in params.derive.iter().enumerate() {
        b.derive(&format!("derive[{i}] ({})", d.name), &d.name, &d.expr)?;
    }
    if let Some(poly) = &params.polynomial {
        if !(2..=3).contains(&poly.degree) {
            return Err(FeatureError::Invalid { key: "polynomial.degree".into(), message: "must be 2 or 3".into() });
        }
        for c in &poly.columns {
            require(&b.df, "polynomial.columns", c, &NUMBER, "polynomial features need numeric columns")?;
        }
        // Every multiset of columns of size 2..=degree (sets only, for interactions), in
        // scikit-learn's order; named like its `get_feature_names_out`: `a^2`, `a b`.
        let n = poly.columns.len();
        let mut terms: Vec<Vec<usize>> = Vec::new();
        fn extend(
            start: usize,
            n: usize,
            left: usize,
            distinct: bool,
            cur: &mut Vec<usize>,
            out: &mut Vec<Vec<usize>>,
        ) {
            if left == 0 {
                out.push(cur.clone());
                return;
            }
            for i in start..n {
                cur.push(i);
                extend(if distinct { i + 1 } else { i }, n, left - 1, distinct, cur, out);
                cur.pop();
            }
        }
        for d in 2..=poly.degree {
            extend(0, n, d, poly.interaction_only, &mut Vec::new(), &mut terms);
        }
        for term in terms {
            let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
            for &i in &term {
                *counts.entry(i).or_insert(0) += 1;
            }
            let name = counts
                .iter()
                .map(|(&i, &p)| if p == 1 { poly.columns[i].clone() } else { format!("{}^{p}", poly.columns[i]) })
                .collect::<Vec<_>>()
                .join(" ");
            let expr = term.iter().map(|&i| quote(&poly.columns[i])).collect::<Vec<_>>().join(" * ");
            b.derive("polynomial", &name, &expr)?;
        }
    }
    for (i, lag) in params.lags.iter().enumerate() {
        let key = format!("lags[{i}]");
        require(&b.df, &format!("{key}.column"), &lag.column, &NUMBER, "lags need a numeric column")?;
        let order_col =
            b.df.column(&lag.order_by).map_err(|_| missing(&b.df, &format!("{key}.order_by"), &lag.order_by))?;
        if dtype_of(order_col.dtype()).is_none() {
            return Err(FeatureError::WrongType {
                key: format!("{key}.order_by"),
                column: lag.order_by.clone(),
                found: order_col.dtype().to_string(),
                needed: "a date, datetime or number orders the rows".into(),
            });
        }
        if let Some(by) = &lag.by {
            b.df.column(by).map_err(|_| missing(&b.df, &format!("{key}.by"), by))?;
        }
        if lag.lags.is_empty() && lag.rolling.is_empty() || lag.lags.contains(&0) || lag.rolling.contains(&0) {
            return Err(FeatureError::Invalid { key, message: "give `lags` and/or `rolling`, each at least 1".into() });
        }
        let values: Vec<Option<f64>> =
            column_values(b.df.column(&lag.column).map_err(|_| missing(&b.df, &key, &lag.column))?)?
                .iter()
                .map(Value::as_f64)
                .collect();
        let order: Vec<i64> = column_values(order_col)?.iter().map(order_key).collect();
        let groups: Vec<Option<String>> = match &lag.by {
            Some(by) => column_values(b.df.column(by).map_err(|_| missing(&b.df, &key, by))?)?
                .iter()
                .map(|v| lag_key(Some(v)))
                .collect(),
            None => vec![Some(String::new()); b.df.height()],
        };
        let keep = lag.lags.iter().copied().chain(lag.rolling.iter().map(|w| w - 1)).max().unwrap_or(0);
        let history: BTreeMap<String, Vec<Option<f64>>> = lag_groups(&groups, &order)
            .into_iter()
            .map(|(k, rows)| {
                (k.to_string(), rows[rows.len().saturating_sub(keep)..].iter().map(|&r| values[r]).collect())
            })
            .collect();
        let outputs: Vec<String> = lag
            .lags
            .iter()
            .map(|k| format!("{}_lag{k}", lag.column))
            .chain(lag.rolling.iter().map(|w| format!("{}_rolling_mean{w}", lag.column)))
            .collect();
        let op = Op::Lag {
            column: lag.column.clone(),
            order_by: lag.order_by.clone(),
            by: lag.by.clone(),
            lags: lag.lags.clone(),
            windows: lag.rolling.clone(),
            outputs: outputs.clone(),
            history,
        };
        b.push(op, outputs)?;
    }
    for (i, g) in params.group_stats.iter().enumerate() {
        let key = format!("group_stats[{i}]");
        require(&b.df, &format!("{key}.column"), &g.column, &NUMBER, "group statistics need a numeric column")?;
        b.df.column(&g.by).map_err(|_| missing(&b.df, &format!("{key}.by"), &g.by))?;
        let values = column_values(b.df.column(&g.column).map_err(|_| missing(&b.df, &key, &g.column))?)?;
        let groups = column_values(b.df.column(&g.by).map_err(|_| missing(&b.df, &key, &g.by))?)?;
        let mut per: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut all = Vec::new();
        for (v, k) in values.iter().zip(&groups) {
            if let Some(x) = v.as_f64().filter(|x| !x.is_nan()) {
                all.push(x);
                if let Some(k) = k.key() {
                    per.entry(k).or_default().push(x);
                }
            }
        }
        let fallback = GroupSummary::of(&mut all).ok_or_else(|| FeatureError::Invalid {
            key: key.clone(),
            message: format!("`{}` has no values", g.column),
        })?;
        let table = per.into_iter().filter_map(|(k, mut v)| Some((k, GroupSummary::of(&mut v)?))).collect();
        let stats =
            if g.stats.is_empty() { vec![GroupStat::Mean, GroupStat::Std, GroupStat::Rank] } else { g.stats.clone() };
        let outputs: Vec<String> = stats.iter().map(|s| format!("{}_{}_by_{}", g.column, s.name(), g.by)).collect();
        let op = Op::GroupStats {
            column: g.column.clone(),
            by: g.by.clone(),
            stats,
            outputs: outputs.clone(),
            table,
            fallback,
        };
        b.push(op, outputs)?;
    }
    for (column, spec) in &params.target_encode {
        let key = format!("target_encode.{column}");
        b.df.column(column).map_err(|_| missing(&b.df, &key, column))?;
        b.df.column(&spec.target).map_err(|_| missing(&b.df, &format!("{key}.target"), &spec.target))?;
        if spec.folds < 2 {
            return Err(FeatureError::Invalid { key: format!("{key}.folds"), message: "must be at least 2".into() });
        }
        let encode_error = |e| FeatureError::TargetEncode { column: column.clone(), source: Box::new(e) };
        let fit_on = |rows: &DataFrame| {
            step05_transform::fit_target_encoding(rows, column, &spec.target, spec.smoothing, spec.keep_input)
        };
        let op = fit_on(&b.df).map_err(encode_error)?;
        let outputs = match &op {
            Op::TargetEncode { outputs, .. } => outputs.clone(),
            _ => Vec::new(),
        };
        let started = std::time::Instant::now();
        let oof = out_of_fold(&b.df, spec.folds, seed.derive(&format!("target_encode.{column}")), &outputs, &fit_on)
            .map_err(|e| match e {
                Fold::Encode(e) => encode_error(e),
                Fold::Core(e) => FeatureError::from(e),
            })?;
        let mut df = std::mem::take(&mut b.df);
        for col in oof {
            df.with_column(col).map_err(|e| mlops_core::CoreError::polars("target encoding", e))?;
        }
        if !spec.keep_input {
            df = df.drop(column).map_err(|e| mlops_core::CoreError::polars("target encoding", e))?;
        }
        b.df = df;
        tracing::debug!(column = %column, seconds = started.elapsed().as_secs_f64(), "target encoded out of fold");
        b.created.extend(outputs);
        b.ops.push(op);
    }
    for (column, encoding) in &params.encode {
        let (op, outputs) = step05_transform::fit_encoding(&b.df, column, encoding)
            .map_err(|e| FeatureError::Encode { column: column.clone(), source: Box::new(e) })?;
        b.push(op, outputs)?;
    }
    let mut report = FeatureReport { created: b.created, selection: None };
    if let Some(spec) = &params.select {
        let numeric: Vec<String> =
            b.df.columns()
                .iter()
                .filter(|c| matches!(dtype_of(c.dtype()), Some(DType::Int | DType::Float | DType::Bool)))
                .map(|c| c.name().to_string())
                .filter(|c| *c != spec.target && !spec.keep.contains(c))
                .collect();
        let started = std::time::Instant::now();
        let selected = select(&b.df, &numeric, spec, model)?;
        tracing::debug!(seconds = started.elapsed().as_secs_f64(), kept = selected.kept.len(), "features selected");
        let dropped: Vec<String> = selected.dropped.iter().map(|d| d.column.clone()).collect();
        if !dropped.is_empty() {
            let op = Op::Drop { columns: dropped };
            b.df = op.apply_frame(b.df, Stage::Training)?;
            b.ops.push(op);
        }
        report.selection = Some(selected);
    }
    // Targets are never features: the selection's and the encodings' stay as they are.
    let targets: Vec<&String> =
        params.select.iter().map(|s| &s.target).chain(params.target_encode.values().map(|t| &t.target)).collect();
    let features_of = |df: &DataFrame, types: &[DType], exclude: &[String]| -> Vec<String> {
        df.columns()
            .iter()
            .filter(|c| dtype_of(c.dtype()).is_some_and(|t| types.contains(&t)))
            .map(|c| c.name().to_string())
            .filter(|c| !exclude.contains(c) && !targets.contains(&c))
            .collect()
    };
    // Flags (true/false features) are filled too: a served record that leaves one out, or
    // sends a value the cleaning reads as missing, must reach the model as a number on the
    // frame path as on the row path. They are not scaled.
    let flags = features_of(&b.df, &[DType::Bool], &[]);
    if let Some(spec) = &params.impute {
        let columns = spec.columns.clone().unwrap_or_else(|| features_of(&b.df, &NUMBER_OR_FLAG, &spec.exclude));
        for column in &columns {
            let key = format!("impute.{column}");
            require(&b.df, &key, column, &NUMBER_OR_FLAG, "imputing needs a numeric or true/false column")?;
            let mut xs = numbers(&b.df, column)?;
            let value = match spec.strategy {
                Imputer::Mean => mlops_core::stats::mean(&xs),
                Imputer::Median => mlops_core::stats::quantile_of(&mut xs, 0.5),
                Imputer::Zero => Some(0.0),
            }
            .ok_or_else(|| FeatureError::Invalid {
                key: key.clone(),
                message: "no values in the training rows to fit an imputer".into(),
            })?;
            let op = Op::FillNull { column: column.clone(), value: Value::Float(value) };
            b.df = op.apply_frame(std::mem::take(&mut b.df), Stage::Training)?;
            b.ops.push(op);
        }
    }
    if let Some(spec) = &params.scale {
        let exclude: Vec<String> = spec.exclude.iter().chain(&flags).cloned().collect();
        let columns = spec.columns.clone().unwrap_or_else(|| features_of(&b.df, &NUMBER, &exclude));
        for column in &columns {
            let key = format!("scale.{column}");
            require(&b.df, &key, column, &NUMBER, "scaling needs a numeric column")?;
            let op = step05_transform::fit_scaler(&b.df, column, spec.method)
                .map_err(|e| FeatureError::Scale { column: column.clone(), source: Box::new(e) })?;
            b.df = op.apply_frame(std::mem::take(&mut b.df), Stage::Training)?;
            b.ops.push(op);
        }
    }
    tracing::info!(ops = b.ops.len(), created = report.created.len(), "features fitted");
    Ok(Features { frame: b.df, ops: b.ops, report })
}

enum Fold {
    Encode(step05_transform::TransformError),
    Core(mlops_core::CoreError),
}

/// Out-of-fold encodings: each training row gets the encoding fitted on the other folds, so a
/// row's own target never leaks into its feature.
fn out_of_fold(
    df: &DataFrame,
    folds: usize,
    seed: Seed,
    outputs: &[String],
    fit_on: &dyn Fn(&DataFrame) -> step05_transform::Result<Op>,
) -> std::result::Result<Vec<polars::prelude::Column>, Fold> {
    let n = df.height();
    let order = seed.draws().permutation(n);
    let mut fold_of = vec![0usize; n];
    for (pos, &row) in order.iter().enumerate() {
        fold_of[row] = pos % folds;
    }
    let mut values: Vec<Vec<Value>> = vec![vec![Value::Null; n]; outputs.len()];
    let take = |rows: &[usize]| -> std::result::Result<DataFrame, Fold> {
        let idx: polars::prelude::IdxCa = rows.iter().map(|&i| Some(i as polars::prelude::IdxSize)).collect();
        df.take(&idx).map_err(|e| Fold::Core(mlops_core::CoreError::polars("target encoding folds", e)))
    };
    for f in 0..folds.min(n) {
        let (inside, outside): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| fold_of[i] == f);
        if inside.is_empty() {
            continue;
        }
        let op = fit_on(&take(&outside)?).map_err(Fold::Encode)?;
        let encoded = op.apply_frame(take(&inside)?, Stage::Inference).map_err(Fold::Core)?;
        for (j, out) in outputs.iter().enumerate() {
            let col = encoded.column(out).map_err(|e| Fold::Core(mlops_core::CoreError::polars(out, e)))?;
            for (&row, v) in inside.iter().zip(column_values(col).map_err(Fold::Core)?) {
                values[j][row] = v;
            }
        }
    }
    Ok(outputs.iter().zip(values).map(|(o, v)| mlops_core::frame::column_from_values(o, DType::Float, &v)).collect())
}
