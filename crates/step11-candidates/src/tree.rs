//! Decision trees on binned features (at most 255 bins per feature, cut at training quantiles, as
//! LightGBM and scikit-learn's histogram models do), and random forests of them.

use mlops_core::Seed;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::{Labels, ParamGuard, Result, bad};

/// Tree settings shared by trees and forests (scikit-learn's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TreeParams {
    /// Deepest level (unlimited when absent).
    pub max_depth: Option<usize>,
    /// Fewest rows a node needs to be split (>= 2).
    pub min_samples_split: usize,
    /// Fewest rows in a leaf (>= 1).
    pub min_samples_leaf: usize,
    /// Share of the features tried at each split, above 0 and at most 1 (default: √d of d for a
    /// forest classifier, all features otherwise).
    pub max_features: Option<f64>,
    /// Seed of the feature draws and bootstrap samples.
    pub random_state: u64,
}

impl Default for TreeParams {
    fn default() -> Self {
        TreeParams { max_depth: None, min_samples_split: 2, min_samples_leaf: 1, max_features: None, random_state: 42 }
    }
}

impl ParamGuard for TreeParams {
    fn check_ref(&self, model: &'static str, _rows: usize) -> Result<()> {
        if self.max_depth == Some(0) {
            return bad(model, "max_depth", "must be at least 1".into());
        }
        if self.min_samples_split < 2 {
            return bad(model, "min_samples_split", format!("{} must be at least 2", self.min_samples_split));
        }
        if self.min_samples_leaf < 1 {
            return bad(model, "min_samples_leaf", "must be at least 1".into());
        }
        if let Some(f) = self.max_features
            && !(f > 0.0 && f <= 1.0)
        {
            return bad(model, "max_features", format!("{f} must be a share of the features, above 0 and at most 1"));
        }
        Ok(())
    }
}

impl TreeParams {
    /// A decision tree is a forest of one tree grown on all the rows.
    pub(crate) fn single(&self) -> ForestParams {
        ForestParams {
            n_estimators: 1,
            bootstrap: false,
            max_depth: self.max_depth,
            min_samples_split: self.min_samples_split,
            min_samples_leaf: self.min_samples_leaf,
            max_features: self.max_features,
            random_state: self.random_state,
        }
    }
}

/// A forest's settings. The tree settings repeat [`TreeParams`]' fields rather than flattening
/// it, because serde's `flatten` would stop `deny_unknown_fields` from catching misspelt keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForestParams {
    /// Trees (>= 1).
    pub n_estimators: usize,
    /// Draw a bootstrap sample per tree.
    pub bootstrap: bool,
    /// Deepest level (unlimited when absent).
    pub max_depth: Option<usize>,
    /// Fewest rows a node needs to be split (>= 2).
    pub min_samples_split: usize,
    /// Fewest rows in a leaf (>= 1).
    pub min_samples_leaf: usize,
    /// Share of the features tried at each split (default: √d of d for a classifier, all for a
    /// regressor).
    pub max_features: Option<f64>,
    /// Seed of the bootstrap samples and feature draws.
    pub random_state: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        TreeParams::default().single().with_trees(100)
    }
}

impl ParamGuard for ForestParams {
    fn check_ref(&self, model: &'static str, rows: usize) -> Result<()> {
        if self.n_estimators == 0 {
            return bad(model, "n_estimators", "must be at least 1 tree".into());
        }
        self.tree().check_ref(model, rows)
    }
}

impl ForestParams {
    /// The settings of each tree.
    pub(crate) fn tree(&self) -> TreeParams {
        TreeParams {
            max_depth: self.max_depth,
            min_samples_split: self.min_samples_split,
            min_samples_leaf: self.min_samples_leaf,
            max_features: self.max_features,
            random_state: self.random_state,
        }
    }

    /// `trees` trees on bootstrap samples.
    fn with_trees(self, trees: usize) -> ForestParams {
        ForestParams { n_estimators: trees, bootstrap: true, ..self }
    }
}

/// Feature values mapped to bins once, before any tree grows.
pub(crate) struct Binned {
    /// Per feature, the bin of every row.
    pub(crate) bins: Vec<Vec<u8>>,
    /// Per feature, the upper edge of each bin but the last (a value goes left of a split at bin
    /// `b` when it is at most `edges[b]`).
    pub(crate) edges: Vec<Vec<f64>>,
    /// Per feature, the smallest and the largest training value in each bin.
    pub(crate) range: Vec<Vec<(f64, f64)>>,
}

const MAX_BINS: usize = 255;

impl Binned {
    /// Bins every column of `x`, columns shared out over the cores.
    pub(crate) fn new(x: &Array2<f64>) -> Binned {
        let columns: Vec<usize> = (0..x.ncols()).collect();
        let one = |&j: &usize| {
            let col = x.column(j);
            let mut sorted: Vec<f64> = col.to_vec();
            sorted.sort_unstable_by(f64::total_cmp);
            sorted.dedup();
            // Edges halfway between neighbouring distinct values, at most MAX_BINS - 1 of them.
            let cut: Vec<f64> = if sorted.len() <= MAX_BINS {
                sorted.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect()
            } else {
                let mut e: Vec<f64> = (1..MAX_BINS)
                    .map(|i| {
                        let k = i * sorted.len() / MAX_BINS;
                        (sorted[k - 1] + sorted[k]) / 2.0
                    })
                    .collect();
                e.dedup();
                e
            };
            let bins: Vec<u8> = col.iter().map(|v| cut.partition_point(|e| e < v) as u8).collect();
            // The distinct values of bin `b` are those between edges `b - 1` and `b`.
            let mut range = Vec::with_capacity(cut.len() + 1);
            let mut at = 0;
            for b in 0..=cut.len() {
                let end = cut.get(b).map_or(sorted.len(), |e| sorted.partition_point(|v| v <= e));
                let (lo, hi) = (sorted.get(at).copied(), end.checked_sub(1).and_then(|i| sorted.get(i)).copied());
                range.push((lo.unwrap_or(f64::NAN), hi.unwrap_or(f64::NAN)));
                at = end;
            }
            (bins, (cut, range))
        };
        let done = match mlops_core::par::map(&columns, one) {
            Some(done) => done,
            None => columns.iter().map(one).collect(),
        };
        let (bins, (edges, range)): (Vec<_>, (Vec<_>, Vec<_>)) = done.into_iter().unzip();
        Binned { bins, edges, range }
    }
}

/// A node of a fitted tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Node {
    /// Rows with `x[feature] <= threshold` go to `left`, the others to `right` (indices into the
    /// tree's nodes).
    Split {
        /// Feature index.
        feature: usize,
        /// Threshold.
        threshold: f64,
        /// Left child.
        left: usize,
        /// Right child.
        right: usize,
    },
    /// A leaf: class shares for a classifier, the mean for a regressor.
    Leaf {
        /// The prediction.
        value: Vec<f64>,
    },
}

/// A fitted tree: nodes with the root first, and the impurity decrease each feature brought.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Nodes, root first.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The leaf value for one row.
    pub fn leaf(&self, row: &[f64]) -> &[f64] {
        let mut i = 0;
        loop {
            match &self.nodes[i] {
                Node::Split { feature, threshold, left, right } => {
                    i = if row[*feature] <= *threshold { *left } else { *right }
                }
                Node::Leaf { value } => return value,
            }
        }
    }
}

/// How a tree grows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Growth {
    pub max_depth: usize,
    pub min_samples_split: usize,
    pub min_samples_leaf: usize,
    /// Features tried per split.
    pub max_features: usize,
}

/// What a tree grows on: class counts per node (Gini) or sums of values (squared error).
impl Labels {
    fn width(&self) -> usize {
        match self {
            Labels::Classes { classes, .. } => *classes,
            Labels::Values(_) => 2,
        }
    }

    /// Adds a row's statistics: class counts, or (sum, sum of squares).
    fn add(&self, acc: &mut [f64], row: usize) {
        match self {
            Labels::Classes { y, .. } => acc[y[row]] += 1.0,
            Labels::Values(y) => {
                acc[0] += y[row];
                acc[1] += y[row] * y[row];
            }
        }
    }

    /// Whether a split could still improve the node.
    fn splittable(cost: f64) -> bool {
        cost > 1e-12
    }

    /// The impurity of a node times its rows: Gini · n, or the sum of squared deviations.
    fn cost(&self, acc: &[f64], n: f64) -> f64 {
        if n == 0.0 {
            return 0.0;
        }
        match self {
            Labels::Classes { .. } => n - acc.iter().map(|c| c * c).sum::<f64>() / n,
            Labels::Values(_) => acc[1] - acc[0] * acc[0] / n,
        }
    }

    fn leaf(&self, acc: &[f64], n: f64) -> Vec<f64> {
        match self {
            Labels::Classes { .. } => acc.iter().map(|c| c / n).collect(),
            Labels::Values(_) => vec![acc[0] / n],
        }
    }
}

/// Grows one tree on the rows `rows` (a bootstrap sample may repeat rows), trying `max_features`
/// features drawn with `seed` at every split; adds each split's impurity decrease to `importance`.
pub(crate) fn grow(
    data: &Binned,
    labels: &Labels,
    rows: Vec<u32>,
    g: Growth,
    seed: Seed,
    importance: &mut [f64],
) -> Tree {
    let mut draws = seed.draws();
    let d = data.bins.len();
    let w = labels.width();
    let mut nodes: Vec<Node> = Vec::new();
    // (rows, depth, node index to fill)
    let mut stack = vec![(rows, 0usize, 0usize)];
    nodes.push(Node::Leaf { value: Vec::new() });
    let mut features: Vec<usize> = (0..d).collect();
    while let Some((rows, depth, at)) = stack.pop() {
        let n = rows.len() as f64;
        let mut total = vec![0.0; w];
        for &r in &rows {
            labels.add(&mut total, r as usize);
        }
        let parent_cost = labels.cost(&total, n);
        let mut best: Option<(f64, usize, usize, usize)> = None;
        if depth < g.max_depth && rows.len() >= g.min_samples_split && Labels::splittable(parent_cost) {
            draws.shuffle(&mut features);
            let mut hist = vec![0.0; (MAX_BINS + 1) * w];
            let mut counts = vec![0usize; MAX_BINS + 1];
            for &f in features.iter().take(g.max_features.clamp(1, d)) {
                let nbins = data.edges[f].len() + 1;
                if nbins < 2 {
                    continue;
                }
                hist[..nbins * w].iter_mut().for_each(|v| *v = 0.0);
                counts[..nbins].iter_mut().for_each(|c| *c = 0);
                let col = &data.bins[f];
                for &r in &rows {
                    let b = col[r as usize] as usize;
                    labels.add(&mut hist[b * w..(b + 1) * w], r as usize);
                    counts[b] += 1;
                }
                // The next bin with rows of this node after each bin: a split's threshold is
                // halfway between the node's values on either side, as scikit-learn's.
                let mut next = vec![nbins; nbins];
                for b in (0..nbins - 1).rev() {
                    next[b] = if counts[b + 1] > 0 { b + 1 } else { next[b + 1] };
                }
                let mut left = vec![0.0; w];
                let mut n_left = 0usize;
                for b in 0..nbins - 1 {
                    left.iter_mut().zip(&hist[b * w..(b + 1) * w]).for_each(|(l, h)| *l += h);
                    n_left += counts[b];
                    let n_right = rows.len() - n_left;
                    if n_left < g.min_samples_leaf || n_right < g.min_samples_leaf {
                        continue;
                    }
                    if counts[b] == 0 && b > 0 {
                        continue;
                    }
                    let right: Vec<f64> = total.iter().zip(&left).map(|(t, l)| t - l).collect();
                    let cost = labels.cost(&left, n_left as f64) + labels.cost(&right, n_right as f64);
                    if best.is_none_or(|(c, _, _, _)| cost < c - 1e-12) {
                        best = Some((cost, f, b, next[b]));
                    }
                }
            }
        }
        match best.filter(|(cost, _, _, _)| *cost < parent_cost - 1e-12) {
            Some((cost, f, b, above)) => {
                importance[f] += parent_cost - cost;
                let col = &data.bins[f];
                let (left, right): (Vec<u32>, Vec<u32>) = rows.iter().partition(|&&r| col[r as usize] as usize <= b);
                let (li, ri) = (nodes.len(), nodes.len() + 1);
                nodes.push(Node::Leaf { value: Vec::new() });
                nodes.push(Node::Leaf { value: Vec::new() });
                let threshold = match (data.range[f].get(b), data.range[f].get(above)) {
                    (Some(&(_, below)), Some(&(over, _))) if below.is_finite() && over.is_finite() => {
                        // scikit-learn's arithmetic, so that equal data give equal thresholds.
                        below / 2.0 + over / 2.0
                    }
                    _ => data.edges[f][b],
                };
                nodes[at] = Node::Split { feature: f, threshold, left: li, right: ri };
                stack.push((right, depth + 1, ri));
                stack.push((left, depth + 1, li));
            }
            None => nodes[at] = Node::Leaf { value: labels.leaf(&total, n) },
        }
    }
    Tree { nodes }
}

/// Grows `trees` trees over the cores, each on a bootstrap sample (or all rows), with its own seed
/// derived from `seed`, so the forest is the same whatever the thread count. Returns the trees
/// and the impurity-based importances normalised to sum to 1; `None` when a worker thread failed.
pub(crate) fn forest(
    data: &Binned,
    labels: &Labels,
    n: usize,
    trees: usize,
    bootstrap: bool,
    g: Growth,
    seed: Seed,
) -> Option<(Vec<Tree>, Vec<f64>)> {
    let d = data.bins.len();
    let ids: Vec<usize> = (0..trees).collect();
    let grown = mlops_core::par::map(&ids, |&t| {
        let tree_seed = seed.derive(&format!("tree-{t}"));
        let rows: Vec<u32> = if bootstrap {
            let mut draws = tree_seed.derive("bootstrap").draws();
            (0..n).map(|_| draws.below(n as u64) as u32).collect()
        } else {
            (0..n as u32).collect()
        };
        let mut importance = vec![0.0; d];
        let tree = grow(data, labels, rows, g, tree_seed, &mut importance);
        let total: f64 = importance.iter().sum();
        if total > 0.0 {
            importance.iter_mut().for_each(|v| *v /= total);
        }
        (tree, importance)
    })?;
    let mut importance = vec![0.0; d];
    let mut out = Vec::with_capacity(trees);
    for (tree, imp) in grown {
        importance.iter_mut().zip(&imp).for_each(|(a, b)| *a += b);
        out.push(tree);
    }
    let total: f64 = importance.iter().sum();
    if total > 0.0 {
        importance.iter_mut().for_each(|v| *v /= total);
    }
    Some((out, importance))
}
