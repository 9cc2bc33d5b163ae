//! `mlops lifecycle`: step 23's commands. `run` evaluates the policy's triggers, retrains through
//! `mlops train` (a child process, tracked as a child of the lifecycle's own run), gates the
//! challenger, promotes it or keeps the champion, and applies retention; `status`, `rollback`,
//! `retire` and `schedule` show and change one model's lifecycle by hand.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use mlops_core::table::Table;
use step17_registry::Version;
use step22_monitor::{ModelRef, Window, parse_span};
use step23_lifecycle::{
    LifecycleError, LifecyclePolicy, LifecycleReport, Outcome, RetentionStep, RetrainData, Retrained,
};

use crate::output::print_json;
use crate::{Cli, LifecycleArgs, LifecycleCommand};

/// `run`'s exit codes besides 0 (nothing due, or a challenger promoted) and 1 (the run failed).
const KEPT: u8 = 2;
const RETRAIN_FAILED: u8 = 3;
const LOCKED: u8 = 4;

/// The policy: the file named, or defaults when the default file is absent. Errors name the
/// file, the key and the line.
fn load_policy(args: &LifecycleArgs) -> Result<LifecyclePolicy> {
    let named = args.config != Path::new("configs/lifecycle.yaml");
    let mut policy = if !args.config.is_file() && !named {
        LifecyclePolicy::default()
    } else {
        let policy: LifecyclePolicy = mlops_core::config::load_yaml(&args.config)?;
        policy.check().map_err(|e| match e {
            LifecycleError::Config { key, message } => {
                anyhow::Error::new(mlops_core::config::invalid(&args.config, key, message))
            }
            other => anyhow::anyhow!("{}: {other}", args.config.display()),
        })?;
        policy
    };
    if let Some(store) = &args.store {
        policy.store = store.clone();
    }
    if mlops_core::store::Location::from_path(&policy.store).is_missing_file() {
        bail!("{}: no store there (train and register a model first, or check --store)", policy.store.display());
    }
    Ok(policy)
}

fn model_name(policy: &LifecyclePolicy, name: Option<&String>, config: &Path) -> Result<String> {
    match name.or(policy.model.as_ref()) {
        Some(n) => {
            step17_registry::validate_name(n)?;
            Ok(n.clone())
        }
        None => bail!("which model? Name it (mlops lifecycle run NAME) or set `model` in {}", config.display()),
    }
}

pub(crate) fn lifecycle_cmd(cli: &Cli, args: &LifecycleArgs) -> Result<ExitCode> {
    let policy = load_policy(args)?;
    match &args.command {
        LifecycleCommand::Run { name } => run(cli, &policy, &model_name(&policy, name.as_ref(), &args.config)?),
        LifecycleCommand::Status { name } => status(cli, &policy, &model_name(&policy, name.as_ref(), &args.config)?),
        LifecycleCommand::Rollback { name, reason } => {
            let name = model_name(&policy, name.as_ref(), &args.config)?;
            let (from, to) = step23_lifecycle::rollback(&policy, &name, reason)?;
            let followed = follow_deployments(cli, &policy, &name, (from, to));
            // A rollback is not gated (it is the way out), but it says whom it may refuse.
            let warnings: Vec<String> = match pipelines::new_requirements(&policy, &name, (from, to)) {
                Ok(columns) if columns.is_empty() => Vec::new(),
                Ok(columns) => vec![format!(
                    "version {to} requires `{}`, which version {from} let callers leave out: a caller that sends only version {from}'s columns is refused (400) until it sends them",
                    columns.join("`, `")
                )],
                Err(e) => vec![format!("the two signatures could not be compared: {e}")],
            };
            if cli.json {
                print_json(&serde_json::json!({
                    "model": name, "alias": policy.alias, "from": from, "to": to, "deployments": followed,
                    "warnings": warnings
                }))?;
            } else {
                println!("{name}: `{}` moved back from version {from} to version {to} ({reason})", policy.alias);
                for w in &warnings {
                    println!("warning: {w}");
                }
                print_followed(&followed);
            }
            Ok(if followed.iter().all(|f| f.error.is_none()) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        LifecycleCommand::Retire { name, version, reason } => {
            let served = served(&policy, name)?;
            step23_lifecycle::retire(&policy, name, *version, reason, &served)?;
            if cli.json {
                print_json(&serde_json::json!({"model": name, "version": version, "retired": true, "reason": reason}))?;
            } else {
                println!("{name} version {version} retired ({reason})");
            }
            Ok(ExitCode::SUCCESS)
        }
        LifecycleCommand::Schedule { name, cron } => {
            schedule(cli, &policy, &model_name(&policy, name.as_ref(), &args.config)?, (cron, &args.config))
        }
    }
}

fn served(policy: &LifecyclePolicy, name: &str) -> Result<Vec<u32>> {
    let deployments = step19_deploy::Deployments::open(&policy.store)?;
    Ok(deployments.all_serving()?.into_iter().filter(|d| d.model == name).filter_map(|d| d.version).collect())
}

/// The version tag naming the training config a lifecycle retraining started from (its own
/// lineage records the derived config it ran).
const BASE_CONFIG_TAG: &str = "lifecycle.training_config_sha256";

/// The training config's hash, checked against the one the champion's lineage records (or, for
/// a champion a lifecycle run retrained, the config that retraining started from). Answers it.
fn check_training_config(policy: &LifecyclePolicy, champion: &Version) -> std::result::Result<String, String> {
    let path = &policy.training;
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e} (the policy's `training`)", path.display()))?;
    let sha = mlops_core::hash::to_hex(&mlops_core::hash::sha256_bytes(&bytes));
    if champion.tags.get(BASE_CONFIG_TAG) == Some(&sha) {
        return Ok(sha);
    }
    let dir = step17_registry::Registry::open(&policy.store, &policy.artifacts, "lifecycle")
        .and_then(|r| r.package_dir(champion))
        .map_err(|e| e.to_string())?;
    let package = step16_package::load(&dir).map_err(|e| e.to_string())?;
    match package.contents.lineage.config_sha256 {
        Some(recorded) if recorded != sha => Err(format!(
            "{} is not the config that trained version {} (SHA-256 {}, the lineage records {}): retrain it by hand with `mlops train`",
            path.display(),
            champion.version,
            &sha[..12],
            &recorded[..recorded.len().min(12)]
        )),
        _ => Ok(sha),
    }
}

/// `mlops train` as a child process: the same binary, the policy's training config (or one
/// derived from it whose primary source has the labelled rows appended), the new version under
/// the challenger alias, the training run a child of `parent`.
fn retrain_child(
    cli: &Cli,
    policy: &LifecyclePolicy,
    champion: &Version,
    parent: &str,
) -> std::result::Result<Retrained, String> {
    let base_sha = check_training_config(policy, champion)?;
    let data = match policy.retrain.data {
        // The child's own prepare run reads the sources.
        RetrainData::Sources => pipelines::RetrainingData {
            training: policy.training.clone(),
            rows: 0,
            appended: 0,
            unknown_labels: 0,
            target_column: None,
            eased: Vec::new(),
        },
        mode => {
            let since = Window {
                from: chrono::DateTime::parse_from_rfc3339(&champion.created_at).ok().map(|t| t.to_utc()),
                to: None,
            };
            let model = ModelRef { name: champion.name.clone(), version: None };
            // The gate's share of the labelled rows stays out of the training data.
            let labelled: Vec<_> = step22_monitor::read_labelled_rows(&policy.store, &model, &since)
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|r| !step23_lifecycle::in_holdout(&r.request_id, r.row, policy.gate.holdout))
                .collect();
            let interim = pipelines::TrainingConfig::load(&policy.training).map_err(|e| e.to_string())?.interim;
            let dir = interim.join("lifecycle").join(parent);
            pipelines::retraining_data(&policy.training, mode, &labelled, &dir).map_err(|e| e.to_string())?
        }
    };
    let described = match &data.target_column {
        None => "the data config's sources as they are".to_string(),
        Some(column) => format!(
            "{} rows: the sources and {} labelled row(s) since version {} was registered (labels in `{column}`{}{}), from {}",
            data.rows,
            data.appended,
            champion.version,
            if data.unknown_labels > 0 {
                format!("; {} with a label the source does not know left out", data.unknown_labels)
            } else {
                String::new()
            },
            if data.eased.is_empty() {
                String::new()
            } else {
                format!("; for the columns the server never sees: {}", data.eased.join(", "))
            },
            data.training.display()
        ),
    };
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program to run `mlops train`: {e}"))?;
    let output = std::process::Command::new(exe)
        .arg("--quiet")
        .arg("--json")
        .arg("--log-dir")
        .arg(&cli.log_dir)
        .arg("train")
        .arg("--config")
        .arg(&data.training)
        .args(["--register-as", &policy.challenger_alias, "--parent-run", parent])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot start `mlops train`: {e}"))?;
    if !output.status.success() {
        // With --json the error is a JSON object on stdout; say its message, else stderr's end.
        let said: Option<serde_json::Value> = serde_json::from_slice(&output.stdout).ok();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let mut tail: Vec<&str> = stderr.lines().rev().take(6).collect::<Vec<_>>().into_iter().rev().collect();
        if let Some(message) = said.as_ref().and_then(|s| s["error"].as_str()) {
            tail = vec![message];
        }
        return Err(format!(
            "`mlops train --config {}` failed ({}): {}",
            data.training.display(),
            output.status,
            tail.join(" | ")
        ));
    }
    let trained: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("`mlops train --json` printed no JSON summary: {e}"))?;
    let version = trained["registered"]["version"]
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| "the training run registered no model (its config has no `register` target?)".to_string())?;
    // The retrained version names the config it started from, so that the next lifecycle run
    // accepts it as the champion's.
    if version != champion.version {
        step17_registry::Registry::open(&policy.store, &policy.artifacts, &pipelines::actor())
            .and_then(|mut r| r.set_tag(&champion.name, Some(version), BASE_CONFIG_TAG, &base_sha))
            .map_err(|e| e.to_string())?;
    }
    Ok(Retrained { version, run_id: trained["run_id"].as_str().unwrap_or_default().to_string(), data: described })
}

fn run(cli: &Cli, policy: &LifecyclePolicy, name: &str) -> Result<ExitCode> {
    let now = chrono::Utc::now();
    let monitoring =
        super::monitor::load_config(&policy.monitoring, policy.monitoring != Path::new("configs/monitoring.yaml"))?;
    let span = parse_span(&monitoring.window.last)
        .map_err(|m| anyhow::anyhow!("{}: window.last: {m}", policy.monitoring.display()))?;
    let window = Window::last(span, now);
    // The training config's constraints, when it can be read (retraining says why when not).
    let training = pipelines::TrainingConfig::load(&policy.training).ok();
    let constraints = training
        .as_ref()
        .map(|t| (t.select_best.constraints.min.clone(), t.select_best.constraints.max.clone()))
        .unwrap_or_default();
    // The lifecycle's own tracked run, the parent of any training run it starts.
    let runs_store =
        training.as_ref().and_then(|t| t.model.as_ref()).map_or_else(|| policy.store.clone(), |m| m.store.clone());
    let tracking = step12_training::Store::open(&runs_store)?;
    let tracked = tracking.start_run(&step12_training::RunInfo {
        experiment: format!("lifecycle-{name}"),
        name: "lifecycle".into(),
        ..Default::default()
    })?;
    let retrain: pipelines::Retrain<'_> = Box::new(|champion: &Version| retrain_child(cli, policy, champion, &tracked));
    let mut env = pipelines::ToolkitEnvironment::new(policy, &monitoring, (window, now), constraints, retrain);
    let outcome = step23_lifecycle::run(policy, name, &mut env, now);
    let status =
        if outcome.is_ok() { step12_training::RunStatus::Finished } else { step12_training::RunStatus::Failed };
    let error = outcome.as_ref().err().map(ToString::to_string);
    tracking.finish(&tracked, status, error.as_deref())?;
    let report = match outcome {
        Ok(r) => r,
        Err(e @ LifecycleError::Locked { .. }) => {
            crate::output::print_error(&anyhow::Error::new(e), cli.json);
            return Ok(ExitCode::from(LOCKED));
        }
        Err(e) => return Err(e.into()),
    };
    tracking.set_tag(&tracked, "outcome", report.outcome.name())?;
    let followed = if report.champion.0 == report.champion.1 {
        Vec::new()
    } else {
        follow_deployments(cli, policy, name, report.champion)
    };
    if cli.json {
        let mut value = serde_json::to_value(&report)?;
        value["deployments"] = serde_json::to_value(&followed)?;
        print_json(&value)?;
    } else {
        print_report(&report, policy);
        print_followed(&followed);
    }
    if followed.iter().any(|f| f.error.is_some()) {
        return Ok(ExitCode::FAILURE);
    }
    Ok(match report.outcome {
        Outcome::NothingDue | Outcome::Promoted | Outcome::Shadowing => ExitCode::SUCCESS,
        Outcome::Kept => ExitCode::from(KEPT),
        Outcome::RetrainFailed => ExitCode::from(RETRAIN_FAILED),
        Outcome::Failed => ExitCode::FAILURE,
    })
}

/// A local deployment moved to the new champion (or not).
#[derive(serde::Serialize)]
struct Followed {
    endpoint: String,
    from: u32,
    to: u32,
    error: Option<String>,
}

/// Local deployments pin the version they started with: every one serving `from` of `name` is
/// replaced by `to` through `mlops deploy local` (blue/green: the new server takes traffic only
/// once ready, so no request fails). A running `mlops serve` follows the alias by itself.
fn follow_deployments(cli: &Cli, policy: &LifecyclePolicy, name: &str, (from, to): (u32, u32)) -> Vec<Followed> {
    let serving = step19_deploy::Deployments::open(&policy.store).and_then(|d| d.all_serving());
    let serving = match serving {
        Ok(s) => s,
        Err(e) => {
            return vec![Followed { endpoint: "-".into(), from, to, error: Some(format!("deployment records: {e}")) }];
        }
    };
    let mut out = Vec::new();
    for d in serving.into_iter().filter(|d| d.model == name && d.version == Some(from)) {
        let Some((host, port)) = d.endpoint.rsplit_once(':') else { continue };
        let exe = std::env::current_exe();
        let run = exe.map_err(|e| e.to_string()).and_then(|exe| {
            std::process::Command::new(exe)
                .args(["--quiet", "--json", "--log-dir"])
                .arg(&cli.log_dir)
                .args(["deploy", "local", "--host", host, "--port", port, "--model", &format!("models:/{name}/{to}")])
                .stdin(std::process::Stdio::null())
                .output()
                .map_err(|e| e.to_string())
        });
        let error = match run {
            Ok(o) if o.status.success() => None,
            Ok(o) => {
                let said: Option<serde_json::Value> = serde_json::from_slice(&o.stdout).ok();
                Some(said.and_then(|s| s["error"].as_str().map(str::to_string)).unwrap_or_else(|| {
                    String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or_default().to_string()
                }))
            }
            Err(e) => Some(format!("cannot start `mlops deploy local`: {e}")),
        };
        out.push(Followed { endpoint: d.endpoint.clone(), from, to, error });
    }
    out
}

fn print_followed(followed: &[Followed]) {
    for f in followed {
        match &f.error {
            None => println!("deployment {}: now serves version {} (was {}), blue/green", f.endpoint, f.to, f.from),
            Some(e) => println!(
                "deployment {}: still serves version {}; replacing it with version {} failed: {e}",
                f.endpoint, f.from, f.to
            ),
        }
    }
}

fn print_report(r: &LifecycleReport, policy: &LifecyclePolicy) {
    let mut t = Table::new(["stage", "result"]);
    let facts = &r.facts;
    t.row([
        "monitoring".to_string(),
        match facts.dataset_drift {
            None => "nothing logged in the window".into(),
            Some(d) => format!(
                "dataset drift: {}{}; {} labelled row(s) since registration",
                if d { "yes" } else { "no" },
                if facts.drifted_columns.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", facts.drifted_columns.join(", "))
                },
                facts.new_labelled_rows
            ),
        },
    ]);
    let triggers = if r.triggers.is_empty() {
        "none holds".to_string()
    } else {
        r.triggers.iter().map(|t| t.reason.clone()).collect::<Vec<_>>().join("; ")
    };
    t.row(["triggers".to_string(), triggers]);
    if let Some(re) = &r.retrained {
        t.row([
            "retrain".to_string(),
            format!(
                "version {} (training run {}) as `{}`, on {}",
                re.version, re.run_id, policy.challenger_alias, re.data
            ),
        ]);
    }
    if let Some(g) = &r.gate {
        t.row(["gate".to_string(), format!("{}: {}", if g.passed { "passed" } else { "closed" }, g.reason)]);
    }
    for step in &r.retention {
        let text = match step {
            RetentionStep::Retire { version, reason } => format!("version {version} retired: {reason}"),
            RetentionStep::DeleteArtifacts { version, reason, .. } => {
                format!("version {version}'s package deleted: {reason}")
            }
        };
        t.row(["retention".to_string(), text]);
    }
    print!("{t}");
    println!(
        "\n{}: {} (`{}`: version {} -> {}): {}",
        r.model,
        r.outcome.name(),
        policy.alias,
        r.champion.0,
        r.champion.1,
        r.reason
    );
}

/// The newest monitoring report of `name` version `version` under `reports` (`monitor.json`,
/// as `mlops monitor` writes it), as a line: when, dataset drift, accuracy against the baseline.
fn last_monitoring(reports: &Path, name: &str, version: u32) -> Option<(String, serde_json::Value)> {
    let dir = reports.join(format!("{name}-v{version}"));
    let newest = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("monitor.json")))
        .filter_map(|p| p.metadata().and_then(|m| m.modified()).ok().map(|t| (t, p)))
        .max()?
        .1;
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&newest).ok()?).ok()?;
    let drift = match json["inputs"]["dataset_drift"].as_bool() {
        Some(d) => format!(
            "dataset drift {} ({} of {} columns)",
            if d { "yes" } else { "no" },
            json["inputs"]["drifted"],
            json["inputs"]["columns"].as_array().map_or(0, Vec::len)
        ),
        None => "no drift measured".into(),
    };
    let accuracy = match (json["accuracy"]["overall"]["accuracy"].as_f64(), json["baseline"]["accuracy"].as_f64()) {
        (Some(a), Some(b)) => format!(", accuracy {a:.4} (baseline {b:.4})"),
        _ => String::new(),
    };
    let line = format!("{}: {drift}{accuracy} ({})", json["at"].as_str().unwrap_or("?"), newest.display());
    Some((line, json))
}

fn status(cli: &Cli, policy: &LifecyclePolicy, name: &str) -> Result<ExitCode> {
    let s = step23_lifecycle::status(policy, name)?;
    let reports = super::monitor::load_config(&policy.monitoring, false).map(|m| m.reports).unwrap_or_default();
    let monitoring = s.champion.and_then(|v| last_monitoring(&reports, name, v));
    let alerts = match s.champion {
        Some(v) => step22_monitor::alerts::open_alerts(
            &policy.store,
            &pipelines::model_key(&ModelRef { name: name.into(), version: Some(v) }),
        )?,
        None => Vec::new(),
    };
    if cli.json {
        let open: Vec<_> = alerts
            .iter()
            .map(|(n, sev, msg, at)| serde_json::json!({"name": n, "severity": sev, "message": msg, "opened_at": at}))
            .collect();
        let mut value = serde_json::to_value(&s)?;
        value["open_alerts"] = serde_json::Value::Array(open);
        value["last_monitoring"] = monitoring.as_ref().map_or(serde_json::Value::Null, |(line, json)| {
            serde_json::json!({"summary": line, "at": json["at"], "dataset_drift": json["inputs"]["dataset_drift"],
                "accuracy": json["accuracy"]["overall"]["accuracy"], "baseline": json["baseline"]["accuracy"]})
        });
        print_json(&value)?;
        return Ok(ExitCode::SUCCESS);
    }
    let v = |x: Option<u32>| x.map_or_else(|| "-".to_string(), |v| v.to_string());
    let mut t = Table::new(["model".to_string(), s.model.clone()]);
    t.row([
        "versions".to_string(),
        format!("{} ({} active, {} retired)", s.versions_total, s.versions_active, s.versions_retired),
    ]);
    t.row(["latest".to_string(), v(s.latest)]);
    t.row([format!("champion (`{}`)", policy.alias), v(s.champion)]);
    t.row([format!("challenger (`{}`)", policy.challenger_alias), v(s.challenger)]);
    t.row([
        "last lifecycle run".to_string(),
        s.last_run.as_ref().map_or_else(
            || "none".to_string(),
            |r| {
                format!(
                    "#{} at {}: {} ({})",
                    r.id,
                    r.finished_at.as_deref().unwrap_or("?"),
                    r.outcome.map_or("?", Outcome::name),
                    r.reason.as_deref().unwrap_or("")
                )
            },
        ),
    ]);
    t.row([
        "last monitoring".to_string(),
        monitoring.map_or_else(
            || match s.champion {
                Some(v) => format!("none of version {v} yet (mlops monitor writes it)"),
                None => "none (mlops monitor writes it)".to_string(),
            },
            |(line, _)| line,
        ),
    ]);
    t.row([
        "open alerts".to_string(),
        if alerts.is_empty() {
            "none".into()
        } else {
            alerts.iter().map(|(n, sev, _, at)| format!("{n} ({sev:?}, since {at})")).collect::<Vec<_>>().join("; ")
        },
    ]);
    t.row([
        "next scheduled retraining".to_string(),
        s.next_retraining.clone().unwrap_or_else(|| "no schedule (triggers.max_age_days)".into()),
    ]);
    print!("{t}");
    Ok(ExitCode::SUCCESS)
}

fn schedule(cli: &Cli, policy: &LifecyclePolicy, name: &str, (cron, config): (&str, &Path)) -> Result<ExitCode> {
    let fields = cron.split_whitespace().count();
    if fields != 5 {
        bail!("--cron `{cron}`: a crontab schedule has 5 fields (minute hour day month weekday), not {fields}");
    }
    let s = step23_lifecycle::status(policy, name)?;
    let dir = std::env::current_dir().context("cannot read the current directory")?;
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("mlops"));
    let line = format!(
        "{cron} cd {} && {} lifecycle --config {} run {name} >> logs/lifecycle.log 2>&1",
        dir.display(),
        exe.display(),
        config.display()
    );
    let triggers = &policy.triggers;
    let mut due = BTreeMap::new();
    due.insert(
        "dataset_drift",
        if triggers.dataset_drift {
            "every run: when monitoring finds dataset drift".to_string()
        } else {
            "off".into()
        },
    );
    due.insert(
        "performance_drop",
        triggers
            .performance_drop
            .map_or_else(|| "off".into(), |d| format!("every run: a drop of more than {}", d.more_than)),
    );
    due.insert("max_age_days", s.next_retraining.clone().map_or_else(|| "off".into(), |t| format!("due {t}")));
    due.insert(
        "new_labelled_rows",
        triggers
            .new_labelled_rows
            .map_or_else(|| "off".into(), |n| format!("every run: at least {n} new labelled rows")),
    );
    if cli.json {
        print_json(
            &serde_json::json!({"model": name, "triggers": due, "next_retraining": s.next_retraining, "crontab": line}),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(["trigger", "when"]);
    for (k, v) in &due {
        t.row([k.to_string(), v.clone()]);
    }
    print!("{t}");
    println!("\nA crontab line that runs the lifecycle ({cron}):\n{line}");
    Ok(ExitCode::SUCCESS)
}
