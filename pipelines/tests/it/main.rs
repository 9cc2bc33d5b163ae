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

#[test]
fn frames_are_written_whole_and_bad_outputs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let df = polars::prelude::df!("x" => [Some(1i64), None, Some(3)], "s" => [Some("a"), None, Some("c")]).unwrap();
    let path = dir.path().join("out").join("frame.parquet");
    pipelines::write_frame(&df, &path).unwrap();
    let back = polars::prelude::LazyFrame::scan_parquet(
        polars::prelude::PlRefPath::new(path.to_str().unwrap()),
        polars::prelude::ScanArgsParquet::default(),
    )
    .and_then(|l| l.collect())
    .unwrap();
    assert!(df.equals_missing(&back));
    assert_eq!(std::fs::read_dir(dir.path().join("out")).unwrap().count(), 1, "temporary file left behind");

    let err = pipelines::write_frame(&df, &dir.path().join("frame.txt")).unwrap_err().to_string();
    assert!(err.contains("frame.txt"), "{err}");
    // The parent is a file: the error names it, and nothing is written.
    std::fs::write(dir.path().join("plain"), b"x").unwrap();
    let err = pipelines::write_frame(&df, &dir.path().join("plain").join("f.parquet")).unwrap_err().to_string();
    assert!(err.contains("plain"), "{err}");
}
