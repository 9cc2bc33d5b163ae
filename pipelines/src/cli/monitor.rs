//! `mlops monitor`: step 22 from the command line.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use step20_serve::{Actual, record_feedback};
use step22_monitor::{ModelRef, find_by_key};

use crate::output::print_json;
use crate::{Cli, MonitorArgs, MonitorCommand};

pub(crate) fn monitor_cmd(cli: &Cli, args: &MonitorArgs) -> Result<ExitCode> {
    match &args.command {
        MonitorCommand::Feedback { input, id, row, actual, key, model, artifacts } => {
            if !args.store.is_file() {
                bail!(
                    "{}: no store there (the server writes its prediction log into it; check --store)",
                    args.store.display()
                );
            }
            let join = match (key, model) {
                (Some(key), Some(model)) => Join::Key { column: key, model: model_ref(&args.store, artifacts, model)? },
                (Some(_), None) => bail!("--key needs --model: the key is looked up among that model's logged inputs"),
                (None, _) => Join::RequestId { column: id },
            };
            let actuals = read_actuals(input, &join, row, actual, &args.store)?;
            let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let outcome = record_feedback(&args.store, &actuals.found, &at)?.map_err(|bad| {
                anyhow::anyhow!("{}, line {}: {bad}; nothing was recorded", input.display(), actuals.lines[bad.index])
            })?;
            let unknown: Vec<usize> = outcome
                .unknown
                .iter()
                .map(|u| actuals.lines[u.index])
                .chain(actuals.unmatched.iter().copied())
                .collect();
            if cli.json {
                print_json(&serde_json::json!({
                    "recorded": outcome.recorded, "replaced": outcome.replaced,
                    "unknown": unknown.len(), "unknown_lines": unknown,
                }))?;
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{}: {} actual(s) recorded, {} replaced an earlier one, {} name no logged prediction",
                input.display(),
                outcome.recorded,
                outcome.replaced,
                unknown.len()
            );
            if !unknown.is_empty() {
                let shown: Vec<String> = unknown.iter().take(10).map(usize::to_string).collect();
                println!(
                    "  not recorded (lines {}{}): their {} is not in the prediction log",
                    shown.join(", "),
                    if unknown.len() > 10 { ", ..." } else { "" },
                    match &join {
                        Join::Key { column, .. } => format!("key `{column}`"),
                        Join::RequestId { .. } => "request id and row".into(),
                    }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How actuals find their prediction.
enum Join<'a> {
    /// By a request id column (and a row column).
    RequestId { column: &'a str },
    /// By an input column of the signature, among one model's logged predictions.
    Key { column: &'a str, model: ModelRef },
}

/// Actuals that found a prediction, the file line of each (by index), and the lines of keys that
/// were never predicted.
struct Actuals {
    found: Vec<Actual>,
    lines: Vec<usize>,
    unmatched: Vec<usize>,
}

fn model_ref(store: &Path, artifacts: &Path, model: &str) -> Result<ModelRef> {
    if !model.starts_with("models:/") {
        return Ok(ModelRef { name: model.to_string(), version: None });
    }
    let registry = step17_registry::Registry::open(store, artifacts, &pipelines::actor())?;
    let v = registry.resolve(model)?;
    Ok(ModelRef { name: v.name, version: Some(v.version) })
}

fn read_actuals(input: &Path, join: &Join<'_>, row: &str, actual: &str, store: &Path) -> Result<Actuals> {
    let mut reader = csv::Reader::from_path(input).with_context(|| format!("{}: cannot read", input.display()))?;
    let header = reader.headers().with_context(|| format!("{}: cannot read the header", input.display()))?.clone();
    let column = |name: &str| header.iter().position(|h| h == name);
    let by = match join {
        Join::RequestId { column } | Join::Key { column, .. } => *column,
    };
    let (Some(by_at), Some(actual_at)) = (column(by), column(actual)) else {
        let missing: Vec<&str> = [by, actual].into_iter().filter(|c| column(c).is_none()).collect();
        bail!(
            "{}: no column `{}` (the file has: {})",
            input.display(),
            missing.join("`, `"),
            header.iter().collect::<Vec<_>>().join(", ")
        );
    };
    let row_at = column(row);
    let mut records = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.with_context(|| format!("{}, line {line}", input.display()))?;
        let by_value = record.get(by_at).unwrap_or_default().to_string();
        let value = record.get(actual_at).unwrap_or_default().to_string();
        let row = match row_at.and_then(|k| record.get(k)) {
            Some(text) => text.trim().parse::<u32>().map_err(|_| {
                anyhow::anyhow!("{}, line {line}: `{row}` is `{text}`, not a row number", input.display())
            })?,
            None => 0,
        };
        records.push((line, by_value, row, value));
    }
    let mut out = Actuals { found: Vec::new(), lines: Vec::new(), unmatched: Vec::new() };
    let where_key: HashMap<String, (String, u32)> = match join {
        Join::Key { column, model } => {
            let keys: HashSet<String> = records.iter().map(|r| r.1.clone()).collect();
            find_by_key(store, model, column, &keys)?
        }
        Join::RequestId { .. } => HashMap::new(),
    };
    for (line, by_value, row, value) in records {
        let (request_id, row) = match join {
            Join::RequestId { .. } => (by_value, row),
            Join::Key { .. } => match where_key.get(&by_value) {
                Some(found) => found.clone(),
                None => {
                    out.unmatched.push(line);
                    continue;
                }
            },
        };
        out.found.push(Actual { request_id, row, actual: serde_json::Value::String(value) });
        out.lines.push(line);
    }
    Ok(out)
}
