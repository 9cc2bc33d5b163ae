//! Criterion benches for the hot paths of steps 1-5 on a generated 1M-row table of mixed types
//! with missing values (CSV ingest, validation, clean + transform), and of steps 7 and 10 on a
//! generated 1M-row, 30-column table (the EDA profile, feature fitting).
//!
//! `cargo bench -p pipelines --bench prepare` (ROWS=200000 for a quicker run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use mlops_core::Seed;
use polars::prelude::{Column, CsvWriter, DataFrame, SerWriter};
use rand_core::Rng;
use step01_ingest::{CsvSource, Reader, SourceConfig};

// The same allocator as the `mlops` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn rows() -> usize {
    std::env::var("ROWS").ok().and_then(|r| r.parse().ok()).unwrap_or(1_000_000)
}

fn uniform(rng: &mut impl Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// The same shape as bench/generate.py's table: ids, categories, numbers with nulls and outliers,
/// yes/no text, dates, free text.
fn generate(n: usize) -> DataFrame {
    let mut rng = Seed(42).rng();
    let cats: Vec<String> = (0..20).map(|i| format!("cat_{i:02}")).collect();
    let regions = ["north", "south", "east", "west"];
    let words = ["Great", "ok", "BAD!", "needs review", "late, again", "fine."];
    let mut category = Vec::with_capacity(n);
    let mut region = Vec::with_capacity(n);
    let mut amount = Vec::with_capacity(n);
    let mut quantity = Vec::with_capacity(n);
    let mut price = Vec::with_capacity(n);
    let mut active = Vec::with_capacity(n);
    let mut created = Vec::with_capacity(n);
    let mut score = Vec::with_capacity(n);
    let mut comment = Vec::with_capacity(n);
    for _ in 0..n {
        let pick = |rng: &mut _, k: usize| (uniform(rng) * k as f64) as usize % k;
        category.push((uniform(&mut rng) >= 0.05).then(|| cats[pick(&mut rng, 20)].clone()));
        region.push(regions[pick(&mut rng, 4)]);
        let normal =
            (-2.0 * uniform(&mut rng).max(1e-12).ln()).sqrt() * (std::f64::consts::TAU * uniform(&mut rng)).cos();
        let outlier = if uniform(&mut rng) < 0.001 { 25.0 } else { 1.0 };
        amount.push((uniform(&mut rng) >= 0.05).then_some((250.0 + 60.0 * normal) * outlier));
        quantity.push((uniform(&mut rng) >= 0.02).then_some(1 + pick(&mut rng, 99) as i64));
        price.push(0.5 + 89.5 * uniform(&mut rng));
        active.push(if uniform(&mut rng) < 0.5 { "Yes" } else { "No" });
        let day = pick(&mut rng, 1500) as i64;
        created
            .push(format!("{}", chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Days::new(day as u64)));
        score.push((uniform(&mut rng) >= 0.10).then_some(uniform(&mut rng)));
        comment.push((uniform(&mut rng) >= 0.30).then(|| words[pick(&mut rng, words.len())]));
    }
    let columns = vec![
        Column::new("Order ID".into(), (1..=n as i64).collect::<Vec<_>>()),
        Column::new("Category".into(), category),
        Column::new("Region".into(), region),
        Column::new("Amount".into(), amount),
        Column::new("Quantity".into(), quantity),
        Column::new("Unit Price".into(), price),
        Column::new("Active".into(), active),
        Column::new("Created".into(), created),
        Column::new("Score".into(), score),
        Column::new("Comment".into(), comment),
    ];
    DataFrame::new(n, columns).unwrap()
}

fn config() -> pipelines::DataConfig {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/config.yaml")).unwrap();
    mlops_core::config::parse_yaml(&text, Path::new("bench/config.yaml")).unwrap()
}

fn benches(c: &mut Criterion) {
    let n = rows();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.csv");
    let mut frame = generate(n);
    CsvWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut frame).unwrap();
    let source = SourceConfig::Csv(CsvSource { null_values: vec![String::new()], ..CsvSource::new(&path) });
    let config = config();
    let ingested = source.read("orders").unwrap().frame;

    let mut group = c.benchmark_group(format!("prepare_{n}_rows"));
    group.sample_size(10);
    group.bench_function("ingest_csv", |b| b.iter(|| source.read("orders").unwrap()));
    let schema = &config.validate["orders"];
    group.bench_function("validate", |b| {
        b.iter(|| step02_validate::validate(&ingested, schema, &BTreeMap::new()).unwrap())
    });
    group.bench_function("clean_standardize_transform", |b| {
        b.iter(|| {
            let cleaned = config.clean.fit_transform(ingested.clone()).unwrap();
            let standardized = config.standardize.fit_transform(cleaned.frame).unwrap();
            config.transform.fit_transform(standardized.frame, &BTreeMap::new()).unwrap()
        })
    });
    group.bench_function("content_hash", |b| b.iter(|| mlops_core::frame::frame_hash(&ingested).unwrap()));
    group.finish();
}

/// The shape of bench/generate_wide.py's table: 20 numeric columns (correlated, skewed, integer,
/// normal; 0-6% missing), 6 categorical (3 to 1000 values, 3% missing), a date, a timestamp and
/// two booleans.
fn generate_wide(n: usize) -> DataFrame {
    let mut rng = Seed(7).rng();
    let mut columns = Vec::new();
    let base: Vec<f64> = (0..n).map(|_| normal(&mut rng)).collect();
    for i in 0..20usize {
        let values: Vec<Option<f64>> = (0..n)
            .map(|r| {
                let v = match i % 5 {
                    0 => base[r] * (i + 1) as f64 + 0.3 * normal(&mut rng),
                    1 => normal(&mut rng).exp(),
                    2 => (uniform(&mut rng) * 1000.0).floor(),
                    _ => 100.0 * i as f64 + (10 + i) as f64 * normal(&mut rng),
                };
                (uniform(&mut rng) >= 0.02 * (i % 4) as f64).then_some(v)
            })
            .collect();
        columns.push(Column::new(format!("num_{i:02}").into(), values));
    }
    for (i, k) in [3usize, 10, 50, 200, 1000, 20].into_iter().enumerate() {
        let values: Vec<Option<String>> = (0..n)
            .map(|_| {
                let label = format!("c{i}_{}", (uniform(&mut rng) * k as f64) as usize % k);
                (uniform(&mut rng) >= 0.03).then_some(label)
            })
            .collect();
        columns.push(Column::new(format!("cat_{i}").into(), values));
    }
    let days: Vec<i32> = (0..n).map(|_| 18_262 + (uniform(&mut rng) * 1500.0) as i32).collect();
    let micros: Vec<i64> =
        (0..n).map(|_| 1_622_505_600_000_000 + (uniform(&mut rng) * 31_536_000.0) as i64 * 1_000_000).collect();
    columns.push(Column::new("date_0".into(), days).cast(&polars::prelude::DataType::Date).unwrap());
    columns.push(
        Column::new("date_1".into(), micros)
            .cast(&polars::prelude::DataType::Datetime(polars::prelude::TimeUnit::Microseconds, None))
            .unwrap(),
    );
    columns.push(Column::new("flag_0".into(), (0..n).map(|_| uniform(&mut rng) < 0.3).collect::<Vec<_>>()));
    columns.push(Column::new("flag_1".into(), (0..n).map(|_| uniform(&mut rng) < 0.7).collect::<Vec<_>>()));
    DataFrame::new(n, columns).unwrap()
}

fn normal(rng: &mut impl Rng) -> f64 {
    (-2.0 * uniform(rng).max(1e-12).ln()).sqrt() * (std::f64::consts::TAU * uniform(rng)).cos()
}

fn explore_benches(c: &mut Criterion) {
    let n = rows();
    let wide = generate_wide(n);
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/training.yaml")).unwrap();
    let training: pipelines::TrainingConfig =
        mlops_core::config::parse_yaml(&text, Path::new("bench/training.yaml")).unwrap();
    let train = training.split.split(&wide, Seed(42)).unwrap().frames(&wide).unwrap().0;

    let mut group = c.benchmark_group(format!("explore_{n}_rows_30_columns"));
    group.sample_size(10);
    group.bench_function("eda_profile", |b| b.iter(|| step07_eda::profile(&wide, &training.eda).unwrap()));
    group.bench_function("features_fit", |b| {
        b.iter(|| step10_features::fit(&training.features, train.clone(), Seed(42), None).unwrap())
    });
    group.finish();
}

criterion_group!(prepare, benches, explore_benches);
criterion_main!(prepare);
