//! `mlops eda` and `mlops plot`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use mlops_core::table::Table;
use pipelines::{DataConfig, TrainingConfig, default_training_config, explore};
use polars::prelude::DataFrame;
use step06_curate::Catalog;
use step09_visualize::{Format, Method, PlotSpec, ValueTransform};

use crate::commands::{print_json, read_file, run_prepare};
use crate::{Cli, DataArgs, EdaArgs, MethodArg, PlotArgs, PlotKind, TransformArg};

/// The training config: the one named, or `configs/training.yaml` when it exists, or defaults.
pub(crate) fn training_config(args: &DataArgs) -> Result<TrainingConfig> {
    let path = match &args.config {
        Some(path) => path.clone(),
        None if default_training_config().is_file() => default_training_config(),
        None => return Ok(TrainingConfig::default()),
    };
    Ok(TrainingConfig::load(&path)?.resolved(Path::new("")))
}

/// The frame to explore, a title for it and the folder its report goes to by default.
pub(crate) struct Data {
    pub frame: DataFrame,
    pub title: String,
    /// `<dataset>/<version>` or the file's stem: where its outputs go under a folder.
    pub rel: PathBuf,
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
pub(crate) fn load_data(cli: &Cli, args: &DataArgs, config: &TrainingConfig) -> Result<Option<Data>> {
    if let Some(file) = &args.file {
        let stem = file.file_stem().map_or_else(|| "data".to_string(), |s| s.to_string_lossy().to_string());
        let frame = read_file(file, &stem)?.frame;
        let title = file.file_name().map_or_else(|| stem.clone(), |s| s.to_string_lossy().to_string());
        return Ok(Some(Data { frame, title, rel: PathBuf::from(stem) }));
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
        rel: Path::new(&meta.name).join(&meta.version),
    }))
}

pub fn eda_cmd(cli: &Cli, args: &EdaArgs) -> Result<ExitCode> {
    let config = training_config(&args.data)?;
    let Some(data) = load_data(cli, &args.data, &config)? else { return Ok(ExitCode::FAILURE) };
    let out = args.out.clone().unwrap_or_else(|| config.reports.join(&data.rel));
    let explored = explore(&data.frame, &data.title, &pipelines::Exploration::of(&config), &out)?;
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
                TransformArg::Log => ValueTransform::Log,
                TransformArg::Log1p => ValueTransform::Log1p,
                TransformArg::Sqrt => ValueTransform::Sqrt,
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

fn type_set(text: &str) -> Result<step08_select::TypeSet> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .with_context(|| format!("--types {text:?}: use number, int, float, string, bool, date or datetime"))
}

pub fn select_cmd(cli: &Cli, args: &crate::SelectArgs) -> Result<ExitCode> {
    let mut config = training_config(&args.data)?;
    if let Some(seed) = args.seed {
        config.seed = mlops_core::Seed(seed);
    }
    let flags = !args.columns.is_empty()
        || args.pattern.is_some()
        || !args.types.is_empty()
        || !args.exclude.is_empty()
        || args.filter.is_some()
        || args.start.is_some()
        || args.stop.is_some()
        || args.sample_n.is_some()
        || args.sample_fraction.is_some();
    let selection = if flags {
        step08_select::Selection {
            columns: step08_select::Columns {
                names: args.columns.clone(),
                pattern: args.pattern.clone(),
                types: args.types.iter().map(|t| type_set(t)).collect::<Result<_>>()?,
                exclude: args.exclude.clone(),
            },
            rows: step08_select::Rows {
                filter: args.filter.clone(),
                positions: (args.start.is_some() || args.stop.is_some())
                    .then_some(step08_select::Positions { start: args.start, stop: args.stop }),
                labels: None,
            },
            sample: (args.sample_n.is_some() || args.sample_fraction.is_some())
                .then_some(step08_select::Sample::Random { n: args.sample_n, fraction: args.sample_fraction }),
        }
    } else {
        config.select.clone()
    };
    let Some(data) = load_data(cli, &args.data, &config)? else { return Ok(ExitCode::FAILURE) };
    let out = selection.apply(&data.frame, config.seed).map_err(|e| pipelines::PipelineError::step("select", e))?;
    if let Some(path) = &args.output {
        pipelines::write_frame(&out, path)?;
    }
    if cli.json {
        print_json(
            &serde_json::json!({"rows": out.height(), "columns": out.width(), "names": mlops_core::frame::column_names(&out), "output": args.output}),
        )?;
    } else {
        if args.output.is_none() {
            println!("{}", out.head(Some(10)));
        }
        println!("selected {} rows x {} columns from {}", out.height(), out.width(), data.title);
        if let Some(path) = &args.output {
            println!("  {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parts_table(rows: &[(String, usize, usize)], split: &step08_select::SplitReport) -> Table {
    let mut t = Table::new(["part", "rows", "columns", "class balance"]);
    for (part, n, cols) in rows {
        let balance = split
            .class_balance
            .as_ref()
            .and_then(|b| b.parts.get(part))
            .map(|counts| counts.iter().map(|(c, k)| format!("{c}: {k}")).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        t.row([part.clone(), n.to_string(), cols.to_string(), balance]);
    }
    t
}

pub fn split_cmd(cli: &Cli, args: &crate::SplitArgs) -> Result<ExitCode> {
    let mut config = training_config(&args.data)?;
    if let Some(seed) = args.seed {
        config.seed = mlops_core::Seed(seed);
    }
    if let Some(method) = args.method {
        let need = |flag: &Option<String>, name: &str| {
            flag.clone().with_context(|| format!("split --method {name}: --by is required"))
        };
        config.split.method = match method {
            crate::SplitKind::Random => step08_select::SplitMethod::Random,
            crate::SplitKind::Stratified => {
                step08_select::SplitMethod::Stratified { by: need(&args.by, "stratified")? }
            }
            crate::SplitKind::Group => step08_select::SplitMethod::Group { by: need(&args.by, "group")? },
            crate::SplitKind::Time => step08_select::SplitMethod::Time {
                column: args.by.clone().context("split --method time: --by names the time column")?,
                test_from: args.test_from.clone(),
                validation_from: None,
            },
        };
    }
    if let Some(t) = args.test {
        config.split.test = t;
    }
    if let Some(v) = args.validation {
        config.split.validation = v;
    }
    let Some(data) = load_data(cli, &args.data, &config)? else { return Ok(ExitCode::FAILURE) };
    let selected =
        config.select.apply(&data.frame, config.seed).map_err(|e| pipelines::PipelineError::step("select", e))?;
    let split = config.split.split(&selected, config.seed).map_err(|e| pipelines::PipelineError::step("split", e))?;
    let (train, validation, test) = split.frames(&selected).map_err(|e| pipelines::PipelineError::step("split", e))?;
    let dir = args.out.clone().unwrap_or_else(|| config.interim.join(&data.rel).join("split"));
    let mut rows = Vec::new();
    for (name, df) in [("train", &train), ("validation", &validation), ("test", &test)] {
        pipelines::write_frame(df, &dir.join(format!("{name}.parquet")))?;
        rows.push((name.to_string(), df.height(), df.width()));
    }
    mlops_core::io::atomic_write_json(&dir.join("split.json"), &split.report)?;
    if cli.json {
        print_json(&serde_json::json!({"dir": dir, "report": split.report}))?;
    } else {
        print!("{}", parts_table(&rows, &split.report));
        println!(
            "
{} split of {} (seed {}) written to {}",
            split.report.method,
            data.title,
            config.seed.0,
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn features_cmd(cli: &Cli, args: &crate::FeaturesArgs) -> Result<ExitCode> {
    let config = training_config(&args.data)?;
    let Some(data) = load_data(cli, &args.data, &config)? else { return Ok(ExitCode::FAILURE) };
    let engineered = pipelines::engineer(&data.frame, &config, None)?;
    let dir = args.out.clone().unwrap_or_else(|| config.interim.join(&data.rel).join("features"));
    let summary = engineered.write(&dir)?;
    if cli.json {
        print_json(&serde_json::json!({"dir": dir, "summary": summary}))?;
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", parts_table(&summary.parts, &summary.split));
    println!(
        "
{} feature(s) created: {}",
        summary.features.created.len(),
        summary.features.created.join(", ")
    );
    if let Some(sel) = &summary.features.selection {
        println!("{} kept, {} dropped", sel.kept.len(), sel.dropped.len());
        for d in &sel.dropped {
            println!("  dropped {}: {}", d.column, d.reason);
        }
    }
    println!("{} fitted op(s) in {}", engineered.pipeline.len(), dir.join("pipeline.json").display());
    Ok(ExitCode::SUCCESS)
}
