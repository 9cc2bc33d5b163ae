//! The drift statistics besides the Kolmogorov-Smirnov test, each computed as scipy and Evidently
//! compute it (the function and the input preparation named on each), from sorted numbers or
//! aligned counts.

use super::sample::{Aligned, distinct_sorted, next_value, run_end};

/// Sums with Neumaier's compensation: long sums (millions of terms) stay within a few ulps of the
/// exact sum, as numpy's pairwise summation does, so results agree with scipy's to 1e-12.
#[derive(Default)]
pub(crate) struct Sum {
    sum: f64,
    carry: f64,
}

impl Sum {
    pub fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.carry += (self.sum - t) + x;
        } else {
            self.carry += (x - t) + self.sum;
        }
        self.sum = t;
    }

    pub fn value(&self) -> f64 {
        self.sum + self.carry
    }
}

/// Pearson's chi-squared test of the current counts against the reference's proportions,
/// Evidently's `chisquare` stattest: `scipy.stats.chisquare(f_obs, f_exp)` with `f_exp` the
/// reference counts scaled to the current total. A category the reference never saw makes the
/// statistic infinite and the p-value 0, as in scipy. Returns the p-value.
pub(crate) fn chisquare_p(counts: &Aligned) -> f64 {
    let n_ref: u64 = counts.reference.iter().sum();
    let n_cur: u64 = counts.current.iter().sum();
    if counts.keys() < 2 || n_ref == 0 {
        // One category on both sides: nothing can differ (scipy's answer for zero degrees of
        // freedom is NaN).
        return 1.0;
    }
    let k_norm = n_cur as f64 / n_ref as f64;
    let mut stat = Sum::default();
    for (&r, &c) in counts.reference.iter().zip(&counts.current) {
        let expected = r as f64 * k_norm;
        let observed = c as f64;
        if expected == 0.0 {
            return 0.0;
        }
        stat.add((observed - expected) * (observed - expected) / expected);
    }
    chi2_sf(stat.value(), (counts.keys() - 1) as f64)
}

/// The chi-squared distribution's survival function (scipy's `chi2.sf`, `chdtrc`).
pub(crate) fn chi2_sf(x: f64, dof: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x.is_infinite() {
        return 0.0;
    }
    statrs::function::gamma::checked_gamma_ur(dof / 2.0, x / 2.0).unwrap_or(f64::NAN).clamp(0.0, 1.0)
}

/// The two-proportion Z-test of Evidently's `z` stattest (two categories): the share of the
/// second category in each sample, the pooled share, and the two-sided normal p-value
/// `2 * (1 - Phi(|z|))`. One and the same value on both sides gives 1.
pub(crate) fn z_p(counts: &Aligned) -> f64 {
    let n1: u64 = counts.reference.iter().sum();
    let n2: u64 = counts.current.iter().sum();
    if counts.keys() < 2 || n1 == 0 || n2 == 0 {
        return 1.0;
    }
    // Evidently codes the first key (sorted) as 0 and every other as 1.
    let ones1 = (n1 - counts.reference[0]) as f64;
    let ones2 = (n2 - counts.current[0]) as f64;
    let (n1, n2) = (n1 as f64, n2 as f64);
    let (p1, p2) = (ones1 / n1, ones2 / n2);
    let pooled = (p1 * n1 + p2 * n2) / (n1 + n2);
    let z = (p1 - p2) / (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if z.is_nan() {
        return 1.0;
    }
    statrs::function::erf::erfc(z.abs() / std::f64::consts::SQRT_2)
}

/// The first Wasserstein distance between two sorted samples (`scipy.stats.wasserstein_distance`:
/// the area between the two empirical distribution functions), divided by the reference's
/// population standard deviation, at least 0.001 (Evidently's `wasserstein` stattest).
pub(crate) fn wasserstein_norm(reference: &[f64], current: &[f64]) -> f64 {
    wasserstein(reference, current) / population_std(reference).max(0.001)
}

/// `scipy.stats.wasserstein_distance` of two sorted, non-empty samples, in one merge.
pub(crate) fn wasserstein(u: &[f64], v: &[f64]) -> f64 {
    let (nu, nv) = (u.len() as f64, v.len() as f64);
    let (mut i, mut j) = (0, 0);
    let mut sum = Sum::default();
    let Some(mut x) = next_value(u, 0, v, 0) else { return f64::NAN };
    loop {
        (i, j) = (run_end(u, i, x), run_end(v, j, x));
        let Some(next) = next_value(u, i, v, j) else { break };
        sum.add((i as f64 / nu - j as f64 / nv).abs() * (next - x));
        x = next;
    }
    sum.value()
}

/// numpy's `np.std` (ddof 0).
pub(crate) fn population_std(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mut s = Sum::default();
    values.iter().for_each(|&x| s.add(x));
    let mean = s.value() / n;
    let mut sq = Sum::default();
    values.iter().for_each(|&x| sq.add((x - mean) * (x - mean)));
    (sq.value() / n).sqrt()
}

/// The shares of a column's values in common bins for both samples, as Evidently's
/// `get_binned_data` makes them: a numeric column with more than 20 distinct reference values in
/// numpy's Sturges histogram over both samples together; otherwise one bin per value.
pub(crate) fn evidently_bins(reference: &[f64], current: &[f64]) -> (Vec<f64>, Vec<f64>) {
    if distinct_sorted(reference) > 20 {
        let (Some(&lo), Some(&hi)) = (
            reference.first().into_iter().chain(current.first()).min_by(|a, b| a.total_cmp(b)),
            reference.last().into_iter().chain(current.last()).max_by(|a, b| a.total_cmp(b)),
        ) else {
            return (Vec::new(), Vec::new());
        };
        let edges = sturges_edges(lo, hi, reference.len() + current.len());
        (shares(&histogram(reference, &edges), reference.len()), shares(&histogram(current, &edges), current.len()))
    } else {
        let counts = Aligned::distinct(reference, current);
        (shares(&counts.reference, reference.len()), shares(&counts.current, current.len()))
    }
}

/// Each count as a share of `n`.
pub(crate) fn shares(counts: &[u64], n: usize) -> Vec<f64> {
    counts.iter().map(|&c| c as f64 / n as f64).collect()
}

/// `np.histogram_bin_edges(values, bins="sturges")` for values spanning `lo..=hi`, `n` of them.
fn sturges_edges(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let (lo, hi) = if lo == hi { (lo - 0.5, hi + 0.5) } else { (lo, hi) };
    let width = (hi - lo) / ((n as f64).log2() + 1.0);
    let bins = if width > 0.0 { ((hi - lo) / width).ceil().max(1.0) as usize } else { 1 };
    linspace(lo, hi, bins + 1)
}

/// `np.linspace(start, stop, num)`: `start + i * step`, the last exactly `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let step = (stop - start) / (num - 1) as f64;
    let mut out: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    if let Some(last) = out.last_mut() {
        *last = stop;
    }
    out
}

/// `np.histogram(sorted, edges)`: bins closed on the left, the last one closed on both sides.
fn histogram(sorted: &[f64], edges: &[f64]) -> Vec<u64> {
    let last = edges.len() - 1;
    let at = |k: usize| {
        if k == last { sorted.partition_point(|v| *v <= edges[k]) } else { sorted.partition_point(|v| *v < edges[k]) }
    };
    (0..last).map(|k| (at(k + 1) - at(k)) as u64).collect()
}

/// The Jensen-Shannon distance of two distributions (`scipy.spatial.distance.jensenshannon`,
/// natural logarithm): each normalised to sum to one, the square root of half the summed
/// relative entropies against their mean.
pub(crate) fn jensenshannon(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    let mut total = Sum::default();
    for (&a, &b) in p.iter().zip(q) {
        let (a, b) = (a / sp, b / sq);
        let m = (a + b) / 2.0;
        total.add(rel_entr(a, m));
        total.add(rel_entr(b, m));
    }
    (total.value() / 2.0).sqrt()
}

/// `scipy.special.rel_entr`.
fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// The reference's deciles (numpy's default, linear interpolation), duplicates removed: the inner
/// edges of the PSI bins, bin `i` holding values up to `edges[i]` and the last bin the rest (the
/// bins of the package's reference profile).
pub(crate) fn decile_edges(sorted: &[f64]) -> Vec<f64> {
    let mut edges: Vec<f64> = (1..10).filter_map(|i| numpy_quantile(sorted, f64::from(i) / 10.0)).collect();
    edges.dedup();
    edges
}

/// `np.quantile(sorted, q)` with the default (`linear`) method, including numpy's two-sided
/// interpolation (from the upper neighbour when the fraction is at least one half).
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    numpy_quantile(sorted, q)
}

fn numpy_quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let n = sorted.len();
    let last = *sorted.last()?;
    let virtual_index = (n - 1) as f64 * q;
    let below = virtual_index.floor();
    let t = virtual_index - below;
    let below = below as usize;
    let (a, b) = (sorted[below.min(n - 1)], sorted.get(below + 1).copied().unwrap_or(last));
    let diff = b - a;
    Some(if t >= 0.5 { b - diff * (1.0 - t) } else { a + diff * t })
}

/// Counts of a sorted sample in the bins that `edges` (inner edges) bound.
pub(crate) fn decile_counts(sorted: &[f64], edges: &[f64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(edges.len() + 1);
    let mut start = 0;
    for e in edges {
        let end = sorted.partition_point(|v| v <= e);
        out.push((end - start) as u64);
        start = end;
    }
    out.push((sorted.len() - start) as u64);
    out
}

/// The population stability index of two distributions given as shares of aligned bins:
/// `sum((cur - ref) * ln(cur / ref))`, an empty bin's share replaced as Evidently's
/// `get_binned_data` does (by 0.0001, or by a millionth of the smallest share when that is
/// smaller).
pub(crate) fn psi(reference: &[f64], current: &[f64]) -> f64 {
    let (r, c) = (fill_zeroes(reference), fill_zeroes(current));
    let mut total = Sum::default();
    for (a, b) in r.iter().zip(&c) {
        total.add((b - a) * (b / a).ln());
    }
    total.value()
}

fn fill_zeroes(shares: &[f64]) -> Vec<f64> {
    let smallest = shares.iter().copied().filter(|s| *s != 0.0).fold(f64::INFINITY, f64::min);
    let fill = if smallest <= 0.0001 { smallest / 1e6 } else { 0.0001 };
    shares.iter().map(|&s| if s == 0.0 { fill } else { s }).collect()
}
