//! Criterion benches for the registry: registering a version (verify, store, record), resolving
//! an alias, and listing a model with 10,000 versions, on each backend: a SQLite file, and a
//! PostgreSQL database on a throwaway local cluster (`registry/` and `registry_postgres/`).
//!
//! `cargo bench -p step17-registry --bench registry`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use step17_registry::{RegisterInfo, Registry};

#[path = "../src/fixture.rs"]
mod fixture;

use mlops_core::store::{Location, Store};

/// Two empty stores of one backend: `(name of the group, a store for registering, one for the
/// 10,000 versions)`.
type Stores = (&'static str, Store, Store);

fn sqlite(dir: &std::path::Path) -> Stores {
    let open = |f: &str| Store::open(&Location::Sqlite(dir.join(f))).unwrap();
    ("registry", open("registry.db"), open("big.db"))
}

fn postgres(cluster: &mlops_core::testing::PostgresCluster) -> Stores {
    let admin = Store::open_with(&Location::Postgres(cluster.url("postgres")), Some(&cluster.password)).unwrap();
    let open = |db: &str| {
        admin.execute(&format!("CREATE DATABASE {db}"), &[]).unwrap();
        Store::open_with(&Location::Postgres(cluster.url(db)), Some(&cluster.password)).unwrap()
    };
    ("registry_postgres", open("registering"), open("big"))
}

fn registry(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = mlops_core::testing::PostgresCluster::start("bench").unwrap();
    let pkg = fixture::package(dir.path(), "pkg", 1.0);
    for stores in [sqlite(dir.path()), postgres(&cluster)] {
        on(c, (dir.path(), &pkg), stores);
    }
}

fn on(c: &mut Criterion, (dir, pkg): (&std::path::Path, &std::path::Path), (name, first, second): Stores) {
    let mut r = Registry::with_store(first, &dir.join("artifacts"), "bench").unwrap();
    let mut group = c.benchmark_group(name);
    group
        .bench_function("register_version", |b| b.iter(|| r.register("bench", pkg, &RegisterInfo::default()).unwrap()));
    let mut big = Registry::with_store(second, &dir.join("artifacts"), "bench").unwrap();
    for _ in 0..10_000 {
        big.register("big", pkg, &RegisterInfo::default()).unwrap();
    }
    big.set_alias("big", "champion", 5_000).unwrap();
    group.bench_function("resolve_alias", |b| b.iter(|| big.resolve("models:/big@champion").unwrap()));
    group.bench_function("list_10k_versions", |b| b.iter(|| big.versions("big").unwrap()));
    group.bench_function("list_models", |b| b.iter(|| big.models().unwrap()));
    group.finish();
}

criterion_group!(benches, registry);
criterion_main!(benches);
