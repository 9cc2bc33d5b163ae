//! `mlops train`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use mlops_core::table::Table;
use pipelines::{Progress, StepSummary, TrainPaths, Trained};

use crate::commands::{print_json, read_file};
use crate::explore::{load_data, training_config};
use crate::output::{Bar, LOG_FILE, steps_table};
use crate::{Cli, FitArgs, TaskArg, TrainArgs};

/// The step bar, with a bar over the trials while the search runs.
struct TrainBar {
    steps: Bar,
    summaries: Vec<StepSummary>,
}

impl Progress for TrainBar {
    fn started(&mut self, step: &'static str) {
        self.steps.started(step);
    }
    fn finished(&mut self, summary: &StepSummary) {
        self.steps.finished(summary);
        self.summaries.push(summary.clone());
    }
}

pub fn train_cmd(cli: &Cli, args: &TrainArgs) -> Result<ExitCode> {
    let origin = args.data.config.clone().unwrap_or_else(pipelines::default_training_config);
    let config = training_config(&args.data)?;
    let Some(data) = load_data(cli, &args.data, &config)? else { return Ok(ExitCode::FAILURE) };
    let hidden = cli.json || cli.quiet;
    let mut bar = TrainBar { steps: Bar::steps(hidden, 9), summaries: Vec::new() };
    // Step 7 (with step 9's charts) on the dataset being trained on, as `mlops eda` writes it.
    let started = std::time::Instant::now();
    bar.started("eda");
    let (explored, eda_reused) = pipelines::explore_cached(
        &data.frame,
        &data.title,
        &pipelines::Exploration::of(&config),
        &config.reports.join(&data.rel),
        &config.interim.join(&data.rel).join("cache"),
    )?;
    bar.finished(&StepSummary {
        step: "eda",
        rows: explored.rows,
        columns: explored.columns,
        seconds: started.elapsed().as_secs_f64(),
        note: format!(
            "{} warning(s), {} chart(s): {}{}",
            explored.warnings.len(),
            explored.plots.len(),
            explored.html.display(),
            if eda_reused { " (unchanged, reused)" } else { "" }
        ),
    });
    let trials = if hidden { ProgressBar::hidden() } else { ProgressBar::new(0) };
    trials.set_style(
        ProgressStyle::with_template("  trials × folds [{bar:30}] {pos}/{len} {elapsed} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    trials.enable_steady_tick(Duration::from_millis(200));
    let tick = |done: usize, total: usize| {
        trials.set_length(total as u64);
        trials.set_position(done as u64);
    };
    let paths = TrainPaths { origin: &origin, dataset: (&data.title, &data.rel) };
    let outcome = pipelines::train(&data.frame, &config, &paths, &mut bar, &tick);
    trials.finish_and_clear();
    bar.steps.finish();
    let mut trained = outcome?;
    trained.eda_report = Some(explored.html.clone());
    if let (Some(log), Some(model)) = (LOG_FILE.get(), &config.model) {
        // The invocation's log file is the runs' log: record it on the parent and the final runs.
        let store = step12_training::Store::open(&model.store)?;
        for run in std::iter::once(&trained.run_id).chain(trained.leaderboard.iter().map(|r| &r.run_id)) {
            store.log_artifact(run, "log", log)?;
        }
    }
    if cli.json {
        print_json(&trained)?;
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", steps_table(&bar.summaries));
    print_summary(&trained, config.model.as_ref().map(|m| m.store.as_path()));
    Ok(ExitCode::SUCCESS)
}

/// The leaderboard and where things went.
fn print_summary(t: &Trained, store: Option<&Path>) {
    if let Some(run) = &t.reused {
        println!(
            "\nnothing changed since training run {run} (dataset, config, toolkit): its results, nothing retrained or registered"
        );
    }
    println!(
        "\n{} on {}: target `{}` ({}{}), {} feature(s), rows train/validation/test {}/{}/{}",
        t.experiment,
        t.dataset,
        t.target,
        pipelines::task_name(t.task),
        if t.classes.is_empty() { String::new() } else { format!(": {}", t.classes.join(", ")) },
        t.features.len(),
        t.rows.0,
        t.rows.1,
        t.rows.2
    );
    if !t.ignored.is_empty() {
        let names: Vec<&str> = t.ignored.iter().map(|(n, _)| n.as_str()).collect();
        println!("not used (not numeric): {}", names.join(", "));
    }
    let shown = leaderboard_metrics(t);
    let mut header =
        vec!["#".to_string(), "model".into(), "params (not default)".into(), format!("cv {} ± std", t.metric)];
    header.extend(shown.iter().map(|m| format!("test {m}")));
    header.extend(["fit".to_string(), "run".into()]);
    let mut table = Table::new(header);
    for (i, r) in t.leaderboard.iter().enumerate() {
        let defaults = default_params(&r.model);
        let params = r
            .params
            .iter()
            .filter(|(k, v)| defaults.get(*k) != Some(*v))
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        let mut row = vec![(i + 1).to_string(), r.model.clone(), params, format!("{:.4} ± {:.4}", r.cv_mean, r.cv_std)];
        row.extend(shown.iter().map(|m| r.test.get(m).map_or_else(|| "-".into(), |v| format!("{v:.4}"))));
        row.extend([seconds(r.fit_seconds), r.run_id.chars().take(8).collect()]);
        table.row(row);
    }
    println!("\nleaderboard ({} trial(s), {}-fold cv, ranked by {}):", t.trials.len(), t.folds, t.metric);
    print!("{table}");
    for (name, error) in &t.failed {
        println!("failed: {name}: {error}");
    }
    let failed_trials: Vec<_> = t.trials.iter().filter(|x| x.error.is_some()).collect();
    if !failed_trials.is_empty() {
        println!("{} trial(s) failed; see `mlops runs list`", failed_trials.len());
    }
    print_selection(t);
    if let Some(store) = store {
        println!("runs:  mlops runs list --experiment {} --store {}", t.experiment, store.display());
    }
}

/// The test metrics worth a column: the ranking metric first, then the task's usual ones.
fn leaderboard_metrics(t: &Trained) -> Vec<String> {
    let usual: &[&str] = match t.task {
        mlops_core::TaskKind::BinaryClassification => &["roc_auc", "accuracy", "f1"],
        mlops_core::TaskKind::MulticlassClassification => &["accuracy", "f1_macro", "roc_auc"],
        mlops_core::TaskKind::Regression => &["r2", "rmse", "mae"],
    };
    let mut out = vec![t.metric.clone()];
    out.extend(usual.iter().map(|s| s.to_string()).filter(|m| *m != t.metric));
    out
}

/// The default hyperparameters of a family, as run params.
fn default_params(family: &str) -> std::collections::BTreeMap<String, String> {
    serde_json::from_value::<step11_candidates::ModelSpec>(serde_json::json!({ family: {} }))
        .or_else(|_| serde_json::from_value(serde_json::json!(family)))
        .map(|spec| step12_training::spec_params(&spec))
        .unwrap_or_default()
}

/// Seconds for a table: milliseconds below one second.
fn seconds(s: f64) -> String {
    if s < 1.0 { format!("{:.1} ms", s * 1000.0) } else { format!("{s:.2} s") }
}

/// `mlops fit`: one model on a features folder.
pub fn fit_cmd(cli: &Cli, args: &FitArgs) -> Result<ExitCode> {
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
fn parse_spec(text: &str) -> Result<step11_candidates::ModelSpec> {
    let value: serde_json::Value = serde_yaml::from_str(text).map_err(|e| anyhow::anyhow!("--model: not YAML: {e}"))?;
    let value = match value {
        serde_json::Value::String(family) if family != "linear" => serde_json::json!({ family: {} }),
        other => other,
    };
    serde_json::from_value(value).map_err(|e| anyhow::anyhow!("--model: {e}"))
}

/// Step 15: what was chosen, why, and how it compares with the runner-up.
fn print_selection(t: &Trained) {
    let s = &t.selection;
    let weights: Vec<String> = s.weights.iter().map(|(k, w)| format!("{k} {w:.2}")).collect();
    println!("\nselection on the {} part (weights: {}):", t.selected_on, weights.join(", "));
    let mut table = Table::new(["#", "model", "score", "latency p50", "p99", "size", "ruled out by"]);
    for (i, r) in s.ranked.iter().enumerate() {
        let row = t.leaderboard.iter().find(|l| l.model == r.name);
        let ms = |v: f64| if v.is_finite() { format!("{v:.3} ms") } else { "-".into() };
        table.row([
            if r.score.is_some() { (i + 1).to_string() } else { "-".into() },
            r.name.clone(),
            r.score.map_or_else(|| "-".into(), |v| format!("{v:.4}")),
            row.map_or_else(|| "-".into(), |l| ms(l.latency_p50_ms)),
            row.map_or_else(|| "-".into(), |l| ms(l.latency_p99_ms)),
            row.map_or_else(|| "-".into(), |l| bytes(l.model_bytes)),
            r.violations.join("; "),
        ]);
    }
    print!("{table}");
    let Some(winner) = s.winner.as_ref().and_then(|w| t.leaderboard.iter().find(|r| &r.model == w)) else {
        println!("no model chosen: every one breaks a constraint of select_best");
        return;
    };
    println!(
        "\nchosen: {} (run {}){}",
        winner.model,
        winner.run_id,
        if s.tie_broken { ", a tie won on model size" } else { "" }
    );
    if let Some(c) = &t.comparison {
        println!("against {} on {} test rows: {}", c.b, t.rows.2, interval(&c.bootstrap));
        if let (Some(z), Some(m)) = (&c.z_test, &c.mcnemar) {
            println!(
                "  accuracy {:.4} vs {:.4}: z = {:.2}, p = {:.3}; McNemar {} vs {} rows right only once, p = {:.3}{}",
                z.accuracy_a,
                z.accuracy_b,
                z.z,
                z.p_value,
                m.only_a,
                m.only_b,
                m.p_value,
                if z.significant || m.significant { " (significant)" } else { " (not significant)" }
            );
        }
    }
    println!("report: {}", winner.report.display());
    if let Some(package) = &t.package {
        println!("package: {} (mlops package inspect {})", package.display(), package.display());
    }
    if let Some(r) = &t.registered {
        println!(
            "registered: {} as `{}`{} ({})",
            r.uri,
            r.alias,
            if r.promoted { "" } else { ", not promoted" },
            r.reason
        );
        if let Some(c) = &r.against_champion {
            println!("  against the champion: {}", interval(&c.bootstrap));
        }
    }
}

/// A paired bootstrap's difference and interval, in words.
fn interval(b: &step15_select_best::Bootstrap) -> String {
    format!(
        "{} difference {:+.4}, {:.0}% interval [{:+.4}, {:+.4}] (paired bootstrap, p = {:.3})",
        b.metric,
        b.difference,
        b.confidence * 100.0,
        b.low,
        b.high,
        b.p_value
    )
}

/// Bytes for a table.
fn bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// `mlops package inspect DIR`: loads (verifying every checksum) and shows a package.
pub fn package_inspect(cli: &Cli, dir: &Path) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let package = step16_package::load(dir)?;
    let load_ms = started.elapsed().as_secs_f64() * 1000.0;
    let c = &package.contents;
    if cli.json {
        print_json(&serde_json::json!({
            "dir": package.dir,
            "manifest": package.manifest,
            "model": c.info,
            "signature": c.signature,
            "metrics": c.metrics,
            "lineage": c.lineage,
            "importances": c.importances,
            "profile_rows": c.profile.rows,
            "pipeline_ops": c.pipeline.len(),
            "load_ms": load_ms,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "package {} (format {}, written {}), verified and loaded in {load_ms:.1} ms",
        package.dir.display(),
        package.manifest.format_version,
        package.manifest.created_at
    );
    let mut t = Table::new(["", ""]);
    t.row([String::from("model"), c.info.family.clone()]);
    let params: Vec<String> = c.info.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    t.row([String::from("params"), params.join(" ")]);
    t.row([String::from("task"), pipelines::task_name(c.info.task).to_string()]);
    t.row([String::from("target"), c.info.target.clone()]);
    if !c.info.classes.is_empty() {
        t.row([String::from("classes"), c.info.classes.join(", ")]);
    }
    t.row([String::from("features"), format!("{} after {} pipeline op(s)", c.info.features.len(), c.pipeline.len())]);
    t.row([String::from("run"), c.lineage.run_id.clone()]);
    t.row([String::from("dataset"), c.lineage.dataset_version.clone().unwrap_or_default()]);
    t.row([String::from("config sha256"), c.lineage.config_sha256.clone().unwrap_or_default()]);
    t.row([String::from("source commit"), c.lineage.source_commit.clone().unwrap_or_default()]);
    t.row([String::from("toolkit"), c.lineage.toolkit_version.clone()]);
    t.row([String::from("reference rows"), c.profile.rows.to_string()]);
    print!("{t}");
    println!("\ninputs:");
    let mut inputs = Table::new(["column", "type", "nullable", "seen"]);
    for col in &c.signature.inputs {
        let seen = match (&col.categories, col.range) {
            (Some(cats), _) => cats.join(", "),
            (None, Some((lo, hi))) => format!("{lo} .. {hi}"),
            _ => String::new(),
        };
        inputs.row([col.name.clone(), col.dtype.to_string(), col.nullable.to_string(), seen]);
    }
    print!("{inputs}");
    let outputs: Vec<&str> = c.signature.outputs.iter().map(|o| o.name.as_str()).collect();
    println!("outputs: {}", outputs.join(", "));
    println!("\nmetrics:");
    for (k, v) in &c.metrics {
        println!("  {k:28} {v:.4}");
    }
    println!("\nfiles:");
    for f in &package.manifest.files {
        println!("  {:24} {:>9}  sha256 {}", f.path, bytes(f.bytes as usize), &f.sha256[..16]);
    }
    Ok(ExitCode::SUCCESS)
}
