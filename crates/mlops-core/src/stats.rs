//! The statistics fits learn: mean, standard deviation, quantiles and modes, with the conventions
//! of pandas and scikit-learn (linear-interpolated quantiles, population standard deviation).

use std::collections::HashMap;

use crate::value::Value;

/// Mean of the values; `None` when empty.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Population standard deviation (ddof = 0, as scikit-learn's `StandardScaler` and
/// `scipy.stats.zscore` use); `None` when empty.
pub fn std_dev(values: &[f64]) -> Option<f64> {
    let m = mean(values)?;
    Some((values.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / values.len() as f64).sqrt())
}

/// The `q` quantile (0..=1) of unsorted values, linear interpolation, in linear time (the values
/// are reordered). The same result as interpolating between the sorted values.
pub fn quantile_of(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (values.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let frac = pos - lo as f64;
    let (_, at, above) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let low = *at;
    if frac == 0.0 || above.is_empty() {
        return Some(low);
    }
    let high = above.iter().copied().min_by(f64::total_cmp).unwrap_or(low);
    Some(low + (high - low) * frac)
}

/// A hashable view of a value, for counting.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Key<'a> {
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(&'a str),
    Date(i32),
    Datetime(i64),
}

fn key(v: &Value) -> Option<Key<'_>> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => Key::Bool(*b),
        Value::Int(i) => Key::Int(*i),
        // One NaN bit pattern and one zero, so equal floats count together.
        Value::Float(f) if f.is_nan() => Key::Float(f64::NAN.to_bits()),
        Value::Float(f) => Key::Float((f + 0.0).to_bits()),
        Value::Str(s) => Key::Str(s),
        Value::Date(d) => Key::Date(*d),
        Value::Datetime(t) => Key::Datetime(*t),
    })
}

/// The most frequent non-null value; ties go to the smallest (pandas' `mode()[0]`).
pub fn mode(values: &[Value]) -> Option<Value> {
    let mut counts: HashMap<Key<'_>, (usize, &Value)> = HashMap::new();
    for v in values {
        if let Some(k) = key(v) {
            counts.entry(k).or_insert((0, v)).0 += 1;
        }
    }
    let best = counts.values().map(|(n, _)| *n).max()?;
    let mut tied: Vec<&Value> = counts.values().filter(|(n, _)| *n == best).map(|(_, v)| *v).collect();
    tied.sort_by(|a, b| match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => a.to_string().cmp(&b.to_string()),
    });
    tied.first().map(|v| (*v).clone())
}

/// The non-null, non-NaN numbers of a column of values.
pub fn finite_numbers(values: &[Value]) -> Vec<f64> {
    values.iter().filter_map(Value::as_f64).filter(|x| !x.is_nan()).collect()
}

/// Pearson's r over the rows where both are present (NaN marks a missing value), in one
/// branch-free pass that vectorises. Centre each input on its own mean first (any fixed shift
/// works): that keeps the one-pass sums accurate, leaving only the small shift of the pairwise
/// means to cancel. `None` below two rows or when either side is constant on them.
pub fn pearson_centred(x: &[f64], y: &[f64]) -> Option<f64> {
    pearson_about(x, 0.0, y, 0.0)
}

/// [`pearson_centred`] of `x - cx` and `y - cy`, without building the centred copies.
pub fn pearson_about(x: &[f64], cx: f64, y: &[f64], cy: f64) -> Option<f64> {
    let (mut n, mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        let both = !(a.is_nan() || b.is_nan());
        let (a, b, w) = if both { (a - cx, b - cy, 1.0) } else { (0.0, 0.0, 0.0) };
        n += w;
        sx += a;
        sy += b;
        sxx += a * a;
        syy += b * b;
        sxy += a * b;
    }
    pearson_from_sums(&PairSums { n, sx, sy, sxx, syy, sxy })
}

/// The one-pass sums of a pair of columns over their shared rows: the count, both sums, both
/// sums of squares and the sum of products.
#[derive(Clone, Copy, Debug, Default)]
pub struct PairSums {
    /// Rows.
    pub n: f64,
    /// Sum of x.
    pub sx: f64,
    /// Sum of y.
    pub sy: f64,
    /// Sum of x².
    pub sxx: f64,
    /// Sum of y².
    pub syy: f64,
    /// Sum of x·y.
    pub sxy: f64,
}

/// Pearson's r from a pair's one-pass sums: `None` below two rows or when either side has no
/// spread (up to rounding) on them.
pub fn pearson_from_sums(s: &PairSums) -> Option<f64> {
    let PairSums { n, sx, sy, sxx, syy, sxy } = *s;
    if n < 2.0 {
        return None;
    }
    let cov = sxy - sx * sy / n;
    let (vx, vy) = (sxx - sx * sx / n, syy - sy * sy / n);
    let denom = (vx * vy).sqrt();
    // A column constant on these rows has no spread up to rounding.
    let tiny = 1e-12 * (sxx * syy).sqrt();
    (denom > tiny && denom > 0.0).then(|| (cov / denom).clamp(-1.0, 1.0))
}

/// The mean of the non-NaN values (0 when there are none): the centre [`pearson_about`] wants.
pub fn nan_mean(values: &[f64]) -> f64 {
    let (sum, n) = values.iter().filter(|v| !v.is_nan()).fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// Rounds half away from zero to `digits` decimals; the one rounding used on every path.
pub fn round_to(x: f64, digits: i32) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let factor = 10f64.powi(digits);
    let scaled = x * factor;
    if !scaled.is_finite() {
        return x;
    }
    scaled.round() / factor
}

#[cfg(test)]
mod tests {
    use super::*;

    // The textbook definition, the oracle for `quantile_of`.
    fn sorted(mut values: Vec<f64>) -> Vec<f64> {
        values.sort_by(f64::total_cmp);
        values
    }

    fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
        if sorted.is_empty() {
            return None;
        }
        let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
        let lo = pos.floor() as usize;
        let hi = pos.ceil() as usize;
        let frac = pos - lo as f64;
        Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
    }

    #[test]
    fn matches_pandas_conventions() {
        let s = sorted(vec![4.0, 1.0, 3.0, 2.0]);
        assert_eq!(quantile(&s, 0.5), Some(2.5));
        assert_eq!(quantile(&s, 0.25), Some(1.75));
        for q in [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0] {
            let mut unsorted = vec![4.0, 1.0, 3.0, 2.0, 9.5, -1.0];
            let sorted_copy = sorted(unsorted.clone());
            assert_eq!(quantile_of(&mut unsorted, q), quantile(&sorted_copy, q), "q = {q}");
        }
        assert_eq!(std_dev(&[1.0, 3.0]), Some(1.0));
        let m = mode(&[
            Value::Str("b".into()),
            Value::Str("a".into()),
            Value::Null,
            Value::Str("b".into()),
            Value::Str("a".into()),
        ]);
        assert_eq!(m, Some(Value::Str("a".into())));
    }
}
