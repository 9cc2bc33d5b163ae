//! `mlops runs list|show|compare`: the tracked runs of step 12.

use anyhow::{Result, bail};
use mlops_core::table::Table;
use std::path::Path;
use std::process::ExitCode;

use crate::Cli;
use crate::output::print_json;

pub(crate) fn open_store(path: &Path) -> Result<step12_training::Store> {
    if mlops_core::store::Location::from_path(path).is_missing_file() {
        bail!("{}: no run store yet (training runs create it)", path.display());
    }
    Ok(step12_training::Store::open(path)?)
}

pub(crate) fn runs_cmd(cli: &Cli, cmd: &crate::RunsCommand) -> Result<ExitCode> {
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
