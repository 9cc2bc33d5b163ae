//! Two-sample Kolmogorov–Smirnov test, ported from SciPy 1.17.1.
//!
//! This module reproduces `scipy.stats.ks_2samp(data1, data2)` with its
//! defaults (`alternative='two-sided'`, `method='auto'`) and
//! `scipy.stats.kstwo.sf(d, n)`, which the asymptotic branch of `ks_2samp`
//! uses.  The aim is numerical agreement with SciPy, not a "better" test, so
//! the code follows SciPy's control flow, thresholds and floating-point
//! evaluation order deliberately, including its quirks:
//!
//! * `scipy/stats/_stats_py.py` — `ks_2samp`, `_attempt_exact_2kssamp`,
//!   `_compute_prob_outside_square`;
//! * `scipy/stats/_stats_pythran.py` — `_compute_outer_prob_inside_method`;
//! * `scipy/stats/_ksstats.py` — `_kolmogn` and its helpers (Durbin matrix
//!   `_kolmogn_DMTW`, `_kolmogn_Pomeranz`, `_kolmogn_PelzGood`,
//!   Ruben–Gambino edges);
//! * `scipy/stats/_continuous_distns.py` / `_distn_infrastructure.py` —
//!   `kstwo` support and `rv_continuous.sf` boundary handling;
//! * xsf `include/xsf/cephes/kolmogorov.h` (`_smirnov`), `dd_real.h`
//!   (double-double arithmetic) and `unity.h` (`expm1`) for
//!   `scipy.special.smirnov`.
//!
//! Some of SciPy's arithmetic happens outside Python: NumPy's `matmul`
//! (Durbin matrix powers) and `np.convolve` (Pomeranz) go through OpenBLAS,
//! and the Durbin/Pomeranz rescaling loops silently switch to x87 80-bit
//! `longdouble` once they multiply by SciPy's `longdouble` constants.  The
//! port mirrors the FMA summation order of OpenBLAS's x86-64 kernels
//! (SkylakeX `ddot`, FMA-chain `dgemm`) and carries the `longdouble` phase
//! in double-double, so those paths agree with SciPy to an ulp or two (and
//! usually exactly) rather than bit for bit on every CPU — OpenBLAS picks its
//! kernel per CPU, so SciPy itself is not bit-reproducible there.  Every
//! other path (the statistic, the exact two-sample distributions, the
//! Ruben–Gambino edges and `smirnov`) is bit-identical to SciPy.

/// Result of [`ks_2samp`]: the statistic and its two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsTest {
    /// The KS statistic `D = max |F1(x) - F2(x)|`.  When SciPy takes its
    /// exact path (both sample sizes `<= 10000`) this is, as in SciPy, the
    /// value rounded to the lattice `h / lcm(n1, n2)`.
    pub statistic: f64,
    /// Two-sided p-value, clipped to `[0, 1]`.
    pub p_value: f64,
}

/// SciPy's `MAX_AUTO_N`: `method='auto'` tries the exact distribution when
/// both samples have at most this many values.
const MAX_AUTO_N: usize = 10_000;

/// Two-sample, two-sided Kolmogorov–Smirnov test, equal to
/// `scipy.stats.ks_2samp(a, b)` of SciPy 1.17.1 (defaults:
/// `alternative='two-sided'`, `method='auto'`).
///
/// Both slices must already be sorted ascending and hold no NaN (the caller
/// drops NaN and sorts, as SciPy's `np.sort` would place NaN last and then
/// propagate it).  Returns `None` when either sample is empty (SciPy raises).
///
/// The statistic is found with one linear merge (`O(n1 + n2)`); ties are
/// handled like SciPy's `searchsorted(..., side='right')`: the ECDF
/// difference is only evaluated after every copy of a value has been
/// consumed from both samples.
///
/// # Cost
///
/// The statistic is linear (about 15 ms for 3.27M vs 327k values).  The
/// p-value follows SciPy's algorithms and so inherits their cost: the exact
/// path (`max(n1, n2) <= 10000`, `n1 != n2`) is `O(n1 * n2 * D)` and takes up
/// to ~0.2–0.8 s near the 10000 limit (slowest when the p-value underflows
/// into subnormals); the asymptotic path is `O(1)`–`O(m^3 log n)` except for
/// `scipy.special.smirnov`'s exact sum, used when
/// `2.2 <= en * D^2 < 370` with `en = n1 n2 / (n1 + n2)` in `(140, 10^6]`,
/// which grows roughly linearly in `en` (about 0.2 s at `en = 3e5` and
/// 0.65 s at `en = 1e6`; SciPy itself takes about twice as long).  Memory is
/// `O(min(n1, n2))` at most.
pub fn ks_2samp(a: &[f64], b: &[f64]) -> Option<KsTest> {
    let n1 = a.len();
    let n2 = b.len();
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let mut d = ks_statistic_sorted(a, b);

    let g = gcd(n1 as u64, n2 as u64);
    let mut prob = f64::NEG_INFINITY;
    let mut asymp = n1.max(n2) > MAX_AUTO_N;
    if !asymp {
        // `_attempt_exact_2kssamp` always hands back the lattice-rounded d,
        // even when it fails and SciPy falls back to the asymptotic method.
        let (ok, d_round, p) = attempt_exact_2kssamp(n1 as u64, n2 as u64, g, d);
        d = d_round;
        prob = p;
        asymp = !ok;
    }
    if asymp {
        // Floats, as in SciPy, to avoid integer overflow of n1 * n2.
        let m = n1.max(n2) as f64;
        let n = n1.min(n2) as f64;
        let en = m * n / (m + n);
        // `np.round` rounds half to even.
        let en_round = en.round_ties_even();
        prob = kstwo_sf_f(en_round, d);
    }
    Some(KsTest { statistic: d, p_value: clip01(prob) })
}

/// Survival function `P(D_n >= d)` of the one-sample two-sided
/// Kolmogorov–Smirnov statistic for sample size `n`, equal to
/// `scipy.stats.kstwo.sf(d, n)` of SciPy 1.17.1.
///
/// Follows SciPy's `rv_continuous.sf` wrapper: `d <= 0.5 / n` gives `1`,
/// `d >= 1` gives `0`, NaN `d` gives NaN, and `n == 0` (outside the
/// distribution's parameter space, `n >= 1`) gives NaN like SciPy's
/// `badvalue`.  Otherwise it evaluates SciPy's `_kolmogn(n, d, cdf=False)`
/// (Simard & L'Ecuyer's selection of Ruben–Gambino, Durbin/MTW, Pomeranz,
/// Pelz–Good and `2 * smirnov(n, d)`).  The result is in `[0, 1]`.
///
/// Cost is at most a few milliseconds except for the exact Smirnov sum
/// (`140 < n <= 10^6` with `2.2 <= n d^2 < 370`), which is roughly linear
/// in `n` (about 0.65 s at `n = 10^6`), as in SciPy.
pub fn kstwo_sf(n: u64, d: f64) -> f64 {
    kstwo_sf_f(n as f64, d)
}

/// `kstwo.sf(d, n)` with `n` given as the float SciPy passes (`np.round(en)`).
fn kstwo_sf_f(n: f64, d: f64) -> f64 {
    // `_argcheck`: n >= 1 and integral, else `badvalue` (NaN).
    if !(n >= 1.0 && n == n.round_ties_even()) || d.is_nan() {
        return f64::NAN;
    }
    // `_get_support` is (0.5 / n, 1.0); `sf` places 1 at and below the lower
    // end and leaves 0 at and above the upper end (open support mask).
    let lower = 0.5 / n;
    if d <= lower {
        return 1.0;
    }
    if d >= 1.0 {
        return 0.0;
    }
    // The loop bound n fits easily in u64: n < 2^53 here.
    kolmogn_sf(n as u64, d)
}

// ---------------------------------------------------------------------------
// Statistic
// ---------------------------------------------------------------------------

/// `D` from two sorted samples, by merging.  Evaluates exactly the same
/// floating-point expression as SciPy (`c1 / n1 - c2 / n2`) at each distinct
/// value, so the result is bit-identical to SciPy's.
fn ks_statistic_sorted(a: &[f64], b: &[f64]) -> f64 {
    let n1 = a.len();
    let n2 = b.len();
    let n1f = n1 as f64;
    let n2f = n2 as f64;
    let mut i = 0usize;
    let mut j = 0usize;
    let mut max_diff = f64::NEG_INFINITY;
    let mut min_diff = f64::INFINITY;
    loop {
        // Next distinct value in the union of the two samples.
        let v = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => {
                if x <= y {
                    x
                } else {
                    y
                }
            }
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        // side='right': count every element <= v before evaluating.
        let (i0, j0) = (i, j);
        while i < n1 && a[i] <= v {
            i += 1;
        }
        while j < n2 && b[j] <= v {
            j += 1;
        }
        if i == i0 && j == j0 {
            // Only a NaN (excluded by the contract) can fail `v <= v`; stop
            // instead of looping forever.
            break;
        }
        let diff = i as f64 / n1f - j as f64 / n2f;
        if diff > max_diff {
            max_diff = diff;
        }
        if diff < min_diff {
            min_diff = diff;
        }
    }
    // SciPy: minS = clip(-min, 0, 1); maxS = max; d = minS if minS > maxS.
    let min_s = clip01(-min_diff);
    let max_s = max_diff;
    if min_s > max_s { min_s } else { max_s }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// `np.clip(p, 0, 1)`, passing NaN through like NumPy.
fn clip01(p: f64) -> f64 {
    // `f64::clamp` only panics for NaN/inverted bounds, never for a NaN `p`.
    p.clamp(0.0, 1.0)
}

// ---------------------------------------------------------------------------
// Exact two-sample distribution (`_attempt_exact_2kssamp`, two-sided)
// ---------------------------------------------------------------------------

/// Returns `(success, d_rounded, prob)` like SciPy.  SciPy's `errstate`
/// guards can never fire on the two-sided path (pure-Python floats for
/// `n1 == n2`, compiled Pythran for `n1 != n2`), so failure means only that
/// the probability fell outside `[0, 1]` by rounding (for example
/// `1.0000000000000002` for `n1 == n2` and tiny `h`).
fn attempt_exact_2kssamp(n1: u64, n2: u64, g: u64, d: f64) -> (bool, f64, f64) {
    let lcm = (n1 / g) * n2;
    let lcm_f = lcm as f64;
    let h_f = (d * lcm_f).round_ties_even();
    // 0 <= h <= lcm <= 1e8 here, so the conversion is exact.
    let h = h_f as u64;
    let d = h as f64 / lcm_f;
    if h == 0 {
        return (true, d, 1.0);
    }
    let prob =
        if n1 == n2 { compute_prob_outside_square(n1, h) } else { compute_outer_prob_inside_method(n1, n2, g, h) };
    let ok = (0.0..=1.0).contains(&prob);
    (ok, d, prob)
}

/// `_compute_prob_outside_square(n, h)`: Pr(D_{n,n} >= h/n), Horner-like
/// evaluation of the alternating binomial series (pure Python floats).
fn compute_prob_outside_square(n: u64, h: u64) -> f64 {
    let n = n as i64;
    let h = h as i64;
    let mut p = 0.0f64;
    let mut k = (n as f64 / h as f64).floor() as i64;
    while k >= 0 {
        let mut p1 = 1.0f64;
        for j in 0..h {
            // Python: (n - k*h - j) * p1 / (n + k*h + j + 1), left to right.
            p1 = (n - k * h - j) as f64 * p1 / (n + k * h + j + 1) as f64;
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// `_compute_outer_prob_inside_method(m, n, g, h)` (Pythran in SciPy):
/// 1 - (proportion of lattice paths staying strictly inside the band),
/// computed with Viehmann's recursion directly for 1 - p.
fn compute_outer_prob_inside_method(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (m, n, g, h) = (m as i64, n as i64, g as i64, h as i64);
    let mg = m / g;
    let ng = n / g;
    let mut minj: i64 = 0;
    let mut maxj: i64 = ((h as f64 / mg as f64).ceil() as i64).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1).max(0) as usize;
    let mut a = vec![1.0f64; len_a];
    for x in a.iter_mut().take(maxj.max(0) as usize) {
        *x = 0.0;
    }
    for i in 1..=m {
        let lastminj = minj;
        let lastlen = curlen;
        minj = (((ng * i - h) as f64 / mg as f64).floor() as i64 + 1).max(0);
        minj = minj.min(n);
        maxj = (((ng * i + h) as f64 / mg as f64).ceil() as i64).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        let i_f = i as f64;
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            // The window only slides right, so the index is never negative
            // and stays below len_a; `get` keeps this panic-free regardless.
            let prev = a.get((jj + minj - lastminj) as usize).copied().unwrap_or(1.0);
            val = (prev * i_f + val * j as f64) / (i + j) as f64;
            if let Some(slot) = a.get_mut(jj as usize) {
                *slot = val;
            }
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            // Carried-over elements are reset to 1 (numpy slice semantics:
            // silently truncated at the end of the array).
            let start = (maxj - minj) as usize;
            let end = ((maxj - minj + (lastlen - curlen)) as usize).min(a.len());
            if start < end {
                for x in &mut a[start..end] {
                    *x = 1.0;
                }
            }
        }
    }
    a.get((maxj - minj - 1).max(0) as usize).copied().unwrap_or(f64::NAN)
}

// ---------------------------------------------------------------------------
// kolmogn (scipy/stats/_ksstats.py), survival function only
// ---------------------------------------------------------------------------

const SQRT2PI: f64 = 2.5066282746310002;
const LOG_2PI: f64 = 1.8378770664093453;
const SQRT3: f64 = 1.7320508075688772;
const PI_SQUARED: f64 = 9.869604401089358;
const PI_FOUR: f64 = 97.40909103400242;
const PI_SIX: f64 = 961.3891935753043;
const MIN_LOG: f64 = -708.0;
const E128: i32 = 128;
/// 2^128 and 2^-128 (`_EP128`, `_EM128`; exact powers of two).
const EP128: f64 = 3.402823669209385e38;
const EM128: f64 = 2.938735877055719e-39;

// Verbatim from SciPy; the extra digits round to the same f64.
#[allow(clippy::excessive_precision)]
const STIRLING_COEFFS: [f64; 8] = [
    -2.955065359477124183e-2,
    6.4102564102564102564e-3,
    -1.9175269175269175269e-3,
    8.4175084175084175084e-4,
    -5.952380952380952381e-4,
    7.9365079365079365079e-4,
    -2.7777777777777777778e-3,
    8.3333333333333333333e-2,
];

/// A probability as SciPy holds it: plain `float64`, or — after the
/// rescaling steps multiply by the `longdouble` constant `_EP128`/`_EM128` —
/// an extended-precision value.  The extended case is carried as a
/// double-double (more precise than x87's 64-bit mantissa, so the result is
/// within rounding of SciPy's).
#[derive(Clone, Copy)]
struct Prob {
    v: dd::DD,
    extended: bool,
}

impl Prob {
    fn f(x: f64) -> Self {
        Prob { v: dd::DD::from(x), extended: false }
    }

    /// `_select_and_clip_prob(p, 1.0 - p, cdf=False)` applied to an already
    /// clipped CDF value: returns the clipped SF as float64.
    fn sf_from_cdf(self) -> f64 {
        if self.extended {
            let c = clip_dd(self.v);
            let s = dd::d_sub(1.0, c);
            clip01(s.hi)
        } else {
            let c = clip01(self.v.hi);
            clip01(1.0 - c)
        }
    }
}

fn clip_dd(x: dd::DD) -> dd::DD {
    if x.hi < 0.0 {
        dd::DD::from(0.0)
    } else if x.hi > 1.0 {
        dd::DD::from(1.0)
    } else {
        x
    }
}

/// `_log_nfactorial_div_n_pow_n(n)`: log(n!/n^n) by Stirling's series.
fn log_nfactorial_div_n_pow_n(n: u64) -> f64 {
    let nf = n as f64;
    let rn = 1.0 / nf;
    // np.polyval: Horner starting from 0.
    let x = rn / nf;
    let mut y = 0.0f64;
    for c in STIRLING_COEFFS {
        y = y * x + c;
    }
    nf.ln() / 2.0 - nf + LOG_2PI / 2.0 + rn * y
}

/// `_kolmogn(n, x, cdf=False)` for integral `n >= 1`.
fn kolmogn_sf(n: u64, x: f64) -> f64 {
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        // Ruben-Gambino: 1/2n <= x <= 1/n.
        if t <= 0.5 {
            return 1.0;
        }
        let prob = if n <= 140 {
            // np.prod(np.arange(1, n+1) * (1.0/n) * (2*t - 1)), sequential.
            let inv = 1.0 / nf;
            let f = 2.0 * t - 1.0;
            let mut p = 1.0f64;
            for i in 1..=n {
                p *= (i as f64 * inv) * f;
            }
            p
        } else {
            (log_nfactorial_div_n_pow_n(n) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return clip01(1.0 - prob);
    }
    if t >= nf - 1.0 {
        // Ruben-Gambino: 1 - 1/n <= x < 1.
        let prob = 2.0 * (1.0 - x).powf(nf);
        return clip01(prob);
    }
    if x >= 0.5 {
        // Exact: the two one-sided events are disjoint.
        return clip01(2.0 * smirnov(n, x));
    }
    let nxsquared = t * x;
    if n <= 140 {
        if nxsquared <= 0.754693 {
            return kolmogn_dmtw_cdf(n, x).sf_from_cdf();
        }
        if nxsquared <= 4.0 {
            return kolmogn_pomeranz_cdf(n, x).sf_from_cdf();
        }
        return clip01(2.0 * smirnov(n, x));
    }
    if nxsquared >= 370.0 {
        return 0.0;
    }
    if nxsquared >= 2.2 {
        return clip01(2.0 * smirnov(n, x));
    }
    // nxsquared < 2.2 here, so SciPy's `nxsquared >= 18` shortcut is moot.
    if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        kolmogn_dmtw_cdf(n, x).sf_from_cdf()
    } else {
        let cdf = kolmogn_pelz_good_cdf(n, x);
        clip01(1.0 - clip01(cdf))
    }
}

/// Largest Durbin matrix multiplied with an FMA chain (see [`matmul`]).
const DMTW_FMA_MAX_M: usize = 40;

/// Row-major square matrix product `a @ b` (size `m`).
///
/// NumPy's matmul goes through OpenBLAS `dgemm`, whose FMA-based x86-64
/// kernels compute (almost) every entry as a chain of fused multiply-adds
/// over the inner index in ascending order; mirroring that makes the small
/// Durbin matrices of the `n <= 140` regime (m <= 21) come out bit-identical
/// to SciPy in practice.  `f64::mul_add` is an out-of-line call unless the
/// crate is built with the `fma` target feature, so for the larger matrices
/// (m up to 117, only reached for n > 140 where the result is an SF within
/// 1e-4 of 1) the plain vectorisable multiply-add is used; it differs from
/// SciPy by at most an ulp or two there.
fn matmul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut c = vec![0.0f64; m * m];
    let fma = m <= DMTW_FMA_MAX_M;
    for i in 0..m {
        let crow = &mut c[i * m..(i + 1) * m];
        for k in 0..m {
            let aik = a[i * m + k];
            let brow = &b[k * m..(k + 1) * m];
            if fma {
                for (cij, bkj) in crow.iter_mut().zip(brow) {
                    *cij = aik.mul_add(*bkj, *cij);
                }
            } else {
                for (cij, bkj) in crow.iter_mut().zip(brow) {
                    *cij += aik * bkj;
                }
            }
        }
    }
    c
}

/// `cblas_ddot` as OpenBLAS computes it on x86-64 (SkylakeX-family kernel,
/// `kernel/x86_64/ddot.c` + `ddot_microk_skylakex-2.c`): blocks of 32 in
/// four 8-lane FMA accumulators, a remaining block of 16 in four 4-lane
/// accumulators, a fixed reduction tree, then an FMA tail.  For fewer than
/// 16 terms (the common case here) this is a plain FMA chain, which every
/// FMA-capable OpenBLAS kernel shares.
fn openblas_ddot(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    let n1 = n & !15;
    let mut dot = 0.0f64;
    if n1 > 0 {
        let n32 = n1 & !31;
        let mut acc = [[0.0f64; 4]; 4];
        let mut acc5 = [[0.0f64; 8]; 4];
        let mut i = 0;
        while i < n32 {
            for (r, ar) in acc5.iter_mut().enumerate() {
                for (l, al) in ar.iter_mut().enumerate() {
                    let t = i + 8 * r + l;
                    *al = x[t].mul_add(y[t], *al);
                }
            }
            i += 32;
        }
        for (r, ar) in acc.iter_mut().enumerate() {
            for (l, al) in ar.iter_mut().enumerate() {
                *al = acc5[r][l] + acc5[r][l + 4];
            }
        }
        while i < n1 {
            for (r, ar) in acc.iter_mut().enumerate() {
                for (l, al) in ar.iter_mut().enumerate() {
                    let t = i + 4 * r + l;
                    *al = x[t].mul_add(y[t], *al);
                }
            }
            i += 16;
        }
        let mut a0 = [0.0f64; 4];
        for (l, v) in a0.iter_mut().enumerate() {
            *v = ((acc[0][l] + acc[1][l]) + acc[2][l]) + acc[3][l];
        }
        dot = (a0[0] + a0[2]) + (a0[1] + a0[3]);
    }
    for t in n1..n {
        dot = y[t].mul_add(x[t], dot);
    }
    dot
}

/// `np.convolve(a, v)` (mode 'full') as NumPy evaluates it: `correlate(a,
/// v[::-1])` with the longer array first, BLAS dot products for the ramps
/// (and for the middle when the kernel is longer than 11), and NumPy's
/// unrolled non-FMA `small_correlate` for the middle otherwise.
fn numpy_convolve_full(a: &[f64], v: &[f64], out: &mut Vec<f64>) {
    out.clear();
    let (a, v) = if v.len() > a.len() { (v, a) } else { (a, v) };
    let (n1, n2) = (a.len(), v.len());
    if n2 == 0 {
        return;
    }
    let vr: Vec<f64> = v.iter().rev().copied().collect();
    // NumPy's DOUBLE_dot: `sum = 0.; sum += cblas_ddot(...)`.
    let dot = |x: &[f64], y: &[f64]| 0.0 + openblas_ddot(x, y);
    for i in 0..n2 - 1 {
        out.push(dot(&a[..=i], &vr[n2 - 1 - i..]));
    }
    for i in 0..=(n1 - n2) {
        if n2 <= 11 {
            let mut s = 0.0f64;
            for (aj, vj) in a[i..i + n2].iter().zip(&vr) {
                s += aj * vj;
            }
            out.push(s);
        } else {
            out.push(dot(&a[i..i + n2], &vr));
        }
    }
    for i in 0..n2 - 1 {
        let len = n2 - 1 - i;
        let start = n1 - n2 + 1 + i;
        out.push(dot(&a[start..start + len], &vr[..len]));
    }
}

/// `_kolmogn_DMTW(n, d, cdf=True)`: Durbin's matrix algorithm as organised
/// by Marsaglia, Tsang & Wang.  The matrix has size `2k - 1` with
/// `k = ceil(n d)`; SciPy only uses it where `n d^2 <= 0.754693` (n <= 140)
/// or `n d^1.5 <= 1.4` (n <= 100000), so `m <= 117`.
fn kolmogn_dmtw_cdf(n: u64, d: f64) -> Prob {
    if d >= 1.0 {
        return Prob::f(1.0);
    }
    let nf = n as f64;
    let nd = nf * d;
    if nd <= 0.5 {
        return Prob::f(0.0);
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;

    // v[j] = (1 - h^(j+1)) / (j+1)!, w[j] = 1/j!.
    let mut v: Vec<f64> = (1..=m).map(|j| 1.0 - h.powf(j as f64)).collect();
    let mut w = vec![0.0f64; m];
    let mut fac = 1.0f64;
    for j in 1..=m {
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] *= fac;
    }
    let base = (2.0 * h - 1.0).max(0.0);
    let tt = base.powf(m as f64) - 2.0 * h.powf(m as f64);
    v[m - 1] = (1.0 + tt) * fac;

    let mut hm = vec![0.0f64; m * m];
    for i in 1..m {
        // H[i-1:, i] = w[:m-i+1]
        for r in (i - 1)..m {
            hm[r * m + i] = w[r - (i - 1)];
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
    }
    for c in 0..m {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }

    let mut hpwr = vec![0.0f64; m * m];
    for i in 0..m {
        hpwr[i * m + i] = 1.0;
    }
    let mut nn = n;
    let mut expnt: i64 = 0;
    let mut hexpnt: i64 = 0;
    let kk = (k - 1) * m + (k - 1);
    while nn > 0 {
        if nn % 2 == 1 {
            hpwr = matmul(&hpwr, &hm, m);
            expnt += hexpnt;
        }
        hm = matmul(&hm, &hm, m);
        hexpnt *= 2;
        if hm[kk].abs() > EP128 {
            for x in hm.iter_mut() {
                *x /= EP128;
            }
            hexpnt += E128 as i64;
        }
        nn /= 2;
    }

    // Multiply by n!/n^n.  Once p is rescaled by the longdouble _EP128,
    // SciPy continues in extended precision; mirror that with double-double.
    let mut p = hpwr[kk];
    let mut pe = dd::DD::from(0.0);
    let mut extended = false;
    for i in 1..=n {
        let fi = i as f64;
        if extended {
            pe = dd::div_d(dd::d_mul(fi, pe), nf);
            if pe.hi.abs() < EM128 {
                pe = dd::mul_pwr2(pe, EP128);
                expnt -= E128 as i64;
            }
        } else {
            p = fi * p / nf;
            if p.abs() < EM128 {
                pe = dd::mul_pwr2(dd::DD::from(p), EP128);
                extended = true;
                expnt -= E128 as i64;
            }
        }
    }
    let e = clamp_exp(expnt);
    if extended {
        let r = if expnt != 0 { dd::ldexp(pe, e) } else { pe };
        Prob { v: clip_dd(r), extended: true }
    } else {
        let r = if expnt != 0 { ldexp(p, e) } else { p };
        Prob::f(clip01(r))
    }
}

fn clamp_exp(e: i64) -> i32 {
    e.clamp(i32::MIN as i64 / 2, i32::MAX as i64 / 2) as i32
}

/// `_pomeranz_compute_j1j2`: column range of row `i` in Pomeranz's recursion.
fn pomeranz_compute_j1j2(i: i64, n: i64, ll: i64, ceilf: i64, roundf: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let ip1div2 = (i + 1).div_euclid(2);
        let ip1mod2 = (i + 1).rem_euclid(2);
        if ip1mod2 == 0 {
            if ip1div2 == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1)
            }
        } else {
            (ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// Python-style slice bounds `[start, stop)` clipped to `len` (negative
/// indices count from the end, as numpy slicing does).
fn py_slice(start: i64, stop: i64, len: usize) -> (usize, usize) {
    let l = len as i64;
    let fix = |x: i64| -> i64 { if x < 0 { (x + l).max(0) } else { x.min(l) } };
    let s = fix(start);
    let e = fix(stop);
    if e <= s { (s as usize, s as usize) } else { (s as usize, e as usize) }
}

/// `_kolmogn_Pomeranz(n, x, cdf=True)` (used for n <= 140).
fn kolmogn_pomeranz_cdf(n: u64, x: f64) -> Prob {
    let ni = n as i64;
    let nf = n as f64;
    let t = nf * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = f.min(1.0 - f);
    let ceilf: i64 = if f > 0.0 { 1 } else { 0 };
    let roundf: i64 = if f > 0.5 { 1 } else { 0 };
    let npwrs = (2 * (ll + 1)) as usize;
    let mut gpower = vec![0.0f64; npwrs];
    let mut twogpower = vec![0.0f64; npwrs];
    let mut onem2gpower = vec![0.0f64; npwrs];
    gpower[0] = 1.0;
    twogpower[0] = 1.0;
    onem2gpower[0] = 1.0;
    let mut expnt: i64 = 0;
    let g_over_n = g / nf;
    let two_g_over_n = 2.0 * g / nf;
    let one_minus_two_g_over_n = (1.0 - 2.0 * g) / nf;
    for m in 1..npwrs {
        let mf = m as f64;
        gpower[m] = gpower[m - 1] * g_over_n / mf;
        twogpower[m] = twogpower[m - 1] * two_g_over_n / mf;
        onem2gpower[m] = onem2gpower[m - 1] * one_minus_two_g_over_n / mf;
    }

    let mut v0 = vec![0.0f64; npwrs];
    let mut v1 = vec![0.0f64; npwrs];
    v1[0] = 1.0;
    let mut v0s: i64 = 0;
    let mut v1s: i64 = 0;

    // Only j1 of row 0 is needed (it becomes k1 of row 1).
    let (mut j1, _) = pomeranz_compute_j1j2(0, ni, ll, ceilf, roundf);
    let mut conv: Vec<f64> = Vec::with_capacity(2 * npwrs);
    for i in 1..(2 * ni + 2) {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0s, &mut v1s);
        v1.fill(0.0);
        let j2;
        (j1, j2) = pomeranz_compute_j1j2(i, ni, ll, ceilf, roundf);
        let pwrs: &[f64] = if i == 1 || i == 2 * ni + 1 {
            &gpower
        } else if i % 2 == 1 {
            &twogpower
        } else {
            &onem2gpower
        };
        let ln2 = j2 - k1 + 1;
        if ln2 > 0 {
            let (as_, ae) = py_slice(k1 - v0s, k1 - v0s + ln2, v0.len());
            let (bs, be) = py_slice(0, ln2, pwrs.len());
            let a = &v0[as_..ae];
            let b = &pwrs[bs..be];
            // np.convolve(a, b), mode 'full'.
            numpy_convolve_full(a, b, &mut conv);
            let conv_start = j1 - k1;
            let conv_len = j2 - j1 + 1;
            let (cs, ce) = py_slice(conv_start, conv_start + conv_len, conv.len());
            let (ds, de) = py_slice(0, conv_len, v1.len());
            let cnt = (ce - cs).min(de - ds);
            v1[ds..ds + cnt].copy_from_slice(&conv[cs..cs + cnt]);
            let vmax = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if 0.0 < vmax && vmax < EM128 {
                for x in v1.iter_mut() {
                    *x *= EP128;
                }
                expnt -= E128 as i64;
            }
            v1s = v0s + j1 - k1;
        }
    }

    // Multiply by n!; SciPy rescales with the longdouble _EM128 when the
    // running product exceeds 2^128 and continues in extended precision.
    let idx = ni - v1s;
    let mut ans = if idx >= 0 {
        v1.get(idx as usize).copied().unwrap_or(0.0)
    } else {
        let l = v1.len() as i64;
        v1.get((idx + l).max(0) as usize).copied().unwrap_or(0.0)
    };
    let mut ae = dd::DD::from(0.0);
    let mut extended = false;
    for m in 1..=n {
        let mf = m as f64;
        if extended {
            if ae.hi.abs() > EP128 {
                ae = dd::mul_pwr2(ae, EM128);
                expnt += E128 as i64;
            }
            ae = dd::mul_d(ae, mf);
        } else {
            if ans.abs() > EP128 {
                ae = dd::mul_pwr2(dd::DD::from(ans), EM128);
                extended = true;
                expnt += E128 as i64;
                ae = dd::mul_d(ae, mf);
                continue;
            }
            ans *= mf;
        }
    }
    let e = clamp_exp(expnt);
    if extended {
        let r = if expnt != 0 { dd::ldexp(ae, e) } else { ae };
        Prob { v: clip_dd(r), extended: true }
    } else {
        let r = if expnt != 0 { ldexp(ans, e) } else { ans };
        Prob::f(clip01(r))
    }
}

/// NumPy's pairwise summation (`np.sum` / `np.add.reduce` on float64).
fn numpy_pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0f64;
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for (rj, aj) in r.iter_mut().zip(&a[i..i + 8]) {
                *rj += aj;
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[i..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        numpy_pairwise_sum(&a[..n2]) + numpy_pairwise_sum(&a[n2..])
    }
}

/// `_kolmogn_PelzGood(n, x, cdf=True)`: Pelz–Good asymptotic expansion.
fn kolmogn_pelz_good_cdf(n: u64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let z = nf.sqrt() * x;
    let zsquared = z.powf(2.0);
    let zthree = z.powf(3.0);
    let zfour = z.powf(4.0);
    let zsix = z.powf(6.0);

    let qlog = -PI_SQUARED / 8.0 / zsquared;
    if qlog < MIN_LOG {
        return 0.0;
    }
    let q = qlog.exp();

    let k1a = -zsquared;
    let k1b = PI_SQUARED / 4.0;

    let k2a = 6.0 * zsix + 2.0 * zfour;
    let k2b = (2.0 * zfour - 5.0 * zsquared) * PI_SQUARED / 4.0;
    let k2c = PI_FOUR * (1.0 - 2.0 * zsquared) / 16.0;

    let k3d = PI_SIX * (5.0 - 30.0 * zsquared) / 64.0;
    let k3c = PI_FOUR * (-60.0 * zsquared + 212.0 * zfour) / 16.0;
    let k3b = PI_SQUARED * (135.0 * zfour - 96.0 * zsix) / 4.0;
    let k3a = -30.0 * zsix - 90.0 * z.powf(8.0);

    let mut kk = [0.0f64; 4];
    let maxk = (16.0 * z / std::f64::consts::PI).ceil() as i64;
    for k in (1..=maxk).rev() {
        let m = 2 * k - 1;
        let msquared = (m * m) as f64;
        let mfour = (m * m * m * m) as f64;
        let msix = (m * m * m * m * m * m) as f64;
        let qpower = q.powf((8 * k) as f64);
        let coeffs = [
            1.0,
            k1a + k1b * msquared,
            k2a + k2b * msquared + k2c * mfour,
            k3a + k3b * msquared + k3c * mfour + k3d * msix,
        ];
        for (kv, c) in kk.iter_mut().zip(coeffs) {
            *kv *= qpower;
            *kv += c;
        }
    }
    for kv in kk.iter_mut() {
        *kv *= q;
    }
    for kv in kk.iter_mut() {
        *kv *= SQRT2PI;
    }
    let div = [z, 6.0 * zfour, 72.0 * z.powf(7.0), 6480.0 * z.powf(10.0)];
    for (kv, dv) in kk.iter_mut().zip(div) {
        *kv /= dv;
    }

    let q = (-PI_SQUARED / 2.0 / zsquared).exp();
    let ks: Vec<i64> = (1..=maxk).rev().collect();
    let sqrt3z = SQRT3 * z;
    let mut t2: Vec<f64> = Vec::with_capacity(ks.len());
    let mut t3: Vec<f64> = Vec::with_capacity(ks.len());
    for &k in &ks {
        let ksq = (k * k) as f64;
        let kspi = std::f64::consts::PI * k as f64;
        let qp = q.powf(ksq);
        t2.push(ksq * qp);
        t3.push((sqrt3z + kspi) * (sqrt3z - kspi) * ksq * qp);
    }
    let mut k2extra = numpy_pairwise_sum(&t2);
    k2extra *= PI_SQUARED * SQRT2PI / (-36.0 * zthree);
    kk[2] += k2extra;
    let mut k3extra = numpy_pairwise_sum(&t3);
    k3extra *= PI_SQUARED * SQRT2PI / (216.0 * zsix);
    kk[3] += k3extra;
    for (i, kv) in kk.iter_mut().enumerate() {
        *kv /= nf.powf(i as f64 / 2.0);
    }
    // Python's builtin sum: 0 + K0 + K1 + K2 + K3.
    kk[0] + kk[1] + kk[2] + kk[3]
}

// ---------------------------------------------------------------------------
// scipy.special.smirnov (xsf/cephes/kolmogorov.h), survival function
// ---------------------------------------------------------------------------

/// cephes `MINLOG`: log(2^-1075).
#[allow(clippy::excessive_precision)]
const MINLOG: f64 = -7.451332191019412076235245305675398106812e2;
const SMIRNOV_MAX_COMPUTE_N: i64 = 1_000_000;
const SM_UPPER_MAX_TERMS: i64 = 3;
const SM_UPPERSUM_MIN_N: i64 = 10;
const SM_MAX_EXPONENT: i32 = 960;
const LN2: f64 = std::f64::consts::LN_2;

/// `scipy.special.smirnov(n, x)`: exact P(D_n^+ >= x) (Birnbaum–Tingey sum
/// in double-double, with SciPy's special cases and its approximation for
/// n > 10^6).  xsf takes a C `int`; n beyond `i32::MAX` (far outside any
/// real use, and undefined in SciPy) is clamped, which lands in the n > 10^6
/// closed form anyway.
fn smirnov(n: u64, x: f64) -> f64 {
    smirnov_sf(n.min(i32::MAX as u64) as i64, x)
}

/// floor(n x) and its fractional part computed exactly (`modNX`).
fn mod_nx(n: i64, x: f64) -> (f64, i64, f64) {
    let nxd = dd::d_mul(n as f64, dd::DD::from(x));
    let nxfloord = dd::floor(nxd);
    let alphad = dd::sub(nxd, nxfloord);
    let mut alpha = alphad.hi;
    let mut nxfloor = nxfloord.hi as i64;
    if alpha == 1.0 {
        nxfloor += 1;
        alpha = 0.0;
    }
    (alpha, nxfloor, nxd.hi)
}

/// Binomial coefficient stored as (mantissa in double-double, exponent).
fn update_binomial(cman: &mut dd::DD, cexpt: &mut i32, n: i64, j: i64) {
    let rat = dd::div_d(dd::DD::from((n - j) as f64), j as f64 + 1.0);
    let man2 = dd::mul(*cman, rat);
    let (man2, expt) = dd::frexp(man2);
    *cexpt += expt;
    *cman = man2;
}

/// `pow_D`: a^m for double-double a, trading accuracy for speed like xsf.
fn pow_d(a: dd::DD, m: i64) -> dd::DD {
    if m <= 0 {
        if m == 0 {
            return dd::DD::from(1.0);
        }
        return dd::d_div(1.0, pow_d(a, -m));
    }
    if a.hi == 0.0 && a.lo == 0.0 {
        return dd::DD::from(0.0);
    }
    let mf = m as f64;
    let ans = a.hi.powf(mf);
    let r = a.lo / a.hi;
    let mut adj = mf * r;
    if adj.abs() > 1e-8 {
        if adj.abs() < 1e-4 {
            adj += (mf * r) * ((m - 1) as f64 / 2.0 * r);
        } else {
            adj = cephes_expm1(mf * r.ln_1p());
        }
    }
    dd::add_d(dd::DD::from(ans), ans * adj)
}

fn pow2(a: f64, b: f64, m: i64) -> f64 {
    pow_d(dd::add_d(dd::DD::from(a), b), m).hi
}

/// xsf's `nextPowerOf2` (despite the name it returns x nudged up by an ulp
/// or so); ported verbatim because it sets the exponent split below.
fn next_power_of_2(x: f64) -> f64 {
    let q = ldexp(x, 1 - 53);
    let mut l = (q + x).abs();
    if l == 0.0 {
        l = x.abs();
    } else if l < 2147483648.0 {
        let lint = l as i32;
        if lint as f64 == l {
            l = lint as f64;
        }
    }
    l
}

/// `pow2Scaled_D`: a^m as (significand, binary exponent) without overflow.
fn pow2_scaled_d(a: dd::DD, m: i64) -> (dd::DD, i64) {
    if m <= 0 {
        if m == 0 {
            return (dd::DD::from(1.0), 0);
        }
        let (ans, ae1) = pow2_scaled_d(a, -m);
        let (ans, ae2) = dd::frexp(dd::d_div(1.0, ans));
        return (ans, -ae1 + ae2 as i64);
    }
    let (y, ye) = dd::frexp(a);
    let ye = ye as i64;
    if m == 1 {
        return (y, ye);
    }
    let mut max_expt: i64 = SM_MAX_EXPONENT as i64;
    if m as f64 * (y.hi - 1.0) / y.hi < -(SM_MAX_EXPONENT as f64) * LN2 {
        let lg2y = y.hi.ln() / LN2;
        let lg_ans = m as f64 * lg2y;
        if lg_ans <= -(SM_MAX_EXPONENT as f64) {
            max_expt = (next_power_of_2(-(SM_MAX_EXPONENT as f64) / lg2y + 1.0) / 2.0) as i64;
        }
    }
    if m <= max_expt || max_expt <= 0 {
        let ans1 = pow_d(y, m);
        let (ans, anse) = dd::frexp(ans1);
        return (ans, anse as i64 + m * ye);
    }
    let q = m / max_expt;
    let r = m % max_expt;
    let (y2r, y2re) = pow2_scaled_d(y, r);
    let (y2m, y2me) = pow2_scaled_d(y, max_expt);
    let (y2mq, mut y2mqe) = pow2_scaled_d(y2m, q);
    let (ans, anse) = dd::frexp(dd::mul(y2r, y2mq));
    y2mqe += y2me * q;
    let mut anse = anse as i64;
    anse += y2mqe + y2re;
    anse += m * ye;
    (ans, anse)
}

/// `pow4_D`: ((a+b)/(c+d))^m in double-double.
fn pow4_d(a: f64, b: f64, c: f64, d: f64, m: i64) -> dd::DD {
    if m <= 0 {
        if m == 0 {
            return dd::DD::from(1.0);
        }
        return pow4_d(c, d, a, b, -m);
    }
    let aa = dd::add_d(dd::DD::from(a), b);
    let cc = dd::add_d(dd::DD::from(c), d);
    if aa.hi == 0.0 && aa.lo == 0.0 {
        return if cc.hi == 0.0 && cc.lo == 0.0 { dd::DD::new(f64::NAN, f64::NAN) } else { dd::DD::from(0.0) };
    }
    if cc.hi == 0.0 && cc.lo == 0.0 {
        let inf = if dd::lt_d(aa, 0.0) { f64::NEG_INFINITY } else { f64::INFINITY };
        return dd::DD::new(inf, inf);
    }
    let xx = dd::div(aa, cc);
    pow_d(xx, m)
}

/// `computeAv`: one term C(n,v) (1-x-v/n)^(n-v) (x+v/n)^(v-1).
fn compute_av(n: i64, x: f64, v: i64, cman: dd::DD, cexpt: i32) -> dd::DD {
    let nf = n as f64;
    let t2x = dd::sub_d(dd::div_d(dd::DD::from((n - v) as f64), nf), x);
    let (t2, t2e) = pow2_scaled_d(t2x, n - v);
    let t1x = dd::add_d(dd::div_d(dd::DD::from(v as f64), nf), x);
    let (t1, t1e) = pow2_scaled_d(t1x, v - 1);
    let ans = dd::mul(t1, t2);
    let ans = dd::mul(ans, cman);
    let anse = cexpt as i64 + t1e + t2e;
    dd::ldexp(ans, clamp_exp(anse))
}

/// `_smirnov(n, x).sf` (the CDF and PDF parts are not needed here).
fn smirnov_sf(n: i64, x: f64) -> f64 {
    if !(n > 0 && (0.0..=1.0).contains(&x)) {
        return f64::NAN;
    }
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    let (alpha, nxfl, _nx) = mod_nx(n, x);
    let mut n1mxfl = n - nxfl - if alpha == 0.0 { 0 } else { 1 };
    let mut n1mxceil = n - nxfl;
    if alpha == 0.0 {
        n1mxfl -= 1;
        n1mxceil += 1;
    }
    // x <= 1/n
    if nxfl == 0 || (nxfl == 1 && alpha == 0.0) {
        let t = pow2(1.0, x, n - 1);
        let cdf = x * t;
        return 1.0 - cdf;
    }
    // sf underflows
    if -2.0 * n as f64 * x * x < MINLOG {
        return 0.0;
    }
    // x >= 1 - 1/n
    if nxfl >= n - 1 {
        return pow2(1.0, -x, n);
    }
    if n > SMIRNOV_MAX_COMPUTE_N {
        // p ~ e^(-(6nx+1)^2 / 18n)
        let nf = n as f64;
        let logp = -(6.0 * nf * x + 1.0).powf(2.0) / 18.0 / nf;
        return if logp < -LN2 {
            logp.exp()
        } else {
            let cdf = -cephes_expm1(logp);
            1.0 - cdf
        };
    }
    let n_upper_terms = n - n1mxceil + 1;
    let mut use_upper = n_upper_terms <= 1 && x < 0.5;
    use_upper =
        use_upper || (n >= SM_UPPERSUM_MIN_N && n_upper_terms <= SM_UPPER_MAX_TERMS && x <= 0.5 / (n as f64).sqrt());

    let mut start: i64 = 0;
    let mut step: i64 = 1;
    let mut n_terms = n1mxfl + 1;
    let vmid = n / 2;
    let mut cman = dd::DD::from(1.0);
    let mut cexpt: i32 = 0;
    let mut aj_sum = dd::DD::from(0.0);
    let aj;
    if use_upper {
        start = n;
        step = -1;
        n_terms = n - n1mxceil + 1;
        aj = pow4_d(1.0, x, 1.0, 0.0, n - 1);
    } else {
        let t2 = pow4_d(1.0, -x, 1.0, 0.0, n);
        aj = dd::div_d(t2, x);
    }
    aj_sum = dd::add(aj_sum, aj);
    update_binomial(&mut cman, &mut cexpt, n, 0);
    let mut j: i64 = 1;
    while j < n_terms {
        let v = start + j * step;
        let aj = compute_av(n, x, v, cman, cexpt);
        let nonzero = !(aj.hi == 0.0 && aj.lo == 0.0);
        if aj.hi.is_finite() && nonzero {
            aj_sum = dd::add(aj_sum, aj);
        }
        if nonzero {
            if (4 * (n_terms - j)) as f64 * aj.hi.abs() < f64::EPSILON * aj_sum.hi && j != n_terms - 1 {
                break;
            }
        } else if j > vmid {
            break;
        }
        update_binomial(&mut cman, &mut cexpt, n, j);
        j += 1;
    }
    let prob = dd::d_mul(x, aj_sum).hi;
    let sf = if step < 0 { 1.0 - prob } else { prob };
    clip01(sf)
}

/// cephes `expm1` (xsf/cephes/unity.h).
#[allow(clippy::excessive_precision)]
fn cephes_expm1(x: f64) -> f64 {
    const EP: [f64; 3] = [1.2617719307481059087798E-4, 3.0299440770744196129956E-2, 9.9999999999999999991025E-1];
    const EQ: [f64; 4] = [
        3.0019850513866445504159E-6,
        2.5244834034968410419224E-3,
        2.2726554820815502876593E-1,
        2.0000000000000000000897E0,
    ];
    if !x.is_finite() {
        if x.is_nan() || x > 0.0 {
            return x;
        }
        return -1.0;
    }
    if !(-0.5..=0.5).contains(&x) {
        return x.exp() - 1.0;
    }
    let xx = x * x;
    let polevl = |c: &[f64]| c.iter().skip(1).fold(c[0], |acc, &ci| acc * xx + ci);
    let mut r = x * polevl(&EP);
    r = r / (polevl(&EQ) - r);
    r + r
}

// ---------------------------------------------------------------------------
// frexp / ldexp (C semantics, including subnormals)
// ---------------------------------------------------------------------------

/// C `frexp`: x = m * 2^e with 0.5 <= |m| < 1 (m = x for 0, inf, NaN).
fn frexp(x: f64) -> (f64, i32) {
    let bits = x.to_bits();
    let ee = ((bits >> 52) & 0x7ff) as i32;
    if ee == 0 {
        if x != 0.0 {
            // Subnormal: scale into the normal range first.
            let (m, e) = frexp(x * f64::from_bits(0x43f0000000000000)); // 2^64
            return (m, e - 64);
        }
        return (x, 0);
    }
    if ee == 0x7ff {
        return (x, 0);
    }
    let e = ee - 0x3fe;
    let mbits = (bits & 0x800f_ffff_ffff_ffff) | 0x3fe0_0000_0000_0000;
    (f64::from_bits(mbits), e)
}

/// C `ldexp`/`scalbn`: x * 2^n with a single correct rounding.
fn ldexp(x: f64, n: i32) -> f64 {
    let p1023 = f64::from_bits(0x7fe0_0000_0000_0000); // 2^1023
    let pm969 = f64::from_bits(0x0360_0000_0000_0000); // 2^-1022 * 2^53
    let mut y = x;
    let mut n = n;
    if n > 1023 {
        y *= p1023;
        n -= 1023;
        if n > 1023 {
            y *= p1023;
            n -= 1023;
            if n > 1023 {
                n = 1023;
            }
        }
    } else if n < -1022 {
        // Keep the 2^53 in the first step so that only the last
        // multiplication rounds (no double rounding into subnormals).
        y *= pm969;
        n += 1022 - 53;
        if n < -1022 {
            y *= pm969;
            n += 1022 - 53;
            if n < -1022 {
                n = -1022;
            }
        }
    }
    y * f64::from_bits(((0x3ff + n) as u64) << 52)
}

// ---------------------------------------------------------------------------
// Double-double arithmetic (xsf/cephes/dd_real.h, from the QD package)
// ---------------------------------------------------------------------------

mod dd {
    //! The subset of xsf's `double_double` used by `_smirnov`, with the same
    //! operation-by-operation formulas (the mixed double/double-double
    //! overloads differ slightly, so each is kept separate).

    /// Unevaluated sum `hi + lo` with `|lo| <= ulp(hi) / 2`.
    #[derive(Clone, Copy, Debug)]
    pub struct DD {
        /// Leading part; also the value returned by `static_cast<double>`.
        pub hi: f64,
        /// Trailing part.
        pub lo: f64,
    }

    impl DD {
        pub fn new(hi: f64, lo: f64) -> Self {
            DD { hi, lo }
        }
    }

    impl From<f64> for DD {
        fn from(hi: f64) -> Self {
            DD { hi, lo: 0.0 }
        }
    }

    #[inline]
    fn quick_two_sum(a: f64, b: f64) -> (f64, f64) {
        let s = a + b;
        let c = s - a;
        (s, b - c)
    }

    #[inline]
    fn two_sum(a: f64, b: f64) -> (f64, f64) {
        let s = a + b;
        let c = s - a;
        let d = b - c;
        let e = s - c;
        (s, (a - e) + d)
    }

    #[inline]
    fn two_prod(a: f64, b: f64) -> (f64, f64) {
        let p = a * b;
        (p, a.mul_add(b, -p))
    }

    /// dd + dd (IEEE-style bound, Briggs/Kahan).
    pub fn add(l: DD, r: DD) -> DD {
        let (s1, s2) = two_sum(l.hi, r.hi);
        let (t1, t2) = two_sum(l.lo, r.lo);
        let s2 = s2 + t1;
        let (s1, s2) = quick_two_sum(s1, s2);
        let s2 = s2 + t2;
        let (s1, s2) = quick_two_sum(s1, s2);
        DD::new(s1, s2)
    }

    /// dd + double.
    pub fn add_d(l: DD, r: f64) -> DD {
        let (s1, s2) = two_sum(l.hi, r);
        let s2 = s2 + l.lo;
        let (s1, s2) = quick_two_sum(s1, s2);
        DD::new(s1, s2)
    }

    /// -dd.
    pub fn neg(x: DD) -> DD {
        DD::new(-x.hi, -x.lo)
    }

    /// dd - dd.
    pub fn sub(l: DD, r: DD) -> DD {
        add(l, neg(r))
    }

    /// dd - double.
    pub fn sub_d(l: DD, r: f64) -> DD {
        let (s1, s2) = two_sum(l.hi, -r);
        let s2 = s2 + l.lo;
        let (s1, s2) = quick_two_sum(s1, s2);
        DD::new(s1, s2)
    }

    /// double - dd.
    pub fn d_sub(l: f64, r: DD) -> DD {
        let (s1, s2) = two_sum(l, -r.hi);
        let s2 = s2 - r.lo;
        let (s1, s2) = quick_two_sum(s1, s2);
        DD::new(s1, s2)
    }

    /// dd * dd.
    pub fn mul(l: DD, r: DD) -> DD {
        let (p1, p2) = two_prod(l.hi, r.hi);
        let p2 = p2 + (l.hi * r.lo + l.lo * r.hi);
        let (p1, p2) = quick_two_sum(p1, p2);
        DD::new(p1, p2)
    }

    /// dd * double.
    pub fn mul_d(l: DD, r: f64) -> DD {
        let (p1, e1) = two_prod(l.hi, r);
        let (p2, e2) = two_prod(l.lo, r);
        let (p1, e1) = quick_two_sum(p1, e2 + p2 + e1);
        DD::new(p1, e1)
    }

    /// double * dd.
    pub fn d_mul(l: f64, r: DD) -> DD {
        let (p1, e1) = two_prod(l, r.hi);
        let (p2, e2) = two_prod(l, r.lo);
        let (p1, e1) = quick_two_sum(p1, e2 + p2 + e1);
        DD::new(p1, e1)
    }

    /// dd / dd (long division with three partial quotients).
    pub fn div(l: DD, r: DD) -> DD {
        let q1 = l.hi / r.hi;
        let mut rr = sub(l, mul_d(r, q1));
        let q2 = rr.hi / r.hi;
        rr = sub(rr, mul_d(r, q2));
        let q3 = rr.hi / r.hi;
        let (q1, q2) = quick_two_sum(q1, q2);
        add_d(DD::new(q1, q2), q3)
    }

    /// dd / double (xsf promotes the double to dd).
    pub fn div_d(l: DD, r: f64) -> DD {
        div(l, DD::from(r))
    }

    /// double / dd.
    pub fn d_div(l: f64, r: DD) -> DD {
        div(DD::from(l), r)
    }

    /// dd < double.
    pub fn lt_d(l: DD, r: f64) -> bool {
        if l.hi < r {
            return true;
        }
        if l.hi > r {
            return false;
        }
        l.lo < 0.0
    }

    /// Multiplication by an exact power of two.
    pub fn mul_pwr2(l: DD, r: f64) -> DD {
        DD::new(l.hi * r, l.lo * r)
    }

    /// floor of a double-double.
    pub fn floor(a: DD) -> DD {
        let hi = a.hi.floor();
        if hi == a.hi {
            let lo = a.lo.floor();
            let (hi, lo) = quick_two_sum(hi, lo);
            return DD::new(hi, lo);
        }
        DD::new(hi, 0.0)
    }

    /// ldexp applied to both parts.
    pub fn ldexp(a: DD, e: i32) -> DD {
        DD::new(super::ldexp(a.hi, e), super::ldexp(a.lo, e))
    }

    /// frexp: 0.5 <= |hi| < 1, or |hi| == 1 with hi*lo < 0.
    pub fn frexp(a: DD) -> (DD, i32) {
        let (mut man, mut exponent) = super::frexp(a.hi);
        let mut b1 = super::ldexp(a.lo, -exponent);
        if man.abs() == 0.5 && man * b1 < 0.0 {
            man *= 2.0;
            b1 *= 2.0;
            exponent -= 1;
        }
        (DD::new(man, b1), exponent)
    }
}

#[cfg(test)]
mod tests {
    //! Reference values were produced with SciPy 1.17.1 / NumPy 2.4.6
    //! (`gen_tests.py`); the sample generators are replicated exactly.
    use super::*;

    /// x_i = i * step + off
    fn lin(n: usize, step: f64, off: f64) -> Vec<f64> {
        (0..n).map(|i| i as f64 * step + off).collect()
    }
    /// x_i = i * (1/n) + s: an even grid on [s, s + 1).
    fn grid(n: usize, s: f64) -> Vec<f64> {
        let step = 1.0 / n as f64;
        (0..n).map(|i| i as f64 * step + s).collect()
    }
    /// x_i = ((i * k) mod m) + off: integer values with heavy ties.
    fn modv(n: usize, m: u64, k: u64, off: f64) -> Vec<f64> {
        (0..n as u64).map(|i| ((i * k) % m) as f64 + off).collect()
    }

    fn sorted(mut v: Vec<f64>) -> Vec<f64> {
        v.sort_by(f64::total_cmp);
        v
    }

    /// p-values: the Durbin/Pomeranz/Pelz-Good paths differ from SciPy by a
    /// few ulps (BLAS summation order); everything else is bit-identical.
    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() <= 1e-14 + 1e-12 * want.abs()
    }

    #[test]
    fn ks_2samp_matches_scipy_on_every_branch() {
        #[allow(clippy::type_complexity)]
        let cases: Vec<(&str, Vec<f64>, Vec<f64>, f64, f64)> = vec![
            ("exact_equal_n", modv(60, 17, 7, 0.0), modv(60, 13, 5, 1.0), 0.18333333333333332, 0.2671202776187836),
            ("exact_equal_n", lin(30, 1.0, 0.0), lin(30, 1.0, 2.0), 0.06666666666666667, 0.9999999909208507),
            ("exact_equal_n", lin(200, 1.0, 0.0), lin(200, 1.0, 10.0), 0.05, 0.9646522162314058),
            ("exact_equal_n(n=1)", grid(1, 0.0), grid(1, 0.5), 1.0, 1.0),
            ("exact_unequal_n", lin(300, 0.37, 0.0), lin(457, 0.25, 5.0), 0.07439824945295405, 0.2522981886776023),
            (
                "exact_unequal_n(ties)",
                modv(4000, 5, 3, 0.0),
                modv(6000, 6, 7, 0.0),
                0.16666666666666666,
                1.2366968403290538e-58,
            ),
            ("exact_unequal_n(ties,-0.0)", modv(5000, 7, 3, -0.0), modv(5001, 7, 2, 0.0), 0.00011429714057188563, 1.0),
            ("exact_unequal_n(D=1)", lin(700, 1.0, 0.0), lin(900, 1.0, 1000.0), 1.0, 0.0),
            ("exact(h=0)", modv(100, 4, 1, 0.0), modv(200, 4, 1, 0.0), 0.0, 1.0),
            ("exact->asymp:support_low", lin(5, 1.0, 0.0), lin(5, 1.0, 1.0), 0.2, 1.0),
            ("exact->asymp:RG_low_prod", lin(7, 1.0, 0.0), lin(7, 1.0, 1.0), 0.14285714285714285, 0.9999609537692629),
            ("exact->asymp:DMTW(n<=140)", lin(99, 1.0, 0.0), lin(99, 1.0, 2.0), 0.020202020202020204, 1.0),
            ("exact->asymp:DMTW(n<=140)", lin(150, 1.0, 0.0), lin(150, 1.0, 3.0), 0.02, 0.9999999999999908),
            ("exact->asymp:RG_low_stirling", lin(282, 1.0, 0.0), lin(282, 1.0, 2.0), 0.0070921985815602835, 1.0),
            ("exact->asymp:DMTW(n>140)", lin(282, 1.0, 0.0), lin(282, 1.0, 3.0), 0.010638297872340425, 1.0),
            ("exact->asymp:DMTW(n>140)", lin(2000, 1.0, 0.0), lin(2000, 1.0, 5.0), 0.0025, 1.0),
            ("exact->asymp:DMTW(n>140)", lin(9000, 1.0, 0.0), lin(9000, 1.0, 20.0), 0.0022222222222222222, 1.0),
            ("asymp:DMTW(n<=140)", grid(30, 0.0), grid(20000, 0.02), 0.053333333333333344, 0.9999662101818996),
            ("asymp:DMTW(n<=140)", grid(30, 0.0), grid(20000, 0.1), 0.1333333333333333, 0.6130694178322769),
            ("asymp:Pomeranz", grid(30, 0.0), grid(20000, 0.25), 0.2833333333333333, 0.012664644591222629),
            ("asymp:smirnov(n<=140)", grid(30, 0.0), grid(20000, 0.45), 0.4833166666666667, 5.662774509290927e-07),
            ("asymp:smirnov(x>=0.5)", grid(30, 0.0), grid(20000, 0.6), 0.6333166666666667, 3.3860001133997124e-12),
            ("asymp:support_high", grid(30, 0.0), grid(20000, 0.99), 1.0, 0.0),
            ("asymp:DMTW(n>140)", grid(1000, 0.0), grid(20000, 0.0005), 0.0015000000000000013, 1.0),
            ("asymp:DMTW(n>140)", grid(1000, 0.0), grid(20000, 0.01), 0.01100000000000001, 0.9997762549859243),
            ("asymp:PelzGood", grid(1000, 0.0), grid(20000, 0.03), 0.031000000000000028, 0.31313998792696807),
            ("asymp:PelzGood", grid(150000, 0.0), grid(200000, 0.002), 0.002006666666666712, 0.8796880616131179),
            ("asymp:smirnov(nx2>=2.2)", grid(1000, 0.0), grid(20000, 0.1), 0.10100000000000003, 6.595947226026325e-09),
            (
                "asymp:smirnov(nx2>=2.2)",
                grid(150000, 0.0),
                grid(200000, 0.006),
                0.006006666666666716,
                0.004103066246304022,
            ),
            ("asymp:smirnov(x>=0.5),p=0", grid(1000, 0.0), grid(20000, 0.7), 0.7009500000000001, 0.0),
            ("asymp:zero(nx2>=370)", grid(30000, 0.0), grid(40000, 0.4), 0.40003333333333335, 0.0),
            ("asymp:RG_low_stirling", grid(30000, 0.0), grid(40000, 1e-05), 4.166666666671759e-05, 1.0),
            ("asymp:support_low(ties)", modv(30000, 5, 7, 0.0), modv(25001, 5, 3, 0.0), 3.199872005119064e-05, 1.0),
            (
                "asymp:smirnov(ties)",
                modv(30000, 50, 7, 0.0),
                modv(25001, 49, 3, 0.0),
                0.020000000000000018,
                3.605085835107819e-05,
            ),
            ("asymp:identical", modv(12000, 7, 3, 0.0), modv(12000, 7, 3, 0.0), 0.0, 1.0),
            ("asymp:n1=1", lin(10001, 1.0, 0.0), lin(1, 1.0, 5000.0), 0.49995000499950004, 1.0),
            (
                "asymp:smirnov_approx(n>1e6)",
                grid(2_100_000, 0.0),
                grid(2_100_000, 0.002),
                0.0020004761904761914,
                0.0004473420697341968,
            ),
        ];
        for (name, a, b, d_ref, p_ref) in cases {
            let (a, b) = (sorted(a), sorted(b));
            let r = ks_2samp(&a, &b);
            assert!(r.is_some(), "{name}");
            let r = r.unwrap_or(KsTest { statistic: f64::NAN, p_value: f64::NAN });
            assert_eq!(r.statistic, d_ref, "{name}: D");
            assert!(close(r.p_value, p_ref), "{name}: p {} vs scipy {}", r.p_value, p_ref);
            // Symmetric in the two samples.
            let s = ks_2samp(&b, &a).unwrap_or(KsTest { statistic: f64::NAN, p_value: f64::NAN });
            assert_eq!(s.statistic, d_ref, "{name}: D swapped");
            assert!(close(s.p_value, p_ref), "{name}: p swapped");
        }
    }

    #[test]
    fn kstwo_sf_matches_scipy_on_every_branch() {
        let cases: [(&str, u64, f64, f64); 39] = [
            ("support_low", 1, 0.3, 1.0),
            ("support_low", 1, 0.5, 1.0),
            ("support_low", 1, 0.4999999, 1.0),
            ("support_high", 1, 1.0, 0.0),
            ("support_low", 5, 0.05, 1.0),
            ("support_low", 5, 0.1, 1.0),
            ("RG_low_prod", 5, 0.15, 0.9988),
            ("RG_low_prod", 10, 0.07, 0.9999999619492741),
            ("RG_low_prod", 10, 0.1, 0.99963712),
            ("RG_low_prod", 140, 0.007, 1.0),
            ("RG_low_stirling", 141, 0.007, 1.0),
            ("RG_low_stirling", 200, 0.004, 1.0),
            ("RG_low_stirling", 200, 0.005, 1.0),
            ("RG_low_stirling", 952, 0.0007, 1.0),
            ("RG_low_stirling", 1000, 0.0009, 1.0),
            ("RG_low_stirling", 1000, 0.00051, 1.0),
            ("RG_high", 30, 0.99, 2.0000000000000533e-60),
            ("RG_high", 50, 0.98, 2.251799813685348e-85),
            ("DMTW(n<=140)", 5, 0.3, 0.664),
            ("DMTW(n<=140)", 12, 0.25, 0.3779064326502817),
            ("DMTW(n<=140)", 30, 0.1, 0.8960782680050898),
            ("DMTW(n>140)", 952, 0.01, 0.9999712443601857),
            ("DMTW(n>140)", 99999, 0.0002, 1.0),
            ("Pomeranz", 7, 0.42857142857142855, 0.11062567467636808),
            ("Pomeranz", 30, 0.25, 0.038724156701105295),
            ("PelzGood", 952, 0.03, 0.351373300664116),
            ("PelzGood", 100000, 0.003, 0.3284563327726956),
            ("PelzGood", 100001, 0.0002, 1.0),
            ("PelzGood", 2_000_000, 0.001, 0.03660662431970485),
            ("smirnov(n<=140)", 30, 0.45, 4.60170836663682e-06),
            ("smirnov(n<=140)", 140, 0.2, 2.1981563302200222e-05),
            ("smirnov(nx2>=2.2)", 141, 0.2, 2.0276784223976912e-05),
            ("smirnov(nx2>=2.2)", 952, 0.1, 9.69367911287561e-09),
            ("smirnov(x>=0.5)", 30, 0.6, 7.392006292214292e-11),
            ("smirnov(x>=0.5)", 50, 0.5, 4.392853499119748e-12),
            ("smirnov(x>=0.5)", 100, 0.95, 1.5777225737377353e-130),
            ("smirnov(x>=0.5),underflow", 952, 0.7, 0.0),
            ("smirnov_approx(x>=0.5)", 2_000_000, 0.6, 0.0),
            ("zero(nx2>=370)", 5000, 0.3, 0.0),
        ];
        for (name, n, d, want) in cases {
            let got = kstwo_sf(n, d);
            assert!(close(got, want), "{name}: kstwo_sf({n}, {d}) = {got}, scipy {want}");
        }
    }

    #[test]
    fn smirnov_approx_branch_value() {
        // en > 1e6 goes through smirnov's closed-form approximation.
        let got = kstwo_sf(1_050_000, 0.0020004761904761914);
        assert!(close(got, 0.0004473420697341968), "{got}");
    }

    #[test]
    fn empty_is_none() {
        assert!(ks_2samp(&[], &[1.0]).is_none());
        assert!(ks_2samp(&[1.0], &[]).is_none());
        assert!(ks_2samp(&[], &[]).is_none());
    }

    #[test]
    fn odd_inputs_do_not_panic_and_stay_in_range() {
        let inf = [f64::NEG_INFINITY, 0.0, f64::INFINITY];
        let r = ks_2samp(&inf, &[-0.0, 0.0]);
        assert!(r.is_some_and(|r| (0.0..=1.0).contains(&r.p_value)));
        // n = 0 is outside kstwo's parameter space: NaN like SciPy.
        assert!(kstwo_sf(0, 0.5).is_nan());
        assert!(kstwo_sf(10, f64::NAN).is_nan());
        for n in [1u64, 2, 3, 139, 140, 141, 1000, 100_000, 100_001] {
            for d in [-1.0, 0.0, 1e-300, 0.25, 0.5, 0.999_999, 1.0, 2.0, f64::INFINITY] {
                let p = kstwo_sf(n, d);
                assert!((0.0..=1.0).contains(&p), "kstwo_sf({n}, {d}) = {p}");
            }
        }
    }

    #[test]
    fn ties_are_consumed_before_evaluating() {
        // a = [1, 1], b = [1, 2]: at x=1, F1 = 1 and F2 = 1/2, so D = 1/2.
        // A merge that evaluated after each element (before the tied 1 in b
        // was consumed) would report 1.
        assert_eq!(ks_statistic_sorted(&[1.0, 1.0], &[1.0, 2.0]), 0.5);
        assert_eq!(ks_statistic_sorted(&[1.0, 2.0], &[1.0, 1.0]), 0.5);
        // -0.0 and 0.0 are the same value for searchsorted.
        assert_eq!(ks_statistic_sorted(&[-0.0, 1.0], &[0.0, 1.0]), 0.0);
    }

    #[test]
    fn frexp_ldexp_match_c() {
        assert_eq!(EP128, ldexp(1.0, 128));
        assert_eq!(EM128, ldexp(1.0, -128));
        assert_eq!(frexp(8.0), (0.5, 4));
        assert_eq!(frexp(-0.75), (-0.75, 0));
        assert_eq!(frexp(f64::MIN_POSITIVE / 4.0), (0.5, -1023));
        assert_eq!(ldexp(0.5, 4), 8.0);
        assert_eq!(ldexp(1.0, -1074), f64::from_bits(1));
        assert_eq!(ldexp(1.0, 1024), f64::INFINITY);
        assert_eq!(ldexp(3.0, -1075), f64::from_bits(2)); // 1.5 * 2^-1074 rounds to even
    }
}
