//! Accuracy once the truth arrives: the actual outcomes recorded as feedback
//! (`prediction_feedback`, step 20) joined to the logged predictions of one model in a window, and
//! step 14's metrics over the whole window and per hour.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use step14_evaluate::Metric;

use crate::error::{MonitorError, Result};
use crate::window::{IN_WINDOW, ModelRef, Window, log_text, open_read_only, pages};

/// What the model predicts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcomes {
    /// Labels: the model's classes in the order of its probabilities.
    Classes(Vec<String>),
    /// Values.
    Values,
}

/// The metrics of the labelled predictions in a window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Accuracy {
    /// Predictions with an actual outcome.
    pub labelled: u64,
    /// Actual labels the model does not know (counted, left out of the metrics: no class of the
    /// model can be right about them).
    pub unknown_labels: u64,
    /// Every metric of step 14 that applies, by name, over the window.
    pub overall: BTreeMap<String, f64>,
    /// The same per hour (`2026-12-07T10`), for hours with labelled predictions.
    pub per_hour: BTreeMap<String, BTreeMap<String, f64>>,
    /// The same on the buckets of a timeline (keys cut to `timeline_prefix` characters; see
    /// [`crate::Timeline`]).
    pub timeline: BTreeMap<String, BTreeMap<String, f64>>,
}

/// Requests of one model (?1; version ?2, or every version but shadow predictions) in a window
/// (?3, ?4) that have feedback, after `seq` ?5, oldest first, ?6 at most: each with the text
/// `column` ("inputs" or "outputs") once, however many of its rows have feedback.
fn labelled_requests(column: &str) -> String {
    format!(
        "SELECT seq, at, columns, {column}, request_id FROM prediction_requests
         WHERE {IN_WINDOW} AND seq > ?5
           AND EXISTS (SELECT 1 FROM prediction_feedback AS f WHERE f.request_id = prediction_requests.request_id)
         ORDER BY seq LIMIT ?6"
    )
}

/// One labelled request: its rows with feedback, in row order.
struct LabelledRequest {
    at: String,
    columns: String,
    text: String,
    request_id: String,
    /// (row, actual JSON text).
    actuals: Vec<(u32, String)>,
}

/// Every labelled request of `model` in `window`, page by page, with its actuals; `visit` sees
/// each (and can stop the reading with an error).
fn for_each_labelled(
    path: &Path,
    (model, window): (&ModelRef, &Window),
    column: &str,
    visit: &mut (dyn FnMut(LabelledRequest) -> Result<()> + Send),
) -> Result<()> {
    let store = open_read_only(path)?;
    let tables = store.read(|t| {
        Ok::<_, mlops_core::store::StoreError>((
            t.has_table("prediction_feedback")?,
            t.has_table("prediction_requests")?,
        ))
    })?;
    if tables != (true, true) {
        return Ok(());
    }
    let (from, to) = (window.from.map(log_text), window.to.map(log_text));
    let sql = labelled_requests(column);
    pages(&store, &sql, &[&model.name, &model.version, &from, &to], &mut |t, r| {
        let request_id: String = r.get(4)?;
        let actuals = t
            .query("SELECT row, actual FROM prediction_feedback WHERE request_id = ?1 ORDER BY row", &[&request_id])?
            .iter()
            .map(|a| Ok((a.get(0)?, a.get(1)?)))
            .collect::<mlops_core::store::Result<Vec<(u32, String)>>>()?;
        visit(LabelledRequest { at: r.get(1)?, columns: r.get(2)?, text: r.get(3)?, request_id, actuals })?;
        Ok(true)
    })
}

/// Predictions with their actual outcomes, ready for step 14's metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Labelled {
    /// Actual classes (indices into the model's classes).
    pub truth: Vec<usize>,
    /// Predicted classes.
    pub predicted: Vec<usize>,
    /// Class probabilities per row (counted only when every row has them).
    pub proba: Vec<Vec<f64>>,
    /// Actual values (regression).
    pub values_truth: Vec<f64>,
    /// Predicted values.
    pub values_predicted: Vec<f64>,
}

impl Labelled {
    /// Step 14's metrics that apply, by name (none for an empty set).
    pub fn metrics(&self, outcomes: &Outcomes) -> BTreeMap<String, f64> {
        metrics(self, outcomes)
    }
}

/// One logged row with its actual outcome: the inputs by column, as the server logged them.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledRow {
    /// The request it came in.
    pub request_id: String,
    /// Its place in the request.
    pub row: u32,
    /// The row's inputs by column name.
    pub inputs: serde_json::Map<String, serde_json::Value>,
    /// The actual outcome (a label or a number).
    pub actual: serde_json::Value,
}

/// The logged rows of `model` (every version when `model.version` is `None`) in `window` that
/// have an actual outcome, oldest first: what a lifecycle gate scores two versions on.
pub fn read_labelled_rows(path: &Path, model: &ModelRef, window: &Window) -> Result<Vec<LabelledRow>> {
    let mut out = Vec::new();
    let bad = |message: String| MonitorError::Feedback { path: path.to_path_buf(), message };
    for_each_labelled(path, (model, window), "inputs", &mut |request| {
        let columns: Vec<String> = serde_json::from_str(&request.columns)
            .map_err(|e| bad(format!("a request's columns are not a list of names: {e}")))?;
        let rows: Vec<Vec<serde_json::Value>> =
            serde_json::from_str(&request.text).map_err(|e| bad(format!("a logged row is not JSON: {e}")))?;
        for (row, actual) in &request.actuals {
            // Feedback on a row the request does not have is not joined.
            let Some(values) = rows.get(*row as usize) else { continue };
            let actual = serde_json::from_str(actual).map_err(|e| bad(format!("an actual is not JSON: {e}")))?;
            let inputs = columns.iter().cloned().zip(values.iter().cloned()).collect();
            out.push(LabelledRow { request_id: request.request_id.clone(), row: *row, inputs, actual });
        }
        Ok(())
    })?;
    Ok(out)
}

/// Joins the feedback in the store at `path` to `model`'s logged predictions in `window` (by
/// request id and row) and scores them: over the window, per hour, and per bucket of a timeline
/// whose keys are the log's instants cut to `timeline_prefix` characters (13: hours).
pub fn read_accuracy(
    path: &Path,
    model: &ModelRef,
    window: &Window,
    outcomes: &Outcomes,
    timeline_prefix: usize,
) -> Result<Accuracy> {
    let mut out = Accuracy::default();
    let mut all = Labelled::default();
    let mut hours: BTreeMap<String, Labelled> = BTreeMap::new();
    let mut buckets: BTreeMap<String, Labelled> = BTreeMap::new();
    let bad = |message: String| MonitorError::Feedback { path: path.to_path_buf(), message };
    for_each_labelled(path, (model, window), "outputs", &mut |request| {
        let outputs: Vec<serde_json::Value> =
            serde_json::from_str(&request.text).map_err(|e| bad(format!("a logged output is not JSON: {e}")))?;
        let at = &request.at;
        for (row, actual) in &request.actuals {
            let Some(output) = outputs.get(*row as usize) else { continue };
            let actual: serde_json::Value =
                serde_json::from_str(actual).map_err(|e| bad(format!("an actual is not JSON: {e}")))?;
            out.labelled += 1;
            let hour: String = at.chars().take(13).collect();
            let bucket: String = at.chars().take(timeline_prefix).collect();
            match outcomes {
                Outcomes::Classes(classes) => {
                    let index = |v: &serde_json::Value| v.as_str().and_then(|s| classes.iter().position(|c| c == s));
                    let (Some(t), Some(p)) = (index(&actual), index(&output["prediction"])) else {
                        out.unknown_labels += 1;
                        continue;
                    };
                    let proba: Option<Vec<f64>> = output["probabilities"]
                        .as_array()
                        .map(|ps| ps.iter().map(|p| p.as_f64().unwrap_or(f64::NAN)).collect());
                    for l in [&mut all, hours.entry(hour).or_default(), buckets.entry(bucket).or_default()] {
                        l.truth.push(t);
                        l.predicted.push(p);
                        if let Some(p) = &proba {
                            l.proba.push(p.clone());
                        }
                    }
                }
                Outcomes::Values => {
                    let (Some(t), Some(p)) = (actual.as_f64(), output["prediction"].as_f64()) else {
                        return Err(bad(format!(
                            "a regressor's actual or prediction is not a number: {actual}, {}",
                            output["prediction"]
                        )));
                    };
                    for l in [&mut all, hours.entry(hour).or_default(), buckets.entry(bucket).or_default()] {
                        l.values_truth.push(t);
                        l.values_predicted.push(p);
                    }
                }
            }
        }
        Ok(())
    })?;
    out.overall = metrics(&all, outcomes);
    out.per_hour =
        hours.iter().map(|(h, l)| (h.clone(), metrics(l, outcomes))).filter(|(_, m)| !m.is_empty()).collect();
    out.timeline =
        buckets.iter().map(|(b, l)| (b.clone(), metrics(l, outcomes))).filter(|(_, m)| !m.is_empty()).collect();
    tracing::debug!(model = model.name, labelled = out.labelled, "accuracy");
    Ok(out)
}

/// Step 14's metrics that apply, by name (none for an empty set).
fn metrics(l: &Labelled, outcomes: &Outcomes) -> BTreeMap<String, f64> {
    match outcomes {
        Outcomes::Classes(classes) if !l.truth.is_empty() => {
            // Probabilities count only when every labelled row has them.
            let proba = (l.proba.len() == l.truth.len()).then_some(l.proba.as_slice());
            let m = step14_evaluate::classification(&l.truth, &l.predicted, proba, classes.len())
                .or_else(|_| step14_evaluate::classification(&l.truth, &l.predicted, None, classes.len()));
            m.map(|m| Metric::ALL.iter().filter_map(|k| k.of_classification(&m).map(|v| (k.name(), v))).collect())
                .unwrap_or_default()
        }
        Outcomes::Values if !l.values_truth.is_empty() => {
            step14_evaluate::regression(&l.values_truth, &l.values_predicted)
                .map(|m| Metric::ALL.iter().filter_map(|k| k.of_regression(&m).map(|v| (k.name(), v))).collect())
                .unwrap_or_default()
        }
        _ => BTreeMap::new(),
    }
}
