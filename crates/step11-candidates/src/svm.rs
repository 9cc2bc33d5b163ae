//! Support vector machines as LIBSVM fits them, and so as scikit-learn's `SVC` and `SVR` (which
//! wrap LIBSVM): the dual problem solved by SMO with second-order working-set selection (Fan,
//! Chen & Lin 2005) and shrinking; one binary machine per pair of classes, prediction by their
//! votes; probabilities from Platt sigmoids fitted on 5-fold cross-validated decision values
//! (Lin, Lin & Weng's Newton method) and, for more than two classes, coupled pairwise (Wu, Lin &
//! Weng 2004, LIBSVM's `multiclass_probability`).
//!
//! Kernel rows are computed when the solver first asks for them and kept in a bounded
//! least-recently-used cache, so memory stays at [`CACHE_BYTES`] per machine however many rows
//! there are; small problems end up with the whole kernel matrix cached. Cached values are `f32`,
//! as LIBSVM's `Qfloat`: half the memory, and the solver then takes LIBSVM's steps exactly, so
//! decision values equal scikit-learn's to rounding rather than merely to `tol`.

use std::fmt;

use mlops_core::Seed;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::{Model, ModelError, ParamGuard, Result, bad};

/// Kernel rows one solver may keep, in bytes (scikit-learn's default `cache_size` is 200 MB).
const CACHE_BYTES: usize = 128 << 20;
/// LIBSVM's stand-in for a non-positive curvature along a working pair.
const TAU: f64 = 1e-12;
/// Folds of the internal cross-validation behind the Platt sigmoids (LIBSVM's `nr_fold`).
const FOLDS: usize = 5;
/// Pairwise probabilities are kept this far from 0 and 1 before coupling (LIBSVM's `min_prob`).
const MIN_PROB: f64 = 1e-7;

/// The kernel of a support vector machine (`kernel: rbf`, `kernel: linear`,
/// `kernel: {poly: {degree: 2, coef0: 1}}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Kernel {
    /// `⟨x, z⟩`.
    Linear,
    /// `exp(-γ ‖x - z‖²)`.
    #[default]
    Rbf,
    /// `(γ ⟨x, z⟩ + coef0)^degree`.
    Poly(#[serde(default)] Poly),
}

/// The polynomial kernel's settings (scikit-learn's defaults).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Poly {
    /// Degree (>= 1).
    pub degree: u32,
    /// Constant term.
    pub coef0: f64,
}

impl Default for Poly {
    fn default() -> Self {
        Poly { degree: 3, coef0: 0.0 }
    }
}

/// The γ of the rbf and polynomial kernels. Written as scikit-learn writes it: `gamma: scale`,
/// `gamma: auto` or `gamma: 0.5`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Gamma {
    /// `1 / (features · Var(X))`, the variance taken over all training values (1 when it is 0).
    #[default]
    Scale,
    /// `1 / features`.
    Auto,
    /// A fixed positive number.
    Value(f64),
}

impl Gamma {
    /// The number this rule gives on a training matrix, as scikit-learn resolves it.
    pub(crate) fn resolve(self, x: &Array2<f64>) -> f64 {
        let d = x.ncols() as f64;
        let gamma = match self {
            Gamma::Value(g) => g,
            Gamma::Auto => 1.0 / d,
            Gamma::Scale => {
                let count = x.len() as f64;
                let mean = x.sum() / count;
                let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / count;
                if var == 0.0 { 1.0 } else { 1.0 / (d * var) }
            }
        };
        if gamma.is_finite() && gamma > 0.0 { gamma } else { 1.0 }
    }
}

/// Gamma in binary formats (postcard), which cannot tell a string from a number by looking.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Gamma")]
enum TaggedGamma {
    Scale,
    Auto,
    Value(f64),
}

impl Serialize for Gamma {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match (*self, s.is_human_readable()) {
            (Gamma::Scale, true) => s.serialize_str("scale"),
            (Gamma::Auto, true) => s.serialize_str("auto"),
            (Gamma::Value(v), true) => s.serialize_f64(v),
            (Gamma::Scale, false) => TaggedGamma::Scale.serialize(s),
            (Gamma::Auto, false) => TaggedGamma::Auto.serialize(s),
            (Gamma::Value(v), false) => TaggedGamma::Value(v).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Gamma {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Words;
        impl serde::de::Visitor<'_> for Words {
            type Value = Gamma;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`scale`, `auto` or a positive number")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Gamma, E> {
                match v {
                    "scale" => Ok(Gamma::Scale),
                    "auto" => Ok(Gamma::Auto),
                    // A number that arrived quoted, say from an environment override.
                    other => other.trim().parse().map(Gamma::Value).map_err(|_| {
                        E::invalid_value(serde::de::Unexpected::Str(other), &"`scale`, `auto` or a positive number")
                    }),
                }
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<Gamma, E> {
                Ok(Gamma::Value(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Gamma, E> {
                Ok(Gamma::Value(v as f64))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Gamma, E> {
                Ok(Gamma::Value(v as f64))
            }
        }
        if d.is_human_readable() {
            d.deserialize_any(Words)
        } else {
            Ok(match TaggedGamma::deserialize(d)? {
                TaggedGamma::Scale => Gamma::Scale,
                TaggedGamma::Auto => Gamma::Auto,
                TaggedGamma::Value(v) => Gamma::Value(v),
            })
        }
    }
}

/// One fitted decision function: `f(x) = Σ coef[i] K(sv[support[i]], x) + intercept`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Positions of this machine's support vectors in the model's shared list.
    pub support: Vec<usize>,
    /// Dual coefficients (`α_i y_i` for a classifier, `α_i - α*_i` for a regressor).
    pub coef: Vec<f64>,
    /// Intercept (LIBSVM's `-ρ`).
    pub intercept: f64,
    /// The pair of classes a classifier's machine separates; `None` for a regressor.
    pub pair: Option<Pair>,
}

/// The two classes of a binary machine and its Platt sigmoid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    /// The class a positive decision value votes for (the lower index).
    pub positive: usize,
    /// The class a negative (or zero) decision value votes for.
    pub negative: usize,
    /// Platt's slope A: `P(positive | f) = 1 / (1 + exp(A f + B))`.
    pub platt_a: f64,
    /// Platt's offset B.
    pub platt_b: f64,
}

/// `svc`'s hyperparameters (scikit-learn's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SvcParams {
    /// Inverse penalty strength (> 0).
    pub c: f64,
    /// `linear`, `rbf` or `{poly: {degree, coef0}}`.
    pub kernel: Kernel,
    /// `scale`, `auto` or a positive number.
    pub gamma: Gamma,
    /// Stopping tolerance on the largest KKT violation (> 0).
    pub tol: f64,
    /// SMO iterations at most, per machine.
    pub max_iter: usize,
    /// Seed of the shuffle behind the cross-validation that fits the Platt sigmoids.
    pub random_state: u64,
}

impl Default for SvcParams {
    fn default() -> Self {
        SvcParams {
            c: 1.0,
            kernel: Kernel::default(),
            gamma: Gamma::default(),
            tol: 1e-3,
            max_iter: MAX_ITER,
            random_state: 42,
        }
    }
}

impl ParamGuard for SvcParams {
    fn check_ref(&self, model: &'static str, _rows: usize) -> Result<()> {
        self.settings().check(model)
    }
}

impl SvcParams {
    /// The solver's settings.
    pub(crate) fn settings(&self) -> Settings {
        Settings { c: self.c, kernel: self.kernel, gamma: self.gamma, tol: self.tol, max_iter: self.max_iter }
    }
}

/// `svr`'s hyperparameters (scikit-learn's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SvrParams {
    /// Inverse penalty strength (> 0).
    pub c: f64,
    /// Half-width of the tube inside which errors cost nothing (>= 0).
    pub epsilon: f64,
    /// `linear`, `rbf` or `{poly: {degree, coef0}}`.
    pub kernel: Kernel,
    /// `scale`, `auto` or a positive number.
    pub gamma: Gamma,
    /// Stopping tolerance on the largest KKT violation (> 0).
    pub tol: f64,
    /// SMO iterations at most.
    pub max_iter: usize,
}

impl Default for SvrParams {
    fn default() -> Self {
        SvrParams {
            c: 1.0,
            epsilon: 0.1,
            kernel: Kernel::default(),
            gamma: Gamma::default(),
            tol: 1e-3,
            max_iter: MAX_ITER,
        }
    }
}

impl ParamGuard for SvrParams {
    fn check_ref(&self, model: &'static str, _rows: usize) -> Result<()> {
        self.settings().check(model)?;
        if !(self.epsilon.is_finite() && self.epsilon >= 0.0) {
            return bad(model, "epsilon", format!("{} must be zero or more", self.epsilon));
        }
        Ok(())
    }
}

impl SvrParams {
    /// The solver's settings.
    pub(crate) fn settings(&self) -> Settings {
        Settings { c: self.c, kernel: self.kernel, gamma: self.gamma, tol: self.tol, max_iter: self.max_iter }
    }
}

/// LIBSVM's own cap on SMO iterations (scikit-learn sets none): reached only by problems that
/// are numerically stuck.
const MAX_ITER: usize = 10_000_000;

impl Settings {
    /// The checks both machines share.
    fn check(&self, model: &'static str) -> Result<()> {
        let s = self;
        if !(s.c.is_finite() && s.c > 0.0) {
            return bad(model, "c", format!("{} must be a positive number", s.c));
        }
        if let Gamma::Value(g) = s.gamma
            && !(g.is_finite() && g > 0.0)
        {
            return bad(model, "gamma", format!("{g} must be a positive number, `scale` or `auto`"));
        }
        if !(s.tol.is_finite() && s.tol > 0.0) {
            return bad(model, "tol", format!("{} must be a positive number", s.tol));
        }
        if s.max_iter == 0 {
            return bad(model, "max_iter", "must be at least 1".into());
        }
        if let Kernel::Poly(Poly { degree, coef0 }) = s.kernel {
            if degree == 0 {
                return bad(model, "degree", "the polynomial kernel's degree must be at least 1".into());
            }
            if !coef0.is_finite() {
                return bad(model, "coef0", format!("{coef0} must be a finite number"));
            }
        }
        Ok(())
    }
}

/// The SVM settings shared by classification and regression.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) c: f64,
    pub(crate) kernel: Kernel,
    pub(crate) gamma: Gamma,
    pub(crate) tol: f64,
    pub(crate) max_iter: usize,
}

/// A kernel with its γ resolved.
#[derive(Clone, Copy, Debug)]
struct KernelFn {
    kernel: Kernel,
    gamma: f64,
}

impl KernelFn {
    #[inline]
    fn eval(self, a: &[f64], b: &[f64]) -> f64 {
        match self.kernel {
            Kernel::Linear => dot(a, b),
            Kernel::Rbf => {
                let d2: f64 = a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum();
                (-self.gamma * d2).exp()
            }
            Kernel::Poly(Poly { degree, coef0 }) => {
                (self.gamma * dot(a, b) + coef0).powi(i32::try_from(degree).unwrap_or(i32::MAX))
            }
        }
    }
}

#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(p, q)| p * q).sum()
}

/// Rows of a matrix, contiguous and row-major.
struct Rows {
    values: Vec<f64>,
    d: usize,
}

impl Rows {
    fn new(x: &Array2<f64>) -> Rows {
        Rows { values: x.iter().copied().collect(), d: x.ncols() }
    }

    fn gather(&self, rows: &[usize]) -> Rows {
        let mut values = Vec::with_capacity(rows.len() * self.d);
        for &r in rows {
            values.extend_from_slice(self.row(r));
        }
        Rows { values, d: self.d }
    }

    #[inline]
    fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.d..(i + 1) * self.d]
    }
}

const NO_SLOT: usize = usize::MAX;

/// Kernel rows over a set of points (in `f32`, as LIBSVM), computed on first use and kept up to a
/// byte budget; when the budget is full the least recently used row makes room.
struct Cache<'a> {
    points: &'a Rows,
    n: usize,
    kernel: KernelFn,
    /// Per point, the slot holding its row (or `NO_SLOT`).
    slot: Vec<usize>,
    /// Per slot, the point whose row it holds, and when it was last used.
    owner: Vec<usize>,
    last_use: Vec<u64>,
    rows: Vec<Vec<f32>>,
    capacity: usize,
    clock: u64,
}

impl<'a> Cache<'a> {
    fn new(points: &'a Rows, n: usize, kernel: KernelFn) -> Cache<'a> {
        let capacity = (CACHE_BYTES / (4 * n.max(1))).clamp(2, n.max(2));
        Cache {
            points,
            n,
            kernel,
            slot: vec![NO_SLOT; n],
            owner: Vec::new(),
            last_use: Vec::new(),
            rows: Vec::new(),
            capacity,
            clock: 0,
        }
    }

    fn diagonal(&self) -> Vec<f64> {
        (0..self.n).map(|i| self.kernel.eval(self.points.row(i), self.points.row(i))).collect()
    }

    /// The slot holding point `i`'s kernel row, computing it if needed without evicting `keep`.
    fn fetch(&mut self, i: usize, keep: usize) -> usize {
        self.clock += 1;
        let held = self.slot[i];
        if held != NO_SLOT {
            self.last_use[held] = self.clock;
            return held;
        }
        let s = if self.rows.len() < self.capacity {
            self.rows.push(vec![0.0; self.n]);
            self.owner.push(i);
            self.last_use.push(0);
            self.rows.len() - 1
        } else {
            let s = (0..self.rows.len()).filter(|&s| s != keep).min_by_key(|&s| self.last_use[s]).unwrap_or(0);
            self.slot[self.owner[s]] = NO_SLOT;
            self.owner[s] = i;
            s
        };
        self.slot[i] = s;
        self.last_use[s] = self.clock;
        let xi = self.points.row(i);
        for (j, k) in self.rows[s].iter_mut().enumerate() {
            *k = self.kernel.eval(xi, self.points.row(j)) as f32;
        }
        s
    }

    #[inline]
    fn row(&self, s: usize) -> &[f32] {
        &self.rows[s]
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bound {
    Lower,
    Upper,
    Free,
}

/// The point behind dual variable `t`: SVR's variables `t` and `t + n` share point `t`.
#[inline]
fn point(t: usize, n: usize) -> usize {
    t - n * usize::from(t >= n)
}

/// LIBSVM's `Solver`: minimises `½ αᵀQα + pᵀα` subject to `yᵀα = 0`, `0 <= α <= C`, where
/// `Q_ij = y_i y_j K(x_i, x_j)`. Arrays are indexed by variable; `active` lists the variables in
/// LIBSVM's (swapped) order, the first `active_size` of them not shrunk.
struct Smo<'c, 'p> {
    cache: &'c mut Cache<'p>,
    n: usize,
    y: Vec<f64>,
    p: Vec<f64>,
    c: f64,
    eps: f64,
    alpha: Vec<f64>,
    bound: Vec<Bound>,
    g: Vec<f64>,
    g_bar: Vec<f64>,
    qd: Vec<f64>,
    active: Vec<usize>,
    active_size: usize,
    unshrink: bool,
}

/// A solved dual.
struct Solution {
    alpha: Vec<f64>,
    rho: f64,
    converged: bool,
}

fn solve(cache: &mut Cache<'_>, y: Vec<f64>, p: Vec<f64>, c: f64, eps: f64, max_iter: usize) -> Solution {
    let l = y.len();
    let n = cache.n;
    let diagonal = cache.diagonal();
    let qd = (0..l).map(|t| diagonal[point(t, n)]).collect();
    let mut smo = Smo {
        cache,
        n,
        g: p.clone(),
        p,
        y,
        c,
        eps,
        alpha: vec![0.0; l],
        bound: vec![Bound::Lower; l],
        g_bar: vec![0.0; l],
        qd,
        active: (0..l).collect(),
        active_size: l,
        unshrink: false,
    };
    let mut iter = 0;
    let mut counter = l.min(1000) + 1;
    while iter < max_iter {
        counter -= 1;
        if counter == 0 {
            counter = l.min(1000);
            smo.shrink();
        }
        let (i, j) = match smo.select() {
            Some(pair) => pair,
            None => {
                // Optimal on the active set: check the whole problem before stopping.
                smo.reconstruct_gradient();
                smo.active_size = l;
                match smo.select() {
                    Some(pair) => {
                        counter = 1;
                        pair
                    }
                    None => break,
                }
            }
        };
        iter += 1;
        smo.step(i, j);
    }
    let converged = iter < max_iter;
    if !converged {
        smo.reconstruct_gradient();
        smo.active_size = l;
    }
    let rho = smo.rho();
    Solution { alpha: smo.alpha, rho, converged }
}

fn bound_of(alpha: f64, c: f64) -> Bound {
    if alpha >= c {
        Bound::Upper
    } else if alpha <= 0.0 {
        Bound::Lower
    } else {
        Bound::Free
    }
}

impl Smo<'_, '_> {
    /// WSS2: `i` maximises `-y_i ∇f_i` over I_up; `j` gives the largest second-order decrease
    /// of the objective among I_low. `None` once the maximal violation is below `eps`.
    fn select(&mut self) -> Option<(usize, usize)> {
        let mut gmax = f64::NEG_INFINITY;
        let mut gmax_idx = None;
        for &t in &self.active[..self.active_size] {
            if self.y[t] > 0.0 {
                if self.bound[t] != Bound::Upper && -self.g[t] >= gmax {
                    gmax = -self.g[t];
                    gmax_idx = Some(t);
                }
            } else if self.bound[t] != Bound::Lower && self.g[t] >= gmax {
                gmax = self.g[t];
                gmax_idx = Some(t);
            }
        }
        let i = gmax_idx?;
        let si = self.cache.fetch(point(i, self.n), NO_SLOT);
        let ki = self.cache.row(si);
        let qdi = self.qd[i];
        let mut gmax2 = f64::NEG_INFINITY;
        let mut gmin_idx = None;
        let mut obj_diff_min = f64::INFINITY;
        for &j in &self.active[..self.active_size] {
            let grad_diff = if self.y[j] > 0.0 {
                if self.bound[j] == Bound::Lower {
                    continue;
                }
                gmax2 = gmax2.max(self.g[j]);
                gmax + self.g[j]
            } else {
                if self.bound[j] == Bound::Upper {
                    continue;
                }
                gmax2 = gmax2.max(-self.g[j]);
                gmax - self.g[j]
            };
            if grad_diff > 0.0 {
                // Q_ii + Q_jj - 2 y_i y_j Q_ij is K_ii + K_jj - 2 K_ij for either sign of y_j.
                let quad = qdi + self.qd[j] - 2.0 * f64::from(ki[point(j, self.n)]);
                let obj_diff = -(grad_diff * grad_diff) / if quad > 0.0 { quad } else { TAU };
                if obj_diff <= obj_diff_min {
                    gmin_idx = Some(j);
                    obj_diff_min = obj_diff;
                }
            }
        }
        let j = gmin_idx?;
        if gmax + gmax2 < self.eps {
            return None;
        }
        Some((i, j))
    }

    /// Solves the two-variable subproblem on `(i, j)` analytically and updates the gradients.
    fn step(&mut self, i: usize, j: usize) {
        let n = self.n;
        let si = self.cache.fetch(point(i, n), NO_SLOT);
        let sj = self.cache.fetch(point(j, n), si);
        let (ki, kj) = (self.cache.row(si), self.cache.row(sj));
        let c = self.c;
        let (old_i, old_j) = (self.alpha[i], self.alpha[j]);
        let quad = self.qd[i] + self.qd[j] - 2.0 * f64::from(ki[point(j, n)]);
        let quad = if quad > 0.0 { quad } else { TAU };
        let (mut ai, mut aj) = (old_i, old_j);
        if self.y[i] != self.y[j] {
            let delta = (-self.g[i] - self.g[j]) / quad;
            let diff = ai - aj;
            ai += delta;
            aj += delta;
            if diff > 0.0 {
                if aj < 0.0 {
                    aj = 0.0;
                    ai = diff;
                }
            } else if ai < 0.0 {
                ai = 0.0;
                aj = -diff;
            }
            // Both bounds are C, so LIBSVM's `diff > C_i - C_j` is `diff > 0`.
            if diff > 0.0 {
                if ai > c {
                    ai = c;
                    aj = c - diff;
                }
            } else if aj > c {
                aj = c;
                ai = c + diff;
            }
        } else {
            let delta = (self.g[i] - self.g[j]) / quad;
            let sum = ai + aj;
            ai -= delta;
            aj += delta;
            if sum > c {
                if ai > c {
                    ai = c;
                    aj = sum - c;
                }
            } else if aj < 0.0 {
                aj = 0.0;
                ai = sum;
            }
            if sum > c {
                if aj > c {
                    aj = c;
                    ai = sum - c;
                }
            } else if ai < 0.0 {
                ai = 0.0;
                aj = sum;
            }
        }
        self.alpha[i] = ai;
        self.alpha[j] = aj;
        let (di, dj) = (self.y[i] * (ai - old_i), self.y[j] * (aj - old_j));
        for &k in &self.active[..self.active_size] {
            let pk = point(k, n);
            self.g[k] += self.y[k] * (f64::from(ki[pk]) * di + f64::from(kj[pk]) * dj);
        }
        // G_bar holds C times the columns of the variables at the upper bound, so that shrunk
        // gradients can be rebuilt from the free variables alone.
        let (was_upper_i, was_upper_j) = (self.bound[i] == Bound::Upper, self.bound[j] == Bound::Upper);
        self.bound[i] = bound_of(ai, c);
        self.bound[j] = bound_of(aj, c);
        for (t, was_upper, row) in [(i, was_upper_i, ki), (j, was_upper_j, kj)] {
            let now_upper = self.bound[t] == Bound::Upper;
            if was_upper != now_upper {
                let scale = if was_upper { -c } else { c } * self.y[t];
                for (k, gb) in self.g_bar.iter_mut().enumerate() {
                    *gb += scale * self.y[k] * f64::from(row[point(k, n)]);
                }
            }
        }
    }

    fn be_shrunk(&self, t: usize, gmax1: f64, gmax2: f64) -> bool {
        let positive = self.y[t] > 0.0;
        match self.bound[t] {
            Bound::Upper => -self.g[t] > if positive { gmax1 } else { gmax2 },
            Bound::Lower => self.g[t] > if positive { gmax2 } else { gmax1 },
            Bound::Free => false,
        }
    }

    /// Sets aside variables stuck at a bound that are unlikely to move (LIBSVM's
    /// `do_shrinking`); once the problem is nearly solved, brings them all back once.
    fn shrink(&mut self) {
        let (mut gmax1, mut gmax2) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
        for &t in &self.active[..self.active_size] {
            let (up, low) = (self.bound[t] != Bound::Upper, self.bound[t] != Bound::Lower);
            if self.y[t] > 0.0 {
                if up {
                    gmax1 = gmax1.max(-self.g[t]);
                }
                if low {
                    gmax2 = gmax2.max(self.g[t]);
                }
            } else {
                if up {
                    gmax2 = gmax2.max(-self.g[t]);
                }
                if low {
                    gmax1 = gmax1.max(self.g[t]);
                }
            }
        }
        if !self.unshrink && gmax1 + gmax2 <= self.eps * 10.0 {
            self.unshrink = true;
            self.reconstruct_gradient();
            self.active_size = self.y.len();
        }
        let mut pos = 0;
        while pos < self.active_size {
            if self.be_shrunk(self.active[pos], gmax1, gmax2) {
                self.active_size -= 1;
                while self.active_size > pos {
                    if !self.be_shrunk(self.active[self.active_size], gmax1, gmax2) {
                        self.active.swap(pos, self.active_size);
                        break;
                    }
                    self.active_size -= 1;
                }
            }
            pos += 1;
        }
    }

    /// Rebuilds the gradient of the shrunk variables from `G_bar` and the free variables.
    fn reconstruct_gradient(&mut self) {
        let l = self.y.len();
        let (n, size) = (self.n, self.active_size);
        if size == l {
            return;
        }
        for &t in &self.active[size..] {
            self.g[t] = self.g_bar[t] + self.p[t];
        }
        let free = self.active[..size].iter().filter(|&&t| self.bound[t] == Bound::Free).count();
        // Whichever loop fetches fewer kernel rows.
        if free * l > 2 * size * (l - size) {
            for pos in size..l {
                let t = self.active[pos];
                let s = self.cache.fetch(point(t, n), NO_SLOT);
                let row = self.cache.row(s);
                let mut sum = 0.0;
                for &j in &self.active[..size] {
                    if self.bound[j] == Bound::Free {
                        sum += self.alpha[j] * self.y[j] * f64::from(row[point(j, n)]);
                    }
                }
                self.g[t] += self.y[t] * sum;
            }
        } else {
            for pos in 0..size {
                let i = self.active[pos];
                if self.bound[i] != Bound::Free {
                    continue;
                }
                let s = self.cache.fetch(point(i, n), NO_SLOT);
                let row = self.cache.row(s);
                let scale = self.alpha[i] * self.y[i];
                for &t in &self.active[size..] {
                    self.g[t] += scale * self.y[t] * f64::from(row[point(t, n)]);
                }
            }
        }
    }

    /// ρ: the mean of `y_i ∇f_i` over the free variables, or the middle of its feasible range
    /// when none is free.
    fn rho(&self) -> f64 {
        let (mut ub, mut lb) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut free, mut sum_free) = (0usize, 0.0);
        for t in 0..self.y.len() {
            let yg = self.y[t] * self.g[t];
            let positive = self.y[t] > 0.0;
            match self.bound[t] {
                Bound::Upper if positive => lb = lb.max(yg),
                Bound::Upper => ub = ub.min(yg),
                Bound::Lower if positive => ub = ub.min(yg),
                Bound::Lower => lb = lb.max(yg),
                Bound::Free => {
                    free += 1;
                    sum_free += yg;
                }
            }
        }
        if free > 0 { sum_free / free as f64 } else { (ub + lb) / 2.0 }
    }
}

/// A binary machine over some training rows (indices into the full data).
struct Binary {
    support: Vec<usize>,
    coef: Vec<f64>,
    intercept: f64,
    converged: bool,
}

impl Binary {
    fn decision(&self, data: &Rows, kernel: KernelFn, x: &[f64]) -> f64 {
        self.support.iter().zip(&self.coef).map(|(&r, c)| c * kernel.eval(data.row(r), x)).sum::<f64>() + self.intercept
    }
}

/// A C-SVC on `rows` of `data` (LIBSVM's `solve_c_svc`), `positive[i]` saying whether row
/// `rows[i]` is in the positive class.
fn binary(data: &Rows, rows: &[usize], positive: &[bool], kernel: KernelFn, s: &Settings) -> Binary {
    let points = data.gather(rows);
    let mut cache = Cache::new(&points, rows.len(), kernel);
    let y: Vec<f64> = positive.iter().map(|&p| if p { 1.0 } else { -1.0 }).collect();
    let sol = solve(&mut cache, y.clone(), vec![-1.0; rows.len()], s.c, s.tol, s.max_iter);
    let (support, coef) =
        rows.iter().zip(&sol.alpha).zip(&y).filter(|((_, a), _)| **a > 0.0).map(|((&r, a), y)| (r, a * y)).unzip();
    Binary { support, coef, intercept: -sol.rho, converged: sol.converged }
}

/// One pair of classes: its rows (the first class's, then the second's) and their labels.
struct Subproblem {
    rows: Vec<usize>,
    positive: Vec<bool>,
}

/// Decision values of fold `fold`'s held-out rows from a machine fitted on the other folds, as
/// LIBSVM's `svm_binary_svc_probability` computes them: `(position in the subproblem, value)`.
fn fold_decisions(
    data: &Rows,
    sub: &Subproblem,
    order: &[usize],
    fold: usize,
    kernel: KernelFn,
    s: &Settings,
) -> Vec<(usize, f64)> {
    let l = order.len();
    let (begin, end) = (fold * l / FOLDS, (fold + 1) * l / FOLDS);
    let held_out = &order[begin..end];
    let training: Vec<usize> = order[..begin].iter().chain(&order[end..]).copied().collect();
    let (pos, neg): (Vec<usize>, Vec<usize>) = training.iter().partition(|&&t| sub.positive[t]);
    let constant = match (pos.is_empty(), neg.is_empty()) {
        (true, true) => Some(0.0),
        (false, true) => Some(1.0),
        (true, false) => Some(-1.0),
        (false, false) => None,
    };
    if let Some(v) = constant {
        return held_out.iter().map(|&t| (t, v)).collect();
    }
    let rows: Vec<usize> = pos.iter().chain(&neg).map(|&t| sub.rows[t]).collect();
    let labels: Vec<bool> = pos.iter().map(|_| true).chain(neg.iter().map(|_| false)).collect();
    let machine = binary(data, &rows, &labels, kernel, s);
    held_out.iter().map(|&t| (t, machine.decision(data, kernel, data.row(sub.rows[t])))).collect()
}

/// Platt's sigmoid `P(positive | f) = 1 / (1 + exp(A f + B))` fitted to decision values by
/// LIBSVM's `sigmoid_train` (Newton's method with backtracking, Lin, Lin & Weng 2007), with
/// Platt's regularised targets.
pub(crate) fn sigmoid_train(dec: &[f64], positive: &[bool]) -> (f64, f64) {
    let prior1 = positive.iter().filter(|&&p| p).count() as f64;
    let prior0 = positive.len() as f64 - prior1;
    let (max_iter, min_step, sigma, eps) = (100, 1e-10, 1e-12, 1e-5);
    let (hi, lo) = ((prior1 + 1.0) / (prior1 + 2.0), 1.0 / (prior0 + 2.0));
    let t: Vec<f64> = positive.iter().map(|&p| if p { hi } else { lo }).collect();
    let objective = |a: f64, b: f64| -> f64 {
        dec.iter()
            .zip(&t)
            .map(|(f, ti)| {
                let z = f * a + b;
                if z >= 0.0 { ti * z + (-z).exp().ln_1p() } else { (ti - 1.0) * z + z.exp().ln_1p() }
            })
            .sum()
    };
    let (mut a, mut b) = (0.0, ((prior0 + 1.0) / (prior1 + 1.0)).ln());
    let mut fval = objective(a, b);
    for _ in 0..max_iter {
        let (mut h11, mut h22, mut h21, mut g1, mut g2) = (sigma, sigma, 0.0, 0.0, 0.0);
        for (f, ti) in dec.iter().zip(&t) {
            let z = f * a + b;
            let (p, q) = if z >= 0.0 {
                let e = (-z).exp();
                (e / (1.0 + e), 1.0 / (1.0 + e))
            } else {
                let e = z.exp();
                (1.0 / (1.0 + e), e / (1.0 + e))
            };
            let d2 = p * q;
            h11 += f * f * d2;
            h22 += d2;
            h21 += f * d2;
            let d1 = ti - p;
            g1 += f * d1;
            g2 += d1;
        }
        if g1.abs() < eps && g2.abs() < eps {
            break;
        }
        let det = h11 * h22 - h21 * h21;
        let da = -(h22 * g1 - h21 * g2) / det;
        let db = -(-h21 * g1 + h11 * g2) / det;
        let gd = g1 * da + g2 * db;
        let mut step = 1.0;
        while step >= min_step {
            let (na, nb) = (a + step * da, b + step * db);
            let nf = objective(na, nb);
            if nf < fval + 1e-4 * step * gd {
                (a, b, fval) = (na, nb, nf);
                break;
            }
            step /= 2.0;
        }
        if step < min_step {
            tracing::debug!("Platt scaling: the line search stopped short");
            break;
        }
    }
    (a, b)
}

fn sigmoid_predict(f: f64, a: f64, b: f64) -> f64 {
    let z = f * a + b;
    if z >= 0.0 { (-z).exp() / (1.0 + (-z).exp()) } else { 1.0 / (1.0 + z.exp()) }
}

/// Class probabilities from pairwise ones, `r[i][j]` = P(i | i or j) (Wu, Lin & Weng's second
/// method, LIBSVM's `multiclass_probability`), renormalised so that they sum to 1 exactly.
fn couple(r: &[Vec<f64>]) -> Vec<f64> {
    let k = r.len();
    let mut q = vec![vec![0.0; k]; k];
    for t in 0..k {
        for j in 0..k {
            if j != t {
                q[t][t] += r[j][t] * r[j][t];
                q[t][j] = -r[j][t] * r[t][j];
            }
        }
    }
    let mut p = vec![1.0 / k as f64; k];
    let mut qp = vec![0.0; k];
    let eps = 0.005 / k as f64;
    for _ in 0..100.max(k) {
        let mut pqp = 0.0;
        for t in 0..k {
            qp[t] = dot(&q[t], &p);
            pqp += p[t] * qp[t];
        }
        if qp.iter().all(|v| (v - pqp).abs() < eps) {
            break;
        }
        for t in 0..k {
            let diff = (-qp[t] + pqp) / q[t][t];
            p[t] += diff;
            pqp = (pqp + diff * (diff * q[t][t] + 2.0 * qp[t])) / (1.0 + diff) / (1.0 + diff);
            for j in 0..k {
                qp[j] = (qp[j] + diff * q[t][j]) / (1.0 + diff);
                p[j] /= 1.0 + diff;
            }
        }
    }
    let total: f64 = p.iter().sum();
    if total.is_finite() && total > 0.0 {
        p.iter_mut().for_each(|v| *v /= total);
    } else {
        p.iter_mut().for_each(|v| *v = 1.0 / k as f64);
    }
    p
}

enum Fitted {
    Machine(Binary),
    Fold(Vec<(usize, f64)>),
}

/// Fits scikit-learn's `SVC(probability=True)`: one machine per pair of the classes present,
/// each with a Platt sigmoid from a 5-fold cross-validation shuffled by `seed`.
pub(crate) fn classifier(x: &Array2<f64>, y: &[usize], classes: usize, s: &Settings, seed: Seed) -> Result<Model> {
    let data = Rows::new(x);
    let kernel = KernelFn { kernel: s.kernel, gamma: s.gamma.resolve(x) };
    let mut members = vec![Vec::new(); classes];
    for (i, &c) in y.iter().enumerate() {
        if let Some(m) = members.get_mut(c) {
            m.push(i);
        }
    }
    let present: Vec<usize> = (0..classes).filter(|&c| !members[c].is_empty()).collect();
    let pairs: Vec<(usize, usize)> =
        present.iter().enumerate().flat_map(|(at, &a)| present[at + 1..].iter().map(move |&b| (a, b))).collect();
    let subs: Vec<Subproblem> = pairs
        .iter()
        .map(|&(a, b)| Subproblem {
            rows: members[a].iter().chain(&members[b]).copied().collect(),
            positive: members[a].iter().map(|_| true).chain(members[b].iter().map(|_| false)).collect(),
        })
        .collect();
    let orders: Vec<Vec<usize>> = pairs
        .iter()
        .zip(&subs)
        .map(|(&(a, b), sub)| seed.derive(&format!("svc-platt-{a}-{b}")).draws().permutation(sub.rows.len()))
        .collect();
    let tasks: Vec<(usize, Option<usize>)> = (0..pairs.len())
        .flat_map(|p| std::iter::once((p, None)).chain((0..FOLDS).map(move |f| (p, Some(f)))))
        .collect();
    let fitted = mlops_core::par::map(&tasks, |&(p, fold)| match fold {
        None => Fitted::Machine(binary(&data, &subs[p].rows, &subs[p].positive, kernel, s)),
        Some(f) => Fitted::Fold(fold_decisions(&data, &subs[p], &orders[p], f, kernel, s)),
    })
    .ok_or_else(|| ModelError::Data { model: "svc", message: "a fitting thread failed".into() })?;

    let mut machines: Vec<Binary> = Vec::with_capacity(pairs.len());
    let mut decisions: Vec<Vec<f64>> = subs.iter().map(|sub| vec![0.0; sub.rows.len()]).collect();
    for ((p, _), done) in tasks.iter().zip(fitted) {
        match done {
            Fitted::Machine(m) => machines.push(m),
            Fitted::Fold(values) => values.into_iter().for_each(|(t, v)| decisions[*p][t] = v),
        }
    }
    if machines.iter().any(|m| !m.converged) {
        tracing::warn!(max_iter = s.max_iter, "svc: SMO stopped at max_iter before reaching tol");
    }
    let platt: Vec<(f64, f64)> =
        decisions.iter().zip(&subs).map(|(dec, sub)| sigmoid_train(dec, &sub.positive)).collect();

    // The support vectors of all machines, once each, in training order.
    let mut position = vec![usize::MAX; x.nrows()];
    let mut used: Vec<usize> = machines.iter().flat_map(|m| m.support.iter().copied()).collect();
    used.sort_unstable();
    used.dedup();
    for (at, &r) in used.iter().enumerate() {
        position[r] = at;
    }
    let machines = machines
        .into_iter()
        .zip(pairs.iter().zip(platt))
        .map(|(m, (&(positive, negative), (platt_a, platt_b)))| Machine {
            support: m.support.iter().map(|&r| position[r]).collect(),
            coef: m.coef,
            intercept: m.intercept,
            pair: Some(Pair { positive, negative, platt_a, platt_b }),
        })
        .collect();
    Ok(Model::Svm {
        kernel: s.kernel,
        gamma: kernel.gamma,
        support: used.iter().map(|&r| data.row(r).to_vec()).collect(),
        machines,
        classes: Some(classes),
        features: x.ncols(),
    })
}

/// Fits scikit-learn's `SVR`: LIBSVM's ε-SVR dual over 2n variables (`α` and `α*`).
pub(crate) fn regressor(x: &Array2<f64>, y: &[f64], epsilon: f64, s: &Settings) -> Model {
    let n = x.nrows();
    let data = Rows::new(x);
    let kernel = KernelFn { kernel: s.kernel, gamma: s.gamma.resolve(x) };
    let mut cache = Cache::new(&data, n, kernel);
    let signs = (0..2 * n).map(|t| if t < n { 1.0 } else { -1.0 }).collect();
    let p = y.iter().map(|v| epsilon - v).chain(y.iter().map(|v| epsilon + v)).collect();
    let sol = solve(&mut cache, signs, p, s.c, s.tol, s.max_iter);
    if !sol.converged {
        tracing::warn!(max_iter = s.max_iter, "svr: SMO stopped at max_iter before reaching tol");
    }
    let (rows, coef): (Vec<usize>, Vec<f64>) =
        (0..n).map(|i| (i, sol.alpha[i] - sol.alpha[i + n])).filter(|(_, c)| *c != 0.0).unzip();
    Model::Svm {
        kernel: s.kernel,
        gamma: kernel.gamma,
        support: rows.iter().map(|&r| data.row(r).to_vec()).collect(),
        machines: vec![Machine { support: (0..rows.len()).collect(), coef, intercept: -sol.rho, pair: None }],
        classes: None,
        features: x.ncols(),
    }
}

/// A fitted SVM's parts, borrowed from [`Model::Svm`].
pub(crate) struct View<'a> {
    pub(crate) kernel: Kernel,
    pub(crate) gamma: f64,
    pub(crate) support: &'a [Vec<f64>],
    pub(crate) machines: &'a [Machine],
    pub(crate) classes: Option<usize>,
    pub(crate) features: usize,
}

impl View<'_> {
    /// A decoded blob could hold any numbers: check that every index points somewhere before
    /// predicting, so a damaged model is an error and never a panic.
    fn check(&self) -> Result<()> {
        let bad = |message: String| Err(ModelError::Data { model: "svm", message });
        if self.support.iter().any(|s| s.len() != self.features) {
            return bad("a support vector has the wrong width".into());
        }
        for m in self.machines {
            if m.coef.len() != m.support.len() || m.support.iter().any(|&i| i >= self.support.len()) {
                return bad("a machine refers to a missing support vector".into());
            }
            match (&m.pair, self.classes) {
                (Some(p), Some(k)) if p.positive < k && p.negative < k && p.positive != p.negative => {}
                (None, None) => {}
                _ => return bad("a machine's classes do not match the model".into()),
            }
        }
        if self.machines.is_empty() {
            return bad("no machines".into());
        }
        Ok(())
    }

    /// Every machine's decision value, per row.
    pub(crate) fn decisions(&self, x: &Array2<f64>) -> Result<Vec<Vec<f64>>> {
        self.check()?;
        let kernel = KernelFn { kernel: self.kernel, gamma: self.gamma };
        let mut k = vec![0.0; self.support.len()];
        let mut row = vec![0.0; x.ncols()];
        Ok(x.rows()
            .into_iter()
            .map(|r| {
                row.iter_mut().zip(r.iter()).for_each(|(a, b)| *a = *b);
                k.iter_mut().zip(self.support).for_each(|(v, sv)| *v = kernel.eval(sv, &row));
                self.machines
                    .iter()
                    .map(|m| m.support.iter().zip(&m.coef).map(|(&i, c)| c * k[i]).sum::<f64>() + m.intercept)
                    .collect()
            })
            .collect())
    }

    /// The class with the most pairwise votes per row (the lower index on a tie), as LIBSVM's
    /// and scikit-learn's `predict`.
    pub(crate) fn votes(&self, x: &Array2<f64>) -> Result<Vec<f64>> {
        let classes = self.classes.unwrap_or(0);
        Ok(self
            .decisions(x)?
            .iter()
            .map(|dec| {
                let mut votes = vec![0usize; classes];
                for (m, f) in self.machines.iter().zip(dec) {
                    if let Some(p) = &m.pair {
                        votes[if *f > 0.0 { p.positive } else { p.negative }] += 1;
                    }
                }
                votes.iter().enumerate().fold((0, 0), |best, (c, &v)| if v > best.1 { (c, v) } else { best }).0 as f64
            })
            .collect())
    }

    /// Platt probabilities per row, coupled over the classes seen in training (classes absent
    /// from training get 0).
    pub(crate) fn proba(&self, x: &Array2<f64>) -> Result<Vec<Vec<f64>>> {
        let decisions = self.decisions(x)?;
        let classes = self.classes.unwrap_or(0);
        let mut present: Vec<usize> =
            self.machines.iter().filter_map(|m| m.pair.as_ref()).flat_map(|p| [p.positive, p.negative]).collect();
        present.sort_unstable();
        present.dedup();
        let mut at = vec![0; classes];
        for (i, &c) in present.iter().enumerate() {
            at[c] = i;
        }
        let k = present.len();
        Ok(decisions
            .iter()
            .map(|dec| {
                let mut r = vec![vec![0.0; k]; k];
                for (m, f) in self.machines.iter().zip(dec) {
                    if let Some(p) = &m.pair {
                        let v = sigmoid_predict(*f, p.platt_a, p.platt_b).clamp(MIN_PROB, 1.0 - MIN_PROB);
                        r[at[p.positive]][at[p.negative]] = v;
                        r[at[p.negative]][at[p.positive]] = 1.0 - v;
                    }
                }
                let coupled = if k == 2 { vec![r[0][1], r[1][0]] } else { couple(&r) };
                let mut out = vec![0.0; classes];
                for (&c, v) in present.iter().zip(coupled) {
                    out[c] = v;
                }
                out
            })
            .collect())
    }

    /// For a linear kernel, shares of `Σ_machines |w_j|` with `w = Σ coef_i sv_i`.
    pub(crate) fn importances(&self) -> Option<Vec<f64>> {
        if self.kernel != Kernel::Linear || self.check().is_err() {
            return None;
        }
        let mut total = vec![0.0; self.features];
        for m in self.machines {
            let mut w = vec![0.0; self.features];
            for (&i, c) in m.support.iter().zip(&m.coef) {
                w.iter_mut().zip(&self.support[i]).for_each(|(wj, v)| *wj += c * v);
            }
            total.iter_mut().zip(&w).for_each(|(t, wj)| *t += wj.abs());
        }
        let sum: f64 = total.iter().sum();
        Some(total.iter().map(|t| if sum > 0.0 { t / sum } else { 0.0 }).collect())
    }
}
