//! The frame side: conversions between polars frames, rows and matrices, the frame path of every
//! fitted [`Op`], and the content hash that versions a dataset.

//!
//! `convert` holds the conversions, `text` the fast paths for text columns, `fingerprint` the
//! dataset hash and duplicate detection, `parquet` the writer. The frame path of each [`Op`] sits
//! beside its row path in [`crate::ops`].
//!
//! [`Op`]: crate::Op

mod convert;
mod fingerprint;
mod parquet;
mod text;

pub use convert::*;
pub(crate) use fingerprint::distinct_rows;
pub use fingerprint::{ColumnStats, FRAME_HASH_SCHEME, duplicate_rows, frame_hash, frame_hash_and_stats};
pub use parquet::{DEFAULT_ROW_GROUP, write_parquet};
pub(crate) use text::par_text;
pub use text::{ShortTextMemo, map_texts, text_views};

/// Where a frame is being transformed: training applies row filters, inference keeps every row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Building a training set: row filters drop rows.
    Training,
    /// Scoring: one output row per input row.
    Inference,
}

#[cfg(test)]
mod tests {
    use polars::prelude::{self as pl, Column, DataType};

    use super::fingerprint::SMALL_DISTINCT;
    use super::*;
    use crate::value::DType;

    #[test]
    fn hash_ignores_chunking() {
        let a = pl::df!("x" => [1i64, 2, 3, 4], "s" => ["a", "b", "c", "d"]).unwrap();
        let mut b = a.slice(0, 2);
        b.vstack_mut(&a.slice(2, 2)).unwrap();
        assert!(b.first_col_n_chunks() > 1);
        assert_eq!(frame_hash(&a).unwrap(), frame_hash(&b).unwrap());
        let c = pl::df!("x" => [1i64, 2, 3, 5], "s" => ["a", "b", "c", "d"]).unwrap();
        assert_ne!(frame_hash(&a).unwrap(), frame_hash(&c).unwrap());
    }

    proptest::proptest! {
        /// Numeric chunks without nulls are hashed block by block, chunks with nulls value by
        /// value; both write the bytes of one pass, so the hash and the counts ignore how the
        /// nulls fall into chunks.
        #[test]
        fn hash_and_counts_ignore_which_chunks_hold_nulls(
            head in proptest::collection::vec(-50i64..50, 0..6000),
            tail in proptest::collection::vec(proptest::option::of(-50i64..50), 0..6000),
        ) {
            let ints: Vec<Option<i64>> = head.iter().copied().map(Some).chain(tail.iter().copied()).collect();
            let floats: Vec<Option<f64>> = ints.iter().map(|v| v.map(|x| x as f64 / 4.0)).collect();
            let whole = pl::df!("i" => &ints, "f" => &floats).expect("frame");
            let mut split = whole.slice(0, head.len());
            split.vstack_mut(&whole.slice(head.len() as i64, tail.len())).expect("vstack");
            proptest::prop_assert_eq!(
                frame_hash_and_stats(&whole).expect("whole"),
                frame_hash_and_stats(&split).expect("split")
            );
        }
    }

    proptest::proptest! {
        /// Null and distinct counts are those of a plain count over the values, for few and
        /// many distinct numbers (the small hash set and the hash partitions), NaN and signed zeros, short and
        /// long texts; and the hash tells apart a null from a zero or an empty text.
        #[test]
        fn stats_count_nulls_and_distinct_values(
            ints in proptest::collection::vec(proptest::option::of(-3000i64..3000), 0..5000),
            spread in 1i64..4000,
            scale in proptest::prop_oneof![proptest::strategy::Just(1i64), proptest::strategy::Just(1 << 40)],
            texts in proptest::collection::vec(proptest::option::of("[ab]{0,3}|[ab]{14,17}"), 0..300),
        ) {
            let ints: Vec<Option<i64>> = ints.iter().map(|v| v.map(|x| (x % spread) * scale)).collect();
            let floats: Vec<Option<f64>> = ints
                .iter()
                .map(|v| v.map(|x| match x % 7 { 0 => f64::NAN, 1 => -0.0, 2 => 0.0, _ => x as f64 / (8 * scale) as f64 }))
                .collect();
            let df = pl::df!("i" => &ints, "f" => &floats).expect("frame");
            let t = pl::df!("t" => &texts).expect("frame");
            let (_, stats) = frame_hash_and_stats(&df).expect("stats");
            let (_, text_stats) = frame_hash_and_stats(&t).expect("stats");
            let count = |keys: Vec<Option<String>>| {
                let nulls = keys.iter().filter(|k| k.is_none()).count();
                let set: std::collections::HashSet<Option<String>> = keys.into_iter().collect();
                ColumnStats { nulls, unique: set.len() }
            };
            let float_key = |x: f64| if x.is_nan() { "nan".to_string() } else { (x + 0.0).to_string() };
            proptest::prop_assert_eq!(stats[0], count(ints.iter().map(|v| v.map(|x| x.to_string())).collect()));
            proptest::prop_assert_eq!(stats[1], count(floats.iter().map(|v| v.map(float_key)).collect()));
            proptest::prop_assert_eq!(text_stats[0], count(texts.clone()));
        }
    }

    #[test]
    fn distinct_counts_past_the_small_set_are_exact() {
        for n in [SMALL_DISTINCT - 1, SMALL_DISTINCT, SMALL_DISTINCT + 1, 10_000] {
            let keep = |i: &usize| !i.is_multiple_of(3);
            let fractions: Vec<Option<f64>> = (0..2 * n).map(|i| keep(&i).then_some((i % n) as f64 / 4.0)).collect();
            let whole: Vec<Option<f64>> = (0..2 * n).map(|i| keep(&i).then_some((i % n) as f64)).collect();
            let wide: Vec<Option<i64>> =
                (0..2 * n).map(|i| keep(&i).then_some((i % n) as i64 * 1_000_000_007 - 1)).collect();
            let narrow: Vec<Option<i64>> = (0..2 * n).map(|i| keep(&i).then_some((i % n) as i64 - 5)).collect();
            let df =
                pl::df!("fractions" => &fractions, "whole" => &whole, "wide" => &wide, "narrow" => &narrow).unwrap();
            let expected = (0..2 * n).filter(keep).map(|i| i % n).collect::<std::collections::HashSet<_>>().len();
            let nulls = (0..2 * n).filter(|i| !keep(i)).count();
            let (_, stats) = frame_hash_and_stats(&df).unwrap();
            for (name, s) in column_names(&df).iter().zip(stats) {
                assert_eq!(s, ColumnStats { nulls, unique: expected + 1 }, "{name} with {n} distinct");
            }
        }
    }

    /// The content hash is a dataset's version: the same data must keep its version from one
    /// build to the next, whatever the code that reads the values.
    #[test]
    fn content_hash_is_stable_across_builds() {
        let long = "a text longer than the twelve bytes a view holds";
        let mut df = pl::df!(
            "i" => [Some(1i64), None, Some(-3)],
            "f" => [Some(-0.0), Some(f64::NAN), None],
            "s" => [Some("short"), None, Some(long)],
            "b" => [Some(true), None, Some(false)],
        )
        .unwrap();
        let days = Column::new("d".into(), [Some(19_000i32), None, Some(-1)]).cast(&DataType::Date).unwrap();
        df.with_column(days).unwrap();
        let mut chunked = df.slice(0, 1);
        chunked.vstack_mut(&df.slice(1, 2)).unwrap();
        let (hash, stats) = frame_hash_and_stats(&chunked).unwrap();
        assert_eq!(hash, "57477860f7bc6e9f20128520ef8d8d5b7d4344d29f30fe96398e2b8b1ecc73c5");
        let counts: Vec<(usize, usize)> = stats.iter().map(|s| (s.nulls, s.unique)).collect();
        assert_eq!(counts, [(1, 3); 5]);
    }

    #[test]
    fn nulls_hash_apart_from_zeros_and_empty_texts() {
        let a = pl::df!("x" => [Some(0i64), Some(1)], "s" => [Some(""), Some("a")]).unwrap();
        let b = pl::df!("x" => [None, Some(1i64)], "s" => [Some(""), Some("a")]).unwrap();
        let c = pl::df!("x" => [Some(0i64), Some(1)], "s" => [None, Some("a")]).unwrap();
        let d = pl::df!("x" => [Some(0i64), None], "s" => [Some(""), Some("a")]).unwrap();
        let hashes: std::collections::HashSet<String> =
            [&a, &b, &c, &d].iter().map(|f| frame_hash(f).unwrap()).collect();
        assert_eq!(hashes.len(), 4);
    }

    #[test]
    fn matrix_names_null_column() {
        let df = pl::df!("a" => [Some(1.0), None]).unwrap();
        let err = to_matrix(&df, &["a".into()]).unwrap_err().to_string();
        assert!(err.contains("`a` row 1"), "{err}");
    }

    #[test]
    fn rows_round_trip() {
        let df = pl::df!("x" => [Some(1i64), None], "s" => [Some("a"), None], "f" => [0.5, 1.5]).unwrap();
        let rows = rows_from_frame(&df).unwrap();
        let back =
            frame_from_rows(&rows, &[("x".into(), DType::Int), ("s".into(), DType::Str), ("f".into(), DType::Float)])
                .unwrap();
        assert!(df.equals_missing(&back));
    }
}
