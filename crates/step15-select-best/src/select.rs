//! Weighted, normalised ranking under hard constraints.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use step14_evaluate::Metric;

use crate::{Result, SelectBestError};

/// What a weight or a constraint can be put on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Criterion {
    /// A test metric of step 14.
    Metric(Metric),
    /// Seconds to fit on the training part (lower is better).
    FitSeconds,
    /// p99 of one row's prediction through the feature pipeline and the model, in milliseconds
    /// (lower is better).
    LatencyP99Ms,
}

impl Criterion {
    /// Parses a name as config writes it.
    pub fn parse(name: &str) -> Option<Criterion> {
        match name {
            "fit_seconds" => Some(Criterion::FitSeconds),
            "latency_p99_ms" => Some(Criterion::LatencyP99Ms),
            _ => Metric::ALL.into_iter().find(|m| m.name() == name).map(Criterion::Metric),
        }
    }

    /// Whether a larger value is better.
    pub fn greater_is_better(self) -> bool {
        match self {
            Criterion::Metric(m) => m.greater_is_better(),
            Criterion::FitSeconds | Criterion::LatencyP99Ms => false,
        }
    }

    /// Its name in config.
    pub fn name(self) -> String {
        match self {
            Criterion::Metric(m) => m.name(),
            Criterion::FitSeconds => "fit_seconds".into(),
            Criterion::LatencyP99Ms => "latency_p99_ms".into(),
        }
    }

    /// Its value for a candidate, if known.
    fn of(self, entry: &Entry) -> Option<f64> {
        match self {
            Criterion::Metric(m) => entry.metrics.get(&m.name()).copied(),
            Criterion::FitSeconds => Some(entry.fit_seconds),
            Criterion::LatencyP99Ms => entry.latency_p99_ms,
        }
    }
}

/// The `select_best` section of the training config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectParams {
    /// Weight of each criterion: a test metric (`roc_auc`, `rmse`, ...), `fit_seconds` or
    /// `latency_p99_ms`. Weights are shares (normalised to sum to 1). Default: the ranking metric
    /// alone.
    #[serde(default)]
    pub weights: BTreeMap<String, f64>,
    /// Hard limits: a candidate outside them is not chosen, whatever its score.
    #[serde(default)]
    pub constraints: Constraints,
    /// Weighted scores closer than this to the best are a tie, broken by `tie_break`.
    #[serde(default = "tie")]
    pub tie_tolerance: f64,
    /// What decides a tie, in order: `cv` (the better out-of-fold cross-validation score of the
    /// ranking metric), `size` (the smaller fitted model). `[size]` lets size alone decide.
    #[serde(default = "tie_breaks")]
    pub tie_break: Vec<TieBreak>,
    /// Whose metrics rank the candidates: `validation` (the validation part; out of fold when
    /// the split has none), `cv` (the out-of-fold cross-validation score of the ranking metric,
    /// other metrics from the validation part), or `test` (the test part when there is no
    /// validation part, as earlier versions did; the test score then quotes a chosen model).
    #[serde(default)]
    pub rank_on: RankOn,
    /// How the chosen model is compared with another on the same rows.
    #[serde(default)]
    pub compare: CompareParams,
}

impl Default for SelectParams {
    fn default() -> Self {
        SelectParams {
            weights: BTreeMap::new(),
            constraints: Constraints::default(),
            tie_tolerance: tie(),
            tie_break: tie_breaks(),
            rank_on: RankOn::default(),
            compare: CompareParams::default(),
        }
    }
}

fn tie() -> f64 {
    0.001
}

fn tie_breaks() -> Vec<TieBreak> {
    vec![TieBreak::Cv, TieBreak::Size]
}

/// What decides between candidates whose weighted scores tie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TieBreak {
    /// The better out-of-fold cross-validation score of the ranking metric ([`Entry::cv`]).
    Cv,
    /// The smaller fitted model ([`Entry::complexity`]).
    Size,
}

impl TieBreak {
    /// Its name in words.
    pub fn describe(self) -> &'static str {
        match self {
            TieBreak::Cv => "cross-validation score",
            TieBreak::Size => "model size",
        }
    }
}

impl RankOn {
    /// Its name in the config.
    pub fn name(self) -> &'static str {
        match self {
            RankOn::Validation => "validation",
            RankOn::Cv => "cv",
            RankOn::Test => "test",
        }
    }
}

/// Whose metrics rank the candidates (the training run reads it; see [`SelectParams::rank_on`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RankOn {
    /// The validation part; out of fold without one.
    #[default]
    Validation,
    /// The out-of-fold cross-validation score.
    Cv,
    /// The validation part, or the test part without one.
    Test,
}

/// Settings of the comparison of two models on the same rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareParams {
    /// Confidence level of the tests and of the interval.
    #[serde(default = "confidence")]
    pub confidence: f64,
    /// Resamples of the paired bootstrap.
    #[serde(default = "samples")]
    pub bootstrap_samples: usize,
}

impl Default for CompareParams {
    fn default() -> Self {
        CompareParams { confidence: confidence(), bootstrap_samples: samples() }
    }
}

fn confidence() -> f64 {
    0.95
}

fn samples() -> usize {
    1000
}

/// Hard constraints on the candidates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    /// Longest acceptable fit on the training part, in seconds.
    #[serde(default)]
    pub max_fit_seconds: Option<f64>,
    /// Highest acceptable p99 single-row latency (feature pipeline and model), in milliseconds.
    #[serde(default)]
    pub max_latency_p99_ms: Option<f64>,
    /// Floors of metrics (`{recall: 0.8}`).
    #[serde(default)]
    pub min: BTreeMap<String, f64>,
    /// Ceilings of metrics (`{rmse: 50}`).
    #[serde(default)]
    pub max: BTreeMap<String, f64>,
}

/// One candidate as selection sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Its name (family, or run).
    pub name: String,
    /// Test metrics by name.
    pub metrics: BTreeMap<String, f64>,
    /// Seconds to fit.
    pub fit_seconds: f64,
    /// p99 single-row latency in milliseconds, when measured.
    pub latency_p99_ms: Option<f64>,
    /// How complex the model is (the size of the fitted model, say): ties may go to the smaller.
    pub complexity: f64,
    /// Its out-of-fold cross-validation score of the ranking metric, when known: ties may go to
    /// the better.
    #[serde(default)]
    pub cv: Option<f64>,
}

/// A candidate's place in the ranking.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    /// Its name.
    pub name: String,
    /// Weighted score, 0 to 1 (`None` when a constraint rules it out).
    pub score: Option<f64>,
    /// Each weighted criterion normalised over the eligible candidates: 1 for the best, 0 for
    /// the worst.
    pub normalised: BTreeMap<String, f64>,
    /// The constraints it breaks, in words.
    pub violations: Vec<String>,
    /// Its complexity.
    pub complexity: f64,
}

/// The outcome of a selection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Eligible candidates best first (the winner first), then the ruled-out ones.
    pub ranked: Vec<Ranked>,
    /// The chosen candidate, unless every one breaks a constraint.
    pub winner: Option<String>,
    /// Whether the winner won a tie.
    pub tie_broken: bool,
    /// What set the winner apart from the others it tied with (`None` when nothing did: the
    /// first of them in the candidates' order won).
    #[serde(default)]
    pub tie_won_on: Option<TieBreak>,
    /// The weights used, normalised to sum to 1.
    pub weights: BTreeMap<String, f64>,
}

impl SelectParams {
    /// The weights by criterion, checked and normalised; `metric` alone by default.
    pub fn criteria(&self, metric: Metric) -> Result<Vec<(Criterion, f64)>> {
        if self.weights.is_empty() {
            return Ok(vec![(Criterion::Metric(metric), 1.0)]);
        }
        let mut out = Vec::new();
        for (name, &weight) in &self.weights {
            let key = format!("weights.{name}");
            let criterion = known(name, &key)?;
            if !(weight.is_finite() && weight >= 0.0) {
                return Err(SelectBestError::Invalid { key, message: format!("{weight} must be a number >= 0") });
            }
            out.push((criterion, weight));
        }
        let total: f64 = out.iter().map(|(_, w)| w).sum();
        if total <= 0.0 {
            return Err(SelectBestError::Invalid {
                key: "weights".into(),
                message: "at least one weight must be above 0".into(),
            });
        }
        out.iter_mut().for_each(|(_, w)| *w /= total);
        Ok(out)
    }

    /// Checks every setting, before any model is fitted.
    pub fn check(&self, metric: Metric) -> Result<()> {
        self.criteria(metric)?;
        if !(self.tie_tolerance.is_finite() && self.tie_tolerance >= 0.0) {
            return Err(SelectBestError::Invalid {
                key: "tie_tolerance".into(),
                message: format!("{} must be a number >= 0", self.tie_tolerance),
            });
        }
        if !(self.compare.confidence > 0.0 && self.compare.confidence < 1.0) {
            return Err(SelectBestError::Invalid {
                key: "compare.confidence".into(),
                message: format!("{} must be between 0 and 1", self.compare.confidence),
            });
        }
        if self.compare.bootstrap_samples == 0 {
            return Err(SelectBestError::Invalid {
                key: "compare.bootstrap_samples".into(),
                message: "must be at least 1".into(),
            });
        }
        let c = &self.constraints;
        for (key, value) in [("max_fit_seconds", c.max_fit_seconds), ("max_latency_p99_ms", c.max_latency_p99_ms)] {
            if let Some(v) = value.filter(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(SelectBestError::Invalid {
                    key: format!("constraints.{key}"),
                    message: format!("{v} must be a positive number"),
                });
            }
        }
        for (side, bounds) in [("min", &c.min), ("max", &c.max)] {
            for (name, v) in bounds {
                let key = format!("constraints.{side}.{name}");
                known(name, &key)?;
                if !v.is_finite() {
                    return Err(SelectBestError::Invalid { key, message: format!("{v} must be a number") });
                }
            }
        }
        Ok(())
    }
}

impl SelectParams {
    /// Every metric named in the weights and constraints, with its key.
    pub fn metrics(&self) -> Vec<(String, Metric)> {
        let named = self.weights.keys().map(|k| format!("weights.{k}"));
        let named = named.chain(self.constraints.min.keys().map(|k| format!("constraints.min.{k}")));
        let named = named.chain(self.constraints.max.keys().map(|k| format!("constraints.max.{k}")));
        named
            .filter_map(|key| {
                let name = key.rsplit('.').next().unwrap_or_default().to_string();
                match Criterion::parse(&name) {
                    Some(Criterion::Metric(m)) => Some((key, m)),
                    _ => None,
                }
            })
            .collect()
    }
}

fn known(name: &str, key: &str) -> Result<Criterion> {
    Criterion::parse(name).ok_or_else(|| SelectBestError::Invalid {
        key: key.to_string(),
        message: format!(
            "unknown criterion `{name}`; use a metric ({}), fit_seconds or latency_p99_ms",
            Metric::ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
        ),
    })
}

/// Ranks `entries` by the weighted, normalised criteria of `params` (the ranking `metric` alone
/// by default) under its constraints.
pub fn select(entries: &[Entry], params: &SelectParams, metric: Metric) -> Result<Choice> {
    params.check(metric)?;
    let criteria = params.criteria(metric)?;
    for &(criterion, _) in &criteria {
        if let Some(e) = entries.iter().find(|e| criterion.of(e).is_none_or(|v| !v.is_finite())) {
            return Err(SelectBestError::Invalid {
                key: format!("weights.{}", criterion.name()),
                message: format!("candidate `{}` has no value of `{}`", e.name, criterion.name()),
            });
        }
    }
    let violations: Vec<Vec<String>> = entries.iter().map(|e| broken(e, &params.constraints)).collect();
    let eligible: Vec<usize> = (0..entries.len()).filter(|&i| violations[i].is_empty()).collect();
    // Each criterion scaled over the eligible candidates: best 1, worst 0 (all 1 when equal).
    let mut normalised: Vec<BTreeMap<String, f64>> = vec![BTreeMap::new(); entries.len()];
    let mut scores: Vec<Option<f64>> = vec![None; entries.len()];
    for &(criterion, weight) in &criteria {
        let values: Vec<f64> = eligible.iter().filter_map(|&i| criterion.of(&entries[i])).collect();
        let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        for &i in &eligible {
            let v = criterion.of(&entries[i]).unwrap_or(lo);
            let share = if hi > lo {
                if criterion.greater_is_better() { (v - lo) / (hi - lo) } else { (hi - v) / (hi - lo) }
            } else {
                1.0
            };
            normalised[i].insert(criterion.name(), share);
            *scores[i].get_or_insert(0.0) += weight * share;
        }
    }
    let mut order = eligible.clone();
    order.sort_by(|&a, &b| {
        let (sa, sb) = (scores[a].unwrap_or(0.0), scores[b].unwrap_or(0.0));
        sb.total_cmp(&sa).then(entries[a].complexity.total_cmp(&entries[b].complexity)).then(a.cmp(&b))
    });
    // Within the tolerance of the best score, `tie_break` decides, key by key.
    let mut tie_broken = false;
    let mut tie_won_on = None;
    if let Some(&best) = order.first() {
        let top = scores[best].unwrap_or(0.0);
        let mut tied: Vec<usize> =
            order.iter().copied().filter(|&i| top - scores[i].unwrap_or(0.0) <= params.tie_tolerance).collect();
        tie_broken = tied.len() > 1;
        // A missing cross-validation score loses to any; a better one is higher or lower as the
        // metric says.
        let cv = |i: usize| {
            let v = entries[i].cv.filter(|v| v.is_finite());
            v.map(|v| if metric.greater_is_better() { -v } else { v }).unwrap_or(f64::INFINITY)
        };
        let key = |b: TieBreak, i: usize| match b {
            TieBreak::Cv => cv(i),
            TieBreak::Size => entries[i].complexity,
        };
        tied.sort_by(|&a, &b| {
            params.tie_break.iter().fold(std::cmp::Ordering::Equal, |o, &t| o.then(key(t, a).total_cmp(&key(t, b))))
        });
        if let [winner, runner_up, ..] = tied[..] {
            tie_won_on = params.tie_break.iter().copied().find(|&t| key(t, winner) != key(t, runner_up));
        }
        // The tied lead the ranking (scores within the tolerance of the best come first), in
        // the order the tie break gives.
        order.splice(..tied.len(), tied);
    }
    let ruled_out = (0..entries.len()).filter(|i| !violations[*i].is_empty());
    let ranked: Vec<Ranked> = order
        .iter()
        .copied()
        .chain(ruled_out)
        .map(|i| Ranked {
            name: entries[i].name.clone(),
            score: scores[i],
            normalised: normalised[i].clone(),
            violations: violations[i].clone(),
            complexity: entries[i].complexity,
        })
        .collect();
    let winner = order.first().map(|&i| entries[i].name.clone());
    match &winner {
        Some(w) => tracing::info!(winner = %w, tie_broken, "model selected"),
        None => tracing::warn!("every candidate breaks a constraint"),
    }
    Ok(Choice {
        ranked,
        winner,
        tie_broken,
        tie_won_on,
        weights: criteria.iter().map(|(c, w)| (c.name(), *w)).collect(),
    })
}

/// The constraints an entry breaks, in words.
fn broken(e: &Entry, c: &Constraints) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(max) = c.max_fit_seconds.filter(|&m| e.fit_seconds > m) {
        out.push(format!("fit took {:.3} s > max_fit_seconds {max}", e.fit_seconds));
    }
    if let Some(max) = c.max_latency_p99_ms {
        match e.latency_p99_ms {
            Some(v) if v > max => out.push(format!("p99 latency {v:.3} ms > max_latency_p99_ms {max}")),
            None => out.push("p99 latency was not measured".into()),
            _ => {}
        }
    }
    for (name, &min) in &c.min {
        match e.metrics.get(name) {
            Some(&v) if v >= min => {}
            Some(&v) => out.push(format!("{name} {v:.4} < min {min}")),
            None => out.push(format!("no {name} to check against min {min}")),
        }
    }
    for (name, &max) in &c.max {
        match e.metrics.get(name) {
            Some(&v) if v <= max => {}
            Some(&v) => out.push(format!("{name} {v:.4} > max {max}")),
            None => out.push(format!("no {name} to check against max {max}")),
        }
    }
    out
}
