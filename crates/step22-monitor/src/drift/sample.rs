//! One column's values on one side of a comparison: sorted numbers, or counts of categories.

use std::collections::BTreeMap;

/// The values of one column in the reference or the current data.
#[derive(Clone, Debug, PartialEq)]
pub enum Sample {
    /// A numeric column.
    Numeric(Numbers),
    /// Text, booleans, dates: anything compared by equality.
    Categorical(Categories),
}

impl Sample {
    /// Values present (missing ones left out).
    pub fn len(&self) -> u64 {
        match self {
            Sample::Numeric(n) => n.sorted.len() as u64,
            Sample::Categorical(c) => c.counts.values().sum(),
        }
    }

    /// Whether no value is present.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Missing values (nulls; for numbers also NaN and infinities, which Evidently drops).
    pub fn missing(&self) -> u64 {
        match self {
            Sample::Numeric(n) => n.missing,
            Sample::Categorical(c) => c.missing,
        }
    }

    /// The column's kind.
    pub fn kind(&self) -> ColumnKind {
        match self {
            Sample::Numeric(_) => ColumnKind::Numeric,
            Sample::Categorical(_) => ColumnKind::Categorical,
        }
    }
}

/// Whether a column is compared as numbers or as categories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// Numbers.
    Numeric,
    /// Categories.
    Categorical,
}

/// Finite numbers, sorted ascending, and how many values were missing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Numbers {
    sorted: Vec<f64>,
    missing: u64,
}

impl Numbers {
    /// The numbers among `values`: `None`, NaN and infinities count as missing (Evidently turns
    /// infinities into NaN and drops them before testing), `-0.0` is `0.0`.
    pub fn new(values: impl IntoIterator<Item = Option<f64>>) -> Self {
        let values = values.into_iter();
        let mut sorted = Vec::with_capacity(values.size_hint().0);
        let mut missing = 0;
        for v in values {
            match v {
                Some(v) if v.is_finite() => sorted.push(v + 0.0),
                _ => missing += 1,
            }
        }
        sort_floats(&mut sorted);
        Numbers { sorted, missing }
    }

    /// The numbers among `values` with `missing` values counted besides (non-finite values among
    /// `values` count as missing too).
    pub fn from_parts(mut values: Vec<f64>, mut missing: u64) -> Self {
        let before = values.len();
        values.retain(|v| v.is_finite());
        missing += (before - values.len()) as u64;
        values.iter_mut().for_each(|v| *v += 0.0);
        sort_floats(&mut values);
        Numbers { sorted: values, missing }
    }

    /// The numbers, sorted ascending.
    pub fn values(&self) -> &[f64] {
        &self.sorted
    }

    /// Missing values.
    pub fn missing(&self) -> u64 {
        self.missing
    }
}

/// Sorts finite numbers ascending, as `sort_unstable_by(f64::total_cmp)` does, but faster: the
/// numbers become integers whose order is numeric order (in the same buffer), which sort as
/// integers and turn back. Measured on 3.27M normal numbers: 83 ms against 100 ms by `total_cmp`
/// and 136 ms by an 11-bit LSD radix sort, which moves every value through memory six times.
pub(crate) fn sort_floats(values: &mut Vec<f64>) {
    // The bits of a float, turned so that unsigned order is numeric order (-0.0 before 0.0;
    // callers have made every zero positive).
    let key = |v: f64| {
        let b = v.to_bits();
        if b >> 63 == 1 { !b } else { b | (1 << 63) }
    };
    let unkey = |k: u64| f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k });
    // Both collects reuse the allocation (same size and alignment).
    let mut keys: Vec<u64> = std::mem::take(values).into_iter().map(key).collect();
    keys.sort_unstable();
    *values = keys.into_iter().map(unkey).collect();
}

/// How often each category occurs, and how many values were missing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Categories {
    counts: BTreeMap<String, u64>,
    missing: u64,
}

impl Categories {
    /// No values yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one value (`None` is missing).
    pub fn add(&mut self, value: Option<&str>) {
        self.add_many(value, 1);
    }

    /// Counts `n` occurrences of one value (`None` is missing).
    pub fn add_many(&mut self, value: Option<&str>, n: u64) {
        match value {
            Some(v) => match self.counts.get_mut(v) {
                Some(c) => *c += n,
                None => {
                    self.counts.insert(v.to_owned(), n);
                }
            },
            None => self.missing += n,
        }
    }

    /// Each category with its count, in the categories' order.
    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }
}

impl<'a> FromIterator<Option<&'a str>> for Categories {
    fn from_iter<I: IntoIterator<Item = Option<&'a str>>>(iter: I) -> Self {
        let mut c = Categories::new();
        for v in iter {
            c.add(v);
        }
        c
    }
}

/// Counts of the same keys on both sides: every key present on either side, in one order.
pub(crate) struct Aligned {
    pub reference: Vec<u64>,
    pub current: Vec<u64>,
}

impl Aligned {
    /// Categories on both sides, keyed by value.
    pub fn categories(reference: &Categories, current: &Categories) -> Self {
        let mut keys: Vec<&String> = reference.counts.keys().chain(current.counts.keys()).collect();
        keys.sort_unstable();
        keys.dedup();
        Aligned {
            reference: keys.iter().map(|k| reference.counts.get(*k).copied().unwrap_or(0)).collect(),
            current: keys.iter().map(|k| current.counts.get(*k).copied().unwrap_or(0)).collect(),
        }
    }

    /// The distinct numbers of both sorted samples as categories.
    pub fn distinct(reference: &[f64], current: &[f64]) -> Self {
        let (mut i, mut j) = (0, 0);
        let mut out = Aligned { reference: Vec::new(), current: Vec::new() };
        while let Some(x) = next_value(reference, i, current, j) {
            let (ri, cj) = (run_end(reference, i, x), run_end(current, j, x));
            out.reference.push((ri - i) as u64);
            out.current.push((cj - j) as u64);
            (i, j) = (ri, cj);
        }
        out
    }

    /// Keys present on either side.
    pub fn keys(&self) -> usize {
        self.reference.len()
    }
}

/// The smaller of the next values of two sorted samples.
pub(crate) fn next_value(a: &[f64], i: usize, b: &[f64], j: usize) -> Option<f64> {
    match (a.get(i), b.get(j)) {
        (Some(x), Some(y)) => Some(x.min(*y)),
        (Some(x), None) => Some(*x),
        (None, Some(y)) => Some(*y),
        (None, None) => None,
    }
}

/// The index after the run of values equal to `x` starting at `i` (of a sorted sample).
pub(crate) fn run_end(a: &[f64], i: usize, x: f64) -> usize {
    let mut k = i;
    while k < a.len() && a[k] <= x {
        k += 1;
    }
    k
}

/// Distinct values of two sorted samples together, counted up to `limit + 1` (enough to tell
/// whether there are more than `limit`).
pub(crate) fn distinct_union_up_to(a: &[f64], b: &[f64], limit: usize) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while let Some(x) = next_value(a, i, b, j) {
        n += 1;
        if n > limit {
            break;
        }
        (i, j) = (a.partition_point(|v| *v <= x), b.partition_point(|v| *v <= x));
    }
    n
}

/// Distinct values of a sorted sample.
pub(crate) fn distinct_sorted(a: &[f64]) -> usize {
    a.iter().zip(a.iter().skip(1)).filter(|(x, y)| x != y).count() + usize::from(!a.is_empty())
}
