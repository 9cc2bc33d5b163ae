//! A small package for the tests and the benches (`#[path]`-included by the benches).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mlops_core::{FeaturePipeline, Signature, TaskKind};
use ndarray::Array2;
use step11_candidates::{Labels, LogisticParams, ModelSpec};
use step16_package::{Lineage, ModelInfo, PackageContents, ReferenceProfile};

/// Writes a small package whose model depends on `c`.
pub(crate) fn package(dir: &Path, name: &str, c: f64) -> PathBuf {
    let x = Array2::from_shape_fn((40, 2), |(i, j)| if j == 0 { i as f64 } else { (i % 7) as f64 });
    let y: Vec<usize> = (0..40).map(|i| usize::from(i >= 20)).collect();
    let names = vec!["a".to_string(), "b".to_string()];
    let spec = ModelSpec::LogisticRegression(LogisticParams { c, max_iter: 100, tol: 1e-4 });
    let model = step11_candidates::fit(&spec, &x, &Labels::Classes { y: y.to_vec(), classes: 2 }, &names).unwrap();
    let contents = PackageContents {
        info: ModelInfo {
            family: "logistic_regression".into(),
            params: BTreeMap::new(),
            task: TaskKind::BinaryClassification,
            target: "label".into(),
            classes: vec!["no".into(), "yes".into()],
            features: names,
            source_ops: None,
        },
        model,
        pipeline: FeaturePipeline::new(),
        signature: Signature::default(),
        metrics: BTreeMap::from([("test_roc_auc".to_string(), 0.9)]),
        profile: ReferenceProfile::default(),
        lineage: Lineage {
            run_id: format!("run-{name}"),
            dataset_version: Some("data@1".into()),
            ..Lineage::default()
        },
        importances: Vec::new(),
        input_example: Vec::new(),
        reference: Default::default(),
    };
    let path = dir.join(name);
    step16_package::write(&path, &contents).unwrap();
    path
}
