//! The exploration part of the training run (steps 7 and 9): profile a dataset, draw its charts
//! and write one self-contained HTML report with its JSON next to it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use polars::prelude::DataFrame;
use serde::Serialize;
use step07_eda::{EdaParams, Figure, ReportMeta, Slot};
use step09_visualize::{Format, PlotSpec};

use crate::error::{PipelineError, Result};

/// What an exploration wrote.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Explored {
    /// Heading of the report (`name@version` or the file name).
    pub title: String,
    /// Rows profiled.
    pub rows: usize,
    /// Columns profiled.
    pub columns: usize,
    /// The HTML report.
    pub html: PathBuf,
    /// Its size in bytes.
    pub html_bytes: usize,
    /// The profile as JSON.
    pub json: PathBuf,
    /// Chart files written (from `plots:`).
    pub plots: Vec<PathBuf>,
    /// The report's warnings, one line each.
    pub warnings: Vec<String>,
    /// Seconds spent profiling.
    pub profile_seconds: f64,
    /// Seconds spent drawing.
    pub draw_seconds: f64,
}

/// Profiles `frame`, draws the report's charts and the configured ones, then writes
/// `eda.html`, `eda.json` and `plots/*` into `out`. Everything is computed before the first file
/// is written, so a bad plot spec or an empty frame leaves `out` as it was.
pub fn explore(frame: &DataFrame, title: &str, what: &Exploration<'_>, out: &Path) -> Result<Explored> {
    let Exploration { params, plots, formats } = *what;
    let started = Instant::now();
    let profile = step07_eda::profile(frame, params).map_err(|e| PipelineError::step("eda", e))?;
    let profile_seconds = started.elapsed().as_secs_f64();

    let drawing = Instant::now();
    let visualize = |e| PipelineError::step("visualize", e);
    let mut figures = step09_visualize::report_figures(&profile).map_err(visualize)?;
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut chart_files = Vec::new();
    let mut skipped = Vec::new();
    for spec in plots {
        // A chart with nothing to draw on this data (no row has both of its columns, say, in
        // rows a lifecycle retraining appended) is left out and said so; a wrong spec still fails.
        let plot = match step09_visualize::plot(frame, spec) {
            Ok(plot) => plot,
            Err(step09_visualize::PlotError::NoData { plot, message }) => {
                tracing::warn!(plot, message, "chart left out: nothing to draw");
                skipped.push(format!("chart {plot} left out: {message}"));
                continue;
            }
            Err(e) => return Err(visualize(e)),
        };
        let stem = spec.file_stem();
        // Charts that draw individual rows stay out of the report, which holds aggregates only.
        let row_level = matches!(spec, PlotSpec::Scatter { .. } | PlotSpec::Pairs { .. });
        if !row_level {
            figures.push(Figure {
                slot: Slot::Chart,
                title: plot.title.clone(),
                svg: step09_visualize::to_svg(&plot).map_err(visualize)?,
            });
        }
        for &format in formats {
            let name = format!("plots/{stem}.{}", format.extension());
            files.push((out.join(&name), step09_visualize::render(&plot, format).map_err(visualize)?));
            if row_level {
                chart_files.push(name);
            }
        }
    }
    let meta = ReportMeta {
        title: title.to_string(),
        generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        toolkit_version: env!("CARGO_PKG_VERSION").to_string(),
        chart_files,
    };
    let html = step07_eda::render_html(&profile, &meta, &figures);
    let draw_seconds = drawing.elapsed().as_secs_f64();

    for (path, bytes) in &files {
        mlops_core::io::atomic_write(path, bytes).map_err(|e| PipelineError::step("visualize", e))?;
    }
    let written = step07_eda::write_report(out, &profile, &html).map_err(|e| PipelineError::step("eda", e))?;
    tracing::info!(report = %written.html.display(), bytes = html.len(), "EDA report written");
    Ok(Explored {
        title: title.to_string(),
        rows: profile.rows,
        columns: profile.columns,
        html: written.html,
        html_bytes: html.len(),
        json: written.json,
        plots: files.into_iter().map(|(p, _)| p).collect(),
        warnings: profile.warnings.iter().map(|w| w.message()).chain(skipped).collect(),
        profile_seconds,
        draw_seconds,
    })
}

/// What an exploration draws: the profile's settings (step 7), the charts (step 9) and their
/// file formats; the `eda`, `plots` and `plot_formats` sections of the training config.
#[derive(Clone, Copy, Debug)]
pub struct Exploration<'a> {
    /// Profiling and warning thresholds.
    pub params: &'a EdaParams,
    /// Charts to draw beside the profile's own.
    pub plots: &'a [PlotSpec],
    /// Formats each chart file is written in.
    pub formats: &'a [Format],
}

impl<'a> Exploration<'a> {
    /// The sections of a training config.
    pub fn of(config: &'a crate::TrainingConfig) -> Exploration<'a> {
        Exploration { params: &config.eda, plots: &config.plots, formats: &config.plot_formats }
    }
}

/// [`explore`], or the record of an earlier exploration of the same dataset with the same
/// sections of the config (kept under `cache`), when its report and charts are all still there.
pub fn explore_cached(
    frame: &DataFrame,
    title: &str,
    what: &Exploration<'_>,
    out: &Path,
    cache: &Path,
) -> Result<(Explored, bool)> {
    let key = crate::run_key::RunKey::new("eda")
        .with(&title)
        .with(&(what.params, what.plots, what.formats))
        .with(&out)
        .finish();
    let record = key.as_ref().map(|k| cache.join(format!("eda-{k}.json")));
    if let Some(done) = record
        .as_ref()
        .and_then(|r| std::fs::read(r).ok())
        .and_then(|b| serde_json::from_slice::<Explored>(&b).ok())
        .filter(|e| e.html.is_file() && e.json.is_file() && e.plots.iter().all(|p| p.is_file()))
    {
        return Ok((done, true));
    }
    let explored = explore(frame, title, what, out)?;
    if let Some(record) = record {
        let bytes = serde_json::to_vec(&explored).map_err(|e| PipelineError::Encode {
            step: "eda",
            what: "the exploration",
            message: e.to_string(),
        })?;
        mlops_core::io::atomic_write(&record, &bytes).map_err(|e| PipelineError::step("eda", e))?;
    }
    Ok((explored, false))
}
