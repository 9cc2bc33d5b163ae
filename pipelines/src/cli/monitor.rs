//! `mlops monitor`: step 22 from the command line: the monitoring run (drift, quality, health,
//! accuracy, alerts and the dashboard), `feedback` and `drift` between two files.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use indicatif::ProgressBar;
use mlops_core::table::Table;
use polars::prelude::DataFrame;
use step20_serve::{Actual, record_feedback};
use step22_monitor::alerts::{Severity, Transition, append_jsonl, check_code, post_webhook};
use step22_monitor::drift::{Categories, ColumnKind, DataDrift, DriftMethod, DriftRule, Numbers, Sample, column_drift};
use step22_monitor::{ModelRef, MonitorConfig, Window, find_by_key, parse_span};

use crate::output::print_json;
use crate::{Cli, MonitorArgs, MonitorCommand};

/// Exit code of `--check` when the run itself failed (0, 1 and 2 are the alerts').
const CHECK_FAILED: u8 = 3;
/// Exit code of a run whose alerts did not reach the webhook (without `--check`).
const NOT_DELIVERED: u8 = 4;

/// The monitoring config: the file named, or defaults when the default file is absent. Errors
/// name the file and the key.
pub(crate) fn load_config(path: &Path, named: bool) -> Result<MonitorConfig> {
    if !path.is_file() && !named {
        return Ok(MonitorConfig::default());
    }
    let config: MonitorConfig = mlops_core::config::load_yaml(path)?;
    config.check().map_err(|e| match e {
        step22_monitor::MonitorError::Config { key, message } => {
            anyhow::Error::new(mlops_core::config::invalid(path, key, message))
        }
        other => anyhow::anyhow!("{}: {other}", path.display()),
    })?;
    Ok(config)
}

pub(crate) fn monitor_cmd(cli: &Cli, args: &MonitorArgs) -> Result<ExitCode> {
    let named = args.config != Path::new("configs/monitoring.yaml");
    if args.check {
        return match run(cli, args, named) {
            Ok(code) => Ok(code),
            Err(e) => {
                crate::output::print_error(&e, cli.json);
                Ok(ExitCode::from(CHECK_FAILED))
            }
        };
    }
    run(cli, args, named)
}

fn run(cli: &Cli, args: &MonitorArgs, named: bool) -> Result<ExitCode> {
    let config = load_config(&args.config, named)?;
    let store = args.store.clone().unwrap_or_else(|| config.store.clone());
    match &args.command {
        None => watch(cli, args, &config, &store),
        Some(MonitorCommand::Replay { url, input, actual, rows_per_request, interval_ms }) => {
            replay(cli, url, input, actual.as_deref(), (*rows_per_request, *interval_ms))
        }
        Some(MonitorCommand::ExportRules { out }) => export_rules(cli, args, &config, &store, out),
        Some(MonitorCommand::Drift { reference, current, method }) => {
            drift_cmd(cli, &config, reference, current, method.as_deref())
        }
        Some(MonitorCommand::Feedback { input, id, row, actual, key, model, artifacts }) => {
            if mlops_core::store::Location::from_path(&store).is_missing_file() {
                bail!(
                    "{}: no store there (the server writes its prediction log into it; check --store)",
                    store.display()
                );
            }
            let join = match (key, model) {
                (Some(key), Some(model)) => Join::Key { column: key, model: model_ref(&store, artifacts, model)? },
                (Some(_), None) => bail!("--key needs --model: the key is looked up among that model's logged inputs"),
                (None, _) => Join::RequestId { column: id },
            };
            let actuals = read_actuals(input, &join, row, actual, &store)?;
            let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let outcome = record_feedback(&store, &actuals.found, &at)?.map_err(|bad| {
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
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The window asked for, and its folder name.
fn window_of(args: &MonitorArgs, config: &MonitorConfig) -> Result<(Window, String)> {
    let stamp = |t: Option<chrono::DateTime<Utc>>, open: &str| {
        t.map_or_else(|| open.to_string(), |t| t.format("%Y%m%dT%H%M%S%.6fZ").to_string())
    };
    if args.from.is_some() || args.to.is_some() {
        let w = Window::parse(args.from.as_deref(), args.to.as_deref())?;
        return Ok((w, format!("{}_{}", stamp(w.from, "start"), stamp(w.to, "now"))));
    }
    let (text, key) = match &args.last {
        Some(t) => (t.as_str(), "--last"),
        None => (config.window.last.as_str(), "window.last"),
    };
    let span = parse_span(text).map_err(|m| anyhow::anyhow!("{key}: {m}"))?;
    let w = Window::last(span, Utc::now());
    Ok((w, format!("{}_{}", stamp(w.from, "start"), stamp(w.to, "now"))))
}

/// The monitoring run.
fn watch(cli: &Cli, args: &MonitorArgs, config: &MonitorConfig, store: &Path) -> Result<ExitCode> {
    let Some(model) = args.model.clone().or_else(|| config.model.clone()) else {
        bail!(
            "no model to watch: give --model (models:/NAME@ALIAS, models:/NAME/VERSION or a package directory) or `model` in {}",
            args.config.display()
        );
    };
    let (window, window_label) = window_of(args, config)?;
    let reports = args.reports.clone().unwrap_or_else(|| config.reports.clone());
    let bar = if cli.json || cli.quiet { ProgressBar::hidden() } else { ProgressBar::new_spinner() };
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar.set_message(format!("reading the prediction log of {model} in {}", store.display()));
    let request = pipelines::MonitorRequest {
        model: &model,
        store,
        artifacts: &config.artifacts,
        window,
        window_label,
        config,
        reports: &reports,
        now: Utc::now(),
        alert: true,
    };
    let monitored = pipelines::monitor(&request);
    bar.finish_and_clear();
    let monitored = monitored?;
    let dir = pipelines::report_dir(&reports, &monitored);
    let (html, json) = pipelines::write_monitor_report(&dir, &monitored)?;

    // Sinks: stdout (below), the JSON-lines file and the webhook. A sink that fails does not undo
    // the run: the report and the alert state are written; the failure is said and has its code.
    let mut sink_errors = Vec::new();
    if let Some(path) = &config.sinks.jsonl
        && let Err(e) = append_jsonl(path, &monitored.alerts)
    {
        sink_errors.push(e.to_string());
    }
    let mut delivered = None;
    if let Some(hook) = &config.sinks.webhook {
        match post_webhook(hook, &monitored.alerts) {
            Ok(d) => delivered = Some(d),
            Err(e) => sink_errors.push(e.to_string()),
        }
    }
    let check = check_code(&monitored.alerts);
    if cli.json {
        print_json(&serde_json::json!({
            "monitor": monitored, "report": html, "json": json,
            "check": check, "webhook": delivered, "sink_errors": sink_errors,
        }))?;
    } else {
        print_summary(&monitored, &html);
        for e in &sink_errors {
            eprintln!("warning: alert sink failed: {e}; the run's report and alert state are written");
        }
    }
    if args.check {
        return Ok(ExitCode::from(u8::try_from(check).unwrap_or(CHECK_FAILED)));
    }
    if !sink_errors.is_empty() {
        return Ok(ExitCode::from(NOT_DELIVERED));
    }
    Ok(ExitCode::SUCCESS)
}

fn drift_line(d: &Option<DataDrift>) -> String {
    match d {
        Some(d) => format!(
            "{} of {} drifted ({:.0}%){}",
            d.drifted,
            d.columns.len(),
            d.share * 100.0,
            if d.dataset_drift { ": dataset drift" } else { "" }
        ),
        None => "not measured".into(),
    }
}

fn print_summary(m: &pipelines::Monitored, html: &Path) {
    let version = m.version.map_or_else(String::new, |v| format!(" v{v}"));
    println!(
        "monitor {}{version} ({}), window {}: {} request(s), {} row(s)",
        m.model, m.uri, m.window_label, m.requests, m.rows
    );
    let mut t = Table::new(["check", "result"]);
    t.row(["columns drifted".to_string(), drift_line(&m.inputs)]);
    if let Some(d) = &m.inputs {
        let names: Vec<&str> = d.columns.iter().filter(|c| c.drifted).map(|c| c.column.as_str()).collect();
        if !names.is_empty() {
            t.row(["  drifted".to_string(), names.join(", ")]);
        }
    }
    t.row(["features drifted".to_string(), drift_line(&m.features)]);
    if let Some(p) = &m.predictions {
        t.row([
            "prediction drift".to_string(),
            format!(
                "{} ({})",
                if p.drifted { "drifted" } else { "no drift" },
                p.scores.iter().map(|s| format!("{} {:.4}", s.method.name(), s.value)).collect::<Vec<_>>().join(", ")
            ),
        ]);
    }
    match &m.accuracy {
        Some(a) => {
            for (metric, value) in &a.overall {
                let base = m
                    .baseline
                    .get(metric)
                    .map_or_else(String::new, |b| format!(" (baseline {b:.4}, {:+.4})", value - b));
                t.row([metric.clone(), format!("{value:.4}{base}")]);
            }
            t.row([
                "labelled".to_string(),
                format!("{} prediction(s), {} unknown label(s)", a.labelled, a.unknown_labels),
            ]);
        }
        None => t.row(["accuracy".to_string(), "no actual outcomes yet".to_string()]),
    }
    if let Some(l) = &m.health.latency {
        t.row(["latency p50/p95/p99".to_string(), format!("{:.2} / {:.2} / {:.2} ms", l.p50, l.p95, l.p99)]);
    }
    if let Some(rate) = m.health.error_rate {
        t.row([
            "refused or failed".to_string(),
            format!("{} request(s), {:.2}% of all", m.health.refused, rate * 100.0),
        ]);
    }
    let open: Vec<String> = m
        .alerts
        .iter()
        .filter(|a| a.transition != Transition::Resolved)
        .map(|a| format!("{} ({})", a.name, severity(a.severity)))
        .collect();
    t.row(["open alerts".to_string(), if open.is_empty() { "none".into() } else { open.join(", ") }]);
    print!("{t}");
    for a in &m.alerts {
        match a.transition {
            Transition::Fired => println!("ALERT fired [{}] {}: {}", severity(a.severity), a.name, a.message),
            Transition::Resolved => println!("ALERT resolved [{}] {}: {}", severity(a.severity), a.name, a.message),
            Transition::StillOpen => {}
        }
    }
    for note in &m.notes {
        println!("note: {note}");
    }
    println!("report: {}", html.display());
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// `mlops monitor drift`: two files compared column by column.
fn drift_cmd(
    cli: &Cli,
    config: &MonitorConfig,
    reference: &Path,
    current: &Path,
    method: Option<&str>,
) -> Result<ExitCode> {
    let method: Option<DriftMethod> = method
        .map(|m| {
            serde_json::from_value(serde_json::Value::String(m.to_string())).map_err(|_| {
                anyhow::anyhow!(
                    "--method: `{m}` is not one of auto, ks, wasserstein, chisquare, z, jensenshannon, psi, ks_or_psi"
                )
            })
        })
        .transpose()?;
    let started = std::time::Instant::now();
    let (r, c) = std::thread::scope(|s| {
        let r = s.spawn(|| frame_of(reference));
        let c = frame_of(current);
        (r.join().unwrap_or_else(|_| Err(anyhow::anyhow!("{}: the reader stopped", reference.display()))), c)
    });
    let (r, c) = (r?, c?);
    let read_seconds = started.elapsed().as_secs_f64();
    let (r, c) = (
        frame_samples(&r).with_context(|| format!("{}", reference.display()))?,
        frame_samples(&c).with_context(|| format!("{}", current.display()))?,
    );
    let samples_seconds = started.elapsed().as_secs_f64() - read_seconds;
    let mut columns = Vec::new();
    let mut skipped = Vec::new();
    let names: Vec<&String> = r.keys().filter(|k| c.contains_key(*k)).collect();
    let compared: Vec<_> = {
        let rules: Vec<(String, DriftRule)> = names
            .iter()
            .map(|name| {
                let mut rule = config.drift.rule(name);
                if let Some(m) = method
                    && fits(m, r[*name].kind())
                {
                    rule = DriftRule { method: m, threshold: None, psi_threshold: None };
                }
                ((*name).clone(), rule)
            })
            .collect();
        mlops_core::par::map(&rules, |(name, rule)| (name.clone(), column_drift(name, &r[name], &c[name], rule)))
            .context("a drift worker stopped")?
    };
    for (name, result) in compared {
        match result {
            Ok(d) => columns.push(d),
            Err(e) => skipped.push((name, e.to_string())),
        }
    }
    let drifted = columns.iter().filter(|c| c.drifted).count();
    let share = if columns.is_empty() { 0.0 } else { drifted as f64 / columns.len() as f64 };
    let report = DataDrift {
        dataset_drift: !columns.is_empty() && share >= config.drift.share,
        columns,
        skipped,
        drifted,
        share,
        share_threshold: config.drift.share,
    };
    let only: Vec<&String> = r.keys().chain(c.keys()).filter(|k| !(r.contains_key(*k) && c.contains_key(*k))).collect();
    let seconds = started.elapsed().as_secs_f64();
    if cli.json {
        print_json(&serde_json::json!({
            "columns": report.columns.iter().map(|c| serde_json::json!({
                "column": c.column, "method": c.method.name(),
                "score": c.scores.first().map(|s| s.value), "threshold": c.scores.first().map(|s| s.threshold),
                "scores": c.scores, "drifted": c.drifted,
            })).collect::<Vec<_>>(),
            "skipped": report.skipped, "drifted": report.drifted, "share": report.share,
            "dataset_drift": report.dataset_drift, "not_in_both": only,
            "seconds": {"read": read_seconds, "samples": samples_seconds, "total": seconds},
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(["column", "kind", "method", "score", "threshold", "drifted"]).align_right(3).align_right(4);
    for c in &report.columns {
        t.row([
            c.column.clone(),
            match c.kind {
                ColumnKind::Numeric => "numeric".to_string(),
                ColumnKind::Categorical => "categorical".to_string(),
            },
            c.method.name().to_string(),
            c.scores.iter().map(|s| format!("{:.6}", s.value)).collect::<Vec<_>>().join(" / "),
            c.scores.iter().map(|s| format!("{}", s.threshold)).collect::<Vec<_>>().join(" / "),
            if c.drifted { "yes".into() } else { "no".into() },
        ]);
    }
    print!("{t}");
    for (name, why) in &report.skipped {
        println!("{name}: not compared: {why}");
    }
    if !only.is_empty() {
        println!(
            "not in both files (not compared): {}",
            only.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    println!(
        "{} of {} column(s) drifted ({:.0}%; the dataset drifts from {:.0}%): {} in {seconds:.2} s",
        report.drifted,
        report.columns.len(),
        report.share * 100.0,
        report.share_threshold * 100.0,
        if report.dataset_drift { "dataset drift" } else { "no dataset drift" }
    );
    Ok(ExitCode::SUCCESS)
}

/// `mlops monitor export-rules`: the Prometheus rules and the Grafana dashboard of the watched
/// model, each written to a temporary name and renamed.
fn export_rules(cli: &Cli, args: &MonitorArgs, config: &MonitorConfig, store: &Path, out: &Path) -> Result<ExitCode> {
    let Some(model) = args.model.clone().or_else(|| config.model.clone()) else {
        bail!("no model: give --model or `model` in {}", args.config.display());
    };
    // The name the server reports in `mlops_model_version{model=...}`.
    let origin = step20_serve::ModelSource::parse(&model, store, &config.artifacts).resolve()?;
    let name = &origin.name;
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let rules = out.join(format!("{name}-rules.yml"));
    mlops_core::io::atomic_write(&rules, step22_monitor::export::prometheus_rules(name, &config.alerts).as_bytes())?;
    let dashboard = out.join(format!("{name}-dashboard.json"));
    let json = serde_json::to_vec_pretty(&step22_monitor::export::grafana_dashboard(name))?;
    mlops_core::io::atomic_write(&dashboard, &json)?;
    if cli.json {
        print_json(&serde_json::json!({"model": name, "rules": rules, "dashboard": dashboard}))?;
    } else {
        println!("Prometheus rules for {name}: {} (check: promtool check rules {})", rules.display(), rules.display());
        println!("Grafana dashboard: {} (import it; choose the Prometheus data source)", dashboard.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `mlops monitor replay`: a file's rows through a server as traffic, then their actuals as
/// feedback.
fn replay(
    cli: &Cli,
    url: &str,
    input: &Path,
    actual: Option<&str>,
    (per_request, interval_ms): (usize, u64),
) -> Result<ExitCode> {
    if per_request == 0 {
        bail!("--rows-per-request: must be at least 1");
    }
    let stem = input.file_stem().map_or_else(|| "data".to_string(), |s| s.to_string_lossy().to_string());
    let mut frame = crate::files::read_file(input, &stem)?.frame;
    let actuals: Option<Vec<serde_json::Value>> = match actual {
        Some(column) => {
            let col =
                mlops_core::frame::column(&frame, column).with_context(|| format!("{}: --actual", input.display()))?;
            let values = mlops_core::frame::column_values(col)?;
            frame = frame.drop(column).with_context(|| format!("{}: cannot drop `{column}`", input.display()))?;
            Some(
                values
                    .iter()
                    .map(|v| match v.to_json() {
                        serde_json::Value::Number(n) => serde_json::Value::Number(n),
                        serde_json::Value::Null => serde_json::Value::Null,
                        other => {
                            serde_json::Value::String(other.as_str().map_or_else(|| other.to_string(), str::to_string))
                        }
                    })
                    .collect(),
            )
        }
        None => None,
    };
    let rows = mlops_core::frame::rows_from_frame(&frame)?;
    let records: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| serde_json::Value::Object(r.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()))
        .collect();
    let base = url.trim_end_matches('/').to_string();
    let bar = if cli.json || cli.quiet { ProgressBar::hidden() } else { ProgressBar::new(records.len() as u64) };
    let rt = crate::deployment::runtime()?;
    let started = std::time::Instant::now();
    let (sent, feedback) = rt.block_on(async {
        let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build()?;
        // (request id, row) of each file row, in order.
        let mut placed: Vec<(String, u32)> = Vec::with_capacity(records.len());
        for (i, chunk) in records.chunks(per_request).enumerate() {
            if i > 0 && interval_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(interval_ms)).await;
            }
            let body = post_json(&client, &format!("{base}/predict/batch"), &chunk).await?;
            let id =
                body.get("request_id").and_then(|v| v.as_str()).context("the answer has no request_id")?.to_string();
            placed.extend((0..chunk.len() as u32).map(|row| (id.clone(), row)));
            bar.inc(chunk.len() as u64);
        }
        let Some(actuals) = &actuals else { return Ok::<_, anyhow::Error>((placed.len(), None)) };
        let mut body: Vec<serde_json::Value> = placed
            .iter()
            .zip(actuals)
            .filter(|(_, a)| !a.is_null())
            .map(|((id, row), a)| serde_json::json!({"request_id": id, "row": row, "actual": a}))
            .collect();
        let (mut recorded, mut replaced) = (0u64, 0u64);
        // The log's writer records requests within milliseconds: actuals of requests not yet
        // written come back as `unknown` and are sent again, for up to five seconds.
        for attempt in 0..50 {
            let reply = post_json(&client, &format!("{base}/feedback"), &body).await?;
            recorded += reply.get("recorded").and_then(serde_json::Value::as_u64).unwrap_or(0);
            replaced += reply.get("replaced").and_then(serde_json::Value::as_u64).unwrap_or(0);
            let unknown: Vec<usize> = reply
                .get("unknown")
                .and_then(|u| u.as_array())
                .map(|u| {
                    u.iter()
                        .filter_map(|x| x.get("index").and_then(serde_json::Value::as_u64))
                        .map(|i| i as usize)
                        .collect()
                })
                .unwrap_or_default();
            if unknown.is_empty() || attempt == 49 {
                return Ok((placed.len(), Some((recorded, replaced, unknown.len()))));
            }
            body = unknown.iter().filter_map(|&i| body.get(i).cloned()).collect();
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Ok((placed.len(), Some((recorded, replaced, 0))))
    })?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if cli.json {
        print_json(&serde_json::json!({
            "rows": sent, "requests": sent.div_ceil(per_request), "seconds": seconds,
            "feedback": feedback.map(|(r, p, u)| serde_json::json!({"recorded": r, "replaced": p, "unknown": u})),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: {sent} row(s) sent to {base} in {} request(s), {seconds:.2} s",
        input.display(),
        sent.div_ceil(per_request)
    );
    if let Some((recorded, replaced, unknown)) = feedback {
        println!("  feedback: {recorded} actual(s) recorded, {replaced} replaced, {unknown} not found in the log");
    }
    Ok(ExitCode::SUCCESS)
}

/// POSTs `body` as JSON to `url` and answers the JSON reply; an error names the URL, and the
/// status and the server's message when it is not a success.
async fn post_json(client: &reqwest::Client, url: &str, body: &impl serde::Serialize) -> Result<serde_json::Value> {
    let answer = client.post(url).json(body).send().await.with_context(|| format!("{url}: no answer"))?;
    let status = answer.status();
    let reply: serde_json::Value =
        answer.json().await.with_context(|| format!("{url} answered {status} without JSON"))?;
    if !status.is_success() {
        bail!(
            "{url} answered {status}: {}",
            reply.get("message").and_then(|m| m.as_str()).unwrap_or(&reply.to_string())
        );
    }
    Ok(reply)
}

/// Whether a method compares columns of this kind.
fn fits(m: DriftMethod, kind: ColumnKind) -> bool {
    match m {
        DriftMethod::Ks | DriftMethod::Wasserstein | DriftMethod::Psi | DriftMethod::KsOrPsi => {
            kind == ColumnKind::Numeric
        }
        DriftMethod::Chisquare | DriftMethod::Z => kind == ColumnKind::Categorical,
        _ => true,
    }
}

/// A data file as a frame. Parquet is read straight by polars (no lineage: nothing here is a
/// dataset version), other formats by step 1's readers.
fn frame_of(path: &Path) -> Result<DataFrame> {
    let parquet = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    let frame = if parquet {
        use polars::prelude::SerReader;
        let file = std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
        polars::prelude::ParquetReader::new(file)
            .finish()
            .with_context(|| format!("{}: not a Parquet file", path.display()))?
    } else {
        let stem = path.file_stem().map_or_else(|| "data".to_string(), |s| s.to_string_lossy().to_string());
        crate::files::read_file(path, &stem)?.frame
    };
    Ok(frame)
}

fn frame_samples(frame: &DataFrame) -> Result<BTreeMap<String, Sample>> {
    let names = mlops_core::frame::column_names(frame);
    let samples = mlops_core::par::map(&names, |name| -> Result<(String, Sample)> {
        let col = mlops_core::frame::column(frame, name)?;
        let numeric =
            matches!(mlops_core::frame::dtype_of(col.dtype()), Some(mlops_core::DType::Int | mlops_core::DType::Float));
        let sample = if numeric {
            // Straight from the column's buffers: one copy, no value-by-value option.
            let numbers = mlops_core::frame::f64_column(frame, name)?;
            let mut values = Vec::with_capacity(numbers.len() - numbers.null_count());
            for chunk in numbers.downcast_iter() {
                match chunk.validity() {
                    None => values.extend_from_slice(chunk.values()),
                    Some(_) => values.extend(chunk.iter().flatten().copied()),
                }
            }
            Sample::Numeric(Numbers::from_parts(values, numbers.null_count() as u64))
        } else {
            let (codes, dictionary) = mlops_core::frame::key_codes(frame, name)?;
            let mut counts = vec![0u64; dictionary.len()];
            let mut missing = 0;
            for code in codes {
                match code {
                    Some(k) => counts[k as usize] += 1,
                    None => missing += 1,
                }
            }
            let mut c = Categories::new();
            for (value, n) in dictionary.iter().zip(counts) {
                if n > 0 {
                    c.add_many(Some(value), n);
                }
            }
            c.add_many(None, missing);
            Sample::Categorical(c)
        };
        Ok((name.clone(), sample))
    });
    samples.context("a column reader stopped")?.into_iter().collect()
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
