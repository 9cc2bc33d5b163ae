//! Gradient boosting on histograms, as LightGBM and scikit-learn's `HistGradientBoosting*` do:
//! features binned once (`u8` bins per column), trees grown best-first up to `max_leaf_nodes`
//! leaves, each node's histogram of gradient and hessian sums built over the smaller child only
//! (the larger one is the parent's minus it), and every training row's raw score updated from
//! the leaf it ended in (no tree walk). Three of LightGBM's devices keep the histograms cheap:
//! - exclusive feature bundling: features never off their most frequent bin in the same row
//!   (one-hot columns) share one column of bins, so a row costs one update per bundle;
//! - a data partition: the training rows are kept in leaf order with a row-major copy of their
//!   bins, so a node's histogram reads its rows front to back, and a split moves only the rows
//!   on the wrong side;
//! - optionally, quantized gradients (`quantized_gradients`): one packed integer per bin.
//!
//! The root's histogram is built bundle by bundle over the cores, a node's over its rows.

use mlops_core::Seed;
use ndarray::Array2;

use serde::{Deserialize, Serialize};

use crate::holdout::{self, Holdout};
use crate::tree::{Binned, Node, Tree};
use crate::{ModelError, ParamGuard, Result, bad};

/// Gradient boosting's settings: scikit-learn's `HistGradientBoosting*` names and defaults (no
/// depth limit but 31 leaves, early stopping on the held-out loss above 10,000 rows).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BoostParams {
    /// Boosting rounds (>= 1).
    pub max_iter: usize,
    /// Shrinkage of every tree, above 0 and at most 1.
    pub learning_rate: f64,
    /// Depth of each tree (unlimited when null).
    pub max_depth: Option<usize>,
    /// Leaves of each tree at most (>= 2; trees grow best split first).
    pub max_leaf_nodes: usize,
    /// Fewest rows in a leaf (>= 1).
    pub min_samples_leaf: usize,
    /// L2 penalty on leaf values (>= 0).
    pub l2_regularization: f64,
    /// Stop when the loss on a held-out share of the training rows stops improving: `auto` (on
    /// above 10,000 rows), `true` or `false`.
    pub early_stopping: EarlyStopping,
    /// Share of the training rows held out for early stopping (above 0, below 1), stratified by
    /// class for a classifier and drawn from `random_state` as scikit-learn draws it.
    pub validation_fraction: f64,
    /// Stop once none of the last `n_iter_no_change` held-out losses is below the one before
    /// them by more than `tol` (>= 1).
    pub n_iter_no_change: usize,
    /// Smallest improvement of the held-out loss that counts (>= 0).
    pub tol: f64,
    /// Choose splits on gradients and hessians rounded to 127 levels each (stochastically, from
    /// `random_state`), as LightGBM's `use_quantized_grad` does: histograms of one integer per
    /// bin build faster; leaf values still come from the exact gradients.
    pub quantized_gradients: bool,
    /// Seed of the early-stopping hold-out (numpy's draws for a seed below 2^32) and of the
    /// gradient rounding.
    pub random_state: u64,
}

impl Default for BoostParams {
    fn default() -> Self {
        BoostParams {
            max_iter: 100,
            learning_rate: 0.1,
            max_depth: None,
            max_leaf_nodes: 31,
            min_samples_leaf: 20,
            l2_regularization: 0.0,
            early_stopping: EarlyStopping::Auto,
            validation_fraction: 0.1,
            n_iter_no_change: 10,
            tol: 1e-7,
            quantized_gradients: false,
            random_state: 42,
        }
    }
}

/// Whether boosting stops early, as scikit-learn's `early_stopping`: `auto`, `true` or `false`
/// in a config.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EarlyStopping {
    /// On when the training rows are more than [`EarlyStopping::AUTO_ROWS`].
    #[default]
    Auto,
    /// Always on (`true`).
    On,
    /// Never (`false`).
    Off,
}

impl EarlyStopping {
    /// Rows above which `auto` turns early stopping on (scikit-learn's threshold).
    pub const AUTO_ROWS: usize = 10_000;

    /// Whether early stopping is on for `rows` training rows.
    pub fn applies(self, rows: usize) -> bool {
        match self {
            EarlyStopping::Auto => rows > Self::AUTO_ROWS,
            EarlyStopping::On => true,
            EarlyStopping::Off => false,
        }
    }
}

impl From<bool> for EarlyStopping {
    fn from(on: bool) -> Self {
        if on { EarlyStopping::On } else { EarlyStopping::Off }
    }
}

/// Early stopping in binary formats (postcard), which cannot tell a word from a flag by looking.
#[derive(Serialize, Deserialize)]
#[serde(rename = "EarlyStopping")]
enum TaggedEarlyStopping {
    Auto,
    On,
    Off,
}

impl Serialize for EarlyStopping {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match (*self, s.is_human_readable()) {
            (EarlyStopping::Auto, true) => s.serialize_str("auto"),
            (EarlyStopping::On, true) => s.serialize_bool(true),
            (EarlyStopping::Off, true) => s.serialize_bool(false),
            (EarlyStopping::Auto, false) => TaggedEarlyStopping::Auto.serialize(s),
            (EarlyStopping::On, false) => TaggedEarlyStopping::On.serialize(s),
            (EarlyStopping::Off, false) => TaggedEarlyStopping::Off.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for EarlyStopping {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Words;
        impl serde::de::Visitor<'_> for Words {
            type Value = EarlyStopping;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`auto`, `true` or `false`")
            }

            fn visit_bool<E: serde::de::Error>(self, on: bool) -> std::result::Result<EarlyStopping, E> {
                Ok(on.into())
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<EarlyStopping, E> {
                match v.trim() {
                    "auto" => Ok(EarlyStopping::Auto),
                    // A flag that arrived quoted, say from an environment override.
                    "true" => Ok(EarlyStopping::On),
                    "false" => Ok(EarlyStopping::Off),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        if d.is_human_readable() {
            d.deserialize_any(Words)
        } else {
            Ok(match TaggedEarlyStopping::deserialize(d)? {
                TaggedEarlyStopping::Auto => EarlyStopping::Auto,
                TaggedEarlyStopping::On => EarlyStopping::On,
                TaggedEarlyStopping::Off => EarlyStopping::Off,
            })
        }
    }
}

impl ParamGuard for BoostParams {
    fn check_ref(&self, model: &'static str, _rows: usize) -> Result<()> {
        let b = self;
        if b.max_iter == 0 {
            return bad(model, "max_iter", "must be at least 1 round".into());
        }
        if !(b.learning_rate > 0.0 && b.learning_rate <= 1.0) {
            return bad(model, "learning_rate", format!("{} must be above 0 and at most 1", b.learning_rate));
        }
        if b.max_depth == Some(0) || b.min_samples_leaf == 0 {
            return bad(model, "max_depth", "max_depth and min_samples_leaf must be at least 1".into());
        }
        if !(b.l2_regularization.is_finite() && b.l2_regularization >= 0.0) {
            return bad(model, "l2_regularization", format!("{} must be zero or more", b.l2_regularization));
        }
        if b.max_leaf_nodes < 2 {
            return bad(model, "max_leaf_nodes", format!("{} must be at least 2", b.max_leaf_nodes));
        }
        // Checked whenever early stopping may run: `auto` turns on with the rows, which a tuning
        // fold may not show yet.
        if b.early_stopping != EarlyStopping::Off {
            if !(b.validation_fraction > 0.0 && b.validation_fraction < 1.0) {
                return bad(
                    model,
                    "validation_fraction",
                    format!("{} must be above 0 and below 1", b.validation_fraction),
                );
            }
            if b.n_iter_no_change == 0 {
                return bad(model, "n_iter_no_change", "must be at least 1 round".into());
            }
            if !(b.tol.is_finite() && b.tol >= 0.0) {
                return bad(model, "tol", format!("{} must be zero or more", b.tol));
            }
        }
        Ok(())
    }
}

/// Bins per feature or bundle at most, as stored (`u8`).
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

    /// Gradients and hessians of every output for every row (`g[c * n + i]`), row blocks over
    /// the cores; returns the mean loss of `raw`, computed on the way.
    fn gradients(self, raw: &[f64], y: &[f64], g: &mut [f32], h: &mut [f32]) -> f64 {
        let (n, k) = (y.len(), self.outputs());
        if n == 0 {
            return 0.0;
        }
        let block = |at: usize, g: &mut [&mut [f32]], h: &mut [&mut [f32]]| -> f64 {
            let rows = g.first().map_or(0, |b| b.len());
            let (y, raw) = (&y[at..at + rows], &raw[at * k..(at + rows) * k]);
            match (self, g, h) {
                (Loss::Squared, [g], [h]) => {
                    let mut sum = 0.0;
                    for (((g, h), &z), &t) in g.iter_mut().zip(h.iter_mut()).zip(raw).zip(y) {
                        *g = (z - t) as f32;
                        *h = 1.0;
                        sum += 0.5 * (z - t).powi(2);
                    }
                    sum
                }
                (Loss::Binary, [g], [h]) => {
                    let mut sum = 0.0;
                    for (((g, h), &z), &t) in g.iter_mut().zip(h.iter_mut()).zip(raw).zip(y) {
                        // The sigmoid and log(1 + e^z) - t·z from one exponential.
                        let e = (-z.abs()).exp();
                        let q = if z >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
                        *g = (q - t) as f32;
                        *h = (q * (1.0 - q)).max(1e-16) as f32;
                        sum += z.max(0.0) + e.ln_1p() - t * z;
                    }
                    sum
                }
                // Multinomial: one slice of gradients and of hessians per class.
                (_, g, h) => {
                    let mut p = vec![0.0; k];
                    let mut sum = 0.0;
                    for (i, (&t, z)) in y.iter().zip(raw.chunks_exact(k)).enumerate() {
                        let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        let mut total = 0.0;
                        for (pv, s) in p.iter_mut().zip(z) {
                            *pv = (s - max).exp();
                            total += *pv;
                        }
                        for (c, pv) in p.iter().enumerate() {
                            let q = pv / total;
                            let hit = if t as usize == c { 1.0 } else { 0.0 };
                            g[c][i] = (q - hit) as f32;
                            h[c][i] = (q * (1.0 - q)).max(1e-16) as f32;
                        }
                        sum += max + total.ln() - z[t as usize];
                    }
                    sum
                }
            }
        };
        let (mut g, mut h): (Vec<&mut [f32]>, Vec<&mut [f32]>) = (g.chunks_mut(n).collect(), h.chunks_mut(n).collect());
        let sum = halves(0, (&mut g, &mut h), workers(), &block);
        sum / n as f64
    }
}

/// `block(at, g, h)` over the rows of per-output slices `g` and `h` (rows `at..`), split in
/// halves over `ways` threads; returns the sum of the blocks' results.
fn halves(
    at: usize,
    (g, h): (&mut [&mut [f32]], &mut [&mut [f32]]),
    ways: usize,
    block: &(impl Fn(usize, &mut [&mut [f32]], &mut [&mut [f32]]) -> f64 + Sync),
) -> f64 {
    let len = g.first().map_or(0, |b| b.len());
    if ways < 2 || len < 4_096 {
        return block(at, g, h);
    }
    let mid = len / 2;
    fn split<'a>(parts: &mut [&'a mut [f32]], mid: usize) -> (Vec<&'a mut [f32]>, Vec<&'a mut [f32]>) {
        parts.iter_mut().map(|p| std::mem::take(p).split_at_mut(mid)).unzip()
    }
    let ((mut g1, mut g2), (mut h1, mut h2)) = (split(g, mid), split(h, mid));
    let (a, b) = mlops_core::par::join(
        || halves(at + mid, (&mut g2, &mut h2), ways - ways / 2, block),
        || halves(at, (&mut g1, &mut h1), ways / 2, block),
    );
    a + b
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
    /// Early stopping, when it is on.
    pub early_stopping: Option<Stopping>,
    /// Histograms of quantized gradients (`Packed`).
    pub quantized: bool,
    pub seed: Seed,
}

/// Early stopping's settings, as scikit-learn's: hold out `validation_fraction` of the rows, and
/// stop once none of the last `n_iter_no_change` held-out losses is below the one before them by
/// more than `tol`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stopping {
    pub validation_fraction: f64,
    pub n_iter_no_change: usize,
    pub tol: f64,
}

/// scikit-learn's `_should_stop`, on `scores` (the negative held-out loss before the first round
/// and after each): stop when none of the last `n_iter_no_change` scores beats the one just
/// before them (`n_iter_no_change + 1` back) by more than `tol`.
fn should_stop(scores: &[f64], n_iter_no_change: usize, tol: f64) -> bool {
    let reference_position = n_iter_no_change + 1;
    if scores.len() < reference_position {
        return false;
    }
    let reference = scores[scores.len() - reference_position] + tol;
    !scores[scores.len() - n_iter_no_change..].iter().any(|&score| score > reference)
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

/// Sums of one bin: of gradients and hessians (in units of the weights' scales), and of rows.
#[derive(Clone, Copy, Debug, Default)]
struct Bin {
    g: f64,
    h: f64,
    n: u32,
}

impl Bin {
    fn plus(self, o: Bin) -> Bin {
        Bin { g: self.g + o.g, h: self.h + o.h, n: self.n + o.n }
    }

    fn minus(self, o: Bin) -> Bin {
        Bin { g: self.g - o.g, h: self.h - o.h, n: self.n - o.n }
    }
}

/// What a histogram sums for each row.
trait Weight: Copy + Send + Sync {
    /// What a bin holds while a histogram is built.
    type Acc: Copy + Default + Send;
    /// Rows summed into `Acc`s before they are widened into `Bin`s.
    const CHUNK: usize;
    fn add(acc: &mut Self::Acc, w: Self);
    fn widen(acc: Self::Acc, into: &mut Bin);
}

/// A row's gradient and hessian as they are.
#[derive(Clone, Copy, Debug, Default)]
struct Exact(f32, f32);

impl Weight for Exact {
    type Acc = Bin;
    const CHUNK: usize = usize::MAX;

    #[inline]
    fn add(acc: &mut Bin, w: Exact) {
        acc.g += f64::from(w.0);
        acc.h += f64::from(w.1);
        acc.n += 1;
    }

    #[inline]
    fn widen(acc: Bin, into: &mut Bin) {
        *into = into.plus(acc);
    }
}

/// A row's gradient and hessian rounded to integer levels, as LightGBM's quantized training
/// does (stochastically, so that sums stay unbiased), packed with a count of one into a `u64`
/// (low to high: the count in 17 bits, the hessian's level in 23, the gradient's in 24, two's
/// complement). Up to `CHUNK` rows summed by plain integer adds keep every field within its
/// bits, so a histogram bin is one `u64` and adding a row to it one add.
#[derive(Clone, Copy, Debug, Default)]
struct Packed(u64);

const H_SHIFT: u32 = 17;
const G_SHIFT: u32 = 40;
/// Levels of a gradient's magnitude and of a hessian: 2^16 rows · 127 < 2^23.
const LEVELS: f64 = 127.0;

impl Weight for Packed {
    type Acc = u64;
    const CHUNK: usize = 1 << 16;

    #[inline]
    fn add(acc: &mut u64, w: Packed) {
        *acc = acc.wrapping_add(w.0);
    }

    #[inline]
    fn widen(acc: u64, into: &mut Bin) {
        into.g += ((acc as i64) >> G_SHIFT) as f64;
        into.h += ((acc >> H_SHIFT) & ((1 << (G_SHIFT - H_SHIFT)) - 1)) as f64;
        into.n += (acc & ((1 << H_SHIFT) - 1)) as u32;
    }
}

/// Quantizes every row's gradient and hessian into `out`, with rounding noise from `seed` and
/// the row's number, over the cores; returns what one level of each is worth.
fn quantize(g: &[f32], h: &[f32], seed: u64, out: &mut Vec<Packed>) -> (f64, f64) {
    let gmax = g.iter().fold(0f32, |m, v| m.max(v.abs()));
    let hmax = h.iter().fold(0f32, |m, &v| m.max(v));
    let scale = |max: f32| if max > 0.0 { f64::from(max) / LEVELS } else { 1.0 };
    let (gs, hs) = (scale(gmax), scale(hmax));
    let (gi, hi) = (1.0 / gs, 1.0 / hs);
    let unit = |bits: u64| (bits & 0xff_ffff) as f64 * (1.0 / f64::from(1u32 << 24));
    let fill = |at: usize, out: &mut [Packed]| {
        for (i, o) in out.iter_mut().enumerate() {
            let r = at + i;
            let noise = splitmix(seed ^ r as u64);
            let gq = (f64::from(g[r]) * gi + unit(noise >> 40)).floor().clamp(-LEVELS, LEVELS) as i64;
            let hq = (f64::from(h[r]) * hi + unit(noise >> 16)).floor().clamp(0.0, LEVELS) as u64;
            *o = Packed(((gq << G_SHIFT) as u64).wrapping_add(hq << H_SHIFT).wrapping_add(1));
        }
    };
    out.resize(g.len(), Packed(0));
    let (first, second) = out.split_at_mut(g.len() / 2);
    if workers() < 2 || g.len() < 8_192 {
        fill(0, first);
        fill(g.len() / 2, second);
    } else {
        mlops_core::par::join(|| fill(g.len() / 2, second), || fill(0, first));
    }
    (gs, hs)
}

/// A fast, well-mixed hash (SplitMix64's finalizer).
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Features that are never off their most frequent bin in the same row (the columns of one
/// one-hot encoded category, say) share one column of bins, as LightGBM's exclusive feature
/// bundling does: bin 0 when every member is at its most frequent bin, else one bin per other
/// bin of the member that is not. A histogram then costs one update per bundle and row, and each
/// member's own histogram is read back exactly from the bundle's (its most frequent bin is the
/// node's total less its other bins).
struct Bundle {
    /// (feature, its most frequent bin, where its other bins start in the bundle's bins).
    members: Vec<(usize, usize, usize)>,
    bins: usize,
}

/// Greedy exclusive bundles, as LightGBM forms them: the features that are off their most
/// frequent bin in at most half of the rows, most such rows first, each join the first bundle
/// that has none of their rows and room for their bins, or start one; every other feature is a
/// bundle of its own. Bundles keep the order of their first feature.
fn bundle(binned: &Binned, nbins: &[usize], n: usize) -> Vec<Bundle> {
    let words = n.div_ceil(64);
    let mut sparse = Vec::new();
    let mut alone = Vec::new();
    for (f, col) in binned.bins.iter().enumerate() {
        let mut counts = [0usize; STRIDE];
        col.iter().for_each(|&b| counts[b as usize] += 1);
        let default = (0..nbins[f]).max_by_key(|&b| (counts[b], std::cmp::Reverse(b))).unwrap_or(0);
        let off = n - counts[default];
        if 2 * off <= n && nbins[f] < STRIDE {
            sparse.push((f, default, off));
        } else {
            alone.push((f, default));
        }
    }
    sparse.sort_by_key(|&(f, _, off)| (std::cmp::Reverse(off), f));
    // (members with their most frequent bins, rows off those bins, bins in use)
    type Forming = (Vec<(usize, usize)>, Vec<u64>, usize);
    let mut open: Vec<Forming> = Vec::new();
    for (f, default, _) in sparse {
        let mut mask = vec![0u64; words];
        for (r, &b) in binned.bins[f].iter().enumerate() {
            if b as usize != default {
                mask[r / 64] |= 1 << (r % 64);
            }
        }
        let extra = nbins[f] - 1;
        let fits =
            |used: &[u64], bins: usize| bins + extra <= STRIDE && used.iter().zip(&mask).all(|(a, b)| a & b == 0);
        match open.iter_mut().find(|(_, used, bins)| fits(used, *bins)) {
            Some((members, used, bins)) => {
                members.push((f, default));
                used.iter_mut().zip(&mask).for_each(|(a, b)| *a |= b);
                *bins += extra;
            }
            None => open.push((vec![(f, default)], mask, 1 + extra)),
        }
    }
    let mut bundles: Vec<Bundle> = alone
        .into_iter()
        .map(|(f, default)| Bundle { members: vec![(f, default, 0)], bins: nbins[f] })
        .chain(open.into_iter().map(|(members, _, bins)| {
            let mut start = 1;
            let members = members
                .into_iter()
                .map(|(f, default)| {
                    let at = start;
                    start += nbins[f] - 1;
                    (f, default, at)
                })
                .collect();
            Bundle { members, bins }
        }))
        .collect();
    bundles.sort_by_key(|b| b.members.iter().map(|m| m.0).min());
    bundles
}

/// The binned training rows in bundles, by column (for whole-data histograms), with where each
/// bundle's bins start in a histogram and each feature's bin count and bundle.
struct Rows<'a> {
    nbins: Vec<usize>,
    bundles: Vec<Bundle>,
    /// Per feature, (its bundle, its place among the bundle's members).
    place: Vec<(usize, usize)>,
    /// `offsets[j]..offsets[j + 1]` are bundle `j`'s bins in a histogram.
    offsets: Vec<usize>,
    binned: &'a Binned,
    /// Per bundle, the bin of every row.
    columns: Vec<Vec<u8>>,
}

impl<'a> Rows<'a> {
    fn new(binned: &'a Binned, n: usize) -> Rows<'a> {
        let nbins: Vec<usize> = binned.edges.iter().map(|e| e.len() + 1).collect();
        let bundles = bundle(binned, &nbins, n);
        let mut place = vec![(0, 0); nbins.len()];
        for (j, bundle) in bundles.iter().enumerate() {
            for (m, &(f, _, _)) in bundle.members.iter().enumerate() {
                place[f] = (j, m);
            }
        }
        let column = |bundle: &Bundle| match bundle.members.as_slice() {
            [(f, _, _)] => binned.bins[*f].clone(),
            members => {
                let mut col = vec![0u8; n];
                for &(f, default, start) in members {
                    for (c, &b) in col.iter_mut().zip(&binned.bins[f]) {
                        let b = b as usize;
                        if b != default {
                            *c = (start + b - usize::from(b > default)) as u8;
                        }
                    }
                }
                col
            }
        };
        let columns = bundles.iter().map(column).collect();
        let offsets = std::iter::once(0)
            .chain(bundles.iter().scan(0, |at, b| {
                *at += b.bins;
                Some(*at)
            }))
            .collect();
        Rows { nbins, bundles, place, offsets, binned, columns }
    }

    /// Bins of a histogram.
    fn size(&self) -> usize {
        self.offsets[self.bundles.len()]
    }

    /// A node's sums: every row falls in one bin of each bundle.
    fn total(&self, hist: &[Bin]) -> Bin {
        hist[self.offsets[0]..self.offsets[1]].iter().fold(Bin::default(), |a, &b| a.plus(b))
    }

    /// Feature histograms of a node from its bundle histogram: `each(f, bins of f)`.
    fn features(&self, hist: &[Bin], total: Bin, mut each: impl FnMut(usize, &[Bin])) {
        let mut own = [Bin::default(); STRIDE];
        for (bundle, at) in self.bundles.iter().zip(&self.offsets) {
            let src = &hist[*at..*at + bundle.bins];
            if let [(f, _, _)] = bundle.members.as_slice() {
                each(*f, src);
                continue;
            }
            for &(f, default, start) in &bundle.members {
                let nb = self.nbins[f];
                let mut rest = total;
                for b in (0..nb).filter(|&b| b != default) {
                    own[b] = src[start + b - usize::from(b > default)];
                    rest = rest.minus(own[b]);
                }
                own[default] = rest;
                each(f, &own[..nb]);
            }
        }
    }

    /// Which bins of feature `f`'s bundle send a row left of a split after bin `b` of `f`:
    /// (the bundle, a table by bundle bin).
    fn goes_left(&self, f: usize, b: usize) -> (usize, [bool; STRIDE]) {
        let (j, m) = self.place[f];
        let bundle = &self.bundles[j];
        let (_, default, start) = bundle.members[m];
        let mut table = [false; STRIDE];
        for (bb, left) in table.iter_mut().enumerate().take(bundle.bins) {
            let own = if bundle.members.len() == 1 {
                bb
            } else if (start..start + self.nbins[f] - 1).contains(&bb) {
                let t = bb - start;
                if t < default { t } else { t + 1 }
            } else {
                default
            };
            *left = own <= b;
        }
        (j, table)
    }

    /// The histogram of all rows (`w` in row order) into `out` (zeroed), bundle by bundle over
    /// the cores (each bundle's bins stay in the L1 cache).
    fn root<W: Weight>(&self, w: &[W], out: &mut [Bin]) {
        let ways = if w.len() * self.bundles.len() < 100_000 { 1 } else { workers() };
        self.root_part(0..self.bundles.len(), w, out, ways);
    }

    fn root_part<W: Weight>(&self, bundles: std::ops::Range<usize>, w: &[W], out: &mut [Bin], ways: usize) {
        if ways < 2 || bundles.len() < 2 {
            self.by_bundle(bundles, w, out);
            return;
        }
        let mid = bundles.start + bundles.len() / 2;
        let (first, second) = out.split_at_mut(self.offsets[mid] - self.offsets[bundles.start]);
        mlops_core::par::join(
            || self.root_part(mid..bundles.end, w, second, ways - ways / 2),
            || self.root_part(bundles.start..mid, w, first, ways / 2),
        );
    }

    /// The part of the all-rows histogram that `bundles` cover, into `out`.
    fn by_bundle<W: Weight>(&self, bundles: std::ops::Range<usize>, w: &[W], out: &mut [Bin]) {
        let base = self.offsets[bundles.start];
        // Four interleaved copies of the bins break the chain of updates to one bin that
        // bundles with few bins (flags, say) would otherwise wait on.
        let mut lanes = [W::Acc::default(); LANES * STRIDE];
        for j in bundles {
            let hist = &mut out[self.offsets[j] - base..self.offsets[j + 1] - base];
            for (part, ws) in self.columns[j].chunks(W::CHUNK).zip(w.chunks(W::CHUNK)) {
                for (i, (&b, &wr)) in part.iter().zip(ws).enumerate() {
                    W::add(&mut lanes[(i % LANES) * STRIDE + b as usize], wr);
                }
                for (b, e) in hist.iter_mut().enumerate() {
                    for lane in 0..LANES {
                        W::widen(std::mem::take(&mut lanes[lane * STRIDE + b]), e);
                    }
                }
            }
        }
    }
}

/// Threads a histogram is shared out over.
fn workers() -> usize {
    mlops_core::par::cores().min(8)
}

/// Buffers reused from node to node and tree to tree (fresh ones of this size cost more in
/// page faults than the histograms they hold): histograms, each worker's bins while it sums
/// (and, but the first's, its own histogram), and the weights in the layout's order.
struct Scratch<W: Weight> {
    hists: Vec<Vec<Bin>>,
    acc: Vec<Vec<W::Acc>>,
    parts: Vec<Vec<Bin>>,
    w: Vec<W>,
}

impl<W: Weight> Scratch<W> {
    fn new(size: usize) -> Scratch<W> {
        let workers = workers();
        Scratch {
            hists: Vec::new(),
            acc: vec![vec![W::Acc::default(); size + 1]; workers],
            parts: vec![vec![Bin::default(); size]; workers - 1],
            w: Vec::new(),
        }
    }
}

/// A zeroed histogram from `pool`.
fn zeroed(pool: &mut Vec<Vec<Bin>>, size: usize) -> Vec<Bin> {
    match pool.pop() {
        Some(mut hist) => {
            hist.fill(Bin::default());
            hist
        }
        None => vec![Bin::default(); size],
    }
}

/// The training rows in the order of the leaves they are in, each leaf's rows one run (as
/// LightGBM's data partition keeps them), with a row-major copy of their bundle bins in the same
/// order: a node's histogram then reads its rows' bins and weights front to back, where reading
/// them by row number would miss the cache once per row. A row's bins are packed eight to a
/// `u64` (the last word padded with zeros), so moving a row is a few word copies.
struct Layout {
    /// Bundles.
    k: usize,
    /// Words per row.
    kw: usize,
    /// Row number at each place.
    order: Vec<u32>,
    /// Bundle bins of the row at place `i`: `bins[i * kw..(i + 1) * kw]`, bundle `j` in byte
    /// `j % 8` (little end first) of word `j / 8`.
    bins: Vec<u64>,
    /// Where each byte of a row's words adds in a histogram: the bundle's first bin, or for the
    /// padding, the spare bin past the histogram's end.
    offsets: Vec<usize>,
    /// Places of the rows on the wrong side of a split.
    misplaced: [Vec<u32>; 2],
}

/// A run of rows `at..end` in leaf order, split at `mid`: the rows going left end in `at..mid`.
#[derive(Clone, Copy)]
struct Run {
    at: usize,
    mid: usize,
    end: usize,
}

impl Layout {
    fn new(rows: &Rows<'_>, n: usize) -> Layout {
        let k = rows.columns.len();
        let kw = k.div_ceil(8);
        let mut bins = vec![0u64; n * kw];
        for (j, col) in rows.columns.iter().enumerate() {
            for (r, &b) in col.iter().enumerate() {
                bins[r * kw + j / 8] |= u64::from(b) << (8 * (j % 8));
            }
        }
        let offsets = (0..kw * 8).map(|j| if j < k { rows.offsets[j] } else { rows.size() }).collect();
        Layout { k, kw, order: (0..n as u32).collect(), bins, offsets, misplaced: [Vec::new(), Vec::new()] }
    }

    /// Splits the run `at..end` in place (and `w` alongside): the rows that `left` sends left
    /// end in `at..mid`, the others in `mid..end`. `mid - at` is the number that go left, known
    /// from the histogram, so only the rows on the wrong side move: each one left of `mid` that
    /// goes right swaps places with one right of it that goes left (at most half the rows, where
    /// a stable partition would move them all).
    fn split<W: Copy>(&mut self, w: &mut [W], run: Run, (j, left): (usize, &[bool; STRIDE])) {
        let Run { at, mid, end } = run;
        let kw = self.kw;
        let (word, shift) = (j / 8, 8 * (j % 8));
        let goes = |row: &[u64]| left[((row[word] >> shift) & 0xff) as usize];
        let [wrong_left, wrong_right] = &mut self.misplaced;
        let bins = &self.bins;
        // Found without branches: every place is written, and kept when it is misplaced.
        let find = |list: &mut Vec<u32>, (from, to): (usize, usize), want: bool| {
            list.resize(to - from, 0);
            let mut found = 0;
            for (i, row) in (from..to).zip(bins[from * kw..to * kw].chunks_exact(kw)) {
                list[found] = i as u32;
                found += usize::from(goes(row) != want);
            }
            list.truncate(found);
        };
        find(wrong_left, (at, mid), true);
        find(wrong_right, (mid, end), false);
        for (&a, &b) in wrong_left.iter().zip(wrong_right.iter()) {
            let (a, b) = (a as usize, b as usize);
            let (head, tail) = self.bins.split_at_mut(b * kw);
            head[a * kw..(a + 1) * kw].swap_with_slice(&mut tail[..kw]);
            self.order.swap(a, b);
            w.swap(a, b);
        }
        debug_assert_eq!(wrong_left.len(), wrong_right.len(), "a split's row count disagrees with its histogram");
    }

    /// The histogram of the run `at..end` into `out` (zeroed), its rows shared out over the
    /// cores when it is worth it.
    fn histogram<W: Weight>(
        &self,
        rows: &Rows<'_>,
        w: &[W],
        (at, end): (usize, usize),
        out: &mut [Bin],
        (acc, parts): (&mut [Vec<W::Acc>], &mut [Vec<Bin>]),
    ) {
        let ways = acc.len();
        if ways < 2 || (end - at) * self.k < 100_000 {
            if let Some(acc) = acc.first_mut() {
                self.run(rows, w, (at, end), acc, out);
            }
            return;
        }
        // The first `half` workers sum into `out`, the others into `parts[half - 1]`.
        let half = ways / 2;
        let mid = at + (end - at) * half / ways;
        let (acc1, acc2) = acc.split_at_mut(half);
        let (parts1, rest) = parts.split_at_mut(half - 1);
        let Some((other, parts2)) = rest.split_first_mut() else { return };
        other.fill(Bin::default());
        mlops_core::par::join(
            || self.histogram(rows, w, (mid, end), other, (acc2, parts2)),
            || self.histogram(rows, w, (at, mid), out, (acc1, parts1)),
        );
        out.iter_mut().zip(other.iter()).for_each(|(a, &b)| *a = a.plus(b));
    }

    /// Adds the rows of `at..end` to `out`, summing `W::CHUNK` rows at a time in `acc` (zeroed,
    /// and left so).
    fn run<W: Weight>(&self, rows: &Rows<'_>, w: &[W], (at, end): (usize, usize), acc: &mut [W::Acc], out: &mut [Bin]) {
        let kw = self.kw;
        let bins = &self.bins[at * kw..end * kw];
        for (part, ws) in bins.chunks(W::CHUNK.saturating_mul(kw)).zip(w[at..end].chunks(W::CHUNK)) {
            for (row, &wr) in part.chunks_exact(kw).zip(ws) {
                for (&word, offsets) in row.iter().zip(self.offsets.chunks_exact(8)) {
                    for (byte, &o) in offsets.iter().enumerate() {
                        W::add(&mut acc[o + ((word >> (8 * byte)) & 0xff) as usize], wr);
                    }
                }
            }
            for (a, e) in acc.iter_mut().zip(out.iter_mut()) {
                W::widen(std::mem::take(a), e);
            }
        }
        // The padding's spare bin.
        if let Some(spare) = acc.get_mut(rows.size()) {
            *spare = W::Acc::default();
        }
    }
}

/// A node's best split.
#[derive(Clone, Copy, Debug)]
struct Split {
    gain: f64,
    feature: usize,
    /// The last bin going left.
    bin: usize,
    /// Rows going left.
    left: usize,
}

/// The best split of a node.
fn best_split(hist: &[Bin], rows: &Rows<'_>, total: Bin, s: &Settings, (gs, hs): (f64, f64)) -> Option<Split> {
    let score = |g: f64, h: f64| (g * gs).powi(2) / (h * hs + s.lambda);
    let parent = score(total.g, total.h);
    let min_leaf = s.min_samples_leaf as u32;
    let mut best: Option<Split> = None;
    rows.features(hist, total, |f, hist| {
        let mut left = Bin::default();
        for (b, &bin) in hist.iter().enumerate().take(hist.len().saturating_sub(1)) {
            left = left.plus(bin);
            if left.n < min_leaf || bin.n == 0 {
                continue;
            }
            if total.n - left.n < min_leaf {
                break;
            }
            let right = total.minus(left);
            if left.h * hs < 1e-3 || right.h * hs < 1e-3 {
                continue;
            }
            let gain = score(left.g, left.h) + score(right.g, right.h) - parent;
            if gain > 1e-12 && best.is_none_or(|best| gain > best.gain) {
                best = Some(Split { gain, feature: f, bin: b, left: left.n as usize });
            }
        }
    });
    best
}

/// A leaf still growing: its rows are `layout.order[at..end]`.
struct Open {
    node: usize,
    at: usize,
    end: usize,
    hist: Vec<Bin>,
    depth: usize,
    split: Option<Split>,
}

/// One tree's inputs: the gradients and hessians of the training rows (output `c` of `k`),
/// and the weights its histograms sum, in row order, with what a unit of their sums is worth.
struct Gradients<'a, W> {
    g: &'a [f32],
    h: &'a [f32],
    w: &'a [W],
    scales: (f64, f64),
}

/// Grows one tree best-first; adds `learning_rate ·` leaf to each row's raw score (output `c`
/// of `k`).
fn grow<W: Weight>(
    rows: &Rows<'_>,
    (layout, scratch): (&mut Layout, &mut Scratch<W>),
    grad: &Gradients<'_, W>,
    s: &Settings,
    importance: &mut [f64],
    raw: &mut [f64],
    (c, k): (usize, usize),
) -> Tree {
    let n = grad.g.len();
    let scales = grad.scales;
    let size = rows.size();
    let Scratch { hists, acc, parts, w } = scratch;
    let mut hist = zeroed(hists, size);
    rows.root(grad.w, &mut hist);
    // The weights in the layout's order, split alongside it.
    w.clear();
    w.extend(layout.order.iter().map(|&r| grad.w[r as usize]));
    let splittable = |depth: usize, total: Bin| depth < s.max_depth && total.n as usize >= 2 * s.min_samples_leaf;
    let mut nodes = vec![Node::Leaf { value: Vec::new() }];
    let total = rows.total(&hist);
    let split = if splittable(0, total) { best_split(&hist, rows, total, s, scales) } else { None };
    let mut open = vec![Open { node: 0, at: 0, end: n, hist, depth: 0, split }];
    let mut done: Vec<Open> = Vec::new();
    while open.len() + done.len() < s.max_leaf_nodes {
        // The open leaf with the largest gain splits next.
        let Some(i) = open
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.split.map(|split| (i, split.gain)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
        else {
            break;
        };
        let leaf = open.swap_remove(i);
        let Some(Split { gain, feature: f, bin: b, left }) = leaf.split else { break };
        importance[f] += gain;
        let (j, table) = rows.goes_left(f, b);
        let mid = leaf.at + left;
        layout.split(w, Run { at: leaf.at, mid, end: leaf.end }, (j, &table));
        let small_is_left = mid - leaf.at <= leaf.end - mid;
        let small = if small_is_left { (leaf.at, mid) } else { (mid, leaf.end) };
        let mut small_hist = zeroed(hists, size);
        layout.histogram(rows, w, small, &mut small_hist, (acc, parts));
        let mut large_hist = leaf.hist;
        large_hist.iter_mut().zip(&small_hist).for_each(|(a, &s)| *a = a.minus(s));
        let (left_hist, right_hist) = if small_is_left { (small_hist, large_hist) } else { (large_hist, small_hist) };
        let (li, ri) = (nodes.len(), nodes.len() + 1);
        nodes.push(Node::Leaf { value: Vec::new() });
        nodes.push(Node::Leaf { value: Vec::new() });
        nodes[leaf.node] = Node::Split { feature: f, threshold: rows.binned.edges[f][b], left: li, right: ri };
        for (node, (at, end), hist) in [(li, (leaf.at, mid), left_hist), (ri, (mid, leaf.end), right_hist)] {
            let total = rows.total(&hist);
            let depth = leaf.depth + 1;
            let split = if splittable(depth, total) { best_split(&hist, rows, total, s, scales) } else { None };
            let child = Open { node, at, end, hist, depth, split };
            if child.split.is_some() {
                open.push(child);
            } else {
                hists.push(child.hist);
                done.push(Open { hist: Vec::new(), ..child });
            }
        }
    }
    // Leaf values from the exact gradients of their rows, whichever sums chose the splits.
    for leaf in open.into_iter().chain(done) {
        if !leaf.hist.is_empty() {
            hists.push(leaf.hist);
        }
        let rows_of = &layout.order[leaf.at..leaf.end];
        let (sg, sh) = rows_of
            .iter()
            .fold((0.0, 0.0), |(a, b), &r| (a + f64::from(grad.g[r as usize]), b + f64::from(grad.h[r as usize])));
        let value = -sg / (sh + s.lambda) * s.learning_rate;
        nodes[leaf.node] = Node::Leaf { value: vec![value] };
        for &r in rows_of {
            raw[r as usize * k + c] += value;
        }
    }
    Tree { nodes }
}

/// Fits boosted trees on `x` (every value finite) and targets `y` (class index as a number for
/// the log losses); `model` names the family in errors. Fails only when early stopping cannot
/// hold out rows (too few, or a class with a single row), as scikit-learn does.
pub(crate) fn boost(x: &Array2<f64>, loss: Loss, y: &[f64], s: &Settings, model: &'static str) -> Result<Boosted> {
    // Early stopping holds out rows as scikit-learn does, before binning: the trees never see
    // them, and the bins come from the training rows alone.
    let held = match s.early_stopping {
        Some(stop) => {
            let classes: Option<Vec<usize>> = (loss != Loss::Squared).then(|| y.iter().map(|&c| c as usize).collect());
            let split = holdout::split(y.len(), stop.validation_fraction, classes.as_deref(), s.seed.0);
            Some(split.map_err(|refusal| ModelError::Data {
                model,
                message: format!("{refusal}; set early_stopping: false or change validation_fraction"),
            })?)
        }
        None => None,
    };
    let take = |idx: &[usize]| Array2::from_shape_fn((idx.len(), x.ncols()), |(i, j)| x[[idx[i], j]]);
    let (xt, yt): (std::borrow::Cow<'_, Array2<f64>>, std::borrow::Cow<'_, [f64]>) = match &held {
        None => (std::borrow::Cow::Borrowed(x), std::borrow::Cow::Borrowed(y)),
        Some(Holdout { train, .. }) => (std::borrow::Cow::Owned(take(train)), train.iter().map(|&i| y[i]).collect()),
    };
    let (xv, yv): (Array2<f64>, Vec<f64>) = match &held {
        None => (Array2::zeros((0, x.ncols())), Vec::new()),
        Some(Holdout { validation, .. }) => (take(validation), validation.iter().map(|&i| y[i]).collect()),
    };
    let binned = Binned::new(&xt);
    let (n, d) = xt.dim();
    let rows = Rows::new(&binned, n);
    let mut layout = Layout::new(&rows, n);
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
    // scikit-learn's validation scores: the negative held-out loss, first of the base scores.
    let stopping = s.early_stopping.filter(|_| !yv.is_empty());
    let mut scores = Vec::new();
    if stopping.is_some() {
        scores.push(-loss.mean(&raw_held, &yv));
    }
    let mut row = Vec::with_capacity(d);
    let (mut exact, mut packed) = if s.quantized {
        (Scratch::new(0), Scratch::new(rows.size()))
    } else {
        (Scratch::new(rows.size()), Scratch::new(0))
    };
    let (mut exact_w, mut packed_w) = (Vec::new(), Vec::new());
    for round in 0..s.rounds {
        // The loss of the scores so far comes with the gradients: the last round's.
        let before = loss.gradients(&raw, &yt, &mut g, &mut h);
        if round > 0 {
            out.train_loss.push(before);
        }
        let mut trees = Vec::with_capacity(k);
        for c in 0..k {
            let (gc, hc) = (&g[c * n..(c + 1) * n], &h[c * n..(c + 1) * n]);
            trees.push(if s.quantized {
                let seed = splitmix(s.seed.0 ^ splitmix((out.rounds.len() * k + c) as u64));
                let scales = quantize(gc, hc, seed, &mut packed_w);
                let grad = Gradients { g: gc, h: hc, w: &packed_w, scales };
                grow(&rows, (&mut layout, &mut packed), &grad, s, &mut importance, &mut raw, (c, k))
            } else {
                exact_w.clear();
                exact_w.extend(gc.iter().zip(hc).map(|(&g, &h)| Exact(g, h)));
                let grad = Gradients { g: gc, h: hc, w: &exact_w, scales: (1.0, 1.0) };
                grow(&rows, (&mut layout, &mut exact), &grad, s, &mut importance, &mut raw, (c, k))
            });
        }
        let Some(stop) = stopping else {
            out.rounds.push(trees);
            continue;
        };
        for (i, xi) in xv.rows().into_iter().enumerate() {
            row.clear();
            row.extend(xi.iter().copied());
            for (c, t) in trees.iter().enumerate() {
                raw_held[i * k + c] += t.leaf(&row)[0];
            }
        }
        let v = loss.mean(&raw_held, &yv);
        out.validation_loss.push(v);
        out.rounds.push(trees);
        scores.push(-v);
        if should_stop(&scores, stop.n_iter_no_change, stop.tol) {
            tracing::debug!(rounds = out.rounds.len(), "early stopping");
            break;
        }
    }
    if !out.rounds.is_empty() {
        out.train_loss.push(loss.mean(&raw, &yt));
    }
    let total: f64 = importance.iter().sum();
    if total > 0.0 {
        importance.iter_mut().for_each(|v| *v /= total);
    }
    out.importance = importance;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Columns: two numbers (0-29), a category one-hot encoded over four columns (each row in
    /// at most one), and a flag.
    fn table(cells: &[(u8, u8, u8, bool)]) -> Array2<f64> {
        Array2::from_shape_fn((cells.len(), 7), |(i, j)| {
            let (a, b, cat, flag) = cells[i];
            match j {
                0 => f64::from(a % 30),
                1 => f64::from(b % 30) * 0.5,
                2..=5 => f64::from(u8::from(usize::from(cat % 5) == j - 1)),
                _ => f64::from(u8::from(flag)),
            }
        })
    }

    fn sums(rows: &[u32], col: &[u8], nb: usize, g: &[f32], h: &[f32]) -> Vec<Bin> {
        let mut out = vec![Bin::default(); nb];
        for &r in rows {
            let e = &mut out[col[r as usize] as usize];
            *e = e.plus(Bin { g: f64::from(g[r as usize]), h: f64::from(h[r as usize]), n: 1 });
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Bundling and the data partition are exact: after a split, every row sits on the side
        /// the split sends it to, its bins and weight moved with it, and each child's feature
        /// histograms, read back from its bundle histogram, equal the ones summed feature by
        /// feature over its rows.
        #[test]
        fn bundled_histograms_of_split_rows_equal_per_feature_sums(
            cells in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<bool>()), 40..300),
            weights in proptest::collection::vec((-1.0f32..1.0, 0.01f32..1.0), 300),
            feature in 0usize..7,
            cut in 0usize..30,
        ) {
            let x = table(&cells);
            let n = x.nrows();
            let (g, h): (Vec<f32>, Vec<f32>) = weights[..n].iter().copied().unzip();
            let binned = Binned::new(&x);
            let rows = Rows::new(&binned, n);
            // The one-hot columns share a bundle.
            prop_assert!(rows.bundles.len() < 7 || cells.iter().all(|c| c.2 % 5 == 0));
            let mut layout = Layout::new(&rows, n);
            let fresh = Layout::new(&rows, n);
            let w: Vec<Exact> = g.iter().zip(&h).map(|(&g, &h)| Exact(g, h)).collect();
            let mut ordered = w.clone();
            let mut root = vec![Bin::default(); rows.size()];
            rows.root(&w, &mut root);
            let nb = rows.nbins[feature];
            let b = cut % nb;
            let col = &binned.bins[feature];
            let left = (0..n).filter(|&r| col[r] as usize <= b).count();
            let (j, table) = rows.goes_left(feature, b);
            layout.split(&mut ordered, Run { at: 0, mid: left, end: n }, (j, &table));
            let mut seen: Vec<u32> = layout.order.clone();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..n as u32).collect::<Vec<_>>());
            for (place, &r) in layout.order.iter().enumerate() {
                prop_assert_eq!(col[r as usize] as usize <= b, place < left);
                prop_assert_eq!(ordered[place].0, g[r as usize]);
                let kw = layout.kw;
                prop_assert_eq!(&layout.bins[place * kw..(place + 1) * kw], &fresh.bins[r as usize * kw..(r as usize + 1) * kw]);
            }
            let mut scratch = Scratch::<Exact>::new(rows.size());
            for (at, end) in [(0, left), (left, n)] {
                let mut hist = vec![Bin::default(); rows.size()];
                layout.histogram(&rows, &ordered, (at, end), &mut hist, (&mut scratch.acc, &mut scratch.parts));
                let total = rows.total(&hist);
                prop_assert_eq!(total.n as usize, end - at);
                let mut checked = 0;
                rows.features(&hist, total, |f, got| {
                    let want = sums(&layout.order[at..end], &binned.bins[f], rows.nbins[f], &g, &h);
                    for (a, e) in got.iter().zip(&want) {
                        assert!(a.n == e.n && (a.g - e.g).abs() < 1e-9 && (a.h - e.h).abs() < 1e-9, "feature {f}: {a:?} != {e:?}");
                    }
                    checked += 1;
                });
                prop_assert_eq!(checked, 7);
            }
        }

        /// Quantized sums are unbiased estimates of the exact ones: within a few levels of
        /// rounding noise per bin, counts exact.
        #[test]
        fn quantized_histograms_track_exact_ones(
            cells in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<bool>()), 40..300),
            weights in proptest::collection::vec((-1.0f32..1.0, 0.01f32..1.0), 300),
            seed in any::<u64>(),
        ) {
            let x = table(&cells);
            let n = x.nrows();
            let (g, h): (Vec<f32>, Vec<f32>) = weights[..n].iter().copied().unzip();
            let binned = Binned::new(&x);
            let rows = Rows::new(&binned, n);
            let exact: Vec<Exact> = g.iter().zip(&h).map(|(&g, &h)| Exact(g, h)).collect();
            let mut packed = Vec::new();
            let (gs, hs) = quantize(&g, &h, seed, &mut packed);
            let (mut a, mut q) = (vec![Bin::default(); rows.size()], vec![Bin::default(); rows.size()]);
            rows.root(&exact, &mut a);
            rows.root(&packed, &mut q);
            for (e, p) in a.iter().zip(&q) {
                prop_assert_eq!(e.n, p.n);
                // Each row's rounding moves it by less than one level.
                prop_assert!((p.g * gs - e.g).abs() <= gs * f64::from(e.n) + 1e-9);
                prop_assert!((p.h * hs - e.h).abs() <= hs * f64::from(e.n) + 1e-9);
            }
        }
    }

    #[test]
    fn stopping_compares_the_last_rounds_with_the_score_just_before_them() {
        // scikit-learn's `_should_stop(scores)` with n_iter_no_change=2, tol=0.5, the scores
        // (negative losses) starting with the base score's: the rounds grown when it first says
        // stop.
        let stops_after =
            |scores: &[f64]| (1..=scores.len()).find(|&len| should_stop(&scores[..len], 2, 0.5)).map(|len| len - 1);
        // No gain from the start: two rounds, the base score counting as the reference.
        assert_eq!(stops_after(&[0.0, 0.0, 0.0, 0.0, 0.0]), Some(2));
        // Gaining exactly `tol` is not gaining.
        assert_eq!(stops_after(&[0.0, 0.5, 0.5, 0.5]), Some(2));
        // Small gains that add up to more than `tol` over the window keep it going.
        assert_eq!(stops_after(&[0.0, 0.375, 0.75, 1.125, 1.5, 1.875]), None);
        assert_eq!(stops_after(&[0.0, 0.25, 0.5, 0.75, 1.0]), Some(2));
        // A dip: the window after the best score never beats it.
        assert_eq!(stops_after(&[0.0, 2.0, 1.0, 1.75, 2.5]), Some(3));
    }

    #[test]
    fn early_stopping_reads_auto_true_and_false() {
        let read = |v: &str| serde_json::from_str::<BoostParams>(&format!(r#"{{"early_stopping": {v}}}"#));
        assert_eq!(read(r#""auto""#).map(|b| b.early_stopping).ok(), Some(EarlyStopping::Auto));
        assert_eq!(read("true").map(|b| b.early_stopping).ok(), Some(EarlyStopping::On));
        assert_eq!(read("false").map(|b| b.early_stopping).ok(), Some(EarlyStopping::Off));
        let err = read(r#""sometimes""#).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("`auto`, `true` or `false`"), "{err}");
        assert_eq!(BoostParams::default().early_stopping, EarlyStopping::Auto);
        for b in [EarlyStopping::Auto, EarlyStopping::On, EarlyStopping::Off] {
            let p = BoostParams { early_stopping: b, ..BoostParams::default() };
            let json = serde_json::to_string(&p).map_err(|e| e.to_string());
            assert_eq!(json.as_deref().ok().and_then(|j| serde_json::from_str::<BoostParams>(j).ok()), Some(p.clone()));
            let bytes = postcard::to_stdvec(&p).map_err(|e| e.to_string());
            assert_eq!(bytes.ok().and_then(|b| postcard::from_bytes::<BoostParams>(&b).ok()), Some(p));
        }
        // scikit-learn's threshold: more than 10,000 rows.
        assert!(!EarlyStopping::Auto.applies(10_000) && EarlyStopping::Auto.applies(10_001));
        assert!(EarlyStopping::On.applies(1) && !EarlyStopping::Off.applies(1_000_000));
    }

    #[test]
    fn packed_sums_keep_negative_gradients_and_counts_over_a_chunk() {
        // A chunk of rows at the extreme levels: no field spills into the next.
        let low = Packed(((-127i64 << G_SHIFT) as u64).wrapping_add(127 << H_SHIFT).wrapping_add(1));
        let mut acc = 0u64;
        for _ in 0..Packed::CHUNK {
            Packed::add(&mut acc, low);
        }
        let mut bin = Bin::default();
        Packed::widen(acc, &mut bin);
        let rows = Packed::CHUNK as f64;
        assert_eq!((bin.g, bin.h, bin.n), (-127.0 * rows, 127.0 * rows, Packed::CHUNK as u32));
    }
}
