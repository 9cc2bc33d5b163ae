//! Criterion benches for the registry: registering a version (verify, store, record), resolving
//! an alias, and listing a model with 10,000 versions.
//!
//! `cargo bench -p step17-registry --bench registry`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use mlops_core::{FeaturePipeline, Signature, TaskKind};
use ndarray::Array2;
use step11_candidates::{ModelSpec, Target};
use step16_package::{Lineage, ModelInfo, PackageContents, ReferenceProfile};
use step17_registry::{RegisterInfo, Registry};

fn package(dir: &Path) {
    let x = Array2::from_shape_fn((200, 5), |(i, j)| ((i * 7 + j * 3) % 11) as f64);
    let y: Vec<usize> = (0..200).map(|i| usize::from(x[[i, 0]] > 5.0)).collect();
    let names: Vec<String> = (0..5).map(|j| format!("f{j}")).collect();
    let spec = ModelSpec::LogisticRegression { c: 1.0, max_iter: 100, tol: 1e-4 };
    let model = step11_candidates::fit(&spec, &x, &Target::Classes { y: &y, classes: 2 }, &names).unwrap();
    let contents = PackageContents {
        info: ModelInfo {
            family: spec.name().into(),
            params: BTreeMap::new(),
            task: TaskKind::BinaryClassification,
            target: "y".into(),
            classes: vec!["0".into(), "1".into()],
            features: names,
        },
        model,
        pipeline: FeaturePipeline::new(),
        signature: Signature::default(),
        metrics: BTreeMap::from([("test_roc_auc".to_string(), 0.9)]),
        profile: ReferenceProfile::default(),
        lineage: Lineage { run_id: "bench".into(), ..Lineage::default() },
        importances: Vec::new(),
        input_example: Vec::new(),
    };
    step16_package::write(dir, &contents).unwrap();
}

fn registry(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("pkg");
    package(&pkg);
    let mut r = Registry::open(&dir.path().join("registry.db"), &dir.path().join("artifacts"), "bench").unwrap();
    let mut group = c.benchmark_group("registry");
    group.bench_function("register_version", |b| {
        b.iter(|| r.register("bench", &pkg, &RegisterInfo::default()).unwrap())
    });
    let mut big = Registry::open(&dir.path().join("big.db"), &dir.path().join("artifacts"), "bench").unwrap();
    for _ in 0..10_000 {
        big.register("big", &pkg, &RegisterInfo::default()).unwrap();
    }
    big.set_alias("big", "champion", 5_000).unwrap();
    group.bench_function("resolve_alias", |b| b.iter(|| big.resolve("models:/big@champion").unwrap()));
    group.bench_function("list_10k_versions", |b| b.iter(|| big.versions("big").unwrap()));
    group.bench_function("list_models", |b| b.iter(|| big.models().unwrap()));
    group.finish();
}

criterion_group!(benches, registry);
criterion_main!(benches);
