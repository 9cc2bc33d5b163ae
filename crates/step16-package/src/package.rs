//! Writing and loading the package directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mlops_core::{CoreError, FeaturePipeline, Row, Signature, TaskKind};
use serde::{Deserialize, Serialize};
use step11_candidates::Model;

use crate::profile::ReferenceProfile;
use crate::{PackageError, Result};

/// The package layout this build writes. Version 2's pipeline starts at the source's columns
/// (the prepare run's operations in front of the features: a caller sends raw records);
/// version 1's at the curated dataset's. Both have the same files and both are read: the
/// signature says what a caller sends.
pub const FORMAT_VERSION: u32 = 2;

/// The layouts this build reads.
pub const READS: [u32; 2] = [1, 2];

const MANIFEST: &str = "manifest.json";

/// The manifest: format version and every other file's checksum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// When the package was written (RFC 3339).
    pub created_at: String,
    /// Every file but the manifest.
    pub files: Vec<FileEntry>,
}

/// One file of a package.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Name inside the package.
    pub path: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// What the model predicts and from what.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    /// Family (`gradient_boosting_classifier`).
    pub family: String,
    /// Hyperparameters, as text.
    pub params: BTreeMap<String, String>,
    /// The task.
    pub task: TaskKind,
    /// The target column it was trained on.
    pub target: String,
    /// Class names in the order of the probabilities (classification).
    pub classes: Vec<String>,
    /// The model's input columns after the feature pipeline, in order.
    pub features: Vec<String>,
    /// How many of the pipeline's first operations are the prepare run's (from the source's
    /// columns to the dataset version's): rows of that dataset version skip them. Absent in a
    /// package whose pipeline starts at the dataset version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ops: Option<usize>,
}

/// Where the model came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lineage {
    /// Dataset version trained on (`name@version`).
    pub dataset_version: Option<String>,
    /// SHA-256 of the training config.
    pub config_sha256: Option<String>,
    /// The run of the final fit.
    pub run_id: String,
    /// The training run it belongs to.
    pub training_run_id: Option<String>,
    /// Source commit of the toolkit checkout, when known.
    pub source_commit: Option<String>,
    /// Toolkit version.
    pub toolkit_version: String,
    /// Versions of the crates that read the package.
    pub crates: BTreeMap<String, String>,
    /// How the training run cut the dataset version into parts (its `seed`, `select` and
    /// `split` sections), so that monitoring can take the training part again from the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<serde_json::Value>,
}

/// Everything a package holds.
#[derive(Clone, Debug, PartialEq)]
pub struct PackageContents {
    /// What the model predicts.
    pub info: ModelInfo,
    /// The fitted model.
    pub model: Model,
    /// Raw rows → the model's features.
    pub pipeline: FeaturePipeline,
    /// Inputs and outputs.
    pub signature: Signature,
    /// Metrics measured at training.
    pub metrics: BTreeMap<String, f64>,
    /// The training inputs' distribution.
    pub profile: ReferenceProfile,
    /// Where it came from.
    pub lineage: Lineage,
    /// Feature importances, largest first.
    pub importances: Vec<(String, f64)>,
    /// A few raw input rows.
    pub input_example: Vec<Row>,
    /// What monitoring compares production with (absent in packages written before it).
    pub reference: ReferenceData,
}

/// The reference data of a package, as Parquet bytes (written and read by whoever holds frames;
/// this crate only stores and verifies them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReferenceData {
    /// `reference.parquet`: a seeded sample (up to 100,000) of the training rows as a caller
    /// sends them: the signature's input columns, before any operation.
    pub rows: Option<Vec<u8>>,
    /// `reference_predictions.parquet`: the model's predictions on the test part (a `label`
    /// column, or a `prediction` column for a regressor).
    pub predictions: Option<Vec<u8>>,
}

/// The file names of [`ReferenceData`].
pub const REFERENCE_ROWS: &str = "reference.parquet";
/// See [`REFERENCE_ROWS`].
pub const REFERENCE_PREDICTIONS: &str = "reference_predictions.parquet";

/// A loaded, verified package.
#[derive(Clone, Debug, PartialEq)]
pub struct Package {
    /// Its directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its contents.
    pub contents: PackageContents,
}

fn json<T: Serialize>(value: &T, name: &str) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(|e| PackageError::Corrupt { path: name.into(), message: e.to_string() })
}

/// Each file's name and bytes.
fn files(c: &PackageContents) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let model =
        c.model.to_bytes().map_err(|e| PackageError::Corrupt { path: "model.bin".into(), message: e.to_string() })?;
    let mut csv = String::from("feature,importance\n");
    for (name, value) in &c.importances {
        let name =
            if name.contains([',', '"', '\n']) { format!("\"{}\"", name.replace('"', "\"\"")) } else { name.clone() };
        csv.push_str(&format!("{name},{value}\n"));
    }
    let version = env!("CARGO_PKG_VERSION");
    let requirements = format!(
        "# What serving this package needs; generated by the toolkit {version}.\n\
         mlops-toolkit >= {version}\n\
         package-format == {FORMAT_VERSION}\n\
         feature-pipeline-format == {}\n\
         model-blob == postcard (step11-candidates {version}, family {})\n",
        mlops_core::PIPELINE_FORMAT_VERSION,
        c.info.family
    );
    let mut files = vec![
        ("model.json", json(&c.info, "model.json")?),
        ("model.bin", model),
        ("pipeline.json", json(&c.pipeline, "pipeline.json")?),
        ("signature.json", json(&c.signature, "signature.json")?),
        ("metrics.json", json(&c.metrics, "metrics.json")?),
        ("profile.json", json(&c.profile, "profile.json")?),
        ("lineage.json", json(&c.lineage, "lineage.json")?),
        ("feature_importance.csv", csv.into_bytes()),
        ("input_example.json", json(&c.input_example, "input_example.json")?),
        ("requirements.txt", requirements.into_bytes()),
    ];
    files.extend(c.reference.rows.clone().map(|b| (REFERENCE_ROWS, b)));
    files.extend(c.reference.predictions.clone().map(|b| (REFERENCE_PREDICTIONS, b)));
    Ok(files)
}

/// Writes a package to `dir`, which must not exist or be empty: every file into a temporary
/// sibling directory, then one rename, so a failure leaves nothing behind.
pub fn write(dir: &Path, contents: &PackageContents) -> Result<Manifest> {
    let io = |action, path: &Path, e| PackageError::Core(CoreError::io(action, path, e));
    if dir.exists() && std::fs::read_dir(dir).map_err(|e| io("cannot read directory", dir, e))?.next().is_some() {
        return Err(PackageError::Exists { path: dir.to_path_buf() });
    }
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| io("cannot create directory", parent, e))?;
    let name = dir.file_name().map_or_else(|| "package".into(), |n| n.to_string_lossy().to_string());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let tmp = parent.join(format!(".{name}.tmp-{}-{nanos}", std::process::id()));
    let result = (|| -> Result<Manifest> {
        std::fs::create_dir_all(&tmp).map_err(|e| io("cannot create directory", &tmp, e))?;
        let mut entries = Vec::new();
        for (file, bytes) in files(contents)? {
            let path = tmp.join(file);
            std::fs::write(&path, &bytes).map_err(|e| io("cannot write", &path, e))?;
            entries.push(FileEntry {
                path: file.to_string(),
                sha256: mlops_core::hash::to_hex(&mlops_core::hash::sha256_bytes(&bytes)),
                bytes: bytes.len() as u64,
            });
        }
        let manifest = Manifest { format_version: FORMAT_VERSION, created_at: now(), files: entries };
        let path = tmp.join(MANIFEST);
        std::fs::write(&path, json(&manifest, MANIFEST)?).map_err(|e| io("cannot write", &path, e))?;
        if dir.exists() {
            std::fs::remove_dir(dir).map_err(|e| io("cannot replace empty directory", dir, e))?;
        }
        std::fs::rename(&tmp, dir).map_err(|e| io("cannot move the package into place", dir, e))?;
        Ok(manifest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if let Ok(m) = &result {
        tracing::info!(dir = %dir.display(), files = m.files.len(), "package written");
    }
    result
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Reads the manifest, checking the format version before anything else.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    let bytes = std::fs::read(&path).map_err(|e| PackageError::Core(CoreError::io("cannot read", &path, e)))?;
    #[derive(Deserialize)]
    struct Version {
        format_version: Option<u32>,
    }
    let corrupt = |message: String| PackageError::Corrupt { path: path.clone(), message };
    let version: Version =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("not a package manifest: {e}")))?;
    match version.format_version {
        Some(v) if READS.contains(&v) => {}
        Some(found) => return Err(PackageError::UnknownFormat { path, found, supported: FORMAT_VERSION }),
        None => return Err(corrupt("no `format_version`".into())),
    }
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("not a package manifest: {e}")))?;
    // Checked before any file is touched, so that a listed name can never reach outside the
    // package (`../x`, `/etc/passwd`) or into a hidden file or a subdirectory.
    if let Some(f) =
        manifest.files.iter().find(|f| f.path.is_empty() || f.path.contains(['/', '\\']) || f.path.starts_with('.'))
    {
        return Err(PackageError::Integrity {
            path,
            message: format!(
                "lists `{}`, which is not a plain file name (a package's files sit directly in its directory: no `/`, `\\` or leading `.`)",
                f.path
            ),
        });
    }
    Ok(manifest)
}

/// Loads and verifies a package: format version, then every file's size and SHA-256 against the
/// manifest (no file missing, none unlisted), then the contents. Only data is decoded.
pub fn load(dir: &Path) -> Result<Package> {
    let manifest = read_manifest(dir)?;
    let listed: BTreeMap<&str, &FileEntry> = manifest.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let entries =
        std::fs::read_dir(dir).map_err(|e| PackageError::Core(CoreError::io("cannot read directory", dir, e)))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name != MANIFEST && !listed.contains_key(name.as_str()) {
            return Err(PackageError::Integrity {
                path: entry.path(),
                message: "not listed in the manifest; a package holds only the files it lists".into(),
            });
        }
    }
    let mut bytes: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for f in &manifest.files {
        let path = dir.join(&f.path);
        let data = std::fs::read(&path).map_err(|e| PackageError::Integrity {
            path: path.clone(),
            message: format!("listed in the manifest but cannot be read: {e}"),
        })?;
        let sha = mlops_core::hash::to_hex(&mlops_core::hash::sha256_bytes(&data));
        if sha != f.sha256 || data.len() as u64 != f.bytes {
            return Err(PackageError::Integrity {
                path,
                message: format!(
                    "checksum mismatch: the manifest says sha256 {} ({} bytes), the file has {sha} ({} bytes); the package was changed after it was written",
                    f.sha256,
                    f.bytes,
                    data.len()
                ),
            });
        }
        bytes.insert(f.path.as_str(), data);
    }
    let take = |name: &str| -> Result<&[u8]> {
        bytes.get(name).map(Vec::as_slice).ok_or_else(|| PackageError::Integrity {
            path: dir.join(name),
            message: "missing from the manifest".into(),
        })
    };
    fn decode<T: serde::de::DeserializeOwned>(dir: &Path, name: &str, data: &[u8]) -> Result<T> {
        serde_json::from_slice(data).map_err(|e| PackageError::Corrupt { path: dir.join(name), message: e.to_string() })
    }
    let pipeline: FeaturePipeline = decode(dir, "pipeline.json", take("pipeline.json")?)?;
    if pipeline.format_version != mlops_core::PIPELINE_FORMAT_VERSION {
        return Err(PackageError::Corrupt {
            path: dir.join("pipeline.json"),
            message: format!(
                "feature pipeline format {} is not supported (this build reads {})",
                pipeline.format_version,
                mlops_core::PIPELINE_FORMAT_VERSION
            ),
        });
    }
    let model = Model::from_bytes(take("model.bin")?)
        .map_err(|e| PackageError::Corrupt { path: dir.join("model.bin"), message: e.to_string() })?;
    let mut importances = Vec::new();
    let csv = String::from_utf8_lossy(take("feature_importance.csv")?).to_string();
    for line in csv.lines().skip(1).filter(|l| !l.is_empty()) {
        let (name, value) = line.rsplit_once(',').ok_or_else(|| PackageError::Corrupt {
            path: dir.join("feature_importance.csv"),
            message: format!("not `feature,importance`: {line}"),
        })?;
        let name = name
            .strip_prefix('"')
            .and_then(|n| n.strip_suffix('"'))
            .map_or(name.to_string(), |n| n.replace("\"\"", "\""));
        let value = value.parse().map_err(|_| PackageError::Corrupt {
            path: dir.join("feature_importance.csv"),
            message: format!("not a number: {value}"),
        })?;
        importances.push((name, value));
    }
    let contents = PackageContents {
        info: decode(dir, "model.json", take("model.json")?)?,
        model,
        pipeline,
        signature: decode(dir, "signature.json", take("signature.json")?)?,
        metrics: decode(dir, "metrics.json", take("metrics.json")?)?,
        profile: decode(dir, "profile.json", take("profile.json")?)?,
        lineage: decode(dir, "lineage.json", take("lineage.json")?)?,
        importances,
        input_example: decode(dir, "input_example.json", take("input_example.json")?)?,
        reference: ReferenceData {
            rows: bytes.get(REFERENCE_ROWS).cloned(),
            predictions: bytes.get(REFERENCE_PREDICTIONS).cloned(),
        },
    };
    Ok(Package { dir: dir.to_path_buf(), manifest, contents })
}
