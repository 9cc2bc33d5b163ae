//! Search spaces: per hyperparameter a list of values or a range; grid and random candidates.

use std::collections::BTreeMap;

use mlops_core::Seed;
use serde::{Deserialize, Serialize};
use step11_candidates::ModelSpec;

use crate::{Result, TuneError};

/// A range to draw from in a random search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Lowest value.
    pub low: f64,
    /// Highest value.
    pub high: f64,
    /// Draw uniformly in log space (for C, alpha, learning rates).
    #[serde(default)]
    pub log: bool,
    /// Draw whole numbers (for depths, tree counts, k).
    #[serde(default)]
    pub int: bool,
}

/// The values of one hyperparameter: a list, or a range (random search only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Values {
    /// These values.
    List(Vec<serde_json::Value>),
    /// Draws from a range.
    Range(Range),
}

/// A model family and the values of its hyperparameters to try; the others keep their defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Space {
    /// The family, as `ModelSpec` names it (`logistic_regression`, `random_forest_classifier`, …).
    pub model: String,
    /// Per hyperparameter, the values to try.
    #[serde(default)]
    pub params: BTreeMap<String, Values>,
}

impl Space {
    /// The candidate for one choice of values, checked against the family's domains.
    fn candidate(&self, choice: &BTreeMap<String, serde_json::Value>) -> Result<ModelSpec> {
        let params: serde_json::Map<String, serde_json::Value> =
            choice.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let json = serde_json::json!({ self.model.clone(): params });
        let spec: ModelSpec = serde_json::from_value(json)
            .or_else(|e| if params.is_empty() { serde_json::from_value(serde_json::json!(self.model)) } else { Err(e) })
            .map_err(|e| TuneError::Candidate { model: self.model.clone(), message: e.to_string() })?;
        spec.check(usize::MAX)
            .map_err(|e| TuneError::Candidate { model: self.model.clone(), message: e.to_string() })?;
        Ok(spec)
    }

    /// Every combination of the listed values (scikit-learn's `ParameterGrid`), in key order.
    pub fn grid(&self) -> Result<Vec<ModelSpec>> {
        let mut choices: Vec<BTreeMap<String, serde_json::Value>> = vec![BTreeMap::new()];
        for (key, values) in &self.params {
            let Values::List(list) = values else {
                return Err(TuneError::Invalid {
                    key: format!("params.{key}"),
                    message: "a grid search needs a list of values; ranges are for random search".into(),
                });
            };
            if list.is_empty() {
                return Err(TuneError::Invalid { key: format!("params.{key}"), message: "lists no values".into() });
            }
            choices = choices
                .into_iter()
                .flat_map(|c| {
                    list.iter().map(move |v| {
                        let mut c = c.clone();
                        c.insert(key.clone(), v.clone());
                        c
                    })
                })
                .collect();
        }
        choices.iter().map(|c| self.candidate(c)).collect()
    }

    /// `n` candidates drawn with `seed`: a list gives each of its values equally often on
    /// average, a range draws uniformly (in log space with `log`).
    pub fn random(&self, n: usize, seed: Seed) -> Result<Vec<ModelSpec>> {
        let mut draws = seed.derive("random_search").draws();
        for (key, values) in &self.params {
            if let Values::Range(r) = values
                && !(r.low.is_finite() && r.high.is_finite() && r.low <= r.high && (!r.log || r.low > 0.0))
            {
                return Err(TuneError::Invalid {
                    key: format!("params.{key}"),
                    message: "needs finite low <= high (and low > 0 with log)".into(),
                });
            }
        }
        (0..n)
            .map(|_| {
                let choice: BTreeMap<String, serde_json::Value> = self
                    .params
                    .iter()
                    .map(|(key, values)| {
                        let v = match values {
                            Values::List(list) => {
                                list.get(draws.below(list.len() as u64) as usize).cloned().unwrap_or_default()
                            }
                            Values::Range(r) => {
                                let u = draws.unit();
                                let x = if r.log {
                                    (r.low.ln() + u * (r.high.ln() - r.low.ln())).exp()
                                } else {
                                    r.low + u * (r.high - r.low)
                                };
                                if r.int { serde_json::json!(x.round() as i64) } else { serde_json::json!(x) }
                            }
                        };
                        (key.clone(), v)
                    })
                    .collect();
                self.candidate(&choice)
            })
            .collect()
    }
}
