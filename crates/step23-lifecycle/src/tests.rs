//! Unit tests: the policy's checks, triggers, the gate, retention, the lock, and whole runs,
//! rollbacks and retirements against a real registry, with the training run stood in for by a
//! test environment that registers a package.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../step17-registry/src/fixture.rs"]
mod fixture;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{Duration, TimeZone, Utc};
use step14_evaluate::Metric;
use step17_registry::{RegisterInfo, Registry, Version};

use crate::*;

fn config_error(yaml: &str) -> String {
    let policy: LifecyclePolicy = mlops_core::config::parse_yaml(yaml, Path::new("lifecycle.yaml")).unwrap();
    match policy.check() {
        Err(LifecycleError::Config { key, message }) => format!("{key}: {message}"),
        other => panic!("{yaml}: {other:?}"),
    }
}

#[test]
fn a_policy_reads_from_yaml_and_bad_values_name_their_key() {
    let yaml = "model: churn\ntriggers:\n  dataset_drift: false\n  performance_drop: {metric: f1, more_than: 0.02}\n  max_age_days: 30\n  new_labelled_rows: 500\ngate: {metric: roc_auc, margin: 0.01, min_labelled_rows: 50}\nretention: {keep_last: 3, keep_days: 90, grace_days: 2}\n";
    let p: LifecyclePolicy = mlops_core::config::parse_yaml(yaml, Path::new("lifecycle.yaml")).unwrap();
    p.check().unwrap();
    assert_eq!(p.triggers.performance_drop.unwrap().metric, Some(Metric::F1));
    assert_eq!((p.retention.keep_last, p.retention.keep_days, p.retention.grace_days), (3, Some(90), 2));
    assert_eq!(p.alias, "champion");
    assert!(config_error("gate: {margin: -1}").starts_with("gate.margin: -1"));
    assert!(
        config_error("triggers: {performance_drop: {more_than: 0}}").starts_with("triggers.performance_drop.more_than")
    );
    assert!(config_error("triggers: {max_age_days: 0}").starts_with("triggers.max_age_days"));
    assert!(config_error("retention: {keep_last: 0}").starts_with("retention.keep_last"));
    assert!(config_error("challenger_alias: champion").contains("also the serving alias"));
    assert!(config_error("model: ../etc").starts_with("model:"));
    assert!(config_error("retrain: {data: {window: {rows: 0}}}").starts_with("retrain.data.window.rows"));
    assert!(config_error("gate: {holdout: 1.0}").starts_with("gate.holdout"));
    let p: LifecyclePolicy =
        mlops_core::config::parse_yaml("retrain: {data: {window: {rows: 150}}}", Path::new("l.yaml")).unwrap();
    assert_eq!(p.retrain.data, RetrainData::Window { rows: 150 });
    assert_eq!(LifecyclePolicy::default().retrain.data, RetrainData::Append);
    // Unknown keys and wrong types fail in the parser, naming the key.
    let err = mlops_core::config::parse_yaml::<LifecyclePolicy>("gate: {margn: 0.1}", Path::new("lifecycle.yaml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("lifecycle.yaml") && err.contains("margn"), "{err}");
    let err = mlops_core::config::parse_yaml::<LifecyclePolicy>("gate: {metric: speed}", Path::new("lifecycle.yaml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("gate.metric"), "{err}");
}

fn facts() -> Facts {
    Facts {
        dataset_drift: Some(false),
        metrics: BTreeMap::from([("accuracy".into(), 0.93), ("rmse".into(), 1.0)]),
        baseline: BTreeMap::from([("accuracy".into(), 0.95), ("rmse".into(), 1.0)]),
        registered: Some(Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()),
        ..Facts::default()
    }
}

#[test]
fn triggers_hold_with_their_reasons_and_an_error_that_rises_is_a_drop() {
    let now = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
    let policy = Triggers::default();
    assert!(evaluate_triggers(&policy, &facts(), now).is_empty(), "a 0.02 fall is within 0.05");
    let mut f = facts();
    f.dataset_drift = Some(true);
    f.drifted_columns = vec!["flipper".into(), "mass".into()];
    f.metrics.insert("accuracy".into(), 0.85);
    let held = evaluate_triggers(&policy, &f, now);
    let kinds: Vec<TriggerKind> = held.iter().map(|t| t.kind).collect();
    assert_eq!(kinds, [TriggerKind::DatasetDrift, TriggerKind::PerformanceDrop]);
    assert!(held[0].reason.contains("2 column(s): flipper, mass"), "{}", held[0].reason);
    assert!(held[1].reason.contains("accuracy 0.8500 against 0.9500"), "{}", held[1].reason);
    // Errors are worse when they rise.
    let rmse = Triggers {
        performance_drop: Some(PerformanceDrop { metric: Some(Metric::Rmse), more_than: 0.5 }),
        ..Triggers::default()
    };
    let mut f = facts();
    f.metrics.insert("rmse".into(), 1.6);
    assert_eq!(evaluate_triggers(&rmse, &f, now)[0].kind, TriggerKind::PerformanceDrop);
    f.metrics.insert("rmse".into(), 0.2);
    assert!(evaluate_triggers(&rmse, &f, now).is_empty(), "a falling error is no drop");
    // Age and new labels.
    let schedule = Triggers { max_age_days: Some(14), new_labelled_rows: Some(100), ..Triggers::default() };
    let mut f = facts();
    f.new_labelled_rows = 100;
    let kinds: Vec<TriggerKind> = evaluate_triggers(&schedule, &f, now).iter().map(|t| t.kind).collect();
    assert_eq!(kinds, [TriggerKind::Age, TriggerKind::NewLabels]);
    assert_eq!(
        next_scheduled(&schedule, facts().registered.unwrap()),
        Some(Utc.with_ymd_and_hms(2026, 11, 15, 0, 0, 0).unwrap())
    );
    // Nothing logged is no drift.
    let mut f = facts();
    f.dataset_drift = None;
    assert!(evaluate_triggers(&policy, &f, now).is_empty());
}

fn scored(version: u32, metrics: &[(&str, f64)], rows: u64) -> Scored {
    Scored {
        version,
        metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        rows,
        refused: BTreeMap::new(),
    }
}

#[test]
fn a_challenger_that_would_refuse_rows_the_champion_takes_is_kept_out_unless_allowed() {
    let none = BTreeMap::new();
    let mut champion = scored(1, &[("accuracy", 0.80)], 200);
    champion.refused.insert("Island".into(), 1);
    let mut challenger = scored(2, &[("accuracy", 0.95)], 200);
    challenger.refused = BTreeMap::from([("Island".to_string(), 1), ("Clutch Completion".to_string(), 12)]);
    let g = decide_gate(&GateParams::default(), Metric::Accuracy, (&champion, &challenger), (&none, &none));
    assert!(!g.passed, "{}", g.reason);
    assert!(g.reason.contains("would refuse 13") && g.reason.contains("`Clutch Completion` in 12"), "{}", g.reason);
    assert!(!g.reason.contains("`Island`"), "the champion refuses that row too: {}", g.reason);
    let allowed = GateParams { allow_new_refusals: true, ..GateParams::default() };
    assert!(decide_gate(&allowed, Metric::Accuracy, (&champion, &challenger), (&none, &none)).passed);
    // Refusing no more than the champion does is no regression.
    challenger.refused = champion.refused.clone();
    assert!(decide_gate(&GateParams::default(), Metric::Accuracy, (&champion, &challenger), (&none, &none)).passed);
}

#[test]
fn the_gate_wants_a_strict_win_by_the_margin_enough_rows_and_the_constraints() {
    let none = BTreeMap::new();
    let params = GateParams { margin: 0.02, ..GateParams::default() };
    let champion = scored(1, &[("accuracy", 0.90), ("recall", 0.9)], 200);
    let gate = |b: f64, floors: &BTreeMap<String, f64>| {
        decide_gate(
            &params,
            Metric::Accuracy,
            (&champion, &scored(2, &[("accuracy", b), ("recall", 0.7)], 200)),
            (floors, &none),
        )
    };
    assert!(gate(0.93, &none).passed);
    let g = gate(0.92, &none);
    assert!(!g.passed, "a win of exactly the margin is not enough");
    assert!(g.reason.contains("does not beat version 1 by more than 0.02"), "{}", g.reason);
    let floors = BTreeMap::from([("recall".to_string(), 0.8)]);
    let g = gate(0.99, &floors);
    assert!(!g.passed && g.reason.contains("recall 0.7000 is under the floor 0.8"), "{}", g.reason);
    // Errors: lower wins.
    let g = decide_gate(
        &GateParams::default(),
        Metric::Rmse,
        (&scored(1, &[("rmse", 2.0)], 100), &scored(2, &[("rmse", 1.5)], 100)),
        (&none, &none),
    );
    assert!(g.passed, "{}", g.reason);
    let g = decide_gate(
        &GateParams::default(),
        Metric::Accuracy,
        (&scored(1, &[("accuracy", 0.5)], 10), &scored(2, &[("accuracy", 0.9)], 10)),
        (&none, &none),
    );
    assert!(!g.passed && g.reason.contains("10 labelled row(s)"), "{}", g.reason);
}

fn version(v: u32, days_old: i64, now: chrono::DateTime<Utc>) -> VersionFacts {
    VersionFacts {
        version: v,
        retired: false,
        aliases: Vec::new(),
        served: false,
        registered: now - Duration::days(days_old),
        retired_at: None,
        package_sha256: format!("sha{v}"),
        artifacts_deleted: false,
    }
}

#[test]
fn retention_keeps_aliases_deployments_the_newest_and_the_young_and_deletes_only_after_grace() {
    let now = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    let mut vs: Vec<VersionFacts> = (1..=6).map(|v| version(v, 100 - i64::from(v) * 10, now)).collect();
    vs[0].aliases = vec!["champion".into()]; // v1
    vs[1].served = true; // v2
    let retention = Retention { keep_last: 2, keep_days: Some(55), grace_days: 7 };
    let retired: Vec<u32> = plan_retention(&retention, &vs, now)
        .iter()
        .filter_map(|s| match s {
            RetentionStep::Retire { version, .. } => Some(*version),
            RetentionStep::DeleteArtifacts { .. } => None,
        })
        .collect();
    // v5, v6 are the newest two (and younger than 55 days); v1 and v2 are in use.
    assert_eq!(retired, [3, 4]);
    // A retired version's package goes after the grace period, unless another version needs it.
    let mut vs = vec![version(1, 100, now), version(2, 90, now), version(3, 80, now)];
    for v in &mut vs[..2] {
        v.retired = true;
    }
    vs[0].retired_at = Some(now - Duration::days(8));
    vs[1].retired_at = Some(now - Duration::days(3));
    let deletes = |vs: &[VersionFacts]| -> Vec<u32> {
        plan_retention(&Retention { keep_last: 5, keep_days: None, grace_days: 7 }, vs, now)
            .iter()
            .filter_map(|s| match s {
                RetentionStep::DeleteArtifacts { version, .. } => Some(*version),
                RetentionStep::Retire { .. } => None,
            })
            .collect()
    };
    assert_eq!(deletes(&vs), [1]);
    vs[2].package_sha256 = "sha1".into();
    assert!(deletes(&vs).is_empty(), "v3 is active and shares v1's package");
}

#[test]
fn the_holdout_is_the_same_rows_every_time_and_about_its_share() {
    let ids: Vec<String> = (0..2000).map(|i| format!("request-{i}")).collect();
    let held: Vec<bool> = ids.iter().map(|id| in_holdout(id, 0, 0.3)).collect();
    assert_eq!(held, ids.iter().map(|id| in_holdout(id, 0, 0.3)).collect::<Vec<_>>());
    let share = held.iter().filter(|h| **h).count() as f64 / ids.len() as f64;
    assert!((share - 0.3).abs() < 0.04, "{share}");
    // A larger share keeps every row a smaller one keeps.
    assert!(ids.iter().all(|id| !in_holdout(id, 0, 0.3) || in_holdout(id, 0, 0.5)));
    // Rows of one request are chosen one by one.
    let rows: Vec<bool> = (0..50).map(|r| in_holdout("request-1", r, 0.5)).collect();
    assert!(rows.contains(&true) && rows.contains(&false));
}

#[test]
fn a_second_run_is_refused_while_the_first_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = lock_path(&dir.path().join("registry.db"));
    assert!(path.ends_with("registry.db.lifecycle.lock"));
    let held = RunLock::acquire(&path).unwrap();
    let err = RunLock::acquire(&path).unwrap_err();
    assert!(
        matches!(&err, LifecycleError::Locked { holder, .. } if holder.contains(&format!("process {}", std::process::id()))),
        "{err}"
    );
    drop(held);
    RunLock::acquire(&path).unwrap();
}

mlops_core::store_tests!(one_lifecycle_run_at_a_time_per_store);

/// The lock of a store, on either backend: a file beside SQLite, an advisory lock on
/// PostgreSQL (held by the session, so every machine on the store sees it).
fn one_lifecycle_run_at_a_time_per_store(at: &mlops_core::testing::TestStore) {
    let store = PathBuf::from(at.setting());
    let held = RunLock::for_store(&store).unwrap();
    let err = RunLock::for_store(&store).unwrap_err();
    assert!(matches!(&err, LifecycleError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("another lifecycle run holds the lock"), "{err}");
    drop(held);
    drop(RunLock::for_store(&store).unwrap());
}

/// Stands in for the pipelines: facts as set, retraining registers a fixture package as the
/// challenger, scores as set per version.
struct TestEnv {
    dir: PathBuf,
    facts: Facts,
    scores: BTreeMap<u32, f64>,
    retrain_fails: bool,
    retrained: usize,
}

impl Environment for TestEnv {
    fn facts(&mut self, _: &Version) -> std::result::Result<Facts, String> {
        Ok(self.facts.clone())
    }
    fn retrain(&mut self, champion: &Version) -> std::result::Result<Retrained, String> {
        if self.retrain_fails {
            return Err("the data config's source is missing".into());
        }
        self.retrained += 1;
        let mut r = registry(&self.dir);
        let package = fixture::package(&self.dir, &format!("retrained{}", self.retrained), 1.0 + self.retrained as f64);
        let v = r.register(&champion.name, &package, &RegisterInfo::default()).map_err(|e| e.to_string())?;
        r.set_alias(&champion.name, "challenger", v.version).map_err(|e| e.to_string())?;
        Ok(Retrained { version: v.version, run_id: format!("run-{}", v.version), data: "the fixture".into() })
    }
    fn score(&mut self, v: &Version) -> std::result::Result<Scored, String> {
        Ok(scored(v.version, &[("accuracy", self.scores.get(&v.version).copied().unwrap_or(0.5))], 200))
    }
    fn score_logged(&mut self, v: &Version, _: chrono::DateTime<Utc>) -> std::result::Result<Scored, String> {
        self.score(v)
    }
    fn default_metric(&mut self, _: &Version) -> std::result::Result<Metric, String> {
        Ok(Metric::Accuracy)
    }
    fn constraints(&mut self) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
        (BTreeMap::new(), BTreeMap::new())
    }
    fn served(&mut self, _: &str) -> std::result::Result<Vec<u32>, String> {
        Ok(Vec::new())
    }
}

fn registry(dir: &Path) -> Registry {
    Registry::open(&dir.join("registry.db"), &dir.join("artifacts"), "tester").unwrap()
}

#[test]
fn a_run_retrains_on_drift_promotes_a_better_challenger_and_a_rollback_moves_the_alias_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = registry(dir.path());
    let first = fixture::package(dir.path(), "first", 1.0);
    r.register("churn", &first, &RegisterInfo::default()).unwrap();
    r.set_alias("churn", "champion", 1).unwrap();
    let policy = LifecyclePolicy {
        store: dir.path().join("registry.db"),
        artifacts: dir.path().join("artifacts"),
        retention: Retention { keep_last: 1, keep_days: None, grace_days: 0 },
        ..LifecyclePolicy::default()
    };
    let mut env = TestEnv {
        dir: dir.path().to_path_buf(),
        facts: facts(),
        scores: BTreeMap::from([(1, 0.80), (2, 0.90), (3, 0.70)]),
        retrain_fails: false,
        retrained: 0,
    };
    // Nothing due: nothing changes.
    let report = run(&policy, "churn", &mut env, Utc::now()).unwrap();
    assert_eq!((report.outcome, report.champion), (Outcome::NothingDue, (1, 1)));
    assert_eq!(registry(dir.path()).versions("churn").unwrap().len(), 1);
    // Drift: retrained, gated, promoted; the audit log says why.
    env.facts.dataset_drift = Some(true);
    let report = run(&policy, "churn", &mut env, Utc::now()).unwrap();
    assert_eq!((report.outcome, report.champion), (Outcome::Promoted, (1, 2)), "{}", report.reason);
    assert!(
        report.reason.contains("version 2 beats version 1 on accuracy: 0.9000 against 0.8000"),
        "{}",
        report.reason
    );
    let r = registry(dir.path());
    assert_eq!(r.resolve("models:/churn@champion").unwrap().version, 2);
    assert!(r.version("churn", 2).unwrap().aliases == ["champion"], "the challenger alias went with the promotion");
    let moved = r.history(Some("churn")).unwrap().into_iter().rfind(|h| h.action == "alias").unwrap();
    assert_eq!(moved.new_value.as_deref(), Some("champion=2"));
    assert!(moved.reason.unwrap().contains("beats version 1"));
    // Retention kept the newest (the champion) and retired version 1, which holds no alias now;
    // with no grace its package goes in the next run.
    assert!(
        matches!(report.retention.as_slice(), [RetentionStep::Retire { version: 1, .. }]),
        "{:?}",
        report.retention
    );
    // A worse challenger: the gate keeps the champion and says why.
    let report = run(&policy, "churn", &mut env, Utc::now()).unwrap();
    assert_eq!((report.outcome, report.champion), (Outcome::Kept, (2, 2)), "{}", report.reason);
    assert!(report.reason.contains("version 3 does not beat version 2"), "{}", report.reason);
    assert!(!registry(dir.path()).version("churn", 1).unwrap().artifact_path.exists(), "v1's package deleted");
    // The same facts again: no second retraining of the same data.
    let report = run(&policy, "churn", &mut env, Utc::now()).unwrap();
    assert_eq!(report.outcome, Outcome::Kept);
    assert!(report.reason.contains("not retraining again"), "{}", report.reason);
    assert_eq!(env.retrained, 2);
    // A failing retraining keeps the champion.
    env.facts.new_labelled_rows = 10;
    env.retrain_fails = true;
    let report = run(&policy, "churn", &mut env, Utc::now()).unwrap();
    assert_eq!((report.outcome, report.champion), (Outcome::RetrainFailed, (2, 2)));
    assert!(report.reason.contains("the data config's source is missing"), "{}", report.reason);

    let s = status(&policy, "churn").unwrap();
    assert_eq!((s.versions_total, s.champion, s.challenger, s.latest), (3, Some(2), Some(3), Some(3)));
    assert_eq!(s.last_run.unwrap().outcome, Some(Outcome::RetrainFailed));

    // Retiring the champion is refused; rollback to a retired version is refused with the way
    // out; a rollback to an active one moves the alias and records why.
    let err = retire(&policy, "churn", 2, "by hand", &[]).unwrap_err().to_string();
    assert!(err.contains("holds the alias(es) champion"), "{err}");
    let err = rollback(&policy, "churn", "bad answers").unwrap_err().to_string();
    assert!(err.contains("version 1 before, which is retired"), "{err}");
    registry(dir.path()).set_alias("churn", "champion", 3).unwrap();
    assert_eq!(rollback(&policy, "churn", "bad answers").unwrap(), (3, 2));
    let last = registry(dir.path()).history(Some("churn")).unwrap().pop().unwrap();
    assert_eq!(last.reason.as_deref(), Some("rollback: bad answers"));
    retire(&policy, "churn", 3, "superseded", &[]).unwrap_err(); // v3 still holds `challenger`
    let err = retire(&policy, "churn", 2, "x", &[2]).unwrap_err().to_string();
    assert!(err.contains("holds the alias"), "{err}");
}

#[test]
fn with_a_shadow_period_the_challenger_waits_then_is_gated_on_what_the_server_logged() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = registry(dir.path());
    r.register("churn", &fixture::package(dir.path(), "first", 1.0), &RegisterInfo::default()).unwrap();
    r.set_alias("churn", "champion", 1).unwrap();
    let mut policy = LifecyclePolicy {
        store: dir.path().join("registry.db"),
        artifacts: dir.path().join("artifacts"),
        ..LifecyclePolicy::default()
    };
    policy.gate.shadow_minutes = Some(60);
    let mut env = TestEnv {
        dir: dir.path().to_path_buf(),
        facts: Facts { dataset_drift: Some(true), ..facts() },
        scores: BTreeMap::from([(1, 0.80), (2, 0.90)]),
        retrain_fails: false,
        retrained: 0,
    };
    // Retrained, then waiting: no gate yet, the champion stays.
    let report = run(&policy, "churn", &mut env, Utc::now()).unwrap();
    assert_eq!((report.outcome, report.champion), (Outcome::Shadowing, (1, 1)), "{}", report.reason);
    assert!(report.reason.contains("shadow period of 60 minute(s)"), "{}", report.reason);
    // Still in the period: waiting, nothing retrained again.
    let report = run(&policy, "churn", &mut env, Utc::now() + Duration::minutes(30)).unwrap();
    assert_eq!(report.outcome, Outcome::Shadowing);
    assert!(report.reason.contains("version 2 shadows version 1 until"), "{}", report.reason);
    assert_eq!(env.retrained, 1);
    // After the period: gated on the logged predictions, promoted.
    let report = run(&policy, "churn", &mut env, Utc::now() + Duration::minutes(61)).unwrap();
    assert_eq!((report.outcome, report.champion), (Outcome::Promoted, (1, 2)), "{}", report.reason);
    assert!(report.reason.starts_with("after its shadow period: version 2 beats version 1"), "{}", report.reason);
    assert_eq!(registry(dir.path()).version("churn", 2).unwrap().aliases, ["champion"]);
}

#[test]
fn a_rollback_without_a_previous_version_or_of_an_unknown_model_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = registry(dir.path());
    let first = fixture::package(dir.path(), "first", 1.0);
    r.register("churn", &first, &RegisterInfo::default()).unwrap();
    r.register("churn", &first, &RegisterInfo::default()).unwrap();
    r.set_alias("churn", "champion", 1).unwrap();
    let policy = LifecyclePolicy {
        store: dir.path().join("registry.db"),
        artifacts: dir.path().join("artifacts"),
        ..LifecyclePolicy::default()
    };
    let err = rollback(&policy, "churn", "x").unwrap_err();
    assert!(matches!(err, LifecycleError::NoPreviousVersion { .. }), "{err}");
    assert!(err.to_string().contains("`champion` never pointed at another version"));
    let err = rollback(&policy, "nobody", "x").unwrap_err().to_string();
    assert!(err.contains("nobody"), "{err}");
    let err = retire(&policy, "churn", 9, "x", &[]).unwrap_err().to_string();
    assert!(err.contains("churn has no version 9"), "{err}");
    let err = retire(&policy, "churn", 2, "x", &[2]).unwrap_err().to_string();
    assert!(err.contains("served by a running deployment"), "{err}");
    retire(&policy, "churn", 2, "superseded", &[]).unwrap();
    let last = registry(dir.path()).history(Some("churn")).unwrap().pop().unwrap();
    assert_eq!((last.action.as_str(), last.reason.as_deref()), ("retire", Some("superseded")));
}
