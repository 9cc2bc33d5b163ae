//! Text columns read fast: a function of a text computed once per distinct short text (found
//! again by its inline view), and a text column mapped slice by slice over the cores.

use polars::prelude::{self as pl, Series, StringChunked};

use super::*;
use crate::Result;
use crate::hash::MixBuild;

/// Rows below which a column is mapped on one thread.
const PAR_MIN_ROWS: usize = 64 * 1024;

/// Maps a text column slice by slice, a slice per core, and joins the results in row order into
/// one contiguous column. Each slice gets the same function, so the result is the one a single
/// pass would give.
pub(crate) fn par_text(ca: &StringChunked, f: impl Fn(&StringChunked) -> Series + Sync) -> Result<Series> {
    let n = ca.len();
    let parts = crate::par::cores().min(n / PAR_MIN_ROWS).max(1);
    if parts == 1 {
        return Ok(f(ca));
    }
    let bounds: Vec<(usize, usize)> = (0..parts).map(|p| (p * n / parts, (p + 1) * n / parts)).collect();
    let failed = || thread_failed("a conversion");
    let pieces = crate::par::map(&bounds, |&(lo, hi)| f(&ca.slice(lo as i64, hi - lo))).ok_or_else(failed)?;
    let mut pieces = pieces.into_iter();
    let mut out = pieces.next().ok_or_else(failed)?;
    for piece in pieces {
        out.append(&piece).map_err(pe("cannot join converted parts"))?;
    }
    Ok(out.rechunk())
}

/// A text held inside its view (at most 12 bytes) as one key: its length and bytes, the unused
/// bytes masked off; `None` for a longer text.
pub(crate) fn inline_key(view: &polars_arrow::array::View) -> Option<u128> {
    (view.length <= polars_arrow::array::View::MAX_INLINE_SIZE).then(|| {
        let used = 32 + 8 * view.length;
        let bits = view.as_u128();
        if used >= 128 { bits } else { bits & ((1u128 << used) - 1) }
    })
}

/// Calls `f(row, view, text)` for each text of a column in row order (`None` for a null),
/// reading the chunks' views directly.
pub(crate) fn each_text<'a>(
    ca: &'a pl::StringChunked,
    mut f: impl FnMut(usize, &polars_arrow::array::View, Option<&'a str>),
) {
    text_views(ca).enumerate().for_each(|(row, (view, text))| f(row, view, text));
}

/// A text as a key for telling texts apart: a short one (at most 12 bytes) by its inline view,
/// a longer one by its bytes.
#[derive(PartialEq, Eq)]
pub(crate) enum TextKey<'a> {
    Short(u128),
    Long(&'a str),
}

impl<'a> TextKey<'a> {
    pub(crate) fn of(view: &polars_arrow::array::View, text: &'a str) -> TextKey<'a> {
        inline_key(view).map_or(TextKey::Long(text), TextKey::Short)
    }
}

impl std::hash::Hash for TextKey<'_> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        match self {
            TextKey::Short(key) => h.write_u128(*key),
            TextKey::Long(text) => text.hash(h),
        }
    }
}

/// Distinct short texts a [`ShortTextMemo`] remembers before it stops taking new ones (a few
/// under test, so that tests fill it and turn it off).
const MEMO_MAX: usize = if cfg!(test) { 4 } else { 4096 };

/// Results of a function of a text, remembered per distinct short text (at most 12 bytes,
/// held in its view: categories, codes, dates, flags), so that a column of few distinct values
/// computes each once and finds the rest by one lookup of the view. Longer texts, and new texts
/// once [`MEMO_MAX`] are remembered, are left to the caller; once as many again have missed, the
/// memo stops looking, so a column of distinct values pays for little more than a small table.
pub struct ShortTextMemo<T> {
    seen: std::collections::HashMap<u128, T, MixBuild>,
    misses: usize,
}

impl<T> Default for ShortTextMemo<T> {
    fn default() -> Self {
        ShortTextMemo { seen: std::collections::HashMap::default(), misses: 0 }
    }
}

impl<T> ShortTextMemo<T> {
    /// The result for the text of `view`, computed by `f` the first time; `None` when the text
    /// is long, or the memo is full and has not seen it.
    pub fn get_or(&mut self, view: &polars_arrow::array::View, f: impl FnOnce() -> T) -> Option<&T> {
        if self.misses > MEMO_MAX {
            return None;
        }
        let key = inline_key(view)?;
        if self.seen.len() < MEMO_MAX {
            return Some(self.seen.entry(key).or_insert_with(f));
        }
        let found = self.seen.get(&key);
        self.misses += usize::from(found.is_none());
        found
    }
}

/// Each text of a column in row order with its view (`None` for a null).
pub fn text_views(ca: &StringChunked) -> impl Iterator<Item = (&polars_arrow::array::View, Option<&str>)> {
    ca.downcast_iter().flat_map(|arr| {
        let valid = polars_arrow::array::Array::validity(arr).filter(|v| v.unset_bits() > 0);
        arr.views()
            .iter()
            .enumerate()
            .map(move |(i, view)| (view, if valid.is_some_and(|v| !v.get_bit(i)) { None } else { Some(arr.value(i)) }))
    })
}

/// `f` of each text of a column in row order (`None` for a null), computed once per distinct
/// short text (see [`ShortTextMemo`]).
pub fn map_texts<'a, T: Clone + 'a>(
    ca: &'a StringChunked,
    mut f: impl FnMut(&str) -> T + 'a,
) -> impl Iterator<Item = Option<T>> + 'a {
    let mut memo = ShortTextMemo::default();
    text_views(ca).map(move |(view, text)| {
        text.map(|t| match memo.get_or(view, || f(t)) {
            Some(v) => v.clone(),
            None => f(t),
        })
    })
}
