//! What each subcommand does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use mlops_core::FeaturePipeline;
use mlops_core::table::Table;
use pipelines::{DataConfig, PipelineError, prepare};
use polars::prelude::DataFrame;
use step01_ingest::{Ingested, Reader, SourceConfig};

use crate::output::{Bar, steps_table};
use crate::{Cli, Command, DataCommand};

/// Runs the chosen subcommand; `Ok` carries the exit code.
pub fn run(cli: &Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Prepare(args) => prepare_cmd(cli, &args.config),
        Command::Ingest(args) => ingest_cmd(cli, args),
        Command::Validate(args) => validate_cmd(cli, args),
        Command::Clean(args) => step_cmd(cli, args, "clean"),
        Command::Standardize(args) => step_cmd(cli, args, "standardize"),
        Command::Transform(args) => transform_cmd(cli, args),
        Command::Curate(args) => curate_cmd(cli, args),
        Command::Data(DataCommand::List { dir }) => data_list(cli, dir),
        Command::Data(DataCommand::Show { version, dir }) => data_show(cli, version, dir),
        Command::Eda(args) => crate::explore::eda_cmd(cli, args),
        Command::Plot(args) => crate::explore::plot_cmd(cli, args),
        Command::Select(args) => crate::explore::select_cmd(cli, args),
        Command::Split(args) => crate::explore::split_cmd(cli, args),
        Command::Features(args) => crate::explore::features_cmd(cli, args),
        Command::Train(args) => crate::train::train_cmd(cli, args),
        Command::Fit(args) => crate::train::fit_cmd(cli, args),
        Command::Registry(args) => crate::registry::registry_cmd(cli, args),
        Command::Package(crate::PackageCommand::Inspect { dir }) => crate::train::package_inspect(cli, dir),
        Command::Runs(cmd) => runs_cmd(cli, cmd),
        Command::Serve(args) => crate::serve::serve_cmd(cli, args),
        Command::Containerize(args) => crate::serve::containerize_cmd(cli, args),
        Command::Deploy(command) => crate::deploy::deploy_cmd(cli, command),
        Command::Healthcheck { url, timeout } => crate::deploy::healthcheck_cmd(url, *timeout),
        Command::Predict(args) => crate::serve::predict_cmd(cli, args),
    }
}

pub(crate) fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub(crate) fn load_config(path: &Path) -> Result<DataConfig> {
    Ok(DataConfig::load(path)?.resolved(Path::new("")))
}

/// Reads any data file by its extension.
pub(crate) fn read_file(path: &Path, name: &str) -> Result<Ingested> {
    let source =
        SourceConfig::from_extension(path).ok_or_else(|| PipelineError::UnknownFormat { path: path.to_path_buf() })?;
    Ok(source
        .read(name)
        .map_err(|error| PipelineError::Ingest { source_name: name.to_string(), error: Box::new(error) })?)
}

fn parse_pairs(pairs: &[String], flag: &str) -> Result<BTreeMap<String, DataFrame>> {
    let mut out = BTreeMap::new();
    for pair in pairs {
        let (name, file) = pair.split_once('=').ok_or_else(|| anyhow!("{flag} {pair:?}: expected NAME=FILE"))?;
        out.insert(name.to_string(), read_file(Path::new(file), name)?.frame);
    }
    Ok(out)
}

/// Writes a frame as Parquet or CSV, atomically.
fn write_frame(df: &DataFrame, path: &Path) -> Result<()> {
    Ok(pipelines::write_frame(df, path)?)
}

fn show_frame(cli: &Cli, df: &DataFrame, output: Option<&PathBuf>) -> Result<()> {
    if let Some(path) = output {
        write_frame(df, path)?;
        if !cli.json {
            println!("wrote {} rows x {} columns to {}", df.height(), df.width(), path.display());
        }
    } else if !cli.json {
        println!("{}", df.head(Some(10)));
    }
    Ok(())
}

/// Runs steps 1-6 with a progress bar. `None` when validation failed: the report is already
/// printed and nothing was written.
pub(crate) fn run_prepare(cli: &Cli, config_path: &Path) -> Result<Option<pipelines::Prepared>> {
    let config = load_config(config_path)?;
    let mut bar = Bar::new(cli.json || cli.quiet);
    let outcome = prepare(&config, config_path, &mut bar);
    bar.finish();
    match outcome {
        Ok(p) => Ok(Some(p)),
        Err(PipelineError::ValidationFailed { source_name, report }) => {
            if cli.json {
                print_json(
                    &serde_json::json!({"error": format!("validation of `{source_name}` failed; nothing was written"), "report": report}),
                )?;
            } else {
                eprintln!("{report}");
                eprintln!(
                    "error: validation of `{source_name}` failed with {} error(s); nothing was written",
                    report.errors()
                );
            }
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn prepare_cmd(cli: &Cli, config_path: &Path) -> Result<ExitCode> {
    let Some(prepared) = run_prepare(cli, config_path)? else { return Ok(ExitCode::FAILURE) };
    if cli.json {
        print_json(&prepared)?;
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", steps_table(&prepared.steps));
    for w in &prepared.warnings {
        println!("warning: {w}");
    }
    let reused = match prepared.reused {
        Some("cached") => " (unchanged config and sources: reused)",
        Some(_) => " (same data as an earlier run)",
        None => "",
    };
    println!(
        "\ndataset {}@{}: {} rows x {} columns{reused}\n  {}",
        prepared.dataset,
        prepared.version,
        prepared.rows,
        prepared.columns,
        prepared.path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn ingest_cmd(cli: &Cli, args: &crate::IngestArgs) -> Result<ExitCode> {
    let ingested: Vec<(String, Ingested)> = match (&args.file, &args.config) {
        (Some(file), None) => {
            let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "data".into());
            let got = read_file(file, &name)?;
            vec![(name, got)]
        }
        (None, Some(config_path)) => {
            let config = load_config(config_path)?;
            let mut out = Vec::new();
            if let Some(name) = &args.source
                && !config.sources.contains_key(name)
            {
                bail!(
                    "{}: no source named `{name}` (sources: {})",
                    config_path.display(),
                    config.sources.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            for (name, source) in &config.sources {
                if args.source.as_ref().is_some_and(|s| s != name) {
                    continue;
                }
                let got = source
                    .read(name)
                    .map_err(|error| PipelineError::Ingest { source_name: name.clone(), error: Box::new(error) })?;
                out.push((name.clone(), got));
            }
            out
        }
        _ => bail!("give a data file or --config"),
    };
    if args.output.is_some() && ingested.len() != 1 {
        bail!("--output needs exactly one source; pick one with --source");
    }
    if cli.json {
        let lineage: Vec<_> = ingested.iter().map(|(_, i)| &i.lineage).collect();
        print_json(&lineage)?;
    } else {
        let mut table = Table::new(["source", "format", "rows", "cols", "bytes", "sha256", "uri"])
            .align_right(2)
            .align_right(3)
            .align_right(4);
        for (name, i) in &ingested {
            let l = &i.lineage;
            table.row([
                name.clone(),
                l.format.clone(),
                l.rows.to_string(),
                l.columns.to_string(),
                l.size_bytes.to_string(),
                l.sha256[..12].to_string(),
                l.uri.clone(),
            ]);
        }
        print!("{table}");
    }
    if let Some((_, one)) = ingested.first()
        && (args.output.is_some() || (!cli.json && ingested.len() == 1))
    {
        show_frame(cli, &one.frame, args.output.as_ref())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn validate_cmd(cli: &Cli, args: &crate::ValidateArgs) -> Result<ExitCode> {
    let data = read_file(&args.file, "data")?.frame;
    if args.infer {
        let schema = step02_validate::infer(&data)?;
        let yaml = step02_validate::schema_to_yaml(&schema)?;
        match &args.output {
            Some(path) => {
                mlops_core::io::atomic_write(path, yaml.as_bytes())?;
                if !cli.json {
                    println!("wrote a schema for {} columns to {}", schema.columns.len(), path.display());
                }
            }
            None if cli.json => print_json(&schema)?,
            None => print!("{yaml}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let schema_path = args.schema.as_ref().ok_or_else(|| anyhow!("--schema is required"))?;
    let schema = step02_validate::load_schema(schema_path)?;
    let refs = parse_pairs(&args.refs, "--ref")?;
    let report = step02_validate::validate(&data, &schema, &refs)?;
    if cli.json {
        print_json(&serde_json::json!({"passed": report.passed(), "report": report}))?;
    } else {
        print!("{report}");
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn finish_step(
    cli: &Cli,
    args: &crate::StepArgs,
    frame: &DataFrame,
    ops: Vec<mlops_core::Op>,
    report: serde_json::Value,
) -> Result<ExitCode> {
    if let Some(path) = &args.pipeline {
        let mut pipeline = FeaturePipeline::new();
        pipeline.extend(ops);
        pipeline.save(path)?;
    }
    if cli.json {
        print_json(&serde_json::json!({"rows": frame.height(), "columns": frame.width(), "report": report}))?;
        if let Some(path) = &args.output {
            write_frame(frame, path)?;
        }
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
        show_frame(cli, frame, args.output.as_ref())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn step_cmd(cli: &Cli, args: &crate::StepArgs, step: &'static str) -> Result<ExitCode> {
    let config = load_config(&args.config)?;
    let data = read_file(&args.file, "data")?.frame;
    match step {
        "clean" => {
            let out = config.clean.fit_transform(data).map_err(|e| PipelineError::step("clean", e))?;
            finish_step(cli, args, &out.frame, out.ops, serde_json::to_value(&out.report)?)
        }
        _ => {
            let out = config.standardize.fit_transform(data).map_err(|e| PipelineError::step("standardize", e))?;
            finish_step(cli, args, &out.frame, out.ops, serde_json::to_value(&out.report)?)
        }
    }
}

fn transform_cmd(cli: &Cli, args: &crate::TransformArgs) -> Result<ExitCode> {
    let config = load_config(&args.step.config)?;
    let data = read_file(&args.step.file, "data")?.frame;
    let sources = parse_pairs(&args.sources, "--source")?;
    let out = config.transform.fit_transform(data, &sources).map_err(|e| PipelineError::step("transform", e))?;
    for w in &out.report.warnings {
        eprintln!("warning: {w}");
    }
    finish_step(cli, &args.step, &out.frame, out.ops, serde_json::to_value(&out.report)?)
}

fn curate_cmd(cli: &Cli, args: &crate::CurateArgs) -> Result<ExitCode> {
    let from_config = match &args.config {
        Some(path) => load_config(path)?.curate,
        None => None,
    };
    let mut params = match (from_config, &args.name) {
        (Some(p), _) => p,
        (None, Some(name)) => step06_curate::CurateParams {
            name: name.clone(),
            dir: PathBuf::from("data/processed"),
            partition_by: None,
            compression: step06_curate::Compression::Zstd,
            row_group_size: None,
        },
        (None, None) => bail!("give --name, or --config with a `curate` section"),
    };
    if let Some(name) = &args.name {
        params.name.clone_from(name);
    }
    if let Some(dir) = &args.dir {
        params.dir.clone_from(dir);
    }
    if args.partition_by.is_some() {
        params.partition_by.clone_from(&args.partition_by);
    }
    let ingested = read_file(&args.file, "data")?;
    let config_sha256 = mlops_core::hash::sha256_json(&params)?;
    let provenance = step06_curate::Provenance {
        parents: vec![format!("sha256:{}", ingested.lineage.sha256)],
        run_key: config_sha256.clone(),
        config_sha256,
        sources: vec![ingested.lineage],
        steps: serde_json::json!({}),
    };
    let curated = step06_curate::curate(&ingested.frame, &params, &provenance, &FeaturePipeline::new())?;
    if cli.json {
        print_json(
            &serde_json::json!({"version": curated.metadata.version, "path": curated.path, "reused": curated.reused, "rows": curated.metadata.rows}),
        )?;
    } else {
        println!(
            "dataset {}@{}: {} rows x {} columns{}\n  {}",
            curated.metadata.name,
            curated.metadata.version,
            curated.metadata.rows,
            curated.metadata.columns,
            if curated.reused { " (already curated)" } else { "" },
            curated.path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn data_list(cli: &Cli, dir: &Path) -> Result<ExitCode> {
    let entries = step06_curate::Catalog::open(dir).list()?;
    if cli.json {
        print_json(&entries)?;
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        println!("no dataset versions in {} (run `mlops prepare`)", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(["name", "version", "rows", "cols", "created", "path"]).align_right(2).align_right(3);
    for e in entries {
        table.row([
            e.name,
            e.version,
            e.rows.to_string(),
            e.columns.to_string(),
            e.created_at,
            e.path.display().to_string(),
        ]);
    }
    print!("{table}");
    Ok(ExitCode::SUCCESS)
}

fn data_show(cli: &Cli, version: &str, dir: &Path) -> Result<ExitCode> {
    let m = step06_curate::Catalog::open(dir).show(version)?;
    if cli.json {
        print_json(&m)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}@{}  {} rows x {} columns  created {}", m.name, m.version, m.rows, m.columns, m.created_at);
    println!("sha256 {}\nconfig {}\npipeline ops {}", m.sha256, m.config_sha256, m.pipeline_ops);
    let mut table = Table::new(["column", "type", "storage", "nulls", "unique"]).align_right(3).align_right(4);
    for c in &m.schema {
        table.row([
            c.name.clone(),
            c.dtype.map_or_else(|| "-".into(), |t| t.to_string()),
            c.storage.clone(),
            c.nulls.to_string(),
            c.unique.to_string(),
        ]);
    }
    print!("\n{table}");
    let mut sources = Table::new(["source", "format", "rows", "sha256", "uri"]).align_right(2);
    for s in &m.sources {
        sources.row([
            s.source.clone(),
            s.format.clone(),
            s.rows.to_string(),
            s.sha256[..12].to_string(),
            s.uri.clone(),
        ]);
    }
    print!("\n{sources}");
    Ok(ExitCode::SUCCESS)
}

fn open_store(path: &Path) -> Result<step12_training::Store> {
    if !path.is_file() {
        bail!("{}: no run store yet (training runs create it)", path.display());
    }
    Ok(step12_training::Store::open(path)?)
}

fn runs_cmd(cli: &Cli, cmd: &crate::RunsCommand) -> Result<ExitCode> {
    match cmd {
        crate::RunsCommand::List { experiment, store } => {
            let runs = open_store(store)?.runs(experiment.as_deref())?;
            if cli.json {
                print_json(&runs)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = Table::new(["run", "experiment", "name", "status", "started", "metrics"]);
            for r in &runs {
                let metrics = r.metrics.iter().map(|(k, v)| format!("{k}={v:.4}")).collect::<Vec<_>>().join(" ");
                t.row([
                    r.id.clone(),
                    r.info.experiment.clone(),
                    r.info.name.clone(),
                    format!("{:?}", r.status).to_lowercase(),
                    r.started_at.clone(),
                    metrics,
                ]);
            }
            print!("{t}");
            println!("{} run(s) in {}", runs.len(), store.display());
        }
        crate::RunsCommand::Show { run, store } => {
            let r = open_store(store)?.run(run)?;
            if cli.json {
                print_json(&r)?;
                return Ok(ExitCode::SUCCESS);
            }
            println!("run {} ({}/{}): {:?}", r.id, r.info.experiment, r.info.name, r.status);
            println!("  started {}, ended {}", r.started_at, r.ended_at.as_deref().unwrap_or("-"));
            for (k, v) in [
                ("parent", &r.info.parent),
                ("dataset", &r.info.dataset_version),
                ("config", &r.info.config_sha256),
                ("commit", &r.info.source_commit),
                ("error", &r.error),
            ] {
                if let Some(v) = v {
                    println!("  {k}: {v}");
                }
            }
            for (title, map) in [("params", &r.params), ("tags", &r.tags), ("artifacts", &r.artifacts)] {
                if !map.is_empty() {
                    println!("{title}:");
                    for (k, v) in map {
                        println!("  {k} = {v}");
                    }
                }
            }
            if !r.history.is_empty() {
                println!("metrics:");
                for (k, points) in &r.history {
                    let steps = if points.len() > 1 { format!(" ({} values)", points.len()) } else { String::new() };
                    println!("  {k} = {}{steps}", r.metrics[k]);
                }
            }
        }
        crate::RunsCommand::Compare { runs, store } => {
            let store = open_store(store)?;
            let runs: Vec<step12_training::Run> = runs.iter().map(|id| store.run(id)).collect::<Result<_, _>>()?;
            if cli.json {
                print_json(&runs)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut header = vec![String::new()];
            header.extend(runs.iter().map(|r| format!("{} {}", &r.id[..8], r.info.name)));
            let mut t = Table::new(header);
            let keys = |f: fn(&step12_training::Run) -> Vec<String>| {
                let mut all: Vec<String> = runs.iter().flat_map(f).collect();
                all.sort();
                all.dedup();
                all
            };
            for k in keys(|r| r.params.keys().cloned().collect()) {
                let mut row = vec![format!("param {k}")];
                row.extend(runs.iter().map(|r| r.params.get(&k).cloned().unwrap_or_else(|| "-".into())));
                t.row(row);
            }
            for k in keys(|r| r.metrics.keys().cloned().collect()) {
                let mut row = vec![format!("metric {k}")];
                row.extend(runs.iter().map(|r| r.metrics.get(&k).map_or_else(|| "-".into(), |v| format!("{v:.4}"))));
                t.row(row);
            }
            let mut row = vec!["status".to_string()];
            row.extend(runs.iter().map(|r| format!("{:?}", r.status).to_lowercase()));
            t.row(row);
            print!("{t}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
