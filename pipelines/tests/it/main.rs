//! The prepare run through the library API: config checks before any work, and the run itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use pipelines::{DataConfig, PipelineError, Progress, StepSummary, prepare};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn shipped() -> DataConfig {
    DataConfig::load(&repo().join("configs/data.yaml")).unwrap().resolved(&repo())
}

struct Recorder(Vec<String>);
impl Progress for Recorder {
    fn started(&mut self, step: &'static str) {
        self.0.push(format!("start {step}"));
    }
    fn finished(&mut self, summary: &StepSummary) {
        self.0.push(format!("done {}", summary.step));
    }
}

#[test]
fn prepare_reports_every_step_in_order_and_is_deterministic() {
    let out = tempfile::tempdir().unwrap();
    let mut config = shipped();
    config.curate.as_mut().unwrap().dir = out.path().join("processed");
    let mut progress = Recorder(Vec::new());
    let first = prepare(&config, Path::new("configs/data.yaml"), &mut progress).unwrap();
    assert_eq!(progress.0.iter().filter(|e| e.starts_with("done")).count(), 6);
    assert_eq!(progress.0[0], "start ingest");
    assert_eq!((first.rows, first.reused), (342, None));

    // A different catalog folder, the same inputs: the same version, recomputed.
    config.curate.as_mut().unwrap().dir = out.path().join("again");
    let second = prepare(&config, Path::new("configs/data.yaml"), &mut pipelines::Silent).unwrap();
    assert_eq!(second.version, first.version);
    let a = std::fs::read(first.path.join("pipeline.json")).unwrap();
    let b = std::fs::read(second.path.join("pipeline.json")).unwrap();
    assert_eq!(a, b, "the fitted pipeline differs between identical runs");
}

#[test]
fn cross_references_are_checked_before_any_work() {
    let origin = Path::new("configs/data.yaml");
    let mut config = shipped();
    config.transform.joins[0].right = "isles".into();
    let err = prepare(&config, origin, &mut pipelines::Silent).unwrap_err();
    assert!(matches!(err, PipelineError::Config(_)), "{err}");
    assert!(err.to_string().contains("transform.joins[0].right") && err.to_string().contains("isles"), "{err}");

    let mut config = shipped();
    config.curate = None;
    let err = prepare(&config, origin, &mut pipelines::Silent).unwrap_err();
    assert!(err.to_string().contains("key `curate`"), "{err}");

    let mut config = shipped();
    config.primary = None;
    let err = prepare(&config, origin, &mut pipelines::Silent).unwrap_err();
    assert!(err.to_string().contains("several sources"), "{err}");
}

#[test]
fn config_errors_name_file_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.yaml");
    std::fs::write(
        &path,
        "sources:\n  a:\n    csv:\n      path: a.csv\n      delimiter: ';'\n      encoding: cp1252\n",
    )
    .unwrap();
    let err = DataConfig::load(&path).unwrap_err().to_string();
    assert!(err.contains("data.yaml: line 6"), "{err}");
    assert!(err.contains("sources.a.csv.encoding") || err.contains("sources.a"), "{err}");
    assert!(err.contains("cp1252"), "{err}");
}

/// The training run through the library: the chosen model's package, loaded back, scores the
/// test rows to exactly the metrics it records, through the frame path and the single-row path.
#[test]
fn the_package_reproduces_the_test_metrics_exactly() {
    use mlops_core::Transform;
    use polars::prelude::SerReader;

    let out = tempfile::tempdir().unwrap();
    let mut data = shipped();
    data.curate.as_mut().unwrap().dir = out.path().join("processed");
    let prepared = prepare(&data, Path::new("configs/data.yaml"), &mut pipelines::Silent).unwrap();
    let file = std::fs::File::open(prepared.path.join("data.parquet")).unwrap();
    let frame = polars::prelude::ParquetReader::new(file).finish().unwrap();
    let origin = repo().join("configs/training-sex.yaml");
    let mut config = pipelines::TrainingConfig::load(&origin).unwrap().resolved(out.path());
    config.select_best.compare.bootstrap_samples = 50;
    let dataset = format!("{}@{}", prepared.dataset, prepared.version);
    let paths = pipelines::TrainPaths { origin: &origin, dataset: (&dataset, Path::new("penguins/v")) };
    let trained = pipelines::train(&frame, &config, &paths, &mut pipelines::Silent, &|_, _| {}).unwrap();
    assert!(out.path().join("models/artifacts").is_dir(), "registered under the config's folder");

    let package = step16_package::load(trained.package.as_ref().unwrap()).unwrap().contents;
    // The same config and seed give the same split: the test part's raw rows.
    let engineered = pipelines::engineer(&frame, &config, None).unwrap();
    let raw = &engineered.test_raw;
    let features = package.pipeline.apply_frame(raw.clone(), mlops_core::frame::Stage::Inference).unwrap();
    let x = mlops_core::frame::to_matrix(&features, &package.info.features).unwrap();
    let proba = package.model.predict_proba(&x).unwrap().unwrap();
    let predicted: Vec<usize> = package.model.predict(&x).unwrap().iter().map(|&c| c as usize).collect();
    let truth: Vec<usize> = mlops_core::frame::keys(raw, &package.info.target)
        .unwrap()
        .iter()
        .map(|k| package.info.classes.iter().position(|c| Some(c) == k.as_ref()).unwrap())
        .collect();
    let eval = step14_evaluate::evaluate(step14_evaluate::Outputs::Classes {
        truth: &truth,
        proba: &proba,
        labels: &package.info.classes,
        predicted: Some(&predicted),
    })
    .unwrap();
    for (k, v) in eval.metrics() {
        assert_eq!(package.metrics[&format!("test_{k}")], v, "test_{k}");
    }
    // One row at a time, as a server sees them: the same probabilities.
    for (i, mut row) in mlops_core::frame::rows_from_frame(raw).unwrap().into_iter().enumerate() {
        row.remove(&package.info.target);
        package.pipeline.transform_row(&mut row).unwrap();
        let one = ndarray::Array2::from_shape_fn((1, package.info.features.len()), |(_, j)| {
            row[&package.info.features[j]].as_f64().unwrap()
        });
        assert_eq!(package.model.predict_proba(&one).unwrap().unwrap()[0], proba[i], "row {i}");
    }
}
