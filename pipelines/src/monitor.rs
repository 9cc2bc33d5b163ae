//! The monitoring run (step 22): one model's logged predictions over a window against its
//! reference, the drift of the columns a caller sends, of the model's features and of its
//! predictions, data quality, service health, accuracy once the truth arrived, alerts with their
//! sinks, and the dashboard with its JSON twin.
//!
//! The reference is the package's: the training rows as a caller sends them
//! (`reference.parquet`, see [`crate::reference`]) and the model's predictions on the test part.
//! Features on both sides come from the same row path the server takes: each row conformed to the
//! signature, then the package's pipeline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use mlops_core::{ColumnSchema, DType, Row, TaskKind, Transform, Value};
use serde::Serialize;
use step16_package::Package;
use step20_serve::{Cell, ModelSource, cell_value};
use step22_monitor::alerts::{AlertEvent, Findings};
use step22_monitor::drift::{
    Categories, ColumnDrift, ColumnKind, DataDrift, DriftRule, Numbers, Sample, column_drift, data_drift,
};
use step22_monitor::{
    Accuracy, ColumnQuality, Health, LoggedValue, ModelRef, MonitorConfig, Outcomes, Window, health, quality,
    read_accuracy, read_current_with,
};

use crate::error::{PipelineError, Result};

/// What a monitoring run looks at.
pub struct MonitorRequest<'a> {
    /// The model as `mlops serve` takes it: `models:/NAME@ALIAS`, `models:/NAME/VERSION` or a
    /// package directory.
    pub model: &'a str,
    /// The store holding the registry and the prediction log.
    pub store: &'a Path,
    /// The registry's artifact folder.
    pub artifacts: &'a Path,
    /// The window of logged predictions.
    pub window: Window,
    /// The window as a folder name (`last-24h`, `20261207T100000Z-20261207T120000Z`).
    pub window_label: String,
    /// Drift rules, alert rules and sinks.
    pub config: &'a MonitorConfig,
    /// Where reports go: `<reports>/<model>/<window>/monitor.html` and `monitor.json`.
    pub reports: &'a Path,
    /// The run's instant (alert times).
    pub now: DateTime<Utc>,
    /// Whether the alert rules are evaluated and their state recorded in the store (`false`:
    /// the run only reads, as the lifecycle's triggers do, and leaves alerts to `mlops monitor`).
    pub alert: bool,
}

/// What a monitoring run found.
#[derive(Clone, Debug, Serialize)]
pub struct Monitored {
    /// The registered name (or the package's).
    pub model: String,
    /// The version monitored (`None`: a package path, every logged version of its name).
    pub version: Option<u32>,
    /// What was asked for.
    pub uri: String,
    /// The window.
    pub window: Window,
    /// Its folder name.
    pub window_label: String,
    /// When the run looked.
    pub at: String,
    /// The task.
    pub task: TaskKind,
    /// Where the reference came from, and its rows.
    pub reference: ReferenceSource,
    /// Requests and rows in the window.
    pub requests: u64,
    /// Rows predicted.
    pub rows: u64,
    /// Drift of the columns a caller sends.
    pub inputs: Option<DataDrift>,
    /// Drift of the model's features (the same rows through the package's pipeline).
    pub features: Option<DataDrift>,
    /// Drift of the predictions against the model's predictions on the test part.
    pub predictions: Option<ColumnDrift>,
    /// Data quality per input column.
    pub quality: Vec<ColumnQuality>,
    /// Volume and latency.
    pub health: Health,
    /// Metrics of the labelled predictions, when the truth arrived.
    pub accuracy: Option<Accuracy>,
    /// The metrics measured on the test part at training (`accuracy`, `f1`, ... without the
    /// `test_` prefix): the baseline of a performance drop.
    pub baseline: BTreeMap<String, f64>,
    /// What the alert rules read.
    pub findings: Findings,
    /// Fired, still open and resolved alerts.
    pub alerts: Vec<AlertEvent>,
    /// How many leading characters of an instant name its timeline bucket.
    pub timeline_prefix: usize,
    /// Histograms of each compared column, reference against current (for the dashboard).
    pub histograms: BTreeMap<String, Histograms>,
    /// Histograms of each compared feature, reference against current.
    pub feature_histograms: BTreeMap<String, Histograms>,
    /// The predictions' histogram, the test part's against the window's.
    pub prediction_histogram: Option<Histograms>,
    /// What the run could not do, in words.
    pub notes: Vec<String>,
    /// Where the time went, in seconds: `read_log` (the window's requests, without the
    /// features), `features` (the logged rows through the package's pipeline), `reference`,
    /// `compare` (drift, quality, health), `accuracy`, `alerts`.
    pub seconds: BTreeMap<&'static str, f64>,
}

/// One column's distribution on both sides, on shared bins.
#[derive(Clone, Debug, Serialize)]
pub struct Histograms {
    /// Bin labels: a range (`[1.5, 2)`) or a category.
    pub bins: Vec<String>,
    /// The reference's share per bin.
    pub reference: Vec<f64>,
    /// The current data's share per bin.
    pub current: Vec<f64>,
}

/// Columns on one side: the inputs (by name) and the features (by name).
struct Side {
    /// Reference rows.
    rows: usize,
    inputs: BTreeMap<String, Sample>,
    features: BTreeMap<String, Sample>,
    /// Rows the package's pipeline refused.
    refused: u64,
}

/// Rows passed through the package's pipeline at a time, by its frame path (the row path's
/// results: a property every operation is tested for).
const FEATURE_CHUNK: usize = 65_536;

/// Collects the features of conformed rows: a chunk at a time through the package's pipeline.
struct FeatureColumns<'a> {
    package: &'a Package,
    /// Conformed values waiting, per signature input.
    pending: Vec<Vec<Value>>,
    values: Vec<(Vec<f64>, u64)>,
    refused: u64,
}

impl<'a> FeatureColumns<'a> {
    fn new(package: &'a Package) -> Self {
        let c = &package.contents;
        FeatureColumns {
            package,
            pending: vec![Vec::new(); c.signature.inputs.len()],
            values: vec![(Vec::new(), 0); c.info.features.len()],
            refused: 0,
        }
    }

    /// Takes one conformed row, its values in the signature's input order.
    fn push(&mut self, row: impl IntoIterator<Item = Value>) {
        for (column, v) in self.pending.iter_mut().zip(row) {
            column.push(v);
        }
        if self.pending.first().map_or(0, Vec::len) >= FEATURE_CHUNK {
            self.flush();
        }
    }

    /// The waiting rows through the pipeline's frame path; rows it refuses go one by one
    /// through the row path, and those refused there are counted.
    fn flush(&mut self) {
        let c = &self.package.contents;
        let rows = self.pending.first().map_or(0, Vec::len);
        if rows == 0 {
            return;
        }
        let pending = std::mem::replace(&mut self.pending, vec![Vec::new(); c.signature.inputs.len()]);
        let frame = polars::prelude::DataFrame::new(
            rows,
            c.signature
                .inputs
                .iter()
                .zip(&pending)
                .map(|(col, values)| mlops_core::frame::column_from_values(&col.name, col.dtype, values))
                .collect(),
        );
        let features = frame
            .ok()
            .and_then(|f| c.pipeline.apply_frame(f, mlops_core::frame::Stage::Inference).ok())
            .filter(|f| f.height() == rows);
        let columns: Option<Vec<_>> = features
            .as_ref()
            .and_then(|f| c.info.features.iter().map(|name| mlops_core::frame::f64_column(f, name).ok()).collect());
        if let Some(columns) = columns {
            for (column, (values, missing)) in columns.iter().zip(self.values.iter_mut()) {
                for v in column.iter() {
                    match v.filter(|x| x.is_finite()) {
                        Some(x) => values.push(x),
                        None => *missing += 1,
                    }
                }
            }
            return;
        }
        for i in 0..rows {
            let mut row: Row = c
                .signature
                .inputs
                .iter()
                .zip(&pending)
                .map(|(col, values)| (col.name.clone(), values[i].clone()))
                .collect();
            if c.pipeline.transform_row(&mut row).is_err() {
                self.refused += 1;
                continue;
            }
            for (feature, (values, missing)) in c.info.features.iter().zip(self.values.iter_mut()) {
                match row.get(feature).and_then(Value::as_f64).filter(|v| v.is_finite()) {
                    Some(v) => values.push(v),
                    None => *missing += 1,
                }
            }
        }
    }

    fn finish(mut self) -> Result<(BTreeMap<String, Sample>, u64)> {
        self.flush();
        let names = self.package.contents.info.features.iter().cloned();
        // Sorted as they become samples, the features shared out among the cores.
        let samples = mlops_core::par::map_owned(self.values, |(values, missing)| {
            Sample::Numeric(Numbers::from_parts(values, missing))
        })
        .ok_or_else(|| PipelineError::step("monitor", step22_monitor::MonitorError::Worker))?;
        Ok((names.zip(samples).collect(), self.refused))
    }
}

/// A logged value as a value of `col`'s type, as the server had conformed it.
fn logged_value(col: &ColumnSchema, v: &LoggedValue<'_>) -> Value {
    match (col.dtype, v) {
        (_, LoggedValue::Null) => Value::Null,
        (DType::Float, LoggedValue::Number(x)) => Value::Float(*x),
        (DType::Int, LoggedValue::Number(x)) if x.fract() == 0.0 => Value::Int(*x as i64),
        (DType::Bool, LoggedValue::Bool(b)) => Value::Bool(*b),
        (DType::Str, LoggedValue::Text(t)) => Value::Str(t.to_string()),
        // Dates and datetimes are logged as text.
        (_, LoggedValue::Text(t)) => cell_value(col, Cell::Text(t), 0).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

fn kind_of(dtype: DType) -> ColumnKind {
    match dtype {
        DType::Int | DType::Float => ColumnKind::Numeric,
        _ => ColumnKind::Categorical,
    }
}

/// A conformed value as the prediction log holds it, as a category's text.
fn category_text(v: &Value) -> Option<String> {
    match v.to_json() {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// The reference side: the package's reference rows conformed to the signature, as input
/// columns and, through the pipeline, as features.
fn reference_side(package: &Package) -> Result<Option<Side>> {
    let Some(bytes) = &package.contents.reference.rows else { return Ok(None) };
    let frame = crate::reference::from_parquet(bytes, "reference.parquet")?;
    let inputs = &package.contents.signature.inputs;
    let mut columns: Vec<Vec<Value>> = Vec::with_capacity(inputs.len());
    for col in inputs {
        let values = match mlops_core::frame::column(&frame, &col.name) {
            Ok(c) => mlops_core::frame::column_values(c).map_err(|e| PipelineError::step("monitor", e))?,
            Err(_) => vec![Value::Null; frame.height()],
        };
        let conformed =
            values.iter().enumerate().map(|(i, v)| cell_value(col, Cell::Value(v), i).unwrap_or(Value::Null));
        columns.push(conformed.collect());
    }
    let mut features = FeatureColumns::new(package);
    for i in 0..frame.height() {
        features.push(columns.iter().map(|values| values[i].clone()));
    }
    let samples = inputs.iter().zip(columns).map(|(col, values)| (col.name.clone(), sample_of(col, &values))).collect();
    let (features, refused) = features.finish()?;
    Ok(Some(Side { rows: frame.height(), inputs: samples, features, refused }))
}

fn sample_of(col: &ColumnSchema, values: &[Value]) -> Sample {
    match kind_of(col.dtype) {
        ColumnKind::Numeric => {
            Sample::Numeric(Numbers::new(values.iter().map(|v| v.as_f64().filter(|x| x.is_finite()))))
        }
        ColumnKind::Categorical => {
            let mut c = Categories::new();
            for v in values {
                c.add(category_text(v).as_deref());
            }
            Sample::Categorical(c)
        }
    }
}

/// Where the features' reference came from.
#[derive(Clone, Debug, Serialize)]
pub struct ReferenceSource {
    /// The columns a caller sends: `package` (its reference rows), or `none`.
    pub inputs: String,
    /// The features: `catalog <name@version>` (the training part taken again from the
    /// catalog), `package` (its reference rows through the pipeline) or `none`.
    pub features: String,
    /// Rows on each side: (inputs, features).
    pub rows: (usize, usize),
}

/// The training part of the package's dataset version, taken again from the catalog at
/// `catalog` the way the training run cut it (the `split` of the package's lineage), through the
/// package's feature operations: the features' reference, every training row. `Ok(None)` with a
/// reason when the catalog, the version or the record of the cut is not there.
fn catalog_features(package: &Package, catalog: &Path) -> Result<std::result::Result<CatalogFeatures, String>> {
    #[derive(serde::Deserialize)]
    struct Cut {
        seed: mlops_core::Seed,
        select: step08_select::Selection,
        split: step08_select::SplitParams,
    }
    let c = &package.contents;
    let (Some(dataset), Some(cut)) = (&c.lineage.dataset_version, &c.lineage.split) else {
        return Ok(Err("the package does not record its dataset version's cut (packaged before monitoring)".into()));
    };
    let Some(first) = c.info.source_ops else {
        return Ok(Err(
            "the package's pipeline starts at the dataset version's rows: its reference rows are those rows".into(),
        ));
    };
    let Ok(cut) = serde_json::from_value::<Cut>(cut.clone()) else {
        return Ok(Err("the package's record of the cut does not read".into()));
    };
    let Ok((_, frame)) = step06_curate::Catalog::open(catalog).load(dataset) else {
        return Ok(Err(format!("{dataset} is not in the catalog at {}", catalog.display())));
    };
    let step = |e: mlops_core::CoreError| PipelineError::step("monitor", e);
    let selected = cut.select.apply(&frame, cut.seed).map_err(|e| PipelineError::step("monitor", e))?;
    let split = cut.split.split(&selected, cut.seed).map_err(|e| PipelineError::step("monitor", e))?;
    let (train, _, _) = split.frames(&selected).map_err(|e| PipelineError::step("monitor", e))?;
    let features = mlops_core::FeaturePipeline {
        ops: c.pipeline.ops.iter().skip(first).cloned().collect(),
        ..mlops_core::FeaturePipeline::new()
    };
    let rows = train.height();
    let out = features.apply_frame(train, mlops_core::frame::Stage::Inference).map_err(step)?;
    let mut samples = BTreeMap::new();
    for f in &c.info.features {
        let values = mlops_core::frame::f64_column(&out, f).map_err(step)?;
        samples.insert(f.clone(), Sample::Numeric(Numbers::new(values.iter().map(|v| v.filter(|x| x.is_finite())))));
    }
    Ok(Ok(CatalogFeatures { from: format!("catalog {dataset}"), samples, rows }))
}

/// The features of the training part taken from the catalog.
struct CatalogFeatures {
    /// `catalog <name@version>`.
    from: String,
    samples: BTreeMap<String, Sample>,
    rows: usize,
}

/// The task's metrics measured on the test part at training: `metrics.json`'s `test_*`.
fn baseline(package: &Package) -> BTreeMap<String, f64> {
    package.contents.metrics.iter().filter_map(|(k, v)| k.strip_prefix("test_").map(|m| (m.to_string(), *v))).collect()
}

/// Runs the monitoring of `req.model` over `req.window`: reads the log and the reference,
/// compares, evaluates the alert rules (recording their state in the store) and writes the
/// dashboard and its JSON twin. Sinks are the caller's (`mlops monitor` prints, appends and
/// posts).
pub fn monitor(req: &MonitorRequest<'_>) -> Result<Monitored> {
    let failed = |e: step22_monitor::MonitorError| PipelineError::step("monitor", e);
    let origin = ModelSource::parse(req.model, req.store, req.artifacts)
        .resolve()
        .map_err(|e| PipelineError::step("monitor", e))?;
    let package = step16_package::load(&origin.path).map_err(|e| PipelineError::step("monitor", e))?;
    let c = &package.contents;
    let model = ModelRef { name: origin.name.clone(), version: origin.version };
    let mut notes = Vec::new();

    let inputs: BTreeMap<String, ColumnKind> =
        c.signature.inputs.iter().map(|col| (col.name.clone(), kind_of(col.dtype))).collect();
    let prediction_kind = match c.info.task {
        TaskKind::Regression => ColumnKind::Numeric,
        _ => ColumnKind::Categorical,
    };
    let signature = &c.signature.inputs;
    let mut features = FeatureColumns::new(&package);
    let mut seconds: BTreeMap<&'static str, f64> = BTreeMap::new();
    let mut in_features = std::time::Duration::ZERO;
    // Where each signature input is in a request's columns, found again when they change.
    let mut places: (Vec<String>, Vec<Option<usize>>) = (Vec::new(), Vec::new());
    let started = std::time::Instant::now();
    let with_features = req.config.drift.features;
    let current = read_current_with(req.store, &model, &req.window, &inputs, prediction_kind, &mut |names, values| {
        if !with_features {
            return;
        }
        let t = std::time::Instant::now();
        if places.0.as_slice() != names {
            places = (names.to_vec(), signature.iter().map(|col| names.iter().position(|n| *n == col.name)).collect());
        }
        let row = signature.iter().zip(&places.1).map(|(col, at)| match at.and_then(|k| values.get(k)) {
            Some(v) => logged_value(col, v),
            None => Value::Null,
        });
        features.push(row);
        in_features += t.elapsed();
    })
    .map_err(failed)?;
    seconds.insert("read_log", (started.elapsed() - in_features).as_secs_f64());
    let t = std::time::Instant::now();
    let (current_features, current_refused) = features.finish()?;
    seconds.insert("features", (in_features + t.elapsed()).as_secs_f64());
    if current.requests == 0 {
        notes.push(format!(
            "no logged predictions of {} in the window: nothing to compare (is the server logging to {}?)",
            origin.uri,
            req.store.display()
        ));
    }
    if current_refused > 0 {
        notes.push(format!("{current_refused} logged row(s) did not pass the package's pipeline again"));
    }

    let started = std::time::Instant::now();
    let reference = reference_side(&package)?;
    let mut source = ReferenceSource {
        inputs: if reference.is_some() { "package".into() } else { "none".into() },
        features: if reference.is_some() { "package".into() } else { "none".into() },
        rows: reference.as_ref().map_or((0, 0), |r| (r.rows, r.rows)),
    };
    // The features' reference: the whole training part from the catalog when it is there, else
    // the package's reference rows through the pipeline.
    let catalog = if with_features {
        catalog_features(&package, &req.config.catalog)?
    } else {
        Err("`drift.features` is off".to_string())
    };
    let reference_features: Option<&BTreeMap<String, Sample>> = match &catalog {
        Ok(CatalogFeatures { from, samples, rows }) => {
            source.features.clone_from(from);
            source.rows.1 = *rows;
            Some(samples)
        }
        Err(why) => {
            if reference.is_some() && with_features {
                notes.push(format!("features compared with the package's reference rows: {why}"));
            }
            reference.as_ref().map(|r| &r.features)
        }
    };
    seconds.insert("reference", started.elapsed().as_secs_f64());
    let started = std::time::Instant::now();
    let drift = &req.config.drift;
    let has_rows = current.rows > 0;
    if let Some(r) = reference.as_ref().filter(|r| r.refused > 0) {
        notes.push(format!("{} reference row(s) did not pass the package's pipeline", r.refused));
    }
    let inputs_drift = match (&reference, has_rows) {
        (Some(r), true) => {
            // Text without categories in the signature (free text, or dates and numbers the
            // pipeline parses) has no distribution to compare: its parsed values are among the
            // features.
            let free_text = |col: &&ColumnSchema| col.dtype == DType::Str && col.categories.is_none();
            let mut d = data_drift(
                c.signature.inputs.iter().filter(|col| !free_text(col)).filter_map(|col| {
                    Some((col.name.as_str(), r.inputs.get(&col.name)?, current.columns.get(&col.name)?))
                }),
                drift,
            );
            d.skipped.extend(c.signature.inputs.iter().filter(free_text).map(|col| {
                (
                    col.name.clone(),
                    "text without categories in the signature (free text, or values the pipeline parses): compared among the features".to_string(),
                )
            }));
            Some(d)
        }
        (None, _) => {
            notes.push(format!(
                "{}: the package keeps no reference rows (packaged before monitoring, or trained on a named dataset version): the columns a caller sends are not compared",
                origin.path.display()
            ));
            None
        }
        _ => None,
    };
    let features_drift = match (reference_features, has_rows && with_features) {
        (Some(r), true) => Some(data_drift(
            c.info.features.iter().filter_map(|f| Some((f.as_str(), r.get(f)?, current_features.get(f)?))),
            drift,
        )),
        _ => None,
    };
    let mut prediction_histogram = None;
    let predictions = match (&c.reference.predictions, current.rows > 0) {
        (Some(bytes), true) => {
            let frame = crate::reference::from_parquet(bytes, "reference_predictions.parquet")?;
            let reference = match prediction_kind {
                ColumnKind::Numeric => Sample::Numeric(Numbers::new(
                    mlops_core::frame::f64_column(&frame, "prediction")
                        .map_err(|e| PipelineError::step("monitor", e))?
                        .iter(),
                )),
                ColumnKind::Categorical => {
                    let keys =
                        mlops_core::frame::keys(&frame, "label").map_err(|e| PipelineError::step("monitor", e))?;
                    Sample::Categorical(keys.iter().map(Option::as_deref).collect())
                }
            };
            prediction_histogram = histograms_of(&reference, &current.predictions);
            match column_drift("prediction", &reference, &current.predictions, &DriftRule::default()) {
                Ok(d) => Some(d),
                Err(e) => {
                    notes.push(format!("prediction drift: {e}"));
                    None
                }
            }
        }
        _ => None,
    };

    let quality = quality(&current, reference.as_ref().map(|r| &r.inputs));
    let health = health(&current);
    seconds.insert("compare", started.elapsed().as_secs_f64());
    let started = std::time::Instant::now();
    let outcomes = match c.info.task {
        TaskKind::Regression => Outcomes::Values,
        _ => Outcomes::Classes(c.info.classes.clone()),
    };
    let accuracy = read_accuracy(req.store, &model, &req.window, &outcomes, current.timeline.prefix).map_err(failed)?;
    let accuracy = (accuracy.labelled > 0).then_some(accuracy);
    let baseline = baseline(&package);
    seconds.insert("accuracy", started.elapsed().as_secs_f64());

    let mut drifted_columns: Vec<String> = Vec::new();
    for d in [&inputs_drift, &features_drift].into_iter().flatten() {
        drifted_columns.extend(d.columns.iter().filter(|c| c.drifted).map(|c| c.column.clone()));
    }
    let findings = Findings {
        dataset_drift: inputs_drift.as_ref().is_some_and(|d| d.dataset_drift),
        dataset_columns: inputs_drift.as_ref().map(|d| (d.drifted, d.columns.len())),
        drifted_columns,
        metrics: accuracy
            .as_ref()
            .map(|a| a.overall.iter().filter_map(|(m, now)| baseline.get(m).map(|b| (m.clone(), (*b, *now)))).collect())
            .unwrap_or_default(),
        min_predictions_per_hour: health.min_rows_per_hour,
        latency_p99_ms: health.latency.map(|l| l.p99),
        error_rate: health.error_rate,
    };
    let at = req.now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let started = std::time::Instant::now();
    let alerts = if req.alert {
        step22_monitor::alerts::evaluate(req.store, &model_key(&model), &req.config.alerts, &findings, &at)
            .map_err(failed)?
    } else {
        Vec::new()
    };
    seconds.insert("alerts", started.elapsed().as_secs_f64());

    let mut histograms = BTreeMap::new();
    if let Some(r) = &reference {
        for (name, sample) in &current.columns {
            if let Some(h) = r.inputs.get(name).and_then(|reference| histograms_of(reference, sample)) {
                histograms.insert(name.clone(), h);
            }
        }
    }
    let mut feature_histograms = BTreeMap::new();
    if let (Some(r), true) = (reference_features, with_features) {
        for (name, sample) in &current_features {
            if let Some(h) = r.get(name).and_then(|reference| histograms_of(reference, sample)) {
                feature_histograms.insert(name.clone(), h);
            }
        }
    }
    Ok(Monitored {
        model: origin.name,
        version: origin.version,
        uri: origin.uri,
        window: req.window,
        window_label: req.window_label.clone(),
        at,
        task: c.info.task,
        reference: source,
        requests: current.requests,
        rows: current.rows,
        inputs: inputs_drift,
        features: features_drift,
        predictions,
        quality,
        health,
        accuracy,
        baseline,
        findings,
        alerts,
        timeline_prefix: current.timeline.prefix,
        histograms,
        feature_histograms,
        prediction_histogram,
        notes,
        seconds,
    })
}

impl Monitored {
    /// A timeline bucket's key as a label (see [`step22_monitor::Timeline::label`]).
    pub fn timeline_label(&self, key: &str) -> String {
        step22_monitor::Timeline {
            width_seconds: self.health.timeline_seconds,
            prefix: self.timeline_prefix,
            buckets: BTreeMap::new(),
        }
        .label(key)
    }
}

/// The name alerts are kept under: `name` or `name/version`.
pub fn model_key(model: &ModelRef) -> String {
    match model.version {
        Some(v) => format!("{}/{v}", model.name),
        None => model.name.clone(),
    }
}

/// Bins shared by both sides: 20 equal-width bins over the range of both for numbers, the 12
/// most frequent categories (of both) and `other` for categories.
fn histograms_of(reference: &Sample, current: &Sample) -> Option<Histograms> {
    match (reference, current) {
        (Sample::Numeric(r), Sample::Numeric(c)) => {
            let (r, c) = (r.values(), c.values());
            let lo = r.first()?.min(*c.first()?);
            let hi = r.last()?.max(*c.last()?);
            let bins = if hi > lo { 20 } else { 1 };
            let width = if hi > lo { (hi - lo) / bins as f64 } else { 1.0 };
            let shares = |values: &[f64]| {
                let mut counts = vec![0u64; bins];
                for v in values {
                    let k = (((v - lo) / width) as usize).min(bins - 1);
                    counts[k] += 1;
                }
                let n = values.len().max(1) as f64;
                counts.into_iter().map(|k| k as f64 / n).collect::<Vec<f64>>()
            };
            let labels = (0..bins)
                .map(|k| {
                    let a = lo + width * k as f64;
                    format!("[{}, {})", short(a), short(a + width))
                })
                .collect();
            Some(Histograms { bins: labels, reference: shares(r), current: shares(c) })
        }
        (Sample::Categorical(r), Sample::Categorical(c)) => {
            let mut total: BTreeMap<&str, u64> = BTreeMap::new();
            for (k, n) in r.counts().iter().chain(c.counts()) {
                *total.entry(k.as_str()).or_default() += n;
            }
            let mut top: Vec<(&str, u64)> = total.into_iter().collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let kept: Vec<&str> = top.iter().take(12).map(|(k, _)| *k).collect();
            let shares = |counts: &BTreeMap<String, u64>| {
                let n = counts.values().sum::<u64>().max(1) as f64;
                let mut out: Vec<f64> = kept.iter().map(|k| counts.get(*k).copied().unwrap_or(0) as f64 / n).collect();
                if top.len() > kept.len() {
                    out.push(1.0 - out.iter().sum::<f64>());
                }
                out
            };
            let mut bins: Vec<String> = kept.iter().map(|k| (*k).to_string()).collect();
            if top.len() > kept.len() {
                bins.push("other".into());
            }
            Some(Histograms { bins, reference: shares(r.counts()), current: shares(c.counts()) })
        }
        _ => None,
    }
}

/// A number with four significant digits, for bin labels.
fn short(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let digits = (3 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.digits$}")
}

/// Where the report goes: `<reports>/<model>/<window>/`.
pub fn report_dir(reports: &Path, m: &Monitored) -> PathBuf {
    let model = match m.version {
        Some(v) => format!("{}-v{v}", m.model),
        None => m.model.clone(),
    };
    reports.join(sanitize(&model)).join(sanitize(&m.window_label))
}

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect()
}
