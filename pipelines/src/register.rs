//! Step 17 in the training run: register the chosen model's package, measure the current
//! champion on the same test rows, and move the alias only when the new version beats it by the
//! configured margin (otherwise it becomes the challenger, and the summary says why).

use std::path::{Path, PathBuf};

use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};
use step11_candidates::Labels;
use step15_select_best::Comparison;
use step17_registry::{ModelUri, Registry, RegistryError};

use crate::choose::{Comparing, Outputs};
use crate::error::{PipelineError, Result};

/// The `register` section of the training config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterConfig {
    /// Registered model name (default: the experiment's name).
    #[serde(default)]
    pub name: Option<String>,
    /// The alias a better model takes.
    #[serde(default = "champion")]
    pub alias: String,
    /// The alias a model that does not beat the champion takes.
    #[serde(default = "challenger")]
    pub challenger_alias: String,
    /// How much better (in the ranking metric, on the same test rows) a new version must be to
    /// take the alias.
    #[serde(default)]
    pub margin: f64,
    /// The content-addressed package store.
    #[serde(default = "artifacts")]
    pub artifacts: PathBuf,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        RegisterConfig {
            name: None,
            alias: champion(),
            challenger_alias: challenger(),
            margin: 0.0,
            artifacts: artifacts(),
        }
    }
}

fn champion() -> String {
    "champion".into()
}

fn challenger() -> String {
    "challenger".into()
}

fn artifacts() -> PathBuf {
    PathBuf::from("models/artifacts")
}

impl RegisterConfig {
    /// Checks names and the margin: `(key, message)` of the first problem.
    pub(crate) fn check(&self, experiment: &str) -> std::result::Result<(), (String, String)> {
        let name = self.name.as_deref().unwrap_or(experiment);
        step17_registry::validate_name(name).map_err(|e| ("register.name".to_string(), e.to_string()))?;
        for (key, alias) in [("register.alias", &self.alias), ("register.challenger_alias", &self.challenger_alias)] {
            ModelUri::parse(&format!("models:/{name}@{alias}")).map_err(|e| (key.to_string(), e.to_string()))?;
        }
        if !(self.margin.is_finite() && self.margin >= 0.0) {
            return Err(("register.margin".into(), format!("{} must be a number >= 0", self.margin)));
        }
        Ok(())
    }
}

/// What registration did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Registered {
    /// Registered model name.
    pub name: String,
    /// The new version.
    pub version: u32,
    /// `models:/NAME/VERSION`.
    pub uri: String,
    /// The alias it took.
    pub alias: String,
    /// Whether it took the champion alias.
    pub promoted: bool,
    /// Why, in words.
    pub reason: String,
    /// The champion it was measured against.
    pub previous_champion: Option<u32>,
    /// The new version against the champion on this run's test rows.
    pub against_champion: Option<Comparison>,
}

/// The new model, and what it is measured on.
pub(crate) struct Candidate<'a> {
    pub package: &'a Path,
    pub outputs: &'a Outputs,
    pub test_raw: &'a DataFrame,
    /// The dataset version (`name@version`) the test rows come from.
    pub dataset: &'a str,
    pub truth: &'a Labels,
    pub classes: &'a [String],
    pub target: &'a str,
}

/// Registers `new.package` under the configured name and sets its alias.
pub(crate) fn register(
    config: &RegisterConfig,
    (store, experiment): (&Path, &str),
    new: &Candidate<'_>,
    how: &Comparing<'_>,
) -> Result<Registered> {
    let metric = how.metric;
    let err = |e: RegistryError| PipelineError::step("register", e);
    let name = config.name.clone().unwrap_or_else(|| experiment.to_string());
    let started = std::time::Instant::now();
    let ms = |t: std::time::Instant| t.elapsed().as_secs_f64() * 1000.0;
    let mut registry = Registry::open(store, &config.artifacts, &crate::actor()).map_err(err)?;
    let champion = match registry.resolve(&format!("models:/{name}@{}", config.alias)) {
        Ok(v) => Some(v),
        Err(RegistryError::NotFound(_) | RegistryError::Refused(_)) => None,
        Err(e) => return Err(err(e)),
    };
    let n = new.outputs.predicted.len();
    let all: Vec<usize> = (0..n).collect();
    let classes = new.classes.len();
    let score = |o: &Outputs| o.metric(metric, new.truth, &all, classes);
    let (promoted, reason, against) = match &champion {
        None => (true, format!("no `{}` yet", config.alias), None),
        Some(champ) => {
            match registry.package_dir(champ).map_err(|e| e.to_string()).and_then(|dir| champion_outputs(&dir, new)) {
                Err(why) => (
                    true,
                    format!("the champion (version {}) cannot be scored on these rows: {why}", champ.version),
                    None,
                ),
                Ok(theirs) => {
                    tracing::debug!(ms = ms(started), "register: the champion scored the test rows");
                    let compared = std::time::Instant::now();
                    let comparison = crate::choose::compare((new.outputs, &theirs), new.truth, how)?;
                    tracing::debug!(ms = ms(compared), "register: compared with the champion");
                    let (mine, old) = (score(new.outputs).unwrap_or(f64::NAN), score(&theirs).unwrap_or(f64::NAN));
                    let gain = if metric.greater_is_better() { mine - old } else { old - mine };
                    let better = gain > config.margin;
                    let reason = format!(
                        "test {} {mine:.4} against the champion's (version {}) {old:.4} on the same {n} rows: {} by {:.4}, margin {}",
                        metric.name(),
                        champ.version,
                        if gain >= 0.0 { "better" } else { "worse" },
                        gain.abs(),
                        config.margin
                    );
                    (better, reason, Some(comparison))
                }
            }
        }
    };
    let stored = std::time::Instant::now();
    let version = registry.register(&name, new.package, &step17_registry::RegisterInfo::default()).map_err(err)?;
    tracing::debug!(ms = ms(stored), "register: package stored and version recorded");
    let alias = if promoted { &config.alias } else { &config.challenger_alias };
    registry.set_alias(&name, alias, version.version).map_err(err)?;
    tracing::info!(name, version = version.version, alias, promoted, "registered");
    Ok(Registered {
        uri: format!("models:/{name}/{}", version.version),
        name,
        version: version.version,
        alias: alias.clone(),
        promoted,
        reason,
        previous_champion: champion.map(|c| c.version),
        against_champion: against,
    })
}

/// The champion's outputs on the new run's raw test rows, through its own package.
fn champion_outputs(dir: &Path, new: &Candidate<'_>) -> std::result::Result<Outputs, String> {
    let package = step16_package::load(dir).map_err(|e| e.to_string())?;
    let c = &package.contents;
    if c.info.target != new.target || c.info.classes != new.classes {
        return Err(format!("it predicts `{}` ({}) ", c.info.target, c.info.classes.join(", ")));
    }
    // A package whose road starts at the source skips the prepare run's part on rows of the
    // dataset version it was trained on (they went through it when curated); rows of another
    // version are not the source's records, so it cannot score them.
    let skip = match (c.info.source_ops, c.lineage.dataset_version.as_deref()) {
        (Some(k), Some(v)) if v == new.dataset => k,
        (Some(_), v) => {
            return Err(format!(
                "it takes the source's records and was trained on {}, not on {}",
                v.unwrap_or("another dataset"),
                new.dataset
            ));
        }
        (None, _) => 0,
    };
    let pipeline = mlops_core::FeaturePipeline {
        ops: c.pipeline.ops.iter().skip(skip).cloned().collect(),
        ..mlops_core::FeaturePipeline::new()
    };
    let started = std::time::Instant::now();
    let frame =
        pipeline.apply_frame(new.test_raw.clone(), mlops_core::frame::Stage::Inference).map_err(|e| e.to_string())?;
    tracing::debug!(
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "register: the champion's pipeline on the test rows"
    );
    let x = mlops_core::frame::to_matrix(&frame, &c.info.features).map_err(|e| e.to_string())?;
    Outputs::of("champion", &c.model, &x).map_err(|e| e.to_string())
}
