//! Tests of the run store on both backends (a real SQLite file and a real PostgreSQL database:
//! `store_tests!`), and of the trainer recording into it.

use mlops_core::testing::TestStore;

use crate::*;

mlops_core::store_tests!(
    a_run_records_everything_and_survives_reopening,
    failed_runs_are_kept_and_closed_runs_refuse_changes,
    two_connections_log_into_one_store,
);

fn open(store: &TestStore) -> Store {
    Store::with_store(store.open()).unwrap()
}

fn info(name: &str) -> RunInfo {
    RunInfo {
        experiment: "penguins".into(),
        name: name.into(),
        dataset_version: Some("penguins@74da6486454098ff".into()),
        config_sha256: Some("abc".into()),
        ..RunInfo::default()
    }
}

fn a_run_records_everything_and_survives_reopening(at: &TestStore) {
    let store = open(at);
    let id = store.start_run(&info("logistic_regression")).unwrap();
    assert_eq!(id.len(), 16);
    store.log_param(&id, "c", "1.0").unwrap();
    for (step, loss) in [0.9, 0.5, 0.3].iter().enumerate() {
        store.log_metric(&id, "log_loss", *loss, Some(step as i64)).unwrap();
    }
    store.log_metric(&id, "accuracy", 0.97, None).unwrap();
    store.set_tag(&id, "candidate", "yes").unwrap();
    store.log_artifact(&id, "model", std::path::Path::new("models/artifacts/x/model.bin")).unwrap();
    store.finish(&id, RunStatus::Finished, None).unwrap();
    drop(store);

    let store = open(at);
    let run = store.run(&id[..6]).unwrap();
    assert_eq!(run.status, RunStatus::Finished);
    assert!(run.ended_at.is_some());
    assert_eq!(run.params["c"], "1.0");
    assert_eq!(run.metrics["log_loss"], 0.3);
    assert_eq!(run.history["log_loss"].iter().map(|p| p.step).collect::<Vec<_>>(), vec![Some(0), Some(1), Some(2)]);
    assert_eq!(run.tags["candidate"], "yes");
    assert_eq!(run.artifacts["model"], "models/artifacts/x/model.bin");
    assert_eq!(run.info.dataset_version.as_deref(), Some("penguins@74da6486454098ff"));
}

fn failed_runs_are_kept_and_closed_runs_refuse_changes(at: &TestStore) {
    let store = open(at);
    let ok = store.start_run(&info("ridge")).unwrap();
    let bad = store.start_run(&RunInfo { parent: Some(ok.clone()), ..info("lasso") }).unwrap();
    store.finish(&bad, RunStatus::Failed, Some("lasso.alpha: -1 must be zero or more")).unwrap();
    let err = store.log_metric(&bad, "r2", 0.5, None).unwrap_err();
    assert!(matches!(&err, StoreError::Closed { status, .. } if status == "failed"), "{err}");
    let err = store.log_metric(&ok, "r2", f64::NAN, None).unwrap_err();
    assert!(err.to_string().contains("metric `r2` is NaN"), "{err}");
    let err = store.run("ffffffffffffffff").unwrap_err();
    assert_eq!(err.to_string(), format!("no run \"ffffffffffffffff\" in {}", at.location));
    let runs = store.runs(Some("penguins")).unwrap();
    assert_eq!(runs.iter().map(|r| r.info.name.as_str()).collect::<Vec<_>>(), vec!["ridge", "lasso"]);
    assert_eq!(runs[1].status, RunStatus::Failed);
    assert_eq!(runs[1].error.as_deref(), Some("lasso.alpha: -1 must be zero or more"));
    assert_eq!(runs[1].info.parent.as_deref(), Some(ok.as_str()));
    assert!(store.runs(Some("other")).unwrap().is_empty());
}

fn two_connections_log_into_one_store(at: &TestStore) {
    let (a, b) = (open(at), open(at));
    let ids: Vec<String> =
        (0..20).map(|i| if i % 2 == 0 { &a } else { &b }.start_run(&info(&format!("trial-{i}"))).unwrap()).collect();
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 20);
    assert_eq!(a.runs(None).unwrap().len(), 20);
}

#[test]
fn the_trainer_records_every_candidate_and_goes_on_after_a_failure() {
    use ndarray::Array2;
    use step11_candidates::{GaussianNbParams, KnnParams, Labels, LogisticParams, Model, ModelSpec};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("registry.db")).unwrap();
    let x = Array2::from_shape_fn((40, 2), |(i, j)| if j == 0 { i as f64 } else { (i % 7) as f64 });
    let y: Vec<usize> = (0..40).map(|i| usize::from(i >= 20)).collect();
    let names = vec!["a".to_string(), "b".to_string()];
    let data = TrainingData { x: &x, labels: &Labels::Classes { y: y.to_vec(), classes: 2 }, names: &names };
    let candidates = vec![
        Candidate {
            name: "logistic".into(),
            spec: ModelSpec::LogisticRegression(LogisticParams { c: 1.0, max_iter: 100, tol: 1e-4 }),
        },
        Candidate { name: "bad_knn".into(), spec: ModelSpec::KnnClassifier(KnnParams { k: 500 }) },
        Candidate { name: "nb".into(), spec: ModelSpec::GaussianNb(GaussianNbParams { var_smoothing: 1e-9 }) },
        Candidate {
            name: "boosting".into(),
            spec: ModelSpec::GradientBoostingClassifier(step11_candidates::BoostParams {
                max_iter: 12,
                min_samples_leaf: 2,
                ..Default::default()
            }),
        },
    ];
    let accuracy =
        |_: &Candidate, m: &Model, v: &Array2<f64>| -> Result<std::collections::BTreeMap<String, f64>, String> {
            let p = m.predict(v).map_err(|e| e.to_string())?;
            let right = p.iter().zip(&y).filter(|(p, t)| **p as usize == **t).count();
            Ok(std::collections::BTreeMap::from([("accuracy".to_string(), right as f64 / y.len() as f64)]))
        };
    let outcomes = train(&store, &info("unused"), &data, &x, &candidates, &accuracy).unwrap();
    assert_eq!(
        outcomes.iter().map(|o| o.status).collect::<Vec<_>>(),
        vec![RunStatus::Finished, RunStatus::Failed, RunStatus::Finished, RunStatus::Finished]
    );
    assert!(outcomes[0].metrics["accuracy"] > 0.9, "{:?}", outcomes[0].metrics);
    assert!(outcomes[1].error.as_deref().unwrap().starts_with("knn_classifier.k: 500"));
    let runs = store.runs(Some("penguins")).unwrap();
    assert_eq!(runs.len(), 4);
    assert_eq!(runs[0].params["model"], "logistic_regression");
    assert_eq!(runs[0].params["c"], "1.0");
    assert!(runs[0].metrics.contains_key("fit_seconds") && runs[0].metrics.contains_key("accuracy"));
    assert_eq!(runs[1].status, RunStatus::Failed);
    assert_eq!(runs[2].info.name, "nb");
    // Boosting's loss after every round, as steps 0, 1, 2, …, falling.
    let losses = &runs[3].history["train_loss"];
    assert_eq!(losses.len(), 12);
    assert!(losses.iter().enumerate().all(|(i, p)| p.step == Some(i as i64)));
    assert!(losses.windows(2).all(|w| w[1].value < w[0].value), "{losses:?}");
    assert!(!runs[0].history.contains_key("train_loss"), "logistic regression has no rounds");
}

/// A run whose process ended without ending it (kill -9) is marked `killed` when the store is
/// next opened; a run of a live process, and one started before owners were recorded, stay
/// `running`. A store from before the owner columns is migrated in place.
#[test]
fn runs_whose_process_ended_are_marked_killed_on_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    // A store as the toolkit wrote it before: no owner columns, one run still `running`.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE runs (id TEXT PRIMARY KEY, experiment TEXT NOT NULL, name TEXT NOT NULL, parent TEXT,
                dataset_version TEXT, config_sha256 TEXT, source_commit TEXT,
                status TEXT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT, error TEXT, seq INTEGER NOT NULL);
             INSERT INTO runs VALUES ('00000000000000aa', 'penguins', 'old', NULL, NULL, NULL, NULL, 'running', '2026-01-01T00:00:00Z', NULL, NULL, 1);",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let live = store.start_run(&info("live")).unwrap();
    let dead = store.start_run(&info("dead")).unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE runs SET owner_pid = ?2 WHERE id = ?1", rusqlite::params![dead, gone]).unwrap();
    drop(conn);
    let store = Store::open(&path).unwrap();
    let dead = store.run(&dead).unwrap();
    assert_eq!(dead.status, RunStatus::Killed);
    assert!(dead.ended_at.is_some());
    let why = dead.error.unwrap();
    assert!(why.contains(&format!("pid {gone}")) && why.contains("ended without ending the run"), "{why}");
    assert_eq!(store.run(&live).unwrap().status, RunStatus::Running);
    assert_eq!(store.run("00000000000000aa").unwrap().status, RunStatus::Running, "no owner: cannot tell");
    let err = store.log_metric(&dead.id, "accuracy", 0.5, None).unwrap_err();
    assert!(matches!(&err, StoreError::Closed { status, .. } if status == "killed"), "{err}");
}
