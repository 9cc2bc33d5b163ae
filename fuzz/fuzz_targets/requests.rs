//! The server's request readers on any body: MLflow's four JSON formats, CSV bodies, the Open
//! Inference Protocol and the workflow's `/predict` routes give rows or a 4xx error, never a
//! panic; whatever they accept has one value per signature column and row.
#![no_main]

#[path = "../../crates/step20-serve/tests/fixture/mod.rs"]
mod fixture;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mlops_core::TaskKind;
use step20_serve::{CategoryPolicy, ModelSource, Scorer, protocol};

fn scorer() -> &'static Scorer {
    static SCORER: OnceLock<(tempfile::TempDir, Scorer)> = OnceLock::new();
    &SCORER
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("a temporary folder");
            let package = fixture::package(dir.path(), "pkg", TaskKind::BinaryClassification, 1.0);
            let scorer = ModelSource::Package(package).load(CategoryPolicy::Warn).expect("the fixture loads");
            (dir, scorer)
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let Some((&route, body)) = data.split_first() else { return };
    let scorer = scorer();
    let max = 1000;
    let parsed = match route % 5 {
        0 => protocol::mlflow_json(scorer, body, max),
        1 => protocol::csv(scorer, body, max),
        2 => protocol::oip(scorer, body, max).map(|(p, _)| p),
        3 => protocol::predict_one(scorer, body),
        _ => protocol::predict_batch(scorer, body, max),
    };
    match parsed {
        Ok(p) => {
            assert!(p.rows <= max);
            assert_eq!(p.columns.len(), scorer.inputs().len());
            assert!(p.columns.iter().all(|c| c.len() == p.rows));
        }
        Err(e) => assert!((400..500).contains(&e.status()), "{e}"),
    }
});
