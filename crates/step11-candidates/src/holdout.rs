//! The rows gradient boosting holds out for early stopping, drawn exactly as scikit-learn's
//! `HistGradientBoosting*` draw them: `train_test_split(test_size=validation_fraction,
//! stratify=y for a classifier, random_state=seed)`, where `seed` is the first draw of numpy's
//! legacy `RandomState(random_state)`. numpy's legacy generator (MT19937, its bounded integers and
//! its Fisher-Yates shuffle) is reproduced draw for draw, so a `random_state` below 2^32 holds out
//! the very rows scikit-learn holds out, in the same order (a larger one is taken modulo 2^32,
//! where numpy would refuse it).

/// Training and held-out rows, in the order scikit-learn lists them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Holdout {
    pub train: Vec<usize>,
    pub validation: Vec<usize>,
}

/// Why rows cannot be held out (scikit-learn raises a `ValueError` in each case).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Refusal {
    /// No row would be left to train on.
    EmptyTrain { rows: usize, held: usize },
    /// A class with a single row cannot be on both sides.
    LoneClass { class: usize },
    /// A stratified part needs a row of every class.
    FewerThanClasses { part: &'static str, rows: usize, classes: usize },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::EmptyTrain { rows, held } => {
                write!(f, "holding out {held} of {rows} rows for early stopping leaves none to train on")
            }
            Refusal::LoneClass { class } => {
                write!(f, "class {class} has a single row, too few to stratify the early-stopping hold-out")
            }
            Refusal::FewerThanClasses { part, rows, classes } => {
                write!(f, "the early-stopping {part} part would hold {rows} rows, fewer than the {classes} classes")
            }
        }
    }
}

/// Splits `rows` rows as `train_test_split` does: `ceil(fraction · rows)` held out; stratified by
/// `classes` (each row's class) when given.
pub(crate) fn split(
    rows: usize,
    fraction: f64,
    classes: Option<&[usize]>,
    random_state: u64,
) -> Result<Holdout, Refusal> {
    let held = (fraction * rows as f64).ceil() as usize;
    if held >= rows {
        return Err(Refusal::EmptyTrain { rows, held });
    }
    let kept = rows - held;
    // `BaseHistGradientBoosting.fit`: `rng.randint(np.iinfo(np.uint32).max, dtype="u8")`.
    let seed = RandomState::new(random_state as u32).bounded(u64::from(u32::MAX) - 1) as u32;
    let mut rng = RandomState::new(seed);
    let Some(y) = classes else {
        // `ShuffleSplit`: the first `held` of a permutation are held out.
        let order = rng.permutation(rows);
        return Ok(Holdout { train: order[held..].to_vec(), validation: order[..held].to_vec() });
    };
    // `StratifiedShuffleSplit`, over the classes present, in their order.
    let mut members: Vec<Vec<usize>> = Vec::new();
    for (i, &c) in y.iter().enumerate() {
        if c >= members.len() {
            members.resize(c + 1, Vec::new());
        }
        members[c].push(i);
    }
    let present: Vec<(usize, Vec<usize>)> = members.into_iter().enumerate().filter(|(_, m)| !m.is_empty()).collect();
    if let Some((class, _)) = present.iter().find(|(_, m)| m.len() < 2) {
        return Err(Refusal::LoneClass { class: *class });
    }
    for (part, n) in [("training", kept), ("validation", held)] {
        if n < present.len() {
            return Err(Refusal::FewerThanClasses { part, rows: n, classes: present.len() });
        }
    }
    let counts: Vec<usize> = present.iter().map(|(_, m)| m.len()).collect();
    let n_i = approximate_mode(&counts, kept, &mut rng);
    let left: Vec<usize> = counts.iter().zip(&n_i).map(|(c, n)| c - n).collect();
    let t_i = approximate_mode(&left, held, &mut rng);
    let (mut train, mut validation) = (Vec::with_capacity(kept), Vec::with_capacity(held));
    for (((_, m), &n), &t) in present.iter().zip(&n_i).zip(&t_i) {
        let order = rng.permutation(m.len());
        train.extend(order[..n].iter().map(|&o| m[o]));
        validation.extend(order[n..n + t].iter().map(|&o| m[o]));
    }
    rng.shuffle(&mut train);
    rng.shuffle(&mut validation);
    Ok(Holdout { train, validation })
}

/// scikit-learn's `_approximate_mode`: rows drawn per class out of `draws`, proportional to
/// `counts`, rounded down, then the rows still missing given to the largest remainders (ties
/// broken by `rng.choice(…, replace=False)`, a permutation's first few).
fn approximate_mode(counts: &[usize], draws: usize, rng: &mut RandomState) -> Vec<usize> {
    let total = counts.iter().sum::<usize>() as f64;
    let continuous: Vec<f64> = counts.iter().map(|&c| c as f64 / total * draws as f64).collect();
    let mut floored: Vec<usize> = continuous.iter().map(|c| c.floor() as usize).collect();
    let mut need = draws.saturating_sub(floored.iter().sum());
    if need > 0 {
        let remainder: Vec<f64> = continuous.iter().zip(&floored).map(|(c, &f)| c - f as f64).collect();
        let mut values = remainder.clone();
        values.sort_by(|a, b| b.total_cmp(a));
        values.dedup();
        for value in values {
            let tied: Vec<usize> = (0..remainder.len()).filter(|&i| remainder[i] == value).collect();
            let now = tied.len().min(need);
            for &pick in &rng.permutation(tied.len())[..now] {
                floored[tied[pick]] += 1;
            }
            need -= now;
            if need == 0 {
                break;
            }
        }
    }
    floored
}

const N: usize = 624;
const M: usize = 397;

/// numpy's legacy `RandomState`: MT19937 seeded by `init_genrand`, as `RandomState(seed)` is for an
/// integer seed.
struct RandomState {
    mt: [u32; N],
    at: usize,
}

impl RandomState {
    fn new(seed: u32) -> RandomState {
        let mut mt = [0u32; N];
        mt[0] = seed;
        for i in 1..N {
            mt[i] = 1_812_433_253u32.wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_add(i as u32);
        }
        RandomState { mt, at: N }
    }

    fn next_u32(&mut self) -> u32 {
        if self.at >= N {
            let twist = |a: u32, b: u32, c: u32| {
                let y = (a & 0x8000_0000) | (b & 0x7fff_ffff);
                c ^ (y >> 1) ^ if y & 1 == 1 { 0x9908_b0df } else { 0 }
            };
            for i in 0..N {
                self.mt[i] = twist(self.mt[i], self.mt[(i + 1) % N], self.mt[(i + M) % N]);
            }
            self.at = 0;
        }
        let mut y = self.mt[self.at];
        self.at += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    fn next_u64(&mut self) -> u64 {
        (u64::from(self.next_u32()) << 32) | u64::from(self.next_u32())
    }

    /// A draw in `0..=max` by masked rejection, as numpy's `random_interval` and legacy bounded
    /// integers draw it: 32-bit words while `max` fits in 32 bits.
    fn bounded(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mask = u64::MAX >> max.leading_zeros();
        loop {
            let v = if max <= u64::from(u32::MAX) { u64::from(self.next_u32()) } else { self.next_u64() } & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// `RandomState.shuffle` of a one-dimensional array: Fisher-Yates from the end.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.bounded(i as u64) as usize;
            items.swap(i, j);
        }
    }

    /// `RandomState.permutation(n)`.
    fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        self.shuffle(&mut order);
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values from numpy 2.4.6 and scikit-learn 1.9.1:
    // `np.random.RandomState(42).randint(np.iinfo(np.uint32).max, dtype="u8")`,
    // `np.random.RandomState(s).permutation(10)` and `train_test_split(np.arange(n), test_size=…,
    // stratify=…, random_state=…)`.

    #[test]
    fn draws_repeat_numpys_legacy_random_state() {
        let mut rs = RandomState::new(42);
        assert_eq!([rs.next_u32(), rs.next_u32(), rs.next_u32()], [1_608_637_542, 3_421_126_067, 4_083_286_876]);
        assert_eq!(RandomState::new(1_608_637_542).permutation(10), [6, 7, 5, 8, 3, 0, 4, 1, 2, 9]);
        assert_eq!(RandomState::new(0).permutation(10), [2, 8, 4, 9, 1, 6, 7, 3, 0, 5]);
    }

    /// `train_test_split` with the seed `HistGradientBoosting*` derive from `random_state=42`.
    fn sklearn(held: &[usize], fraction: f64, y: Option<&[usize]>, random_state: u64) -> Holdout {
        match split(20, fraction, y, random_state) {
            Ok(h) => {
                assert_eq!(h.validation, held);
                h
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn held_out_rows_are_scikit_learns() {
        let h = sklearn(&[18, 13, 15, 0], 0.2, None, 42);
        assert_eq!(h.train, [6, 1, 4, 5, 11, 16, 3, 8, 14, 17, 7, 19, 2, 12, 10, 9]);
        let y: Vec<usize> = [[0; 11].as_slice(), &[1; 6], &[2; 3]].concat();
        let h = sklearn(&[9, 2, 17, 12], 0.2, Some(&y), 42);
        assert_eq!(h.train, [15, 19, 13, 7, 4, 3, 0, 8, 11, 10, 18, 5, 16, 14, 6, 1]);
    }

    #[test]
    fn tied_class_shares_are_broken_by_numpys_draws() {
        // Four classes of three rows, five held out: every class's share of the seven kept rows
        // is 1.75, so three of the four get a second row, chosen by `rng.choice`.
        // train_test_split(np.arange(12), test_size=0.35, stratify=y, random_state=s) with s the
        // seed drawn from RandomState(7).
        let y: Vec<usize> = (0..12).map(|i| i / 3).collect();
        let h = split(12, 0.35, Some(&y), 7).map_err(|e| e.to_string());
        assert_eq!(h, Ok(Holdout { train: vec![4, 7, 8, 0, 2, 9, 3], validation: vec![5, 6, 1, 11, 10] }));
    }

    #[test]
    fn impossible_hold_outs_are_refused_as_scikit_learn_refuses_them() {
        assert_eq!(split(5, 0.99, None, 0), Err(Refusal::EmptyTrain { rows: 5, held: 5 }));
        assert_eq!(split(4, 0.5, Some(&[0, 0, 0, 1]), 0), Err(Refusal::LoneClass { class: 1 }));
        assert!(split(20, 0.1, Some(&[[0; 10], [1; 10]].concat()), 0).is_ok());
        let three: Vec<usize> = (0..20).map(|i| i % 3).collect();
        assert_eq!(
            split(20, 0.1, Some(&three), 0),
            Err(Refusal::FewerThanClasses { part: "validation", rows: 2, classes: 3 })
        );
    }
}
