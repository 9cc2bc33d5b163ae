//! Criterion benches for packages: writing one and loading it (every checksum verified, every
//! file decoded) for a small model (logistic regression) and a large one (a 100-tree forest).
//!
//! `cargo bench -p step16-package --bench package`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use criterion::{Criterion, criterion_group, criterion_main};
use mlops_core::{FeaturePipeline, Signature, TaskKind};
use ndarray::Array2;
use step11_candidates::{ForestParams, Labels, LogisticParams, ModelSpec};
use step16_package::{Lineage, ModelInfo, PackageContents, ReferenceProfile, load, write};

fn contents(spec: &ModelSpec) -> PackageContents {
    let n = 2_000;
    let x = Array2::from_shape_fn((n, 20), |(i, j)| ((i * 31 + j * 17) % 97) as f64 / 97.0);
    let y: Vec<usize> = (0..n).map(|i| usize::from(x[[i, 0]] + x[[i, 1]] > 1.0)).collect();
    let names: Vec<String> = (0..20).map(|j| format!("f{j}")).collect();
    let model = step11_candidates::fit(spec, &x, &Labels::Classes { y: y.to_vec(), classes: 2 }, &names).unwrap();
    PackageContents {
        info: ModelInfo {
            family: spec.name().into(),
            params: BTreeMap::new(),
            task: TaskKind::BinaryClassification,
            target: "y".into(),
            classes: vec!["0".into(), "1".into()],
            features: names,
            source_ops: None,
        },
        model,
        pipeline: FeaturePipeline::new(),
        signature: Signature::default(),
        metrics: BTreeMap::new(),
        profile: ReferenceProfile::default(),
        lineage: Lineage::default(),
        importances: Vec::new(),
        input_example: Vec::new(),
        reference: Default::default(),
    }
}

fn packages(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("package");
    for (name, spec) in [
        ("logistic", ModelSpec::LogisticRegression(LogisticParams { c: 1.0, max_iter: 100, tol: 1e-4 })),
        ("forest_100_trees", ModelSpec::RandomForestClassifier(ForestParams::default())),
    ] {
        let contents = contents(&spec);
        let path = dir.path().join(name);
        write(&path, &contents).unwrap();
        group.bench_function(format!("load_{name}"), |b| b.iter(|| load(&path).unwrap()));
        let mut i = 0;
        group.bench_function(format!("write_{name}"), |b| {
            b.iter(|| {
                i += 1;
                write(&dir.path().join(format!("{name}-{i}")), &contents).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, packages);
criterion_main!(benches);
