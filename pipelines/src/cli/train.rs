//! `mlops train`: steps 7-17, with the progress bar over the steps and the summary: leaderboard,
//! choice, package and registration.

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use mlops_core::table::Table;
use pipelines::{Progress, StepSummary, TrainPaths, Trained};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::dataset::{load_data, training_config};
use crate::output::{Bar, LOG_FILE, bytes, print_json, seconds, steps_table};
use crate::{Cli, TrainArgs};

/// The step bar, with a bar over the trials while the search runs.
pub(crate) struct TrainBar {
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

pub(crate) fn train_cmd(cli: &Cli, args: &TrainArgs) -> Result<ExitCode> {
    let origin = args.data.config.clone().unwrap_or_else(pipelines::default_training_config);
    let mut config = training_config(&args.data)?;
    if let Some(alias) = &args.register_as {
        step17_registry::ModelUri::parse(&format!("models:/m@{alias}"))
            .map_err(|e| anyhow::anyhow!("--register-as {alias}: {e}"))?;
        // Both aliases: whatever the comparison with the current holder says, the new version
        // takes this one.
        config.register.alias = alias.clone();
        config.register.challenger_alias = alias.clone();
    }
    // Say what is missing before preparing or exploring anything.
    if config.model.is_none() {
        let message = "missing: say what to learn (`model: {target: COLUMN}`)";
        return Err(pipelines::PipelineError::Config(mlops_core::config::invalid(&origin, "model", message)).into());
    }
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
    let paths = TrainPaths {
        origin: &origin,
        dataset: (&data.title, &data.rel),
        prepared: data.prepared.as_ref(),
        source: data.source.as_ref(),
        parent_run: args.parent_run.as_deref(),
    };
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
pub(crate) fn print_summary(t: &Trained, store: Option<&Path>) {
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
    for w in &t.warnings {
        println!("warning: {w}");
    }
    if let Some(store) = store {
        println!("runs:  mlops runs list --experiment {} --store {}", t.experiment, store.display());
    }
}

/// The test metrics worth a column: the ranking metric first, then the task's usual ones.
pub(crate) fn leaderboard_metrics(t: &Trained) -> Vec<String> {
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
pub(crate) fn default_params(family: &str) -> std::collections::BTreeMap<String, String> {
    serde_json::from_value::<step11_candidates::ModelSpec>(serde_json::json!({ family: {} }))
        .or_else(|_| serde_json::from_value(serde_json::json!(family)))
        .map(|spec| step12_training::spec_params(&spec))
        .unwrap_or_default()
}

/// Step 15: what was chosen, why, and how it compares with the runner-up.
pub(crate) fn print_selection(t: &Trained) {
    let s = &t.selection;
    let weights: Vec<String> = s.weights.iter().map(|(k, w)| format!("{k} {w:.2}")).collect();
    let on = if t.selected_on == "cv" {
        "out-of-fold cross-validation scores".to_string()
    } else {
        format!("{} part", t.selected_on)
    };
    println!("\nselection on the {on} (weights: {}):", weights.join(", "));
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
        match (s.tie_broken, s.tie_won_on) {
            (true, Some(t)) => format!(", a tie won on {}", t.describe()),
            (true, None) => ", a tie".to_string(),
            _ => String::new(),
        }
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
pub(crate) fn interval(b: &step15_select_best::Bootstrap) -> String {
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
