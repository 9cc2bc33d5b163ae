//! `mlops eda` and `mlops plot`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use mlops_core::table::Table;
use pipelines::{DataConfig, TrainingConfig, default_training_config, explore};
use polars::prelude::DataFrame;
use step06_curate::Catalog;
use step09_visualize::{Format, Method, PlotSpec, Transform};

use crate::commands::{print_json, read_file, run_prepare};
use crate::{Cli, DataArgs, EdaArgs, MethodArg, PlotArgs, PlotKind, TransformArg};

/// The training config: the one named, or `configs/training.yaml` when it exists, or defaults.
fn training_config(args: &DataArgs) -> Result<TrainingConfig> {
    let path = match &args.config {
        Some(path) => path.clone(),
        None if default_training_config().is_file() => default_training_config(),
        None => return Ok(TrainingConfig::default()),
    };
    Ok(TrainingConfig::load(&path)?.resolved(Path::new("")))
}

/// The frame to explore, a title for it and the folder its report goes to by default.
struct Data {
    frame: DataFrame,
    title: String,
    default_out: PathBuf,
}

fn catalog_dir(args: &DataArgs, config: &TrainingConfig) -> PathBuf {
    if let Some(dir) = &args.catalog {
        return dir.clone();
    }
    DataConfig::load(&config.data)
        .ok()
        .and_then(|c| c.resolved(Path::new("")).curate)
        .map_or_else(|| PathBuf::from("data/processed"), |c| c.dir)
}

/// Reads the data: a file, a curated version, or (neither given) the dataset the training
/// config's data config prepares. `None` when that preparation failed validation.
fn load_data(cli: &Cli, args: &DataArgs, config: &TrainingConfig) -> Result<Option<Data>> {
    if let Some(file) = &args.file {
        let stem = file.file_stem().map_or_else(|| "data".to_string(), |s| s.to_string_lossy().to_string());
        let frame = read_file(file, &stem)?.frame;
        let title = file.file_name().map_or_else(|| stem.clone(), |s| s.to_string_lossy().to_string());
        return Ok(Some(Data { frame, title, default_out: config.reports.join(stem) }));
    }
    let query = match &args.dataset {
        Some(q) => q.clone(),
        None => {
            let Some(prepared) = run_prepare(cli, &config.data)? else { return Ok(None) };
            format!("{}@{}", prepared.dataset, prepared.version)
        }
    };
    let catalog = Catalog::open(catalog_dir(args, config));
    let (meta, frame) = catalog.load(&query).with_context(|| format!("dataset {query:?}"))?;
    Ok(Some(Data {
        frame,
        title: format!("{}@{}", meta.name, meta.version),
        default_out: config.reports.join(&meta.name).join(&meta.version),
    }))
}

pub fn eda_cmd(cli: &Cli, args: &EdaArgs) -> Result<ExitCode> {
    let config = training_config(&args.data)?;
    let Some(data) = load_data(cli, &args.data, &config)? else { return Ok(ExitCode::FAILURE) };
    let out = args.out.clone().unwrap_or(data.default_out);
    let explored = explore(&data.frame, &data.title, &config.eda, &config.plots, &config.plot_formats, &out)?;
    if cli.json {
        print_json(&explored)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(["", ""]);
    t.row([String::from("dataset"), explored.title.clone()]);
    t.row([String::from("shape"), format!("{} rows x {} columns", explored.rows, explored.columns)]);
    t.row([String::from("profiled in"), format!("{:.2}s", explored.profile_seconds)]);
    t.row([String::from("drawn in"), format!("{:.2}s", explored.draw_seconds)]);
    t.row([String::from("warnings"), explored.warnings.len().to_string()]);
    t.row([String::from("charts"), explored.plots.len().to_string()]);
    print!("{t}");
    for w in &explored.warnings {
        println!("warning: {w}");
    }
    println!(
        "\nreport: {} ({} KiB)\n  json: {}",
        explored.html.display(),
        explored.html_bytes / 1024,
        explored.json.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn need<'a>(value: &'a Option<String>, kind: &str, flag: &str) -> Result<&'a String> {
    value.as_ref().with_context(|| format!("plot {kind}: --{flag} is required"))
}

fn spec(args: &PlotArgs) -> Result<PlotSpec> {
    let title = args.title.clone();
    let column = |kind| need(&args.column, kind, "column").cloned();
    Ok(match args.kind {
        PlotKind::Line => {
            if args.y.is_empty() {
                bail!("plot line: --y is required");
            }
            PlotSpec::Line { x: need(&args.x, "line", "x")?.clone(), y: args.y.clone(), title }
        }
        PlotKind::Bar => PlotSpec::Bar { column: column("bar")?, top: args.top, title },
        PlotKind::Histogram => PlotSpec::Histogram { column: column("histogram")?, bins: args.bins, title },
        PlotKind::Scatter => {
            let [y] = args.y.as_slice() else { bail!("plot scatter: --y takes exactly one column") };
            PlotSpec::Scatter { x: need(&args.x, "scatter", "x")?.clone(), y: y.clone(), hue: args.hue.clone(), title }
        }
        PlotKind::Box => PlotSpec::Box { column: column("box")?, by: args.by.clone(), title },
        PlotKind::Violin => PlotSpec::Violin { column: column("violin")?, by: args.by.clone(), title },
        PlotKind::Heatmap => PlotSpec::Heatmap {
            columns: args.columns.clone(),
            method: match args.method {
                MethodArg::Pearson => Method::Pearson,
                MethodArg::Spearman => Method::Spearman,
            },
            annotate: true,
            title,
        },
        PlotKind::Qq => PlotSpec::Qq { column: column("qq")?, title },
        PlotKind::Pairs => PlotSpec::Pairs { columns: args.columns.clone(), hue: args.hue.clone(), title },
        PlotKind::Compare => PlotSpec::Compare {
            column: column("compare")?,
            transform: match args.transform {
                TransformArg::Log => Transform::Log,
                TransformArg::Log1p => Transform::Log1p,
                TransformArg::Sqrt => Transform::Sqrt,
            },
            title,
        },
    })
}

pub fn plot_cmd(cli: &Cli, args: &PlotArgs) -> Result<ExitCode> {
    let spec = spec(args)?;
    let config = training_config(&args.data)?;
    let out =
        args.out.clone().unwrap_or_else(|| config.reports.join("plots").join(format!("{}.svg", spec.file_stem())));
    let format = match out.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).as_deref() {
        Some("svg") => Format::Svg,
        Some("png") => Format::Png,
        _ => bail!("{}: --out must end in .svg or .png", out.display()),
    };
    let Some(data) = load_data(cli, &args.data, &config)? else { return Ok(ExitCode::FAILURE) };
    let plot = step09_visualize::plot(&data.frame, &spec).map_err(|e| pipelines::PipelineError::step("plot", e))?;
    let bytes = step09_visualize::render(&plot, format).map_err(|e| pipelines::PipelineError::step("plot", e))?;
    mlops_core::io::atomic_write(&out, &bytes)?;
    if cli.json {
        print_json(
            &serde_json::json!({"path": out, "bytes": bytes.len(), "title": plot.title, "dataset": data.title}),
        )?;
    } else {
        println!("wrote {} ({} KiB): {}", out.display(), bytes.len().div_ceil(1024), plot.title);
    }
    Ok(ExitCode::SUCCESS)
}
