//! The server's hot paths without HTTP: request parsing (MLflow JSON, OIP, CSV) and the
//! single-row path (signature check, feature pipeline, model).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/fixture/mod.rs"]
mod fixture;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mlops_core::TaskKind;
use serde_json::json;
use step20_serve::{CategoryPolicy, ModelSource, protocol};

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let pkg = fixture::package(dir.path(), "pkg", TaskKind::BinaryClassification, 1.0);
    let scorer = ModelSource::Package(pkg).load(CategoryPolicy::Warn).unwrap();

    let mut g = c.benchmark_group("parse");
    for rows in [1usize, 1000] {
        let records: Vec<_> = (0..rows).map(fixture::raw).collect();
        let body = json!({ "dataframe_records": records }).to_string();
        g.throughput(Throughput::Elements(rows as u64));
        g.bench_with_input(BenchmarkId::new("mlflow_records", rows), &body, |b, body| {
            b.iter(|| protocol::mlflow_json(&scorer, body.as_bytes(), usize::MAX).unwrap())
        });
        let columns = ["x", "n", "color", "day", "flag", "note"];
        let tensors: Vec<_> = columns
            .iter()
            .map(|c| json!({ "name": c, "shape": [rows], "datatype": "BYTES", "data": records.iter().map(|r| r[c].clone()).collect::<Vec<_>>() }))
            .collect();
        let body = json!({ "inputs": tensors }).to_string();
        g.bench_with_input(BenchmarkId::new("oip_columns", rows), &body, |b, body| {
            b.iter(|| protocol::oip(&scorer, body.as_bytes(), usize::MAX).unwrap())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("single_row");
    let body = json!({ "dataframe_records": [fixture::raw(7)] }).to_string();
    g.bench_function("pipeline_and_model", |b| {
        let parsed = protocol::mlflow_json(&scorer, body.as_bytes(), 1).unwrap();
        b.iter(|| {
            let mut rows = parsed.to_rows(&scorer);
            scorer.score(&mut rows).unwrap()
        })
    });
    g.bench_function("parse_score_answer", |b| {
        b.iter(|| {
            let parsed = protocol::mlflow_json(&scorer, body.as_bytes(), 1).unwrap();
            let scored = scorer.score(&mut parsed.to_rows(&scorer)).unwrap();
            serde_json::to_vec(&protocol::mlflow_response(&scorer, &scored)).unwrap()
        })
    });
    g.finish();
}

criterion_group!(serve, benches);
criterion_main!(serve);
