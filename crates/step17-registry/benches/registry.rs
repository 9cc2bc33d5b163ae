//! Criterion benches for the registry: registering a version (verify, store, record), resolving
//! an alias, and listing a model with 10,000 versions.
//!
//! `cargo bench -p step17-registry --bench registry`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use step17_registry::{RegisterInfo, Registry};

#[path = "../src/fixture.rs"]
mod fixture;

fn registry(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let pkg = fixture::package(dir.path(), "pkg", 1.0);
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
