//! The prepare run: steps 1-6 on the sources of a data config, from raw files to a curated,
//! versioned dataset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use mlops_core::{FeaturePipeline, SourceInputs};
use polars::prelude::DataFrame;
use serde::Serialize;
use step01_ingest::{Ingested, Lineage, Reader};
use step02_validate::Report;
use step06_curate::{Catalog, Provenance};

use crate::config::DataConfig;
use crate::error::{PipelineError, Result};

/// The steps of the prepare run, in order.
pub const PREPARE_STEPS: [&str; 6] = ["ingest", "validate", "clean", "standardize", "transform", "curate"];

/// One step's outcome, for the summary table.
#[derive(Clone, Debug, Serialize)]
pub struct StepSummary {
    /// Step name.
    pub step: &'static str,
    /// Rows after the step.
    pub rows: usize,
    /// Columns after the step.
    pub columns: usize,
    /// Wall time in seconds.
    pub seconds: f64,
    /// What the step did, in a few words.
    pub note: String,
}

/// Receives progress from a run; the command line draws it, a library caller may ignore it.
pub trait Progress {
    /// A step starts.
    fn started(&mut self, _step: &'static str) {}
    /// A step finished.
    fn finished(&mut self, _summary: &StepSummary) {}
}

/// Progress that goes nowhere.
pub struct Silent;
impl Progress for Silent {}

/// The outcome of a prepare run.
#[derive(Clone, Debug, Serialize)]
pub struct Prepared {
    /// Dataset name.
    pub dataset: String,
    /// Version (content hash prefix).
    pub version: String,
    /// The version directory.
    pub path: PathBuf,
    /// Rows and columns of the curated data.
    pub rows: usize,
    /// Columns.
    pub columns: usize,
    /// Whether an existing version was reused: `cached` (same config and sources, steps skipped)
    /// or `same-data` (recomputed, identical result).
    pub reused: Option<&'static str>,
    /// Per-step summaries.
    pub steps: Vec<StepSummary>,
    /// Validation reports per source.
    pub validation: BTreeMap<String, Report>,
    /// Warnings from the steps (coerced values, join fan-out, name collisions).
    pub warnings: Vec<String>,
    /// The primary source's rows as read, from which a package keeps its reference rows.
    #[serde(skip)]
    pub source: Option<DataFrame>,
}

fn summary(step: &'static str, df: &DataFrame, started: Instant, note: String) -> StepSummary {
    StepSummary { step, rows: df.height(), columns: df.width(), seconds: started.elapsed().as_secs_f64(), note }
}

/// The run key: the same configuration, sources, toolkit version and version scheme give the
/// same key.
fn run_key(config_sha256: &str, lineage: &[Lineage]) -> String {
    let mut text = format!(
        "toolkit={};hash={};config={config_sha256}",
        env!("CARGO_PKG_VERSION"),
        mlops_core::frame::FRAME_HASH_SCHEME
    );
    for l in lineage {
        text.push_str(&format!(";{}={}", l.source, l.sha256));
    }
    mlops_core::hash::to_hex(&mlops_core::hash::sha256_bytes(text.as_bytes()))
}

/// Validates every source that has a schema, every check; the first source whose report has an
/// error stops it.
fn validate_all(config: &DataConfig, frames: &BTreeMap<String, DataFrame>) -> Result<BTreeMap<String, Report>> {
    let mut validation = BTreeMap::new();
    for (name, schema) in &config.validate {
        let report =
            step02_validate::validate(&frames[name], schema, frames).map_err(|e| PipelineError::step("validate", e))?;
        if !report.passed() {
            return Err(PipelineError::ValidationFailed { source_name: name.clone(), report: Box::new(report) });
        }
        validation.insert(name.clone(), report);
    }
    Ok(validation)
}

/// Runs steps 1-6. `origin` names the config file in errors; relative paths in the config must
/// already be resolved ([`DataConfig::resolved`]). Nothing is written unless every step succeeds.
pub fn prepare(config: &DataConfig, origin: &Path, progress: &mut dyn Progress) -> Result<Prepared> {
    let curate_params = config.check(origin)?;
    let primary = config.primary_name(origin)?;
    let config_sha256 = mlops_core::hash::sha256_json(config).map_err(PipelineError::Config)?;
    let mut steps = Vec::new();
    let mut warnings = Vec::new();

    // 1. ingest
    progress.started("ingest");
    let t = Instant::now();
    let mut ingested: BTreeMap<String, Ingested> = BTreeMap::new();
    for (name, source) in &config.sources {
        let got = source
            .read(name)
            .map_err(|error| PipelineError::Ingest { source_name: name.clone(), error: Box::new(error) })?;
        ingested.insert(name.clone(), got);
    }
    let lineage: Vec<Lineage> = ingested.values().map(|i| i.lineage.clone()).collect();
    let source_rows = ingested.get(&primary).map(|i| i.frame.clone());
    // From here on the frames are owned once: the primary one moves through the steps and is
    // freed as they replace it, the others wait for joins.
    let mut frames: BTreeMap<String, DataFrame> = ingested.into_iter().map(|(k, v)| (k, v.frame)).collect();
    let note = format!("{} source(s), {} bytes", frames.len(), lineage.iter().map(|l| l.size_bytes).sum::<u64>());
    let s = summary("ingest", &frames[&primary], t, note);
    progress.finished(&s);
    steps.push(s);

    // A rerun with the same config and sources reuses the version it made before.
    let key = run_key(&config_sha256, &lineage);
    let catalog = Catalog::open(&curate_params.dir);
    if let Some((metadata, path)) =
        catalog.find_run(&curate_params.name, &key).map_err(|e| PipelineError::step("curate", e))?
    {
        tracing::info!(version = %metadata.version, "same config and sources as an earlier run; reusing its version");
        for step in &PREPARE_STEPS[1..] {
            let s = StepSummary {
                step,
                rows: metadata.rows,
                columns: metadata.columns,
                seconds: 0.0,
                note: "cached".into(),
            };
            progress.finished(&s);
            steps.push(s);
        }
        return Ok(Prepared {
            dataset: metadata.name,
            version: metadata.version,
            path,
            rows: metadata.rows,
            columns: metadata.columns,
            reused: Some("cached"),
            steps,
            validation: BTreeMap::new(),
            warnings,
            source: source_rows,
        });
    }

    // What the first prepare op reads: the primary source's columns as they arrive (and the
    // columns only concatenated sources have), which a model package takes from a caller.
    let null_values = config.sources.get(&primary).map(|s| s.null_values().to_vec()).unwrap_or_default();
    let mut source = SourceInputs { name: primary.clone(), ..SourceInputs::default() };
    if let Some(frame) = frames.get(&primary) {
        for name in frame.get_column_names() {
            source.columns.push(crate::package::describe(frame, name, &null_values)?);
        }
        source.examples =
            mlops_core::frame::rows_from_frame(&frame.head(Some(5))).map_err(|e| PipelineError::step("ingest", e))?;
    }
    for name in &config.transform.concat {
        let (Some(frame), Some(cfg)) = (frames.get(name), config.sources.get(name)) else { continue };
        for column in frame.get_column_names() {
            if !source.columns.iter().any(|c| c.name == column.as_str()) {
                source.columns.push(crate::package::describe(frame, column, cfg.null_values())?);
            }
        }
    }

    // 2. validate, on one core, while 3. clean runs on the other. Validation only reads the
    // ingested frames and clean only makes new ones, and nothing is written before curate, so a
    // failed validation still stops the run before any output, and its error comes first.
    progress.started("validate");
    let t = Instant::now();
    let primary_frame = frames.get(&primary).cloned().unwrap_or_default();
    let ((validated, validate_seconds), (cleaned, clean_seconds)) = mlops_core::par::join(
        || (validate_all(config, &frames), t.elapsed().as_secs_f64()),
        || {
            let t = Instant::now();
            (config.clean.fit_transform(primary_frame), t.elapsed().as_secs_f64())
        },
    );
    let validation = validated?;
    for (name, report) in &validation {
        for f in report.failures.iter().filter(|f| f.severity == step02_validate::Severity::Warn) {
            warnings.push(format!(
                "validate `{name}`: {} {} failed on {} row(s)",
                f.check,
                f.column.clone().unwrap_or_default(),
                f.count
            ));
        }
    }
    let checks: usize = validation.values().map(|r| r.checks).sum();
    let failed: usize = validation.values().map(|r| r.failures.len()).sum();
    let frame = frames.remove(&primary).unwrap_or_default();
    let note = format!("{checks} checks, {failed} warning(s)");
    let s = StepSummary { seconds: validate_seconds, ..summary("validate", &frame, t, note) };
    drop(frame);
    progress.finished(&s);
    steps.push(s);

    // 3. clean (run above, beside validation)
    progress.started("clean");
    let cleaned = cleaned.map_err(|e| PipelineError::step("clean", e))?;
    for (column, n) in &cleaned.report.coerced {
        warnings.push(format!("clean: {n} value(s) in `{column}` did not convert and became null"));
    }
    let filled: usize = cleaned.report.filled.values().map(|f| f.count).sum();
    let note = format!(
        "{} op(s); {filled} null(s) filled, {} duplicate(s) and {} row(s) dropped",
        cleaned.ops.len(),
        cleaned.report.duplicates_dropped,
        cleaned.report.rows_in - cleaned.report.rows_out - cleaned.report.duplicates_dropped
    );
    let s = StepSummary { seconds: clean_seconds, ..summary("clean", &cleaned.frame, Instant::now(), note) };
    progress.finished(&s);
    steps.push(s);

    // 4. standardize
    progress.started("standardize");
    let t = Instant::now();
    let standardized =
        config.standardize.fit_transform(cleaned.frame).map_err(|e| PipelineError::step("standardize", e))?;
    for c in &standardized.report.collisions {
        warnings.push(format!("standardize: name collision: {c}"));
    }
    for (column, n) in &standardized.report.unparsed_dates {
        warnings.push(format!("standardize: {n} date(s) in `{column}` did not parse and became null"));
    }
    let note = format!("{} op(s); {} column(s) renamed", standardized.ops.len(), standardized.report.renamed.len());
    let s = summary("standardize", &standardized.frame, t, note);
    progress.finished(&s);
    steps.push(s);

    // 5. transform
    progress.started("transform");
    let t = Instant::now();
    let transformed =
        config.transform.fit_transform(standardized.frame, &frames).map_err(|e| PipelineError::step("transform", e))?;
    // A joined source too large to embed: its columns come from the caller.
    for join in transformed.report.joins.iter().filter(|j| !j.embedded) {
        let (Some(right), Some(spec)) =
            (frames.get(&join.right), config.transform.joins.iter().find(|j| j.right == join.right))
        else {
            continue;
        };
        let keys = if spec.on.is_empty() { &spec.right_on } else { &spec.on };
        let nulls = config.sources.get(&join.right).map(|s| s.null_values().to_vec()).unwrap_or_default();
        let from = right.get_column_names().into_iter().filter(|c| !keys.iter().any(|k| k == c.as_str()));
        for (column, name) in from.zip(&join.columns) {
            let mut schema = crate::package::describe(right, column, &nulls)?;
            schema.name = name.clone();
            source.columns.push(schema);
        }
    }
    drop(frames);
    warnings.extend(transformed.report.warnings.iter().map(|w| format!("transform: {w}")));
    let note = format!(
        "{} op(s); {} join(s), {} encoded, {} scaled",
        transformed.ops.len(),
        transformed.report.joins.len(),
        transformed.report.encoded.len(),
        transformed.report.scaled.len()
    );
    let s = summary("transform", &transformed.frame, t, note);
    progress.finished(&s);
    steps.push(s);

    // 6. curate
    progress.started("curate");
    let t = Instant::now();
    let mut pipeline = FeaturePipeline { source: Some(source), ..FeaturePipeline::new() };
    pipeline.extend(cleaned.ops);
    pipeline.extend(standardized.ops);
    pipeline.extend(transformed.ops);
    let provenance = Provenance {
        sources: lineage.clone(),
        parents: lineage.iter().map(|l| format!("sha256:{}", l.sha256)).collect(),
        config_sha256,
        run_key: key,
        steps: serde_json::json!({
            "validate": validation,
            "clean": cleaned.report,
            "standardize": standardized.report,
            "transform": transformed.report,
        }),
    };
    let curated = step06_curate::curate(&transformed.frame, &curate_params, &provenance, &pipeline)
        .map_err(|e| PipelineError::step("curate", e))?;
    let note = format!(
        "version {}{}{}",
        curated.metadata.version,
        if curated.reused { " (same data as before)" } else { "" },
        curated.table.as_ref().map(|t| format!("; table {t}")).unwrap_or_default()
    );
    let s = summary("curate", &transformed.frame, t, note);
    progress.finished(&s);
    steps.push(s);

    Ok(Prepared {
        dataset: curated.metadata.name,
        version: curated.metadata.version,
        path: curated.path,
        rows: curated.metadata.rows,
        columns: curated.metadata.columns,
        reused: curated.reused.then_some("same-data"),
        steps,
        validation,
        warnings,
        source: source_rows,
    })
}
