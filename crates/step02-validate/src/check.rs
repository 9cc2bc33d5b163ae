//! Evaluating a schema against a frame: each check yields a mask of failing rows.

use std::collections::{BTreeMap, HashSet};

use mlops_core::frame::{column_names, dtype_of, map_texts, schema_of};
use mlops_core::{DType, Expr};
use polars::prelude::{AnyValue, BooleanChunked, Column, DataFrame, IntoLazy, NewChunkedArray};
use regex::Regex;

use crate::error::{Result, ValidateError};
use crate::report::{Failure, Report, Sample};
use crate::schema::{ColumnRule, Schema, Severity, literal};
use mlops_core::Scalar;

const SAMPLES: usize = 5;

/// Collects failures while checks run.
struct Findings<'a> {
    df: &'a DataFrame,
    checks: usize,
    failures: Vec<Failure>,
}

fn cell(col: &Column, row: usize) -> String {
    match col.get(row) {
        Ok(AnyValue::Null) => "null".into(),
        Ok(AnyValue::String(s)) => s.to_string(),
        Ok(AnyValue::StringOwned(s)) => s.to_string(),
        Ok(v) => v.to_string(),
        Err(_) => "?".into(),
    }
}

impl Findings<'_> {
    fn rows(&self) -> usize {
        self.df.height()
    }

    fn percent(&self, count: usize) -> f64 {
        if self.rows() == 0 { 0.0 } else { 100.0 * count as f64 / self.rows() as f64 }
    }

    /// Records the outcome of a check given its failing-row mask.
    fn mask(&mut self, check: &str, columns: &[&str], severity: Severity, message: String, mask: &BooleanChunked) {
        self.checks += 1;
        let count = mask.sum().unwrap_or(0) as usize;
        if count == 0 {
            return;
        }
        let cols: Vec<&Column> = columns.iter().filter_map(|c| self.df.column(c).ok()).collect();
        let samples = mask
            .iter()
            .enumerate()
            .filter(|(_, m)| *m == Some(true))
            .take(SAMPLES)
            .map(|(row, _)| {
                let value = match cols.as_slice() {
                    [one] => cell(one, row),
                    many => {
                        many.iter().map(|c| format!("{}={}", c.name(), cell(c, row))).collect::<Vec<_>>().join(", ")
                    }
                };
                Sample { row, value }
            })
            .collect();
        self.failures.push(Failure {
            check: check.to_string(),
            column: (!columns.is_empty()).then(|| columns.join(", ")),
            severity,
            count,
            percent: self.percent(count),
            message,
            samples,
        });
    }

    /// Records a check that fails as a whole (a missing column, a row count).
    fn whole(&mut self, check: &str, column: Option<&str>, severity: Severity, count: usize, message: String) {
        self.checks += 1;
        self.failures.push(Failure {
            check: check.to_string(),
            column: column.map(str::to_string),
            severity,
            count,
            percent: self.percent(count),
            message,
            samples: Vec::new(),
        });
    }
}

fn mask_from(iter: impl Iterator<Item = bool>) -> BooleanChunked {
    BooleanChunked::from_iter_values("mask".into(), iter)
}

/// Cell keys for set membership, in row order: text as is, numbers in a canonical float form.
fn keys_of(col: &Column, numeric: bool) -> Vec<Option<String>> {
    if let Ok(text) = col.str() {
        return text.iter().map(|v| v.map(str::to_string)).collect();
    }
    if numeric
        && let Ok(floats) = col.cast(&polars::prelude::DataType::Float64)
        && let Ok(ca) = floats.f64()
    {
        return ca.iter().map(|v| v.map(|f| format!("{f:?}"))).collect();
    }
    (0..col.len())
        .map(|row| match col.get(row).ok()? {
            AnyValue::Null => None,
            v => Some(v.to_string()),
        })
        .collect()
}

fn scalar_key(s: &Scalar, numeric: bool) -> String {
    match s {
        Scalar::Int(i) if numeric => format!("{:?}", *i as f64),
        Scalar::Float(f) if numeric => format!("{f:?}"),
        Scalar::Str(s) if numeric => s.parse::<f64>().map_or_else(|_| s.clone(), |f| format!("{f:?}")),
        Scalar::Str(s) => s.clone(),
        Scalar::Bool(b) => b.to_string(),
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => f.to_string(),
    }
}

/// The rows where a condition is false (null is not false); the error text if it cannot be
/// evaluated (a missing column, a type mismatch).
fn eval_condition(df: &DataFrame, source: &str) -> std::result::Result<BooleanChunked, String> {
    let mut expr = Expr::parse(source).map_err(|e| e.to_string())?;
    let schema = schema_of(df);
    let names = column_names(df);
    let t = expr.check(&|c| schema.get(c).copied(), &names).map_err(|e| e.to_string())?;
    if t.is_some_and(|t| t != DType::Bool) {
        return Err(format!("`{source}` is not a condition"));
    }
    let compiled = expr.to_polars(&|c| schema.get(c).copied());
    let out = df.clone().lazy().select([compiled.alias("ok")]).collect().map_err(|e| e.to_string())?;
    let ok = out.column("ok").map_err(|e| e.to_string())?;
    let ok = ok.cast(&polars::prelude::DataType::Boolean).map_err(|e| e.to_string())?;
    let ok = ok.bool().map_err(|e| e.to_string())?;
    // Broadcast a constant condition to every row.
    let n = df.height();
    Ok(if ok.len() == 1 && n != 1 {
        let failed = ok.get(0) == Some(false);
        mask_from(std::iter::repeat_n(failed, n))
    } else {
        mask_from(ok.iter().map(|v| v == Some(false)))
    })
}

fn check_column(f: &mut Findings<'_>, name: &str, rule: &ColumnRule, regex: Option<&Regex>) {
    let sev = rule.severity;
    let Ok(col) = f.df.column(name) else {
        if rule.required {
            let rows = f.rows();
            f.whole("required", Some(name), sev, rows, "column is missing".into());
        }
        return;
    };
    let col = col.clone();
    let actual = dtype_of(col.dtype());
    let n = f.rows();
    let nulls = col.is_null();

    let mut type_ok = true;
    if let Some(expected) = rule.dtype {
        let fits = actual == Some(expected) || (expected == DType::Float && actual == Some(DType::Int));
        let message = format!(
            "type {expected} (stored as {})",
            actual.map_or_else(|| col.dtype().to_string(), |t| t.to_string())
        );
        // A column of the wrong type fails on every value it holds.
        let mask = if fits { mask_from(std::iter::repeat_n(false, n)) } else { !&nulls };
        f.mask("type", &[name], sev, message, &mask);
        type_ok = fits;
    }
    if !rule.nullable {
        f.mask("nullable", &[name], sev, "no nulls".into(), &nulls);
    }
    for (check, bound, op) in [("min", &rule.min, "<"), ("max", &rule.max, ">")] {
        let Some(bound) = bound else { continue };
        if !type_ok {
            continue;
        }
        let source = format!("`{}` {op} {}", name.replace('`', "``"), literal(bound));
        let word = if check == "min" { ">=" } else { "<=" };
        match violation_mask(f.df, &source) {
            Ok(mask) => f.mask(check, &[name], sev, format!("{word} {}", bound.value()), &mask),
            Err(message) => f.whole(check, Some(name), sev, n, format!("cannot check: {message}")),
        }
    }
    if let Some(allowed) = &rule.allowed {
        let numeric = actual.is_some_and(DType::is_numeric);
        let set: polars::prelude::PlHashSet<String> = allowed.iter().map(|s| scalar_key(s, numeric)).collect();
        let mask = match col.str() {
            Ok(text) => mask_from(map_texts(text, |s| !set.contains(s)).map(|v| v == Some(true))),
            Err(_) => {
                let keys = keys_of(&col, numeric);
                mask_from(keys.iter().map(|k| k.as_ref().is_some_and(|k| !set.contains(k))))
            }
        };
        let shown: Vec<String> = allowed.iter().map(|s| s.value().to_string()).collect();
        f.mask("allowed", &[name], sev, format!("one of {}", shown.join(", ")), &mask);
    }
    let text = if type_ok { col.str().ok().cloned() } else { None };
    if let (Some(re), Some(text)) = (regex, &text) {
        let mask = mask_from(map_texts(text, |s| !re.is_match(s)).map(|v| v == Some(true)));
        f.mask("regex", &[name], sev, format!("matches {}", re.as_str()), &mask);
    }
    if let (Some(min), Some(text)) = (rule.min_length, &text) {
        let mask = mask_from(map_texts(text, |s| s.chars().count() < min).map(|v| v == Some(true)));
        f.mask("min_length", &[name], sev, format!("at least {min} characters"), &mask);
    }
    if let (Some(max), Some(text)) = (rule.max_length, &text) {
        let mask = mask_from(map_texts(text, |s| s.chars().count() > max).map(|v| v == Some(true)));
        f.mask("max_length", &[name], sev, format!("at most {max} characters"), &mask);
    }
    if rule.unique {
        let dup = DataFrame::new(n, vec![col.clone()]).and_then(|d| d.is_duplicated());
        if let Ok(dup) = dup {
            let mask = mask_from(dup.iter().zip(nulls.iter()).map(|(d, null)| d == Some(true) && null == Some(false)));
            f.mask("unique", &[name], sev, "unique values".into(), &mask);
        }
    }
}

/// Rows where the condition `source` is true (a bound is violated); nulls do not violate.
fn violation_mask(df: &DataFrame, source: &str) -> std::result::Result<BooleanChunked, String> {
    let negated = format!("not ({source})");
    eval_condition(df, &negated)
}

/// Checks `df` against `schema`. `sources` holds other frames that foreign keys refer to.
pub fn validate(df: &DataFrame, schema: &Schema, sources: &BTreeMap<String, DataFrame>) -> Result<Report> {
    // Problems with the schema itself stop validation before any check runs.
    let mut regexes = BTreeMap::new();
    for (name, rule) in &schema.columns {
        if let Some(pattern) = &rule.regex {
            let re = Regex::new(pattern).map_err(|e| ValidateError::Regex {
                column: name.clone(),
                pattern: pattern.clone(),
                message: e.to_string(),
            })?;
            regexes.insert(name.clone(), re);
        }
        if let (Some(Scalar::Int(_) | Scalar::Float(_)), Some(Scalar::Int(_) | Scalar::Float(_))) =
            (&rule.min, &rule.max)
            && rule.min.as_ref().map(Scalar::value).and_then(|v| v.as_f64())
                > rule.max.as_ref().map(Scalar::value).and_then(|v| v.as_f64())
        {
            return Err(ValidateError::Invalid(format!("column `{name}`: min is above max")));
        }
    }
    for rule in &schema.rules {
        Expr::parse(&rule.expr)
            .map_err(|source| ValidateError::Rule { rule: rule.name.clone(), source: Box::new(source) })?;
    }
    for fk in &schema.foreign_keys {
        if !sources.contains_key(&fk.source) {
            return Err(ValidateError::UnknownSource {
                columns: fk.columns.clone(),
                source_name: fk.source.clone(),
                available: sources.keys().cloned().collect(),
            });
        }
        if fk.columns.len() != fk.references.len() || fk.columns.is_empty() {
            return Err(ValidateError::Invalid(format!(
                "foreign key on {}: {} column(s) but {} reference(s)",
                fk.columns.join(", "),
                fk.columns.len(),
                fk.references.len()
            )));
        }
    }

    let mut f = Findings { df, checks: 0, failures: Vec::new() };
    let n = df.height();
    // Columns are checked independently, so they are spread over the cores; findings are merged
    // back in schema order.
    let rules: Vec<(&String, &ColumnRule)> = schema.columns.iter().collect();
    let per_column: Vec<Findings<'_>> = mlops_core::par::map(&rules, |(name, rule)| {
        let mut own = Findings { df, checks: 0, failures: Vec::new() };
        check_column(&mut own, name, rule, regexes.get(*name));
        own
    })
    .ok_or_else(|| ValidateError::Invalid("a column check failed to run".into()))?;
    for own in per_column {
        f.checks += own.checks;
        f.failures.extend(own.failures);
    }
    if let Some(sev) = schema.extra_columns {
        for name in column_names(df) {
            if !schema.columns.contains_key(&name) {
                f.whole("extra_column", Some(&name), sev, n, "column is not in the schema".into());
            }
        }
    }
    for unique in &schema.unique {
        let cols: Vec<&str> = unique.columns.iter().map(String::as_str).collect();
        match df.select(cols.iter().copied()).and_then(|d| d.is_duplicated()) {
            Ok(dup) => f.mask("compound_unique", &cols, unique.severity, "unique combinations".into(), &dup),
            Err(_) => {
                let missing: Vec<&str> = cols.iter().copied().filter(|c| df.column(c).is_err()).collect();
                f.whole(
                    "compound_unique",
                    Some(&cols.join(", ")),
                    unique.severity,
                    n,
                    format!("missing column(s) {}", missing.join(", ")),
                );
            }
        }
    }
    if let Some(rows) = &schema.rows {
        let too_few = rows.min.is_some_and(|m| n < m);
        let too_many = rows.max.is_some_and(|m| n > m);
        if too_few || too_many {
            let bound = |o: Option<usize>| o.map_or_else(|| "any".to_string(), |v| v.to_string());
            f.whole(
                "rows",
                None,
                rows.severity,
                n,
                format!("between {} and {} rows, found {n}", bound(rows.min), bound(rows.max)),
            );
        } else {
            f.checks += 1;
        }
    }
    for fk in &schema.foreign_keys {
        let cols: Vec<&str> = fk.columns.iter().map(String::as_str).collect();
        let message = format!("present in {}.{}", fk.source, fk.references.join(", "));
        let Some(reference) = sources.get(&fk.source) else { continue };
        let (ours, theirs): (Vec<_>, Vec<_>) = (
            fk.columns.iter().map(|c| df.column(c)).collect(),
            fk.references.iter().map(|c| reference.column(c)).collect(),
        );
        let (Ok(ours), Ok(theirs)) = (
            ours.into_iter().collect::<std::result::Result<Vec<_>, _>>(),
            theirs.into_iter().collect::<std::result::Result<Vec<_>, _>>(),
        ) else {
            f.whole(
                "foreign_key",
                Some(&cols.join(", ")),
                fk.severity,
                n,
                format!("{message}: a key column does not exist"),
            );
            continue;
        };
        let numeric = |c: &Column| dtype_of(c.dtype()).is_some_and(DType::is_numeric);
        // Keys of each side: the columns' keys joined; null when any part is null.
        let composite = |cols: &[&Column], other: &[&Column], rows: usize| -> Vec<Option<String>> {
            let parts: Vec<Vec<Option<String>>> =
                cols.iter().zip(other).map(|(c, o)| keys_of(c, numeric(c) && numeric(o))).collect();
            (0..rows)
                .map(|r| {
                    let row: Option<Vec<&str>> = parts.iter().map(|p| p[r].as_deref()).collect();
                    row.map(|p| p.join("\u{1f}"))
                })
                .collect()
        };
        let known: HashSet<String> = composite(&theirs, &ours, reference.height()).into_iter().flatten().collect();
        let mask =
            mask_from(composite(&ours, &theirs, n).iter().map(|k| k.as_ref().is_some_and(|k| !known.contains(k))));
        f.mask("foreign_key", &cols, fk.severity, message, &mask);
    }
    for rule in &schema.rules {
        let check = format!("rule:{}", rule.name);
        let columns = Expr::parse(&rule.expr).map(|e| e.columns()).unwrap_or_default();
        let cols: Vec<&str> = columns.iter().map(String::as_str).collect();
        match eval_condition(df, &rule.expr) {
            Ok(mask) => f.mask(&check, &cols, rule.severity, rule.expr.clone(), &mask),
            Err(message) => {
                f.whole(&check, Some(&cols.join(", ")), rule.severity, n, format!("cannot evaluate: {message}"))
            }
        }
    }
    tracing::info!(checks = f.checks, failures = f.failures.len(), "validated");
    Ok(Report { rows: n, columns: df.width(), checks: f.checks, failures: f.failures })
}
