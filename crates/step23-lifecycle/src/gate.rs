//! The gate: a challenger replaces the champion only when it is better by the margin on the
//! same labelled rows, each scored through its own package.

use std::collections::BTreeMap;

use serde::Serialize;
use step14_evaluate::Metric;

use crate::policy::GateParams;

/// One version's scores on the labelled window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scored {
    /// The version.
    pub version: u32,
    /// Its metrics on the window, by name.
    pub metrics: BTreeMap<String, f64>,
    /// The labelled rows scored.
    pub rows: u64,
    /// Labelled rows of the window this version would refuse (a column it needs is missing or
    /// does not fit), by the offending column: what its callers would see as 400s.
    pub refused: BTreeMap<String, u64>,
}

impl Scored {
    /// The rows it would refuse, over every column.
    pub fn refused_rows(&self) -> u64 {
        self.refused.values().sum()
    }
}

/// What the gate decided, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GateDecision {
    /// Whether the challenger goes through.
    pub passed: bool,
    /// The metric compared.
    pub metric: String,
    /// The champion's score on it.
    pub champion: Option<f64>,
    /// The challenger's.
    pub challenger: Option<f64>,
    /// Why, with the numbers.
    pub reason: String,
}

/// Holds `challenger` against `champion` on `metric` with the policy's margin and row minimum.
/// `floors` and `ceilings` are the training config's `select_best.constraints` (`min`, `max`),
/// which the challenger must meet on the window too.
pub fn decide(
    params: &GateParams,
    metric: Metric,
    (champion, challenger): (&Scored, &Scored),
    (floors, ceilings): (&BTreeMap<String, f64>, &BTreeMap<String, f64>),
) -> GateDecision {
    let name = metric.name();
    let (a, b) = (champion.metrics.get(&name).copied(), challenger.metrics.get(&name).copied());
    let closed =
        |reason: String| GateDecision { passed: false, metric: name.clone(), champion: a, challenger: b, reason };
    // Callers first: a challenger that would refuse what they send is out whatever its score.
    let (before, after) = (champion.refused_rows(), challenger.refused_rows());
    if after > before && !params.allow_new_refusals {
        let columns: Vec<String> = challenger
            .refused
            .iter()
            .filter(|(c, n)| **n > champion.refused.get(*c).copied().unwrap_or(0))
            .map(|(c, n)| format!("`{c}` in {n}"))
            .collect();
        return closed(format!(
            "version {} would refuse {after} of the window's labelled rows where version {} refuses {before} ({}): callers would get 400s after a promotion (gate.allow_new_refusals: true promotes anyway)",
            challenger.version,
            champion.version,
            columns.join(", ")
        ));
    }
    let rows = champion.rows.min(challenger.rows);
    if rows < params.min_labelled_rows {
        return closed(format!(
            "{rows} labelled row(s) in the window; the gate needs at least {}",
            params.min_labelled_rows
        ));
    }
    let (Some(a), Some(b)) = (a, b) else {
        return closed(format!("`{name}` could not be measured on the window for both versions"));
    };
    for (metric, floor) in floors {
        match challenger.metrics.get(metric) {
            Some(v) if v >= floor => {}
            Some(v) => return closed(format!("the challenger's {metric} {v:.4} is under the floor {floor}")),
            None => return closed(format!("the floor on {metric} cannot be checked: not measured on the window")),
        }
    }
    for (metric, ceiling) in ceilings {
        match challenger.metrics.get(metric) {
            Some(v) if v <= ceiling => {}
            Some(v) => return closed(format!("the challenger's {metric} {v:.4} is over the ceiling {ceiling}")),
            None => return closed(format!("the ceiling on {metric} cannot be checked: not measured on the window")),
        }
    }
    let better = if metric.greater_is_better() { b - a } else { a - b };
    let margin = params.margin;
    // "Beat" is strict: an equal score keeps the champion, and so does a win of exactly the
    // margin (0.92 against 0.90 with a margin of 0.02 is 0.020000000000000018 in floats).
    let passed = better - margin > 1e-9;
    let reason = if passed {
        format!(
            "version {} beats version {} on {name}: {b:.4} against {a:.4} over {rows} labelled row(s) (margin {margin})",
            challenger.version, champion.version
        )
    } else {
        format!(
            "version {} does not beat version {} by more than {margin} on {name}: {b:.4} against {a:.4} over {rows} labelled row(s)",
            challenger.version, champion.version
        )
    };
    GateDecision { passed, metric: name, champion: Some(a), challenger: Some(b), reason }
}
