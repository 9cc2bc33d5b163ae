//! The content hash that versions a dataset (one digest per column of its values as stored and
//! its nulls' positions, with null and distinct counts in the same pass), and row hashes for
//! finding duplicate rows.

use std::borrow::Cow;

use polars::prelude::{self as pl, Column, DataFrame, DataType};

use super::text::{TextKey, each_text, inline_key};
use super::*;
use crate::dedup::Keep;
use crate::hash::{MixBuild, MixHasher};
use crate::value::DType;
use crate::{CoreError, Result};

/// Null and distinct counts of one column (null counts as one distinct value).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnStats {
    /// Nulls.
    pub nulls: usize,
    /// Distinct values.
    pub unique: usize,
}

/// The scheme of [`frame_hash`]; caches keyed on a dataset version include it, so that a change
/// of scheme recomputes versions instead of reusing ones made the old way. 3: numbers hashed as
/// their little-endian bytes, nulls as their row positions (2 tagged every value; 1 was SHA-256
/// throughout).
pub const FRAME_HASH_SCHEME: u32 = 3;

/// SHA-256 over a frame's logical content: its shape, then one BLAKE3 digest per column of the
/// column's name, type, values in row order and null positions.
///
/// BLAKE3 hashes the values (the bulk of the bytes) several times faster than SHA-256 here; the
/// outer SHA-256 only sees the shape and 32 bytes per column. Independent of how the frame is
/// chunked or how a file stores it (row groups, compression, partitioning), so the same data
/// always has the same version. Columns are hashed in parallel.
pub fn frame_hash(df: &DataFrame) -> Result<String> {
    Ok(fingerprint(df, false)?.0)
}

/// [`frame_hash`] and, in the same pass, every column's null and distinct counts.
pub fn frame_hash_and_stats(df: &DataFrame) -> Result<(String, Vec<ColumnStats>)> {
    let (hash, stats) = fingerprint(df, true)?;
    Ok((hash, stats.into_iter().map(Option::unwrap_or_default).collect()))
}

type ColumnDigest = ([u8; 32], Option<ColumnStats>);

fn fingerprint(df: &DataFrame, with_stats: bool) -> Result<(String, Vec<Option<ColumnStats>>)> {
    let columns = df.columns();
    let per_column: Vec<Result<ColumnDigest>> =
        crate::par::map(columns, |c| hash_column(c, with_stats)).ok_or_else(|| thread_failed("a hashing"))?;
    let mut total = crate::hash::Hasher::new();
    total.update(format!("rows={};cols={};", df.height(), columns.len()).as_bytes());
    let mut stats = Vec::with_capacity(columns.len());
    for digest in per_column {
        let (d, s) = digest?;
        total.update(&d);
        stats.push(s);
    }
    Ok((total.finish_hex(), stats))
}

/// Most distinct numbers counted in a small hash set before the count switches to partitions.
pub(crate) const SMALL_DISTINCT: usize = 2048;

/// Distinct values among a column's parts, each value counted by `key` (equal keys, equal
/// values): a small hash set while there are few (categories, codes); once there are many, the
/// keys' hashes are spread over parts by their top bits (equal keys share a part) and each part,
/// small enough to stay in cache, is counted in its own table. One hash set of a million keys
/// would miss the cache on every insert.
fn distinct_keys<T: Copy>(parts: &[Cow<'_, [T]>], key: impl Fn(T) -> u64) -> usize {
    let mut small: std::collections::HashSet<u64, MixBuild> =
        std::collections::HashSet::with_capacity_and_hasher(SMALL_DISTINCT * 2, MixBuild::default());
    for part in parts {
        for &x in part.iter() {
            small.insert(key(x));
            if small.len() > SMALL_DISTINCT {
                return distinct_by_parts(parts, key);
            }
        }
    }
    small.len()
}

fn distinct_by_parts<T: Copy>(parts: &[Cow<'_, [T]>], key: impl Fn(T) -> u64) -> usize {
    let n: usize = parts.iter().map(|p| p.len()).sum();
    let bits = (n / 1024).max(1).ilog2().min(16);
    // `mix` is a bijection, so counting distinct hashes counts distinct keys; the part comes
    // from a hash's top bits, its slot in the part's table from the bottom ones.
    let hashes = || parts.iter().flat_map(|p| p.iter().map(|&x| mix(key(x))));
    let part_of = |h: u64| if bits == 0 { 0 } else { (h >> (64 - bits)) as usize };
    let mut starts = vec![0usize; (1 << bits) + 1];
    for h in hashes() {
        starts[part_of(h) + 1] += 1;
    }
    for p in 1..starts.len() {
        starts[p] += starts[p - 1];
    }
    let mut fill = starts.clone();
    let mut spread = vec![0u64; n];
    for h in hashes() {
        let p = part_of(h);
        spread[fill[p]] = h;
        fill[p] += 1;
    }
    // Open addressing with `EMPTY` for a free slot; the hash `EMPTY` itself is counted aside.
    const EMPTY: u64 = u64::MAX;
    let largest = starts.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    let mut table = vec![EMPTY; (largest * 2).next_power_of_two().max(16)];
    let mut distinct = 0;
    let mut saw_empty = false;
    for w in starts.windows(2) {
        let part = &spread[w[0]..w[1]];
        let mask = (part.len() * 2).next_power_of_two().max(16) - 1;
        table[..=mask].fill(EMPTY);
        for &h in part {
            if h == EMPTY {
                saw_empty = true;
                continue;
            }
            let mut slot = h as usize & mask;
            loop {
                let t = table[slot];
                if t == EMPTY {
                    table[slot] = h;
                    distinct += 1;
                    break;
                }
                if t == h {
                    break;
                }
                slot = (slot + 1) & mask;
            }
        }
    }
    distinct + usize::from(saw_empty)
}

/// Distinct integers given their least and greatest: a bitmap over the range when it is small
/// (codes, counts, dates, ids), else [`distinct_keys`].
fn distinct_in_range<T: Copy>(parts: &[Cow<'_, [T]>], lo: i64, hi: i64, int: impl Fn(T) -> i64) -> usize {
    if lo > hi {
        return 0;
    }
    let span = hi.abs_diff(lo);
    if span >= 1 << 26 {
        return distinct_keys(parts, |x| int(x) as u64);
    }
    let mut bits = vec![0u64; (span >> 6) as usize + 1];
    for part in parts {
        for &x in part.iter() {
            let i = int(x).abs_diff(lo);
            bits[(i >> 6) as usize] |= 1 << (i & 63);
        }
    }
    bits.iter().map(|w| w.count_ones() as usize).sum()
}

/// Distinct integers over a column's parts (see [`valid_parts`]).
fn distinct_integer_parts(parts: &[Cow<'_, [i64]>]) -> usize {
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for part in parts {
        for &x in part.iter() {
            lo = lo.min(x);
            hi = hi.max(x);
        }
    }
    distinct_in_range(parts, lo, hi, |x| x)
}

/// Distinct floats, NaN counted once and `-0.0` as `0.0`: whole numbers (one-hot columns,
/// counts stored as floats) as integers, others by their bits.
fn distinct_floats(parts: &[Cow<'_, [f64]>]) -> usize {
    // `as` saturates and sends NaN to 0, so only whole numbers within ±9e15 come back equal;
    // one pass finds whether all are whole and their range.
    let (mut whole, mut lo, mut hi) = (true, f64::INFINITY, f64::NEG_INFINITY);
    for part in parts {
        for &x in part.iter() {
            whole &= x.abs() < 9e15 && (x as i64) as f64 == x;
            lo = lo.min(x);
            hi = hi.max(x);
        }
    }
    if whole {
        return distinct_in_range(parts, lo as i64, hi as i64, |x| x as i64);
    }
    distinct_keys(parts, float_key)
}

/// A float as a key for telling values apart: every NaN one key, `-0.0` the key of `0.0`.
fn float_key(x: f64) -> u64 {
    if x.is_nan() { f64::NAN.to_bits() } else { (x + 0.0).to_bits() }
}

/// Distinct texts: short ones (at most 12 bytes, most categories) by their inline view, longer
/// ones by reference.
fn distinct_texts(ca: &pl::StringChunked) -> usize {
    let mut seen: std::collections::HashSet<TextKey<'_>, MixBuild> = std::collections::HashSet::default();
    each_text(ca, |_, view, text| {
        if let Some(t) = text {
            seen.insert(TextKey::of(view, t));
        }
    });
    seen.len()
}

/// Row positions of a column's nulls, hashed, whatever the chunking (gathered in a buffer
/// first: the hash of the same bytes, for a fraction of the cost of one update per null).
#[derive(Default)]
struct NullPositions {
    hasher: Option<blake3::Hasher>,
    pending: Vec<u8>,
    count: usize,
}

impl NullPositions {
    fn push(&mut self, row: usize) {
        self.pending.extend_from_slice(&(row as u64).to_le_bytes());
        self.count += 1;
        if self.pending.len() >= 1 << 16 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.hasher.get_or_insert_with(blake3::Hasher::new).update(&self.pending);
            self.pending.clear();
        }
    }

    fn finish(mut self, h: &mut blake3::Hasher) {
        self.flush();
        h.update(format!(";nulls={};", self.count).as_bytes());
        if let Some(positions) = self.hasher {
            h.update(positions.finalize().as_bytes());
        }
    }
}

/// A column's digest: name and type, then the values in row order (numbers as little-endian
/// bytes, a null's slot as zero; texts as length and bytes, nothing for a null; booleans as one
/// byte), then the nulls' row positions. Chunks without nulls are hashed straight from memory.
fn hash_column(col: &Column, with_stats: bool) -> Result<ColumnDigest> {
    let mut h = blake3::Hasher::new();
    let name = col.name().to_string();
    let t = dtype_of(col.dtype()).ok_or_else(|| CoreError::WrongType {
        column: name.clone(),
        found: col.dtype().to_string(),
        expected: "a type that can be versioned".into(),
    })?;
    h.update(format!("{}:{}:{};", name.len(), name, col.dtype()).as_bytes());
    let mut nulls = NullPositions::default();
    let series = col.as_materialized_series();
    let mut row = 0usize;
    macro_rules! numeric {
        ($ca:expr, $distinct:expr) => {{
            let ca = $ca;
            let mut buf = Vec::new();
            for arr in ca.downcast_iter() {
                let values: &[_] = arr.values();
                match arr.validity().filter(|v| v.unset_bits() > 0) {
                    None => {
                        if cfg!(target_endian = "little") {
                            h.update(bytemuck::cast_slice(values));
                        } else {
                            buf.clear();
                            buf.extend(values.iter().flat_map(|x| x.to_le_bytes()));
                            h.update(&buf);
                        }
                    }
                    Some(validity) => {
                        buf.clear();
                        for (i, (x, valid)) in values.iter().zip(validity.iter()).enumerate() {
                            if valid {
                                buf.extend_from_slice(&x.to_le_bytes());
                            } else {
                                buf.extend_from_slice(&[0u8; 8]);
                                nulls.push(row + i);
                            }
                        }
                        h.update(&buf);
                    }
                }
                row += values.len();
            }
            with_stats.then(|| $distinct(&valid_parts(ca)))
        }};
    }
    let unique = match t {
        DType::Bool => {
            let ca = series.bool().map_err(pe(&name))?;
            let mut buf = Vec::with_capacity(ca.len());
            let mut both = [false; 2];
            for (i, v) in ca.iter().enumerate() {
                buf.push(match v {
                    None => {
                        nulls.push(i);
                        0
                    }
                    Some(b) => {
                        both[usize::from(b)] = true;
                        1 + u8::from(b)
                    }
                });
            }
            h.update(&buf);
            with_stats.then(|| both.iter().filter(|b| **b).count())
        }
        DType::Int | DType::Date | DType::Datetime => {
            let phys = series.to_physical_repr().cast(&DataType::Int64).map_err(pe(&name))?;
            numeric!(phys.i64().map_err(pe(&name))?, distinct_integer_parts)
        }
        DType::Float => {
            let s = series.cast(&DataType::Float64).map_err(pe(&name))?;
            numeric!(s.f64().map_err(pe(&name))?, distinct_floats)
        }
        DType::Str => {
            let s = series.cast(&DataType::String).map_err(pe(&name))?;
            let text = s.str().map_err(pe(&name))?;
            let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
            each_text(text, |i, _, v| match v {
                None => nulls.push(i),
                Some(x) => {
                    buf.extend_from_slice(&(x.len() as u64).to_le_bytes());
                    if x.len() > 1 << 15 {
                        h.update(&buf);
                        buf.clear();
                        h.update(x.as_bytes());
                    } else {
                        buf.extend_from_slice(x.as_bytes());
                    }
                    if buf.len() > (1 << 16) - (1 << 15) - 16 {
                        h.update(&buf);
                        buf.clear();
                    }
                }
            });
            h.update(&buf);
            with_stats.then(|| distinct_texts(text))
        }
    };
    let null_count = nulls.count;
    nulls.finish(&mut h);
    let stats = unique.map(|u| ColumnStats { nulls: null_count, unique: u + usize::from(null_count > 0) });
    Ok((*h.finalize().as_bytes(), stats))
}

/// Whether two cells of a column hold the same value (nulls equal nulls, NaN equals NaN).
fn same_cell(col: &Column, i: usize, j: usize) -> bool {
    match (col.get(i), col.get(j)) {
        (Ok(a), Ok(b)) => match (a.extract::<f64>(), b.extract::<f64>()) {
            (Some(x), Some(y)) if x.is_nan() && y.is_nan() => true,
            _ => a == b,
        },
        _ => false,
    }
}

/// Folds one cell's key into a row's hash.
fn fold_cell(h: &mut u64, cell: u64) {
    *h = (h.rotate_left(5) ^ cell).wrapping_mul(0x9e37_79b9_7f4a_7c15);
}

/// The key of a null cell, whatever the column's type.
const NULL_CELL: u64 = 0x243f_6a88_85a3_08d3;

/// One hash per row of `keys`, equal for rows whose cells are equal as [`same_cell`] sees them
/// (nulls alike, every NaN alike, `-0.0` as `0.0`), mixed by [`mix`]. Row ranges are hashed on
/// all cores; numbers, booleans and texts are read from their buffers (a short text by its
/// inline view), other types through polars' hash with one seed for the whole frame.
fn row_hashes(keys: &DataFrame) -> Result<Vec<u64>> {
    let n = keys.height();
    let step = n.div_ceil(crate::par::cores() * 2).max(1);
    let ranges: Vec<(usize, usize)> = (0..n).step_by(step).map(|from| (from, (from + step).min(n))).collect();
    let seed = pl::PlSeedableRandomStateQuality::default();
    let hashed = crate::par::map(&ranges, |&(from, to)| -> Result<Vec<u64>> {
        let mut hashes = vec![0u64; to - from];
        for col in keys.columns() {
            let part = col.slice(from as i64, to - from);
            hash_cells(&part, &seed, &mut hashes)?;
        }
        hashes.iter_mut().for_each(|h| *h = mix(*h));
        Ok(hashes)
    })
    .ok_or_else(|| thread_failed("a row hashing"))?;
    let mut all = Vec::with_capacity(n);
    for part in hashed {
        all.extend(part?);
    }
    Ok(all)
}

/// Folds every cell of `col` into the hash of its row.
fn hash_cells(col: &Column, seed: &pl::PlSeedableRandomStateQuality, hashes: &mut [u64]) -> Result<()> {
    let series = col.as_materialized_series();
    let physical = series.to_physical_repr();
    // Each chunk's cells, as keys, in row order.
    macro_rules! fold_chunks {
        ($ca:expr, $key:expr) => {{
            let mut row = 0;
            for arr in $ca.downcast_iter() {
                let slots = &mut hashes[row..row + arr.len()];
                match arr.validity().filter(|v| v.unset_bits() > 0) {
                    None => slots.iter_mut().zip(arr.values().iter()).for_each(|(h, x)| fold_cell(h, $key(*x))),
                    Some(valid) => slots
                        .iter_mut()
                        .zip(arr.values().iter().zip(valid.iter()))
                        .for_each(|(h, (x, ok))| fold_cell(h, if ok { $key(*x) } else { NULL_CELL })),
                }
                row += arr.len();
            }
        }};
    }
    match physical.dtype() {
        DataType::Int8 => fold_chunks!(physical.i8().map_err(pe("cannot hash rows"))?, |x: i8| x as u64),
        DataType::Int16 => fold_chunks!(physical.i16().map_err(pe("cannot hash rows"))?, |x: i16| x as u64),
        DataType::Int32 => fold_chunks!(physical.i32().map_err(pe("cannot hash rows"))?, |x: i32| x as u64),
        DataType::Int64 => fold_chunks!(physical.i64().map_err(pe("cannot hash rows"))?, |x: i64| x as u64),
        DataType::UInt8 => fold_chunks!(physical.u8().map_err(pe("cannot hash rows"))?, u64::from),
        DataType::UInt16 => fold_chunks!(physical.u16().map_err(pe("cannot hash rows"))?, u64::from),
        DataType::UInt32 => fold_chunks!(physical.u32().map_err(pe("cannot hash rows"))?, u64::from),
        DataType::UInt64 => fold_chunks!(physical.u64().map_err(pe("cannot hash rows"))?, |x: u64| x),
        DataType::Float32 => {
            fold_chunks!(physical.f32().map_err(pe("cannot hash rows"))?, |x: f32| float_key(f64::from(x)))
        }
        DataType::Float64 => fold_chunks!(physical.f64().map_err(pe("cannot hash rows"))?, float_key),
        DataType::Boolean => {
            let ca = physical.bool().map_err(pe("cannot hash rows"))?;
            for (h, v) in hashes.iter_mut().zip(ca.iter()) {
                fold_cell(h, v.map_or(NULL_CELL, |b| u64::from(b) + 1));
            }
        }
        DataType::String => each_text(physical.str().map_err(pe("cannot hash rows"))?, |row, view, text| {
            let h = &mut hashes[row];
            match (text, inline_key(view)) {
                (None, _) => fold_cell(h, NULL_CELL),
                (Some(_), Some(key)) => {
                    fold_cell(h, key as u64);
                    fold_cell(h, (key >> 64) as u64);
                }
                (Some(t), None) => {
                    let mut bytes = MixHasher::default();
                    std::hash::Hasher::write(&mut bytes, t.as_bytes());
                    fold_cell(h, std::hash::Hasher::finish(&bytes) ^ t.len() as u64);
                }
            }
        }),
        _ => {
            let mut cells = Vec::with_capacity(hashes.len());
            col.vec_hash(seed.clone(), &mut cells).map_err(pe("cannot hash rows"))?;
            hashes.iter_mut().zip(cells).for_each(|(h, c)| fold_cell(h, c));
        }
    }
    Ok(())
}

/// Which rows to keep when dropping duplicates, one flag per row.
///
/// Every row gets a hash of all its cells; rows are then spread over parts by the top bits of
/// their hash (keeping row order inside each part), and each part, small enough for its table to
/// stay in cache, finds its repeats on its own, the parts spread over the cores. Rows that share
/// a hash are compared cell by cell, so a hash collision never merges different rows.
pub(crate) fn distinct_rows(keys: DataFrame, keep: Keep) -> Result<Vec<bool>> {
    let n = keys.height();
    if u32::try_from(n).is_err() {
        return Err(CoreError::polars(
            "cannot drop duplicates",
            pl::PolarsError::ComputeError(format!("{n} rows: at most {} rows can be deduplicated", u32::MAX).into()),
        ));
    }
    let hashes = row_hashes(&keys)?;
    let bits = (n / 2048).max(1).ilog2().min(12);
    let part_of = |h: u64| if bits == 0 { 0 } else { (h >> (64 - bits)) as usize };
    // A counting sort of the rows by part, stable, so each part lists its rows in order.
    let mut starts = vec![0usize; (1 << bits) + 1];
    for &h in &hashes {
        starts[part_of(h) + 1] += 1;
    }
    for p in 1..starts.len() {
        starts[p] += starts[p - 1];
    }
    let mut fill = starts.clone();
    let mut rows = vec![0u32; n];
    for (i, &h) in hashes.iter().enumerate() {
        let p = part_of(h);
        rows[fill[p]] = i as u32;
        fill[p] += 1;
    }
    let same_row = |i: usize, j: usize| keys.columns().iter().all(|c| same_cell(c, i, j));
    let parts: Vec<usize> = (0..1 << bits).collect();
    // Each part answers the rows it drops; repeats are few, so these lists are short.
    let dropped = crate::par::map(&parts, |&p| {
        let part = &rows[starts[p]..starts[p + 1]];
        let slots = (part.len() * 2).next_power_of_two().max(2);
        let mask = slots - 1;
        // Open addressing: (hash, row + 1), 0 for an empty slot.
        let mut table = vec![(0u64, 0u32); slots];
        let mut drop = Vec::new();
        let mut visit = |i: u32| {
            let h = hashes[i as usize];
            let mut s = h as usize & mask;
            loop {
                let (sh, r) = table[s];
                if r == 0 {
                    table[s] = (h, i + 1);
                    return;
                }
                if sh == h && same_row((r - 1) as usize, i as usize) {
                    drop.push(i);
                    if keep == Keep::None {
                        // The first of the group goes too (listed once per repeat; harmless).
                        drop.push(r - 1);
                    }
                    return;
                }
                s = (s + 1) & mask;
            }
        };
        match keep {
            Keep::Last => part.iter().rev().for_each(|&i| visit(i)),
            _ => part.iter().for_each(|&i| visit(i)),
        }
        drop
    })
    .ok_or_else(|| thread_failed("a deduplication"))?;
    let mut kept = vec![true; n];
    for i in dropped.into_iter().flatten() {
        kept[i as usize] = false;
    }
    Ok(kept)
}

/// Spreads a row hash's entropy over all its bits (the part comes from the top bits, the slot
/// from the bottom ones).
fn mix(h: u64) -> u64 {
    let mut x = h ^ (h >> 31);
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// How many rows repeat an earlier row in every column (pandas' `df.duplicated().sum()`); nulls
/// equal nulls and NaN equals NaN.
pub fn duplicate_rows(df: &DataFrame) -> Result<usize> {
    if df.width() == 0 {
        return Ok(0);
    }
    Ok(distinct_rows(df.clone(), Keep::First)?.iter().filter(|k| !**k).count())
}
