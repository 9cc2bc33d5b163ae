//! Steps 15-17 of the training run on the final models: choose the best by the weighted criteria
//! of `select_best` (and set it against the runner-up on the same test rows), write its package,
//! and register it, the alias moving only when it beats the champion.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use step11_candidates::Model;
use step15_select_best::{Choice, Comparison, Entry, RankOn, SelectParams};

use super::{Holdout, LeaderRow, Plan, Tracking};
use crate::choose::{Comparing, Outputs};
use crate::error::{PipelineError, Result};
use crate::prepare::{Progress, StepSummary};

/// What steps 15-17 give.
pub(super) struct Shipped {
    pub(super) selection: Choice,
    pub(super) comparison: Option<Comparison>,
    pub(super) package: Option<PathBuf>,
    pub(super) registered: Option<crate::register::Registered>,
    /// What packaging found worth a warning (leakage, a road that reads the target).
    pub(super) warnings: Vec<String>,
}

/// Steps 15-17 on the final models (`board` and the fitted `models` by family): choose, package
/// the choice, register it. `raw_rows` are test rows as a server gets them (the input example).
pub(super) fn ship(
    plan: &Plan<'_>,
    tracking: &Tracking<'_>,
    holdout: &Holdout,
    (board, models): (&[LeaderRow], &[(String, &Model)]),
    raw_rows: &[mlops_core::Row],
    progress: &mut dyn Progress,
) -> Result<Shipped> {
    let model_of = |name: &str| models.iter().find(|(n, _)| n == name).map(|(_, m)| *m);
    let (selection, comparison, first) = choose(plan, holdout, board, &model_of, progress)?;
    let chosen = selection
        .winner
        .as_ref()
        .and_then(|w| board.iter().find(|r| &r.model == w))
        .and_then(|row| model_of(&row.model).map(|m| (row, m)));

    let started = Instant::now();
    progress.started("package");
    // The chosen model's test outputs, scored once: in the selection when it compared the first
    // two. The package keeps its predictions; registration compares them with the champion's.
    let outputs = match chosen {
        Some((row, model)) => Some(match first {
            Some(o) if o.name == row.model => o,
            _ => Outputs::of(&row.model, model, &holdout.test.x)?,
        }),
        None => None,
    };
    let (package, warnings) = match (chosen, &outputs) {
        (Some((row, model)), Some(outputs)) => {
            let (dir, warnings) = package(plan, tracking, (row, model), raw_rows, outputs)?;
            (Some(dir), warnings)
        }
        _ => (None, Vec::new()),
    };
    progress.finished(&StepSummary {
        step: "package",
        rows: plan.engineered.train_raw.height(),
        columns: usize::from(package.is_some()),
        seconds: started.elapsed().as_secs_f64(),
        note: package.as_ref().map_or_else(|| "nothing chosen to package".into(), |p| p.display().to_string()),
    });

    // Step 17: register it; the alias moves only if it beats the champion on these test rows.
    let started = Instant::now();
    progress.started("register");
    let registered = match (&package, chosen, &outputs) {
        (Some(dir), Some((row, _)), Some(outputs)) => {
            let target = plan.target;
            let candidate = crate::register::Candidate {
                package: dir,
                outputs,
                test_raw: &plan.engineered.test_raw,
                dataset: plan.paths.dataset.0,
                truth: &holdout.test.y,
                classes: &target.classes,
                target: &target.name,
            };
            let comparing = comparing(plan);
            let registered = crate::register::register(
                &plan.config.register,
                (&plan.model.store, &tracking.child.experiment),
                &candidate,
                &comparing,
            )?;
            tracking
                .store
                .set_tag(&row.run_id, "registered", &registered.uri)
                .map_err(|e| PipelineError::step("train", e))?;
            Some(registered)
        }
        _ => None,
    };
    progress.finished(&StepSummary {
        step: "register",
        rows: holdout.test.x.nrows(),
        columns: usize::from(registered.is_some()),
        seconds: started.elapsed().as_secs_f64(),
        note: registered.as_ref().map_or_else(|| "nothing registered".into(), |r| format!("{} as {}", r.uri, r.alias)),
    });
    Ok(Shipped { selection, comparison, package, registered, warnings })
}

/// How this run compares two models' outputs.
fn comparing<'a>(plan: &Plan<'a>) -> Comparing<'a> {
    Comparing {
        metric: plan.metric,
        classes: plan.target.classes.len(),
        params: &plan.config.select_best.compare,
        seed: plan.config.seed,
    }
}

/// Step 15: the choice, and the chosen model against the runner-up on the same test rows.
fn choose<'m>(
    plan: &Plan<'_>,
    holdout: &Holdout,
    board: &[LeaderRow],
    model_of: &dyn Fn(&str) -> Option<&'m Model>,
    progress: &mut dyn Progress,
) -> Result<(Choice, Option<Comparison>, Option<Outputs>)> {
    let started = Instant::now();
    progress.started("select");
    let on = selected_on(&plan.config.select_best, holdout.validation.is_some());
    let entries: Vec<Entry> = board
        .iter()
        .map(|r| Entry {
            name: r.model.clone(),
            metrics: match on {
                RankOn::Validation => r.validation.clone(),
                RankOn::Test => r.test.clone(),
                // The ranking metric out of fold; any other (a constraint's floor) from the
                // validation part, or the test part without one: only the ranking metric is
                // measured on every fold.
                RankOn::Cv => {
                    let mut m = if r.validation.is_empty() { r.test.clone() } else { r.validation.clone() };
                    m.insert(plan.metric.name(), r.cv_mean);
                    m
                }
            },
            fit_seconds: r.fit_seconds,
            latency_p99_ms: Some(r.latency_p99_ms).filter(|v| v.is_finite()),
            complexity: r.model_bytes as f64,
            cv: Some(r.cv_mean).filter(|v| v.is_finite()),
        })
        .collect();
    let selection = crate::choose::choose(&entries, &plan.config.select_best, plan.metric)?;
    let eligible: Vec<&str> =
        selection.ranked.iter().filter(|r| r.score.is_some()).map(|r| r.name.as_str()).take(2).collect();
    let test = &holdout.test;
    // The first one's outputs go on to registration, which compares it with the champion.
    let (comparison, first) = match eligible.as_slice() {
        [a, b] => match (model_of(a), model_of(b)) {
            (Some(ma), Some(mb)) => {
                let first = Outputs::of(a, ma, &test.x)?;
                let comparison =
                    crate::choose::compare((&first, &Outputs::of(b, mb, &test.x)?), &test.y, &comparing(plan))?;
                (Some(comparison), Some(first))
            }
            _ => (None, None),
        },
        _ => (None, None),
    };
    progress.finished(&StepSummary {
        step: "select",
        rows: test.x.nrows(),
        columns: board.len(),
        seconds: started.elapsed().as_secs_f64(),
        note: match &selection.winner {
            Some(w) => format!(
                "{w} chosen on the {} scores{}",
                on.name(),
                match (selection.tie_broken, selection.tie_won_on) {
                    (true, Some(t)) => format!(" (a tie, won on {})", t.describe()),
                    (true, None) => " (a tie)".to_string(),
                    _ => String::new(),
                }
            ),
            None => "every model breaks a constraint".into(),
        },
    });
    Ok((selection, comparison, first))
}

/// Step 16: the chosen model's package, one per training run next to its other outputs (never
/// over an earlier one), and the warnings its road gave. The package's pipeline starts at the
/// source's columns (the prepare run's operations, then the features), so a caller sends records
/// as they arrive.
fn package(
    plan: &Plan<'_>,
    tracking: &Tracking<'_>,
    (row, model): (&LeaderRow, &Model),
    raw_rows: &[mlops_core::Row],
    test_outputs: &Outputs,
) -> Result<(PathBuf, Vec<String>)> {
    let (target, metric, child) = (plan.target, plan.metric, tracking.child);
    let outputs = crate::package::outputs(target.task, &target.classes);
    let road = crate::package::road(plan.paths.prepared, &plan.engineered.pipeline, plan.features, &target.name)?;
    let (signature, profile, input_example) = match (&road.inputs, plan.paths.prepared.and_then(|p| p.source.as_ref()))
    {
        (Some(inputs), Some(source)) => {
            let names: Vec<&str> = inputs.iter().map(|c| c.name.as_str()).collect();
            let example = source
                .examples
                .iter()
                .map(|r| {
                    r.iter().filter(|(k, _)| names.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
                })
                .collect();
            let profile = crate::package::profile(&plan.engineered.train_raw, &target.name)?;
            (mlops_core::Signature { inputs: inputs.clone(), outputs }, profile, example)
        }
        _ => {
            let (signature, profile) =
                crate::package::signature_and_profile(&plan.engineered.train_raw, &target.name, outputs)?;
            (signature, profile, crate::package::example(raw_rows))
        }
    };
    let mut warnings = road.warnings;
    let reference = step16_package::ReferenceData {
        rows: reference_rows(plan, &road.pipeline, road.source_ops, &signature, &mut warnings)?,
        predictions: Some(crate::reference::to_parquet(&crate::reference::predictions_frame(
            &test_outputs.predicted,
            &target.classes,
        ))?),
    };
    let mut metrics: BTreeMap<String, f64> = row.test.iter().map(|(k, v)| (format!("test_{k}"), *v)).collect();
    metrics.extend(row.validation.iter().map(|(k, v)| (format!("validation_{k}"), *v)));
    metrics.insert(format!("cv_{}_mean", metric.name()), row.cv_mean);
    metrics.insert(format!("cv_{}_std", metric.name()), row.cv_std);
    let parent = child.parent.as_deref().unwrap_or_default();
    let contents = step16_package::PackageContents {
        info: step16_package::ModelInfo {
            source_ops: road.source_ops,
            ..crate::package::info(&row.model, row.params.clone(), target, plan.features)
        },
        model: model.clone(),
        pipeline: road.pipeline,
        signature,
        metrics,
        profile,
        lineage: step16_package::Lineage {
            split: Some(serde_json::json!({
                "seed": plan.config.seed, "select": plan.config.select, "split": plan.config.split,
            })),
            ..crate::package::lineage(&row.run_id, parent, plan.paths.dataset.0, child.config_sha256.clone())
        },
        importances: crate::evaluate::named_importances(model, plan.features),
        input_example,
        reference,
    };
    let home = child.parent.as_deref().unwrap_or(&row.run_id);
    let dir = crate::package::write(&plan.model.artifacts.join(home).join("package"), &contents)?;
    tracking.store.log_artifact(&row.run_id, "package", &dir).map_err(|e| PipelineError::step("train", e))?;
    Ok((dir, warnings))
}

/// The training rows as a caller sends them (see [`crate::reference`]), as Parquet; `None`, with
/// a warning, when the run did not read the source or the package takes curated rows.
fn reference_rows(
    plan: &Plan<'_>,
    pipeline: &mlops_core::FeaturePipeline,
    source_ops: Option<usize>,
    signature: &mlops_core::Signature,
    warnings: &mut Vec<String>,
) -> Result<Option<Vec<u8>>> {
    let inputs: Vec<String> = signature.inputs.iter().map(|c| c.name.clone()).collect();
    let kept = match (plan.paths.source, source_ops) {
        (Some(source), Some(n)) => {
            let prepare = mlops_core::FeaturePipeline {
                ops: pipeline.ops.iter().take(n).cloned().collect(),
                ..mlops_core::FeaturePipeline::new()
            };
            crate::reference::training_rows(
                source,
                &inputs,
                &prepare,
                &plan.engineered.train_raw,
                &plan.target.name,
                plan.config.seed,
            )?
        }
        // Curated rows are what a caller sends: the training part is the reference.
        (_, None) => Some(crate::reference::sampled_rows(&plan.engineered.train_raw, &inputs, plan.config.seed)?),
        (None, Some(_)) => {
            warnings.push("the run did not read the sources (a dataset version was named): the package keeps no reference rows, and monitoring compares the model's features only (against the catalog's training part)".into());
            None
        }
    };
    let Some(kept) = kept else { return Ok(None) };
    let wanted = plan.engineered.train_raw.height().min(crate::reference::MAX_ROWS);
    if kept.frame.height() * 10 < wanted * 9 {
        warnings.push(format!(
            "reference rows: {} of {wanted} training rows were found among {} source rows (the prepare operations change values a row cannot be traced by)",
            kept.frame.height(),
            kept.visited
        ));
    }
    tracing::info!(rows = kept.frame.height(), visited = kept.visited, "reference rows kept");
    crate::reference::to_parquet(&kept.frame).map(Some)
}

/// Raw test rows as a server would get them: before the features, without the target.
pub(super) fn server_rows(engineered: &crate::features::Engineered, target: &str) -> Result<Vec<mlops_core::Row>> {
    let mut rows = mlops_core::frame::rows_from_frame(&engineered.test_raw.head(Some(LATENCY_ROWS)))
        .map_err(|e| PipelineError::step("select", e))?;
    rows.iter_mut().for_each(|r| {
        r.remove(target);
    });
    Ok(rows)
}

/// Raw test rows whose single-row latency is measured (cycled through 200 calls).
const LATENCY_ROWS: usize = 50;

/// Whose scores step 15 ranks by: `rank_on`, with the validation part's falling back to the
/// out-of-fold scores when the split has no validation part (the test part stays for the report).
pub(super) fn selected_on(params: &SelectParams, validation: bool) -> RankOn {
    match params.rank_on {
        RankOn::Validation if !validation => RankOn::Cv,
        RankOn::Test if validation => RankOn::Validation,
        on => on,
    }
}
