//! Gradient boosting on histograms, as LightGBM and scikit-learn's `HistGradientBoosting*` do:
//! features binned once (`u8` bins per column), trees grown best-first up to `max_leaf_nodes`
//! leaves, each node's histogram of gradient and hessian sums built over the smaller child only
//! (the larger one is the parent's minus it), and every training row's raw score updated from
//! the leaf it ended in (no tree walk). The root's histogram is built column by column over the
//! cores; a node's row by row from a row-major copy of the bins (a row's bins share a cache line,
//! where a column gather would miss once per feature), its rows split over the cores when large.

use mlops_core::Seed;
use ndarray::Array2;

use crate::tree::{Binned, Node, Tree};

/// Bins per feature at most, as stored (255 real bins at most, `u8`).
const STRIDE: usize = 256;
/// Interleaved copies of a histogram while it is built.
const LANES: usize = 4;

/// Loss of a boosted model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Loss {
    /// Squared error, one raw score per row.
    Squared,
    /// Binary log loss, one raw score (log-odds) per row.
    Binary,
    /// Multinomial log loss, one raw score per class per row.
    Multinomial(usize),
}

impl Loss {
    fn outputs(self) -> usize {
        match self {
            Loss::Multinomial(k) => k,
            _ => 1,
        }
    }

    /// The starting raw scores: the mean, the log-odds, the log class shares.
    fn base(self, y: &[f64]) -> Vec<f64> {
        let n = y.len().max(1) as f64;
        match self {
            Loss::Squared => vec![y.iter().sum::<f64>() / n],
            Loss::Binary => {
                let p = (y.iter().sum::<f64>() / n).clamp(1e-12, 1.0 - 1e-12);
                vec![(p / (1.0 - p)).ln()]
            }
            Loss::Multinomial(k) => {
                (0..k).map(|c| (y.iter().filter(|&&v| v as usize == c).count() as f64 / n).max(1e-12).ln()).collect()
            }
        }
    }

    /// Mean loss of raw scores (`k` per row): half squared error, or log loss. Row blocks are
    /// shared out over the cores.
    fn mean(self, raw: &[f64], y: &[f64]) -> f64 {
        let k = self.outputs();
        let one = |(i, &t): (usize, &f64)| -> f64 {
            let z = &raw[i * k..(i + 1) * k];
            match self {
                Loss::Squared => 0.5 * (z[0] - t).powi(2),
                // log(1 + e^z) - t·z, computed without overflow.
                Loss::Binary => z[0].max(0.0) + (-z[0].abs()).exp().ln_1p() - t * z[0],
                Loss::Multinomial(_) => {
                    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let lse = max + z.iter().map(|s| (s - max).exp()).sum::<f64>().ln();
                    lse - z[t as usize]
                }
            }
        };
        let block = 16_384;
        let starts: Vec<usize> = (0..y.len()).step_by(block).collect();
        let sum = |&start: &usize| -> f64 {
            let end = (start + block).min(y.len());
            y[start..end].iter().enumerate().map(|(i, t)| one((start + i, t))).sum()
        };
        let total: f64 = match mlops_core::par::map(&starts, sum) {
            Some(parts) => parts.iter().sum(),
            None => starts.iter().map(sum).sum(),
        };
        total / y.len().max(1) as f64
    }

    /// Gradients and hessians of every output for every row: `g[c * n + i]`.
    fn gradients(self, raw: &[f64], y: &[f64], g: &mut [f32], h: &mut [f32]) {
        let (n, k) = (y.len(), self.outputs());
        let mut p = vec![0.0; k];
        for (i, &t) in y.iter().enumerate() {
            let z = &raw[i * k..(i + 1) * k];
            match self {
                Loss::Squared => {
                    g[i] = (z[0] - t) as f32;
                    h[i] = 1.0;
                }
                Loss::Binary => {
                    let q = 1.0 / (1.0 + (-z[0]).exp());
                    g[i] = (q - t) as f32;
                    h[i] = (q * (1.0 - q)).max(1e-16) as f32;
                }
                Loss::Multinomial(_) => {
                    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let mut sum = 0.0;
                    for (pv, s) in p.iter_mut().zip(z) {
                        *pv = (s - max).exp();
                        sum += *pv;
                    }
                    for (c, pv) in p.iter().enumerate() {
                        let q = pv / sum;
                        let hit = if t as usize == c { 1.0 } else { 0.0 };
                        g[c * n + i] = (q - hit) as f32;
                        h[c * n + i] = (q * (1.0 - q)).max(1e-16) as f32;
                    }
                }
            }
        }
    }
}

/// The settings of a boosting fit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub rounds: usize,
    pub learning_rate: f64,
    pub lambda: f64,
    pub max_depth: usize,
    pub max_leaf_nodes: usize,
    pub min_samples_leaf: usize,
    /// Stop when the loss on a held-out share of the rows has not improved by `tol` for this
    /// many rounds: (share, rounds, tol).
    pub early_stopping: Option<(f64, usize, f64)>,
    pub seed: Seed,
}

/// What a boosting fit returns.
pub(crate) struct Boosted {
    pub base: Vec<f64>,
    pub rounds: Vec<Vec<Tree>>,
    pub importance: Vec<f64>,
    /// Mean training loss after each round.
    pub train_loss: Vec<f64>,
    /// Mean held-out loss after each round (early stopping only).
    pub validation_loss: Vec<f64>,
}

/// Sums of one bin.
#[derive(Clone, Copy, Debug, Default)]
struct Bin {
    g: f64,
    h: f64,
    n: u32,
}

/// The binned training rows: by column (for whole-data histograms) and by row (for a node's
/// rows, whose bins then sit in one or two cache lines), with the bin count of each feature and
/// where its bins start in a histogram.
struct Rows<'a> {
    d: usize,
    nbins: Vec<usize>,
    /// `offsets[f]..offsets[f + 1]` are feature `f`'s bins in a histogram.
    offsets: Vec<usize>,
    binned: &'a Binned,
    /// Row `r`'s bins: `by_row[r * d..(r + 1) * d]`.
    by_row: Vec<u8>,
}

impl<'a> Rows<'a> {
    fn new(binned: &'a Binned, n: usize) -> Rows<'a> {
        let d = binned.bins.len();
        let nbins: Vec<usize> = binned.edges.iter().map(|e| e.len() + 1).collect();
        let offsets = std::iter::once(0).chain(nbins.iter().scan(0, |at, nb| {
            *at += nb;
            Some(*at)
        }));
        let mut by_row = vec![0u8; n * d];
        for (f, col) in binned.bins.iter().enumerate() {
            for (r, &b) in col.iter().enumerate() {
                by_row[r * d + f] = b;
            }
        }
        Rows { d, offsets: offsets.collect(), nbins, binned, by_row }
    }

    /// Bins of a histogram.
    fn size(&self) -> usize {
        self.offsets[self.d]
    }

    /// The histogram of `rows` (ascending row numbers), shared out over the cores when it is
    /// worth it: all rows feature by feature (so each feature's bins stay in the L1 cache), a
    /// node's rows row by row (each row's bins read at once, its gradient once).
    fn histogram(&self, rows: &[u32], g: &[f32], h: &[f32]) -> Vec<Bin> {
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        let parallel = workers >= 2 && rows.len() * self.d >= 100_000;
        if rows.len() == g.len() {
            let features: Vec<usize> = (0..self.d).collect();
            if !parallel {
                return self.by_feature(&features, g, h);
            }
            let chunks: Vec<&[usize]> = features.chunks(self.d.div_ceil(workers)).collect();
            return match mlops_core::par::map(&chunks, |c| self.by_feature(c, g, h)) {
                Some(parts) => parts.concat(),
                None => self.by_feature(&features, g, h),
            };
        }
        if !parallel {
            return self.by_rows(rows, g, h);
        }
        let chunks: Vec<&[u32]> = rows.chunks(rows.len().div_ceil(workers)).collect();
        let Some(mut parts) = mlops_core::par::map(&chunks, |c| self.by_rows(c, g, h)) else {
            return self.by_rows(rows, g, h);
        };
        let mut out = parts.swap_remove(0);
        for part in parts {
            for (a, b) in out.iter_mut().zip(&part) {
                a.g += b.g;
                a.h += b.h;
                a.n += b.n;
            }
        }
        out
    }

    /// The histogram of a node's rows.
    fn by_rows(&self, rows: &[u32], g: &[f32], h: &[f32]) -> Vec<Bin> {
        let d = self.d;
        let offsets = &self.offsets[..d];
        let mut out = vec![Bin::default(); self.size()];
        for &r in rows {
            let r = r as usize;
            let (gr, hr) = (f64::from(g[r]), f64::from(h[r]));
            for (&b, &at) in self.by_row[r * d..(r + 1) * d].iter().zip(offsets) {
                let e = &mut out[at + b as usize];
                e.g += gr;
                e.h += hr;
                e.n += 1;
            }
        }
        out
    }

    /// The part of the all-rows histogram that `features` (consecutive) cover.
    fn by_feature(&self, features: &[usize], g: &[f32], h: &[f32]) -> Vec<Bin> {
        let (Some(&first), Some(&last)) = (features.first(), features.last()) else { return Vec::new() };
        let base = self.offsets[first];
        let mut out = vec![Bin::default(); self.offsets[last + 1] - base];
        // Four interleaved copies of the bins break the chain of updates to one bin that
        // features with few bins (flags, one-hot columns) would otherwise wait on.
        let mut lanes = vec![Bin::default(); LANES * STRIDE];
        for &f in features {
            let nb = self.nbins[f];
            lanes.iter_mut().for_each(|b| *b = Bin::default());
            accumulate(&mut lanes, LANES, self.binned.bins[f].iter().copied(), g, h);
            let hist = &mut out[self.offsets[f] - base..self.offsets[f + 1] - base];
            for (b, e) in hist.iter_mut().enumerate().take(nb) {
                for lane in 0..LANES {
                    let l = lanes[lane * STRIDE + b];
                    e.g += l.g;
                    e.h += l.h;
                    e.n += l.n;
                }
            }
        }
        out
    }
}

/// Adds every row's gradient and hessian to its bin, `step` rows at a time, row `i` into copy
/// `i % step` of the histogram.
#[inline]
fn accumulate(target: &mut [Bin], step: usize, bins: impl Iterator<Item = u8>, g: &[f32], h: &[f32]) {
    for (i, ((b, &gr), &hr)) in bins.zip(g).zip(h).enumerate() {
        let e = &mut target[(i % step) * STRIDE + b as usize];
        e.g += f64::from(gr);
        e.h += f64::from(hr);
        e.n += 1;
    }
}

/// The best split of a node: (gain, feature, last bin going left).
fn best_split(hist: &[Bin], rows: &Rows<'_>, total: Bin, s: &Settings) -> Option<(f64, usize, usize)> {
    let score = |g: f64, h: f64| g * g / (h + s.lambda);
    let parent = score(total.g, total.h);
    let min_leaf = s.min_samples_leaf as u32;
    let mut best: Option<(f64, usize, usize)> = None;
    for (f, &nb) in rows.nbins.iter().enumerate() {
        let hist = &hist[rows.offsets[f]..rows.offsets[f] + nb];
        let mut left = Bin::default();
        for (b, bin) in hist.iter().enumerate().take(nb.saturating_sub(1)) {
            left.g += bin.g;
            left.h += bin.h;
            left.n += bin.n;
            if left.n < min_leaf || bin.n == 0 {
                continue;
            }
            let right_n = total.n - left.n;
            if right_n < min_leaf {
                break;
            }
            let (rg, rh) = (total.g - left.g, total.h - left.h);
            if left.h < 1e-3 || rh < 1e-3 {
                continue;
            }
            let gain = score(left.g, left.h) + score(rg, rh) - parent;
            if gain > 1e-12 && best.is_none_or(|(bg, _, _)| gain > bg) {
                best = Some((gain, f, b));
            }
        }
    }
    best
}

/// A leaf still growing.
struct Open {
    node: usize,
    rows: Vec<u32>,
    hist: Vec<Bin>,
    total: Bin,
    depth: usize,
    split: Option<(f64, usize, usize)>,
}

/// Grows one tree best-first on gradients `g` and hessians `h` of the training rows; adds
/// `learning_rate ·` leaf to each row's raw score (output `c` of `k`).
fn grow(
    rows: &Rows<'_>,
    g: &[f32],
    h: &[f32],
    s: &Settings,
    importance: &mut [f64],
    raw: &mut [f64],
    (c, k): (usize, usize),
) -> Tree {
    let n = g.len() as u32;
    let all: Vec<u32> = (0..n).collect();
    let hist = rows.histogram(&all, g, h);
    let total = Bin { g: g.iter().map(|&v| f64::from(v)).sum(), h: h.iter().map(|&v| f64::from(v)).sum(), n };
    let splittable = |depth: usize, total: Bin| depth < s.max_depth && total.n as usize >= 2 * s.min_samples_leaf;
    let mut nodes = vec![Node::Leaf { value: Vec::new() }];
    let split = if splittable(0, total) { best_split(&hist, rows, total, s) } else { None };
    let mut open = vec![Open { node: 0, rows: all, hist, total, depth: 0, split }];
    let mut done: Vec<Open> = Vec::new();
    while open.len() + done.len() < s.max_leaf_nodes {
        // The open leaf with the largest gain splits next.
        let Some(i) = open
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.split.map(|(gain, _, _)| (i, gain)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
        else {
            break;
        };
        let leaf = open.swap_remove(i);
        let Some((gain, f, b)) = leaf.split else { break };
        importance[f] += gain;
        let col = &rows.binned.bins[f];
        let (left, right): (Vec<u32>, Vec<u32>) = leaf.rows.iter().partition(|&&r| col[r as usize] as usize <= b);
        let small_is_left = left.len() <= right.len();
        let small_hist = rows.histogram(if small_is_left { &left } else { &right }, g, h);
        let mut large_hist = leaf.hist;
        for (a, s) in large_hist.iter_mut().zip(&small_hist) {
            a.g -= s.g;
            a.h -= s.h;
            a.n -= s.n;
        }
        let (left_hist, right_hist) = if small_is_left { (small_hist, large_hist) } else { (large_hist, small_hist) };
        // Every row falls in one bin of each feature: the split feature's bins sum to the node.
        let sum = |hist: &[Bin]| {
            hist[rows.offsets[f]..rows.offsets[f + 1]].iter().fold(Bin::default(), |a, b| Bin {
                g: a.g + b.g,
                h: a.h + b.h,
                n: a.n + b.n,
            })
        };
        let (li, ri) = (nodes.len(), nodes.len() + 1);
        nodes.push(Node::Leaf { value: Vec::new() });
        nodes.push(Node::Leaf { value: Vec::new() });
        nodes[leaf.node] = Node::Split { feature: f, threshold: rows.binned.edges[f][b], left: li, right: ri };
        for (node, rows_of, hist) in [(li, left, left_hist), (ri, right, right_hist)] {
            let total = sum(&hist);
            let depth = leaf.depth + 1;
            let split = if splittable(depth, total) { best_split(&hist, rows, total, s) } else { None };
            let child = Open { node, rows: rows_of, hist, total, depth, split };
            if child.split.is_some() {
                open.push(child);
            } else {
                done.push(Open { hist: Vec::new(), ..child });
            }
        }
    }
    for leaf in open.into_iter().chain(done) {
        let value = -leaf.total.g / (leaf.total.h + s.lambda) * s.learning_rate;
        nodes[leaf.node] = Node::Leaf { value: vec![value] };
        for r in leaf.rows {
            raw[r as usize * k + c] += value;
        }
    }
    Tree { nodes }
}

/// Fits boosted trees on `x` (every value finite) and targets `y` (class index as a number for
/// the log losses).
pub(crate) fn boost(x: &Array2<f64>, loss: Loss, y: &[f64], s: &Settings) -> Boosted {
    // Early stopping holds out a seeded share of the rows, never seen by the trees.
    let (train_rows, held): (Vec<usize>, Vec<usize>) = match s.early_stopping {
        Some((share, _, _)) if y.len() >= 10 => {
            let order = s.seed.derive("early_stopping").draws().permutation(y.len());
            let cut = ((y.len() as f64 * share).round() as usize).clamp(1, y.len() - 1);
            let (mut held, mut train) = (order[..cut].to_vec(), order[cut..].to_vec());
            held.sort_unstable();
            train.sort_unstable();
            (train, held)
        }
        _ => ((0..y.len()).collect(), Vec::new()),
    };
    let take = |idx: &[usize]| Array2::from_shape_fn((idx.len(), x.ncols()), |(i, j)| x[[idx[i], j]]);
    let (xt, yt): (Array2<f64>, Vec<f64>) = if held.is_empty() {
        (x.clone(), y.to_vec())
    } else {
        (take(&train_rows), train_rows.iter().map(|&i| y[i]).collect())
    };
    let (xv, yv): (Array2<f64>, Vec<f64>) = (take(&held), held.iter().map(|&i| y[i]).collect());
    let binned = Binned::new(&xt);
    let (n, d) = xt.dim();
    let rows = Rows::new(&binned, n);
    let k = loss.outputs();
    let base = loss.base(&yt);
    let mut raw: Vec<f64> = (0..n).flat_map(|_| base.iter().copied()).collect();
    let mut raw_held: Vec<f64> = (0..yv.len()).flat_map(|_| base.iter().copied()).collect();
    let (mut g, mut h) = (vec![0f32; n * k], vec![0f32; n * k]);
    let mut importance = vec![0.0; d];
    let mut out = Boosted {
        base,
        rounds: Vec::with_capacity(s.rounds),
        importance: Vec::new(),
        train_loss: Vec::new(),
        validation_loss: Vec::new(),
    };
    let mut best = f64::INFINITY;
    let mut stale = 0;
    for _ in 0..s.rounds {
        loss.gradients(&raw, &yt, &mut g, &mut h);
        let mut trees = Vec::with_capacity(k);
        for c in 0..k {
            let (gc, hc) = (&g[c * n..(c + 1) * n], &h[c * n..(c + 1) * n]);
            trees.push(grow(&rows, gc, hc, s, &mut importance, &mut raw, (c, k)));
        }
        out.train_loss.push(loss.mean(&raw, &yt));
        if let Some((_, patience, tol)) = s.early_stopping.filter(|_| !yv.is_empty()) {
            for (i, row) in xv.rows().into_iter().enumerate() {
                let row = row.to_vec();
                for (c, t) in trees.iter().enumerate() {
                    raw_held[i * k + c] += t.leaf(&row)[0];
                }
            }
            let v = loss.mean(&raw_held, &yv);
            out.validation_loss.push(v);
            out.rounds.push(trees);
            if v < best - tol {
                best = v;
                stale = 0;
            } else {
                stale += 1;
                if stale >= patience {
                    tracing::debug!(rounds = out.rounds.len(), "early stopping");
                    break;
                }
            }
        } else {
            out.rounds.push(trees);
        }
    }
    let total: f64 = importance.iter().sum();
    if total > 0.0 {
        importance.iter_mut().for_each(|v| *v /= total);
    }
    out.importance = importance;
    out
}
