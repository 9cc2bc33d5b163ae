//! Reuse of the training run's step outputs, keyed by the content hash of their inputs and
//! config: the split and features (`<interim>/<dataset>/<version>/cache/features-<key>/`) and the
//! cross-validation folds with their refitted features (`.../folds-<key>.json`). A missing,
//! partial or unreadable entry is simply recomputed; entries are written whole (temporary name,
//! then rename).

use std::path::{Path, PathBuf};

use mlops_core::FeaturePipeline;
use ndarray::Array2;
use polars::prelude::{DataFrame, ParquetReader, SerReader};
use serde::{Deserialize, Serialize};

use crate::error::{PipelineError, Result};
use crate::features::Engineered;
use step11_candidates::Labels;

use crate::target::{FoldPart, Part};

const PARTS: [&str; 5] = ["train", "validation", "test", "train_raw", "test_raw"];

/// The cache folder of a dataset version.
pub(crate) fn dir(interim: &Path, dataset: &Path) -> PathBuf {
    interim.join(dataset).join("cache")
}

/// The split and features of an earlier run with this key.
pub(crate) fn load_features(dir: &Path, key: &str) -> Option<Engineered> {
    let dir = dir.join(format!("features-{key}"));
    let read = |name: &str| -> Option<DataFrame> {
        ParquetReader::new(std::fs::File::open(dir.join(format!("{name}.parquet"))).ok()?).finish().ok()
    };
    let json = |name: &str| std::fs::read(dir.join(name)).ok();
    Some(Engineered {
        train: read("train")?,
        validation: read("validation")?,
        test: read("test")?,
        train_raw: read("train_raw")?,
        test_raw: read("test_raw")?,
        pipeline: FeaturePipeline::load(&dir.join("pipeline.json")).ok()?,
        split: serde_json::from_slice(&json("split.json")?).ok()?,
        features: serde_json::from_slice(&json("features.json")?).ok()?,
    })
}

/// Keeps the split and features for later runs with the same key.
pub(crate) fn save_features(dir: &Path, key: &str, e: &Engineered) -> Result<()> {
    let target = dir.join(format!("features-{key}"));
    if target.is_dir() {
        return Ok(());
    }
    let tmp = dir.join(format!(".features-{key}.tmp-{}", std::process::id()));
    let io = |action, path: &Path, err| PipelineError::step("cache", mlops_core::CoreError::io(action, path, err));
    let write = || -> Result<()> {
        std::fs::create_dir_all(&tmp).map_err(|e| io("cannot create directory", &tmp, e))?;
        for (name, frame) in PARTS.iter().zip([&e.train, &e.validation, &e.test, &e.train_raw, &e.test_raw]) {
            crate::features::write_frame(frame, &tmp.join(format!("{name}.parquet")))?;
        }
        e.pipeline.save(&tmp.join("pipeline.json")).map_err(|err| PipelineError::step("cache", err))?;
        for (name, bytes) in
            [("split.json", serde_json::to_vec(&e.split)), ("features.json", serde_json::to_vec(&e.features))]
        {
            let bytes = bytes.map_err(|err| PipelineError::Encode {
                step: "cache",
                what: "the split",
                message: err.to_string(),
            })?;
            std::fs::write(tmp.join(name), bytes).map_err(|err| io("cannot write", &tmp.join(name), err))?;
        }
        std::fs::rename(&tmp, &target).map_err(|err| io("cannot move into place", &target, err))
    };
    let result = write();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// A matrix as stored.
#[derive(Serialize, Deserialize)]
struct Matrix {
    rows: usize,
    cols: usize,
    values: Vec<f64>,
}

/// A fold's part as stored.
#[derive(Serialize, Deserialize)]
struct StoredPart {
    x: Matrix,
    y: Labels,
}

fn store_part(p: &Part) -> StoredPart {
    let (rows, cols) = p.x.dim();
    StoredPart { x: Matrix { rows, cols, values: p.x.iter().copied().collect() }, y: p.y.clone() }
}

fn load_part(s: StoredPart) -> Option<Part> {
    let x = Array2::from_shape_vec((s.x.rows, s.x.cols), s.x.values).ok()?;
    Some(Part { x, y: s.y })
}

/// The folds of an earlier run with this key: per fold, its training and validation parts and
/// feature names.
pub(crate) fn load_folds(dir: &Path, key: &str) -> Option<Vec<FoldPart>> {
    let bytes = std::fs::read(dir.join(format!("folds-{key}.json"))).ok()?;
    let stored: Vec<(StoredPart, StoredPart, Vec<String>)> = serde_json::from_slice(&bytes).ok()?;
    stored
        .into_iter()
        .map(|(a, b, features)| Some(FoldPart { train: load_part(a)?, validation: load_part(b)?, features }))
        .collect()
}

/// Keeps the folds for later runs with the same key.
pub(crate) fn save_folds(dir: &Path, key: &str, folds: &[FoldPart]) -> Result<()> {
    let stored: Vec<(StoredPart, StoredPart, &Vec<String>)> =
        folds.iter().map(|f| (store_part(&f.train), store_part(&f.validation), &f.features)).collect();
    let bytes = serde_json::to_vec(&stored).map_err(|err| PipelineError::Encode {
        step: "cache",
        what: "the folds",
        message: err.to_string(),
    })?;
    mlops_core::io::atomic_write(&dir.join(format!("folds-{key}.json")), &bytes)
        .map_err(|err| PipelineError::step("cache", err))
}
