//! Unit tests: a package round-trips and predicts the same; tampering, an unknown format and
//! manifest entries that are not plain file names are refused by name; reference profiles.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use mlops_core::{ColumnSchema, DType, FeaturePipeline, Row, Signature, TaskKind, Value};
use ndarray::Array2;
use proptest::prelude::*;
use step11_candidates::{Labels, LogisticParams, ModelSpec};

use crate::*;

/// A small fitted package: logistic regression on two features.
fn contents() -> PackageContents {
    let x = Array2::from_shape_fn((40, 2), |(i, j)| if j == 0 { i as f64 } else { (i % 7) as f64 });
    let y: Vec<usize> = (0..40).map(|i| usize::from(i >= 20)).collect();
    let names = vec!["a".to_string(), "b, with a comma".to_string()];
    let spec = ModelSpec::LogisticRegression(LogisticParams { c: 1.0, max_iter: 100, tol: 1e-4 });
    let model = step11_candidates::fit(&spec, &x, &Labels::Classes { y: y.to_vec(), classes: 2 }, &names).unwrap();
    let column = |name: &str| ColumnSchema { range: Some((0.0, 39.0)), ..ColumnSchema::new(name, DType::Float, false) };
    PackageContents {
        info: ModelInfo {
            family: "logistic_regression".into(),
            params: BTreeMap::from([("c".to_string(), "1.0".to_string())]),
            task: TaskKind::BinaryClassification,
            target: "label".into(),
            classes: vec!["no".into(), "yes".into()],
            features: names.clone(),
            source_ops: None,
        },
        model,
        pipeline: FeaturePipeline::new(),
        signature: Signature { inputs: vec![column("a"), column("b, with a comma")], outputs: vec![] },
        metrics: BTreeMap::from([("test_roc_auc".to_string(), 0.97)]),
        profile: ReferenceProfile {
            rows: 40,
            columns: BTreeMap::from([(
                "a".to_string(),
                numeric_profile(&(0..40).map(|i| Some(f64::from(i))).collect::<Vec<_>>()),
            )]),
        },
        lineage: Lineage { run_id: "abc".into(), toolkit_version: "0.1.0".into(), ..Lineage::default() },
        importances: vec![(names[1].clone(), 0.7), (names[0].clone(), 0.3)],
        input_example: vec![Row::from([
            ("a".to_string(), Value::Float(1.0)),
            ("b, with a comma".to_string(), Value::Float(2.0)),
        ])],
        // Opaque bytes here: the package only stores and verifies them.
        reference: ReferenceData { rows: Some(b"reference rows".to_vec()), predictions: None },
    }
}

#[test]
fn a_package_round_trips_and_predicts_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pkg");
    let c = contents();
    let manifest = write(&path, &c).unwrap();
    assert_eq!(manifest.format_version, FORMAT_VERSION);
    assert_eq!(manifest.files.len(), 11, "ten files and the reference rows; no predictions file when there are none");
    let loaded = load(&path).unwrap();
    assert_eq!(loaded.contents, c);
    let x = Array2::from_shape_fn((5, 2), |(i, j)| (i * 3 + j) as f64);
    assert_eq!(loaded.contents.model.predict_proba(&x).unwrap(), c.model.predict_proba(&x).unwrap());
    // Nothing but the package is left in the parent: the temporary directory was renamed.
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    assert_eq!(names, ["pkg"]);
    let requirements = std::fs::read_to_string(path.join("requirements.txt")).unwrap();
    assert!(requirements.contains("package-format == 2") && requirements.contains("logistic_regression"));
    // A package of the first layout (curated rows in) is read as well.
    let manifest = std::fs::read_to_string(path.join("manifest.json")).unwrap();
    std::fs::write(path.join("manifest.json"), manifest.replace("\"format_version\": 2", "\"format_version\": 1"))
        .unwrap();
    assert_eq!(load(&path).unwrap().manifest.format_version, 1);
}

#[test]
fn a_column_without_values_in_the_training_part_still_loads() {
    // Its statistics are NaN, which JSON writes as null.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pkg");
    let mut c = contents();
    c.profile.columns.insert("empty".into(), numeric_profile(&[None, None, Some(f64::NAN)]));
    write(&path, &c).unwrap();
    let loaded = load(&path).unwrap();
    let Some(ColumnProfile::Numeric { nulls, min, mean, std, .. }) = loaded.contents.profile.columns.get("empty")
    else {
        panic!("the column's profile is gone")
    };
    assert_eq!(*nulls, 3);
    assert!(min.is_nan() && mean.is_nan());
    assert_eq!(*std, 0.0);
}

#[test]
fn tampering_is_caught_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pkg");
    write(&path, &contents()).unwrap();
    // An existing, non-empty directory is not overwritten.
    assert!(matches!(write(&path, &contents()), Err(PackageError::Exists { .. })));

    let mut metrics = std::fs::read_to_string(path.join("metrics.json")).unwrap();
    metrics = metrics.replace("0.97", "0.99");
    std::fs::write(path.join("metrics.json"), &metrics).unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert!(err.contains("metrics.json") && err.contains("checksum mismatch"), "{err}");

    let path = dir.path().join("pkg2");
    write(&path, &contents()).unwrap();
    std::fs::write(path.join("extra.py"), "import os").unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert!(err.contains("extra.py") && err.contains("not listed"), "{err}");
    std::fs::remove_file(path.join("extra.py")).unwrap();
    std::fs::remove_file(path.join("model.bin")).unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert!(err.contains("model.bin") && err.contains("cannot be read"), "{err}");

    let path = dir.path().join("pkg3");
    write(&path, &contents()).unwrap();
    let manifest = std::fs::read_to_string(path.join("manifest.json")).unwrap();
    std::fs::write(path.join("manifest.json"), manifest.replace("\"format_version\": 2", "\"format_version\": 7"))
        .unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert!(err.contains("package format version 7 is not supported (this build reads versions 1 to 2)"), "{err}");
    std::fs::write(path.join("manifest.json"), "{}").unwrap();
    assert!(load(&path).unwrap_err().to_string().contains("no `format_version`"));
    assert!(load(&dir.path().join("nowhere")).unwrap_err().to_string().contains("nowhere/manifest.json"));
}

#[test]
fn a_manifest_listing_a_path_outside_the_package_or_a_hidden_file_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    // A file with the right checksum at each place a listed name could reach, so that only the
    // name check stands between the manifest and reading it.
    let bytes = b"print('hello')\n";
    let outside = dir.path().join("outside.py");
    std::fs::write(&outside, bytes).unwrap();
    let absolute = outside.to_str().unwrap().to_string();
    for (k, listed) in
        ["../outside.py", absolute.as_str(), ".hidden", "sub/inner.py", "sub\\inner.py", ""].into_iter().enumerate()
    {
        let path = dir.path().join(format!("pkg{k}"));
        write(&path, &contents()).unwrap();
        match listed {
            ".hidden" => std::fs::write(path.join(".hidden"), bytes).unwrap(),
            "sub/inner.py" => {
                std::fs::create_dir(path.join("sub")).unwrap();
                std::fs::write(path.join("sub/inner.py"), bytes).unwrap();
            }
            _ => {}
        }
        let manifest_path = path.join("manifest.json");
        let mut manifest: Manifest = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
        manifest.files.push(FileEntry {
            path: listed.to_string(),
            sha256: mlops_core::hash::to_hex(&mlops_core::hash::sha256_bytes(bytes)),
            bytes: bytes.len() as u64,
        });
        std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
        for err in [load(&path).unwrap_err(), read_manifest(&path).unwrap_err()] {
            assert!(
                matches!(&err, PackageError::Integrity { path, message }
                    if *path == manifest_path && message.contains(&format!("lists `{listed}`, which is not a plain file name"))),
                "{listed:?}: {err}"
            );
        }
    }
}

#[test]
fn profiles_count_every_value() {
    let values: Vec<Option<f64>> = (0..100).map(|i| if i % 10 == 0 { None } else { Some(f64::from(i)) }).collect();
    let ColumnProfile::Numeric { nulls, counts, edges, min, max, .. } = numeric_profile(&values) else { panic!() };
    assert_eq!((nulls, min, max), (10, 1.0, 99.0));
    assert_eq!(counts.iter().sum::<usize>(), 90);
    assert_eq!(counts.len(), edges.len() + 1);
    let words: Vec<Option<String>> =
        ["a", "b", "a", "c", "a", "b"].iter().map(|s| Some(s.to_string())).chain([None]).collect();
    let ColumnProfile::Categorical { nulls, frequencies, other } = categorical_profile(&words, 2) else { panic!() };
    assert_eq!((nulls, other), (1, 1));
    assert_eq!(frequencies, BTreeMap::from([("a".to_string(), 3), ("b".to_string(), 2)]));
}

proptest! {
    #[test]
    fn numeric_bins_hold_every_value(values in proptest::collection::vec(proptest::option::of(-1e6f64..1e6), 0..300)) {
        let ColumnProfile::Numeric { nulls, counts, edges, .. } = numeric_profile(&values) else { panic!() };
        prop_assert_eq!(nulls + counts.iter().sum::<usize>(), values.len());
        prop_assert!(edges.windows(2).all(|w| w[0] < w[1]));
    }
}
