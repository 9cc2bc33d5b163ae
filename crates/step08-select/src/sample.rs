//! Sampling rows: random (n or fraction), stratified, systematic, cluster. Seeded; the sampled
//! rows keep their original order.

use std::collections::BTreeMap;

use mlops_core::Seed;
use mlops_core::frame::keys;
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SelectError, missing};
use crate::rows::take;

/// How to sample (`sample: {random: {fraction: 0.1}}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Sample {
    /// `n` rows or a `fraction` of them, uniformly at random (`df.sample`).
    Random {
        /// Rows to draw.
        #[serde(default)]
        n: Option<usize>,
        /// Share of rows to draw.
        #[serde(default)]
        fraction: Option<f64>,
    },
    /// The same share from every class of `by`, so class proportions are kept.
    Stratified {
        /// The class column.
        by: String,
        /// Rows to draw in all, shared out in proportion to the classes.
        #[serde(default)]
        n: Option<usize>,
        /// Share of each class to draw.
        #[serde(default)]
        fraction: Option<f64>,
    },
    /// Every `every`-th row from `start` (`df.iloc[start::every]`).
    Systematic {
        /// Step between rows.
        every: usize,
        /// First row.
        #[serde(default)]
        start: usize,
    },
    /// All rows of `clusters` randomly chosen values of `by`.
    Cluster {
        /// The cluster column.
        by: String,
        /// How many clusters to keep.
        clusters: usize,
    },
}

fn share(n: Option<usize>, fraction: Option<f64>, rows: usize, key: &str) -> Result<usize> {
    match (n, fraction) {
        (Some(n), None) if n <= rows => Ok(n),
        (Some(n), None) => {
            Err(SelectError::Invalid { key: format!("{key}.n"), message: format!("{n} is more than the {rows} rows") })
        }
        (None, Some(f)) if (0.0..=1.0).contains(&f) => Ok((f * rows as f64).round() as usize),
        (None, Some(_)) => {
            Err(SelectError::Invalid { key: format!("{key}.fraction"), message: "must be between 0 and 1".into() })
        }
        _ => {
            Err(SelectError::Invalid { key: key.to_string(), message: "give exactly one of `n` and `fraction`".into() })
        }
    }
}

/// Splits `total` into whole parts proportional to `weights` (largest remainder: each part is
/// within one of its exact share, and the parts add up to `total`).
pub fn apportion(weights: &[usize], total: usize) -> Vec<usize> {
    let sum: usize = weights.iter().sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<f64> = weights.iter().map(|&w| w as f64 * total as f64 / sum as f64).collect();
    let mut parts: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut left = total.saturating_sub(parts.iter().sum());
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
    for i in order {
        if left == 0 {
            break;
        }
        if parts[i] < weights[i] {
            parts[i] += 1;
            left -= 1;
        }
    }
    parts
}

/// Shares classes out over parts: `table[c][p]` rows of class `c` go to part `p`, so that every
/// class's rows add up to its size, every part's rows add up to its size, and every cell is within
/// one row of its exact share `sizes[c] · parts[p] / total` (controlled rounding; `parts` must add
/// up to the sum of `sizes`).
pub fn apportion_table(sizes: &[usize], parts: &[usize]) -> Vec<Vec<usize>> {
    let total: usize = sizes.iter().sum();
    if total == 0 {
        return vec![vec![0; parts.len()]; sizes.len()];
    }
    let exact = |c: usize, p: usize| sizes[c] as f64 * parts[p] as f64 / total as f64;
    let mut table: Vec<Vec<usize>> =
        (0..sizes.len()).map(|c| (0..parts.len()).map(|p| exact(c, p).floor() as usize).collect()).collect();
    // Each class and each part is short by a few rows; give each short class one extra row in as
    // many parts as it is short, largest remaining part demand first (Gale-Ryser's construction,
    // which always succeeds here), so no cell moves more than one row from its exact share.
    let mut demand: Vec<usize> =
        (0..parts.len()).map(|p| parts[p] - table.iter().map(|r| r[p]).sum::<usize>()).collect();
    let mut short: Vec<(usize, usize)> =
        (0..sizes.len()).map(|c| (c, sizes[c] - table[c].iter().sum::<usize>())).collect();
    short.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (c, need) in short {
        let mut order: Vec<usize> = (0..parts.len()).collect();
        let frac = |p: usize| exact(c, p) - exact(c, p).floor();
        order.sort_by(|&a, &b| demand[b].cmp(&demand[a]).then(frac(b).total_cmp(&frac(a))).then(a.cmp(&b)));
        for &p in order.iter().take(need) {
            if demand[p] > 0 {
                table[c][p] += 1;
                demand[p] -= 1;
            }
        }
    }
    table
}

/// Row numbers grouped by the values of a column, groups in sorted order (nulls as `null`).
pub(crate) fn groups_of(df: &DataFrame, column: &str, key: &str) -> Result<BTreeMap<String, Vec<usize>>> {
    if df.column(column).is_err() {
        return Err(missing(df, key, column));
    }
    let mut out: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, k) in keys(df, column)?.into_iter().enumerate() {
        out.entry(k.unwrap_or_else(|| "null".to_string())).or_default().push(i);
    }
    Ok(out)
}

impl Sample {
    /// The row numbers drawn, ascending; `key` prefixes errors (`sample`).
    pub fn rows(&self, df: &DataFrame, seed: Seed, key: &str) -> Result<Vec<usize>> {
        let n = df.height();
        let mut draws = seed.derive("sample").draws();
        let mut rows = match self {
            Sample::Random { n: count, fraction } => {
                let k = share(*count, *fraction, n, &format!("{key}.random"))?;
                let mut all = draws.permutation(n);
                all.truncate(k);
                all
            }
            Sample::Stratified { by, n: count, fraction } => {
                let key = format!("{key}.stratified");
                let groups = groups_of(df, by, &format!("{key}.by"))?;
                let sizes: Vec<usize> = groups.values().map(Vec::len).collect();
                let k = share(*count, *fraction, n, &key)?;
                let quotas = apportion(&sizes, k);
                let mut out = Vec::with_capacity(k);
                for (members, quota) in groups.into_values().zip(quotas) {
                    let order = draws.permutation(members.len());
                    out.extend(order.into_iter().take(quota).map(|i| members[i]));
                }
                out
            }
            Sample::Systematic { every, start } => {
                if *every == 0 {
                    return Err(SelectError::Invalid {
                        key: format!("{key}.systematic.every"),
                        message: "must be at least 1".into(),
                    });
                }
                (*start..n).step_by(*every).collect()
            }
            Sample::Cluster { by, clusters } => {
                let key = format!("{key}.cluster");
                let groups = groups_of(df, by, &format!("{key}.by"))?;
                if *clusters == 0 || *clusters > groups.len() {
                    return Err(SelectError::Invalid {
                        key: format!("{key}.clusters"),
                        message: format!("must be between 1 and the {} distinct values of `{by}`", groups.len()),
                    });
                }
                let mut members: Vec<Vec<usize>> = groups.into_values().collect();
                draws.shuffle(&mut members);
                members.into_iter().take(*clusters).flatten().collect()
            }
        };
        rows.sort_unstable();
        Ok(rows)
    }

    /// The sampled frame.
    pub fn apply(&self, df: &DataFrame, seed: Seed, key: &str) -> Result<DataFrame> {
        take(df, &self.rows(df, seed, key)?, key)
    }
}
