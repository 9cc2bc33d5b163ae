//! The target vocabulary of the training run and of `mlops fit`: what the target is (task and
//! classes, decided from the training rows), its labels per part, the feature columns and the
//! checked model input of a part.

use std::collections::BTreeSet;

use mlops_core::{DType, TaskKind};
use ndarray::Array2;
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};
use step11_candidates::Labels;

use crate::error::{PipelineError, Result};

/// What the target is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskChoice {
    /// Classification for text and boolean targets and for whole numbers with at most 10
    /// distinct values; regression otherwise.
    #[default]
    Auto,
    /// Classes, binary or multiclass.
    Classification,
    /// A number.
    Regression,
}

/// One part's model input.
#[derive(Clone, Debug)]
pub(crate) struct Part {
    pub(crate) x: Array2<f64>,
    pub(crate) y: Labels,
}

/// The target as the model sees it: task, class names in index order.
#[derive(Clone, Debug)]
pub(crate) struct TargetInfo {
    pub(crate) name: String,
    pub(crate) task: TaskKind,
    pub(crate) classes: Vec<String>,
}

impl TargetInfo {
    pub(crate) fn classification(&self) -> bool {
        self.task != TaskKind::Regression
    }

    /// The labels of a part.
    pub(crate) fn labels(&self, df: &DataFrame, part: &str) -> Result<Labels> {
        let bad = |message: String| PipelineError::Target { step: "train", column: self.name.clone(), message };
        if !self.classification() {
            let values = mlops_core::frame::f64_column(df, &self.name).map_err(|e| PipelineError::step("train", e))?;
            return values
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Some(v) if v.is_finite() => Ok(v),
                    _ => Err(bad(format!(
                        "target `{}` has no number in row {i} of the {part} part; drop or fill it in `select` or `clean`",
                        self.name
                    ))),
                })
                .collect::<Result<Vec<f64>>>()
                .map(Labels::Values);
        }
        let keys = mlops_core::frame::keys(df, &self.name).map_err(|e| PipelineError::step("train", e))?;
        keys.iter()
            .enumerate()
            .map(|(i, k)| {
                let k = k.as_ref().ok_or_else(|| {
                    bad(format!(
                        "target `{}` is empty in row {i} of the {part} part; drop such rows in `select`",
                        self.name
                    ))
                })?;
                self.classes.iter().position(|c| c == k).ok_or_else(|| {
                    bad(format!(
                        "target `{}` has class `{k}` in the {part} part that the training part never shows",
                        self.name
                    ))
                })
            })
            .collect::<Result<Vec<usize>>>()
            .map(|y| Labels::Classes { y, classes: self.classes.len() })
    }

    /// One part's checked model input: the feature matrix and the labels.
    pub(crate) fn part(&self, df: &DataFrame, features: &[String], name: &str) -> Result<Part> {
        Ok(Part { x: matrix(df, features, name)?, y: self.labels(df, name)? })
    }
}

/// Decides the task and the classes from the training rows.
/// `invalid` turns a message into the error that names where the target was given.
pub(crate) fn target_info(
    train: &DataFrame,
    name: &str,
    task: TaskChoice,
    invalid: &dyn Fn(String) -> PipelineError,
) -> Result<TargetInfo> {
    let name = name.to_string();
    let Ok(col) = train.column(&name) else {
        return Err(invalid(format!(
            "no column `{name}` in the training rows (columns: {})",
            mlops_core::frame::column_names(train).join(", ")
        )));
    };
    let dtype = mlops_core::frame::dtype_of(col.dtype());
    let numeric = dtype.is_some_and(|t| t.is_numeric() && t != DType::Bool);
    let keys = mlops_core::frame::keys(train, &name).map_err(|e| PipelineError::step("train", e))?;
    let mut classes: Vec<String> = keys.iter().flatten().cloned().collect::<BTreeSet<_>>().into_iter().collect();
    if classes.len() < 2 {
        return Err(invalid(format!(
            "`{name}` is constant in the training rows ({}); there is nothing to learn",
            classes.first().map_or("all empty".to_string(), |c| format!("always `{c}`"))
        )));
    }
    let whole = numeric
        && mlops_core::frame::numbers(train, &name)
            .map_err(|e| PipelineError::step("train", e))?
            .iter()
            .all(|v| v.fract() == 0.0);
    let classification = match task {
        TaskChoice::Classification => true,
        TaskChoice::Regression if !numeric => {
            return Err(invalid(format!(
                "a regression target must be numeric, but `{name}` is {}",
                dtype.map_or_else(|| col.dtype().to_string(), |t| t.to_string())
            )));
        }
        TaskChoice::Regression => false,
        TaskChoice::Auto => !numeric || (whole && classes.len() <= 10),
    };
    if !classification {
        return Ok(TargetInfo { name, task: TaskKind::Regression, classes: Vec::new() });
    }
    // Numbers as classes sort by value, not as text.
    if classes.iter().all(|c| c.parse::<f64>().is_ok()) {
        classes.sort_by(|a, b| a.parse::<f64>().unwrap_or(0.0).total_cmp(&b.parse::<f64>().unwrap_or(0.0)));
    }
    let task = if classes.len() == 2 { TaskKind::BinaryClassification } else { TaskKind::MulticlassClassification };
    Ok(TargetInfo { name, task, classes })
}

/// The feature columns of a part: the configured ones, or every numeric and boolean column but
/// the target. Also returns the columns left out, with why.
pub(crate) fn feature_columns(
    df: &DataFrame,
    target: &str,
    listed: Option<&Vec<String>>,
) -> (Vec<String>, Vec<(String, String)>) {
    if let Some(list) = listed {
        return (list.clone(), Vec::new());
    }
    let (mut used, mut ignored) = (Vec::new(), Vec::new());
    for col in df.columns() {
        let name = col.name().to_string();
        if name == target {
            continue;
        }
        match mlops_core::frame::dtype_of(col.dtype()) {
            Some(t) if t.is_numeric() || t == DType::Bool => used.push(name),
            t => ignored.push((
                name,
                format!("{} is not a number", t.map_or_else(|| col.dtype().to_string(), |t| t.to_string())),
            )),
        }
    }
    (used, ignored)
}

/// The model input of a part, checked: a missing, null, NaN or infinite feature value is an error
/// naming the column before any model is fitted.
pub(crate) fn matrix(df: &DataFrame, columns: &[String], part: &str) -> Result<Array2<f64>> {
    let features = |message: String| PipelineError::Features { step: "train", part: part.to_string(), message };
    let x = mlops_core::frame::to_matrix(df, columns).map_err(|e| features(format!("{part} part: {e}")))?;
    for ((row, col), v) in x.indexed_iter() {
        if !v.is_finite() {
            return Err(features(format!(
                "feature `{}` is {} in row {row} of the {part} part; impute it (clean.missing) or leave the column out",
                columns[col],
                if v.is_nan() { "NaN" } else { "infinite" }
            )));
        }
    }
    Ok(x)
}

/// The metric a task is ranked by when the config names none.
pub(crate) fn default_metric(task: TaskKind) -> step14_evaluate::Metric {
    match task {
        TaskKind::BinaryClassification => step14_evaluate::Metric::RocAuc,
        TaskKind::MulticlassClassification => step14_evaluate::Metric::F1Macro,
        TaskKind::Regression => step14_evaluate::Metric::R2,
    }
}

/// `binary classification`, `multiclass classification` or `regression`.
pub fn task_name(task: TaskKind) -> &'static str {
    match task {
        TaskKind::BinaryClassification => "binary classification",
        TaskKind::MulticlassClassification => "multiclass classification",
        TaskKind::Regression => "regression",
    }
}

/// One cross-validation fold's model input: its training and validation parts, with the feature
/// columns its own refitted features gave.
#[derive(Clone, Debug)]
pub(crate) struct FoldPart {
    pub(crate) train: Part,
    pub(crate) validation: Part,
    pub(crate) features: Vec<String>,
}
