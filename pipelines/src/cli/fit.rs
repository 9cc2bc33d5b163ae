//! `mlops fit`: one model on the parts `mlops features` wrote, timed and scored (not tracked).

use anyhow::Result;
use indicatif::ProgressBar;
use mlops_core::table::Table;
use std::process::ExitCode;
use std::time::Duration;

use crate::files::read_file;
use crate::output::{print_json, seconds};
use crate::{Cli, FitArgs, TaskArg};

/// `mlops fit`: one model on a features folder.
pub(crate) fn fit_cmd(cli: &Cli, args: &FitArgs) -> Result<ExitCode> {
    let spec = parse_spec(&args.model)?;
    let part = |name: &str| -> Result<polars::prelude::DataFrame> {
        let path = args.dir.join(format!("{name}.parquet"));
        if !path.is_file() {
            anyhow::bail!("{}: no {name} part (write the parts with `mlops features --out DIR`)", path.display());
        }
        Ok(read_file(&path, name)?.frame)
    };
    let (train, test) = (part("train")?, part("test")?);
    let task = match args.task {
        TaskArg::Auto => pipelines::TaskChoice::Auto,
        TaskArg::Classification => pipelines::TaskChoice::Classification,
        TaskArg::Regression => pipelines::TaskChoice::Regression,
    };
    let bar = if cli.json || cli.quiet { ProgressBar::hidden() } else { ProgressBar::new_spinner() };
    bar.set_message(format!("fitting {} on {} rows", spec.name(), train.height()));
    bar.enable_steady_tick(Duration::from_millis(200));
    let request = pipelines::FitRequest {
        train: &train,
        test: &test,
        target: &args.target,
        task,
        spec: &spec,
        repeats: args.repeats,
    };
    let outcome = pipelines::fit_parts(&request);
    bar.finish_and_clear();
    let fitted = outcome?;
    if cli.json {
        print_json(&fitted)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(["", ""]);
    t.row([String::from("model"), fitted.model.clone()]);
    let params = step12_training::spec_params(&fitted.spec);
    let params: Vec<String> = params.iter().filter(|(k, _)| *k != "model").map(|(k, v)| format!("{k}={v}")).collect();
    t.row([String::from("params"), params.join(" ")]);
    t.row([String::from("task"), pipelines::task_name(fitted.task).to_string()]);
    t.row([String::from("rows train/test"), format!("{}/{}", fitted.rows.0, fitted.rows.1)]);
    t.row([String::from("features"), fitted.features.len().to_string()]);
    t.row([
        String::from("fit"),
        format!("{} (median of {})", seconds(fitted.fit_seconds_median), fitted.fit_seconds.len()),
    ]);
    t.row([String::from("predict + score"), seconds(fitted.predict_seconds_median)]);
    for (k, v) in &fitted.metrics {
        t.row([format!("test {k}"), format!("{v:.4}")]);
    }
    print!("{t}");
    Ok(ExitCode::SUCCESS)
}

/// A model spec as written in a config's candidates: `gaussian_nb`, `linear` or
/// `{ridge: {alpha: 2}}`.
pub(crate) fn parse_spec(text: &str) -> Result<step11_candidates::ModelSpec> {
    let value: serde_json::Value = serde_yaml::from_str(text).map_err(|e| anyhow::anyhow!("--model: not YAML: {e}"))?;
    let value = match value {
        serde_json::Value::String(family) if family != "linear" => serde_json::json!({ family: {} }),
        other => other,
    };
    serde_json::from_value(value).map_err(|e| anyhow::anyhow!("--model: {e}"))
}
