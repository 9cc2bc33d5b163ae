//! Writing a frame as a Parquet file: polars' encoders and compressors, driven so that every
//! (row group, column) piece is encoded and compressed on whichever core is free, and float
//! columns with few distinct values are dictionary-encoded as pyarrow writes them.

use std::borrow::Cow;
use std::io::Write;

use polars::io::parquet::write::BatchedWriter;
use polars::prelude::{self as pl, CompatLevel, DataFrame, SchemaExt};
use std::collections::HashMap;

use polars_arrow::array::{Array, ArrayRef, DictionaryArray, MutableBinaryViewArray, PrimitiveArray, Utf8ViewArray};
use polars_arrow::bitmap::Bitmap;
use polars_arrow::datatypes::{ArrowDataType, IntegerType};
use polars_parquet::parquet::error::ParquetError;
use polars_parquet::write::{
    CompressedPage, Compressor, FileWriter, Version, WriteOptions, array_to_columns, to_parquet_schema,
};

use super::text::TextKey;
use crate::hash::MixBuild;
use crate::{CoreError, Result};

/// Rows per Parquet row group unless a caller says otherwise (polars' writer default).
pub const DEFAULT_ROW_GROUP: usize = 512 * 512;

/// The most distinct values a float dictionary holds: a 1 MiB dictionary page, pyarrow's limit.
const MAX_DICTIONARY: usize = (1 << 20) / 8;

/// Slots of a float dictionary's table before it first grows (a few under test, so that tests
/// grow it).
const FIRST_SLOTS: usize = if cfg!(test) { 4 } else { 1024 };

/// Values looked at before deciding that a float column has too many distinct values.
const PROBE: usize = 16 * 1024;

/// Writes `df` as one Parquet file at `path`, with column statistics; strings as views, as
/// polars stores them. Row groups hold `row_group_size` rows each; without one, about
/// [`DEFAULT_ROW_GROUP`] rows, cut where the frame's chunks end when that is near, so that no
/// column has to be copied into one piece per row group.
///
/// Each row group's columns are encoded and compressed in parallel, all row groups at once, and
/// the file is written in row order. Integers, texts and dates get dictionaries when polars'
/// encoder finds them worth it; float columns whose distinct values fit a 1 MiB dictionary are
/// dictionary-encoded here (polars' encoder writes every float plainly). That gives smaller files
/// and less for the compressor to do; the values read back are bit for bit the same.
pub fn write_parquet(
    df: &DataFrame,
    path: &std::path::Path,
    compression: pl::ParquetCompression,
    row_group_size: Option<usize>,
) -> Result<()> {
    let failed = |e: pl::PolarsError| CoreError::polars(format!("cannot write {}", path.display()), e);
    let arrow_schema = df.schema().to_arrow(CompatLevel::newest());
    let parquet_schema = to_parquet_schema(&arrow_schema).map_err(failed)?;
    let encodings = polars::io::prelude::get_encodings(&arrow_schema);
    let options = WriteOptions {
        statistics: pl::StatisticsOptions::default(),
        compression: compression.into(),
        version: Version::V1,
        data_page_size: None,
    };
    let groups = match row_group_size {
        Some(size) => plan_row_groups(df.height(), size, &[]),
        None => plan_row_groups(df.height(), DEFAULT_ROW_GROUP, &shared_chunk_ends(df)),
    };
    let pieces: Vec<(usize, usize)> = (0..groups.len()).flat_map(|g| (0..df.width()).map(move |c| (g, c))).collect();
    let encoded = crate::par::map(&pieces, |&(g, c)| -> pl::PolarsResult<Vec<Vec<CompressedPage>>> {
        let (offset, len) = groups[g];
        let field = arrow_schema.get_at_index(c).map(|(_, f)| f).ok_or_else(|| {
            pl::PolarsError::ComputeError(format!("column {c} is missing from the frame's schema").into())
        })?;
        let series = df.columns()[c].as_materialized_series().slice(offset as i64, len).rechunk();
        let array = series.to_arrow_with_field(0, Cow::Borrowed(field), true)?;
        let array = float_dictionary(array.as_ref()).or_else(|| text_dictionary(array.as_ref())).unwrap_or(array);
        let mut leaves = Vec::new();
        for pages in array_to_columns(array, parquet_schema.fields()[c].clone(), options, &encodings[c])? {
            let pages = pages.map(|page| page.map_err(|e| ParquetError::FeatureNotSupported(e.to_string())));
            leaves.push(Compressor::new_from_vec(pages, options.compression, vec![]).collect::<Result<_, _>>()?);
        }
        Ok(leaves)
    })
    .ok_or_else(|| failed(pl::PolarsError::ComputeError("an encoding thread failed".into())))?;
    let mut encoded = encoded.into_iter();
    let file = std::fs::File::create(path).map_err(|e| CoreError::io("cannot create", path, e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    {
        let writer = FileWriter::new_with_parquet_schema(&mut out, arrow_schema, parquet_schema, options);
        let mut writer = BatchedWriter::new(std::sync::Mutex::new(writer), encodings, options, false, None);
        for &(_, len) in &groups {
            let mut group: Vec<Vec<CompressedPage>> = Vec::with_capacity(df.width());
            for piece in encoded.by_ref().take(df.width()) {
                group.extend(piece.map_err(failed)?);
            }
            writer.write_row_group(len as u64, &group).map_err(failed)?;
        }
        writer.finish().map_err(failed)?;
    }
    out.flush().map_err(|e| CoreError::io("cannot write", path, e))?;
    Ok(())
}

/// The rows where every column made of several chunks has a chunk end (columns of one chunk
/// slice anywhere for free), between the first row and the last.
fn shared_chunk_ends(df: &DataFrame) -> Vec<usize> {
    let mut shared: Option<Vec<usize>> = None;
    for col in df.columns() {
        let series = col.as_materialized_series();
        if series.n_chunks() < 2 {
            continue;
        }
        let ends: Vec<usize> = series
            .chunk_lengths()
            .scan(0, |end, len| {
                *end += len;
                Some(*end)
            })
            .filter(|&end| end > 0 && end < df.height())
            .collect();
        shared = Some(match shared {
            None => ends,
            Some(before) => before.into_iter().filter(|e| ends.binary_search(e).is_ok()).collect(),
        });
    }
    shared.unwrap_or_default()
}

/// Row groups as (first row, rows): `size` rows each; with `cuts` (sorted rows where a group may
/// end without copying), each group ends at the cut nearest to `size` rows on, if one lies
/// between half and twice that.
fn plan_row_groups(rows: usize, size: usize, cuts: &[usize]) -> Vec<(usize, usize)> {
    let size = size.max(1);
    let mut groups = Vec::new();
    let mut start = 0;
    while start < rows {
        let ideal = start + size;
        let near = cuts
            .iter()
            .copied()
            .filter(|&c| c >= start + size.div_ceil(2) && c <= start + 2 * size && c < rows)
            .min_by_key(|&c| c.abs_diff(ideal));
        let end = match near {
            Some(c) if ideal < rows => c,
            _ => ideal.min(rows),
        };
        groups.push((start, end - start));
        start = end;
    }
    groups
}

/// A Float64 array as keys into its distinct values, when they fit [`MAX_DICTIONARY`] and
/// neither the first [`PROBE`] values nor the whole array are nearly all distinct (more than
/// 7 in 8); `None` otherwise (and for other types).
/// Values are told apart by their bits, so `-0.0`, `0.0` and every NaN keep their exact form.
fn float_dictionary(array: &dyn Array) -> Option<ArrayRef> {
    let floats = array.as_any().downcast_ref::<PrimitiveArray<f64>>()?;
    if *floats.dtype() != ArrowDataType::Float64 || floats.len() < 2 {
        return None;
    }
    let n = floats.len();
    // Open addressing: the key + 1 per slot, 0 for an empty slot. The table starts small and
    // doubles at half full, so a column of a few distinct values probes a table in L1.
    let mut table = vec![0u32; FIRST_SLOTS];
    // Fibonacci hashing: the top bits of the product depend on every bit of the value (round
    // numbers have all their low bits zero).
    let slot = |bits: u64, mask: usize| (bits.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - mask.count_ones())) as usize;
    let mut values: Vec<f64> = Vec::new();
    let mut keys: Vec<u32> = Vec::with_capacity(n);
    let validity = floats.validity();
    for (i, &v) in floats.values().iter().enumerate() {
        if i == PROBE && values.len() * 8 > PROBE * 7 {
            return None;
        }
        if validity.is_some_and(|b| !b.get_bit(i)) {
            keys.push(0);
            continue;
        }
        let bits = v.to_bits();
        let mask = table.len() - 1;
        let mut s = slot(bits, mask);
        let key = loop {
            match table[s] {
                0 => {
                    if values.len() == MAX_DICTIONARY {
                        return None;
                    }
                    values.push(v);
                    table[s] = values.len() as u32;
                    if values.len() * 2 > table.len() {
                        table = vec![0u32; table.len() * 2];
                        let mask = table.len() - 1;
                        for (k, value) in values.iter().enumerate() {
                            let mut s = slot(value.to_bits(), mask);
                            while table[s] != 0 {
                                s = (s + 1) & mask;
                            }
                            table[s] = k as u32 + 1;
                        }
                    }
                    break values.len() as u32 - 1;
                }
                k if values[k as usize - 1].to_bits() == bits => break k - 1,
                _ => s = (s + 1) & mask,
            }
        };
        keys.push(key);
    }
    dictionary_of(n, keys, validity, PrimitiveArray::new(ArrowDataType::Float64, values.into(), None).boxed())
}

/// The dictionary array of `keys` into `values`, unless there are no values or they are nearly
/// as many as the `n` rows (more than 7 in 8).
fn dictionary_of(n: usize, keys: Vec<u32>, validity: Option<&Bitmap>, values: ArrayRef) -> Option<ArrayRef> {
    if values.is_empty() || values.len() * 8 > n * 7 {
        return None;
    }
    let keys = PrimitiveArray::new(ArrowDataType::UInt32, keys.into(), validity.cloned());
    let dtype = ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(values.dtype().clone()), false);
    DictionaryArray::<u32>::try_new(dtype, keys, values).ok().map(|d| d.boxed())
}

/// Most bytes of distinct texts a text dictionary holds: a 1 MiB dictionary page, pyarrow's
/// limit.
const MAX_TEXT_DICTIONARY: usize = 1 << 20;

/// A text array as keys into its distinct texts, built in one pass (short texts found by their
/// view, longer ones by their bytes), when the texts fit [`MAX_TEXT_DICTIONARY`] and neither the
/// first [`PROBE`] values nor the whole array are nearly all distinct; `None` otherwise (and for
/// other types), leaving the choice to polars' encoder.
fn text_dictionary(array: &dyn Array) -> Option<ArrayRef> {
    let texts = array.as_any().downcast_ref::<Utf8ViewArray>()?;
    let n = texts.len();
    if n < 2 {
        return None;
    }
    let validity = texts.validity();
    let mut index: HashMap<TextKey<'_>, u32, MixBuild> = HashMap::default();
    let mut values = MutableBinaryViewArray::<str>::new();
    let mut bytes = 0;
    let mut keys: Vec<u32> = Vec::with_capacity(n);
    for (i, view) in texts.views().iter().enumerate() {
        if i == PROBE && values.len() * 8 > PROBE * 7 {
            return None;
        }
        if validity.is_some_and(|b| !b.get_bit(i)) {
            keys.push(0);
            continue;
        }
        let text = texts.value(i);
        let next = values.len() as u32;
        let key = *index.entry(TextKey::of(view, text)).or_insert(next);
        if key == next {
            bytes += text.len();
            if bytes > MAX_TEXT_DICTIONARY {
                return None;
            }
            values.push_value(text);
        }
        keys.push(key);
    }
    let values: Utf8ViewArray = values.into();
    dictionary_of(n, keys, validity, values.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::IntoColumn;

    fn read(path: &std::path::Path) -> DataFrame {
        pl::LazyFrame::scan_parquet(pl::PlRefPath::new(path.to_str().unwrap()), Default::default())
            .and_then(|l| l.collect())
            .unwrap()
    }

    #[test]
    fn parquet_round_trips_and_a_bad_path_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let df = pl::df!("x" => [Some(1i64), None, Some(3)], "s" => [Some("a"), Some("b"), None]).unwrap();
        let path = dir.path().join("a.parquet");
        write_parquet(&df, &path, pl::ParquetCompression::default(), Some(2)).unwrap();
        assert!(df.equals_missing(&read(&path)));
        // No rows: the schema alone round-trips.
        let empty = df.head(Some(0));
        let path = dir.path().join("empty.parquet");
        write_parquet(&empty, &path, pl::ParquetCompression::default(), None).unwrap();
        let back = read(&path);
        assert_eq!((back.height(), back.schema()), (0, empty.schema()));
        let missing = dir.path().join("no").join("such").join("b.parquet");
        let err = write_parquet(&df, &missing, pl::ParquetCompression::default(), Some(2)).unwrap_err().to_string();
        assert!(err.contains("b.parquet"), "{err}");
    }

    /// The row groups of a file, each as one flag per column: whether it has a dictionary page.
    fn dictionaries(path: &std::path::Path) -> Vec<Vec<bool>> {
        let meta = polars_parquet::read::read_metadata(&mut std::fs::File::open(path).unwrap()).unwrap();
        meta.row_groups
            .iter()
            .map(|g| g.parquet_columns().iter().map(|c| c.dictionary_page_offset().is_some()).collect())
            .collect()
    }

    #[test]
    fn floats_with_few_distinct_values_get_a_dictionary_and_read_back_bit_for_bit() {
        let n = 40_000;
        let few: Vec<Option<f64>> = (0..n)
            .map(|i| match i % 7 {
                0 => None,
                1 => Some(-0.0),
                2 => Some(f64::NAN),
                3 => Some(f64::INFINITY),
                _ => Some((i % 50) as f64 * 0.25),
            })
            .collect();
        let many: Vec<f64> = (0..n).map(|i| (i as f64).sqrt()).collect();
        let all_null: Vec<Option<f64>> = vec![None; n];
        // Whole numbers in a small range with nulls (one-hot columns).
        let hot: Vec<Option<f64>> = (0..n).map(|i| (i % 9 != 0).then_some(f64::from(u8::from(i % 4 == 0)))).collect();
        // Whole numbers and one `-0.0`, which the dictionary keeps apart from `0.0`.
        let signed: Vec<f64> = (0..n).map(|i| if i == 77 { -0.0 } else { (i % 5) as f64 - 2.0 }).collect();
        let mut df = pl::df!(
            "few" => &few, "many" => &many, "none" => &all_null, "id" => (0..n as i64).collect::<Vec<_>>(),
            "hot" => &hot, "signed" => &signed,
        )
        .unwrap();
        // Two chunks per column, cut where no row group ends.
        df.vstack_mut(&df.slice(0, 1234)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.parquet");
        write_parquet(&df, &path, pl::ParquetCompression::Zstd(None), Some(16_384)).unwrap();
        let back = read(&path);
        assert_eq!(back.height(), df.height());
        for name in ["few", "many", "none", "hot", "signed"] {
            let bits = |f: &DataFrame| -> Vec<Option<u64>> {
                f.column(name).unwrap().f64().unwrap().iter().map(|v| v.map(f64::to_bits)).collect()
            };
            assert_eq!(bits(&back), bits(&df), "{name}");
        }
        assert!(back.column("id").unwrap().equals_missing(df.column("id").unwrap()));
        let groups = dictionaries(&path);
        assert_eq!(groups.len(), df.height().div_ceil(16_384));
        for group in &groups {
            assert!(group[0], "few distinct floats: a dictionary");
            assert!(!group[1], "all distinct floats: plain");
            assert!(group[4] && group[5], "whole numbers in a small range: a dictionary");
        }
    }

    #[test]
    fn texts_with_few_distinct_values_get_a_dictionary_and_read_back() {
        let n = 40_000;
        let long = "a text longer than a view holds";
        let few: Vec<Option<&str>> = (0..n)
            .map(|i| match i % 6 {
                0 => None,
                1 => Some(""),
                2 => Some(long),
                3 => Some("north"),
                _ => Some(["cat_1", "cat_2", "Cat_1"][i % 3]),
            })
            .collect();
        let many: Vec<String> = (0..n).map(|i| format!("id-{i}")).collect();
        let df = pl::df!("few" => &few, "many" => &many).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        write_parquet(&df, &path, pl::ParquetCompression::Zstd(None), Some(16_384)).unwrap();
        assert!(read(&path).equals_missing(&df));
        for group in dictionaries(&path) {
            assert!(group[0], "few distinct texts: a dictionary");
        }
        assert!(
            text_dictionary(
                df.column("many").unwrap().as_materialized_series().to_arrow(0, CompatLevel::newest()).as_ref()
            )
            .is_none()
        );
    }

    #[test]
    fn row_groups_end_at_chunk_ends_near_their_size() {
        // Fixed size: the last group holds the rest.
        assert_eq!(plan_row_groups(10, 4, &[]), vec![(0, 4), (4, 4), (8, 2)]);
        assert_eq!(plan_row_groups(0, 4, &[3]), vec![]);
        // Chunk ends at 3, 7 and 16 with groups of about 4 rows: 16 is more than twice the size
        // past 7, so that group is cut at its size; the next one ends at 16.
        assert_eq!(plan_row_groups(20, 4, &[3, 7, 16]), vec![(0, 3), (3, 4), (7, 4), (11, 5), (16, 4)]);
        // A cut closer than half the size is skipped.
        assert_eq!(plan_row_groups(8, 4, &[1, 5]), vec![(0, 5), (5, 3)]);

        // A frame of three chunks whose ends every multi-chunk column shares; a one-chunk
        // column does not constrain them.
        let part = |from: i64, n: i64| {
            pl::df!("a" => (from..from + n).collect::<Vec<_>>(), "b" => (from..from + n).map(|x| x as f64).collect::<Vec<_>>())
                .unwrap()
        };
        let mut df = part(0, 300);
        df.vstack_mut(&part(300, 500)).unwrap();
        df.vstack_mut(&part(800, 200)).unwrap();
        assert_eq!(shared_chunk_ends(&df), vec![300, 800]);
        let one = df.column("b").unwrap().as_materialized_series().rechunk();
        let mut rechunked = df.clone();
        rechunked.with_column(one.with_name("c".into()).into_column()).unwrap();
        assert_eq!(shared_chunk_ends(&rechunked), vec![300, 800]);
    }

    proptest::proptest! {
        #[test]
        fn a_float_dictionary_gives_back_every_value(
            values in proptest::prop_oneof![
                proptest::collection::vec(
                    proptest::option::of(proptest::prop_oneof![
                        proptest::strategy::Strategy::prop_map(0u8..20, |k| f64::from(k) / 4.0),
                        proptest::num::f64::ANY,
                    ]),
                    0..300,
                ),
                // Whole numbers, some `-0.0` among them.
                proptest::collection::vec(
                    proptest::option::of(proptest::prop_oneof![
                        20 => proptest::strategy::Strategy::prop_map(-6i8..6, f64::from),
                        1 => proptest::strategy::Just(-0.0),
                        1 => proptest::strategy::Just(1e6),
                    ]),
                    0..300,
                ),
            ]
        ) {
            let array = PrimitiveArray::<f64>::from(values.clone());
            if let Some(dict) = float_dictionary(&array) {
                let dict = dict.as_any().downcast_ref::<DictionaryArray<u32>>().unwrap();
                let distinct = dict.values().as_any().downcast_ref::<PrimitiveArray<f64>>().unwrap();
                let back: Vec<Option<u64>> = (0..dict.len())
                    .map(|i| dict.keys().is_valid(i).then(|| distinct.value(dict.keys().value(i) as usize).to_bits()))
                    .collect();
                let want: Vec<Option<u64>> = values.iter().map(|v| v.map(f64::to_bits)).collect();
                proptest::prop_assert_eq!(back, want);
                let mut seen: Vec<u64> = distinct.values().iter().map(|v| v.to_bits()).collect();
                seen.sort_unstable();
                seen.dedup();
                proptest::prop_assert_eq!(seen.len(), distinct.len(), "each value once");
            }
        }

        #[test]
        fn a_text_dictionary_gives_back_every_value(
            values in proptest::collection::vec(
                proptest::option::of(proptest::sample::select(vec![
                    "", "a", "b", "twelve bytes", "thirteen byte", "a longer text than any view holds", "é",
                ])),
                0..300,
            )
        ) {
            let array = Utf8ViewArray::from_slice(&values);
            if let Some(dict) = text_dictionary(&array) {
                let dict = dict.as_any().downcast_ref::<DictionaryArray<u32>>().unwrap();
                let distinct = dict.values().as_any().downcast_ref::<Utf8ViewArray>().unwrap();
                let back: Vec<Option<&str>> = (0..dict.len())
                    .map(|i| dict.keys().is_valid(i).then(|| distinct.value(dict.keys().value(i) as usize)))
                    .collect();
                proptest::prop_assert_eq!(&back, &values);
                let mut seen: Vec<&str> = distinct.values_iter().collect();
                seen.sort_unstable();
                seen.dedup();
                proptest::prop_assert_eq!(seen.len(), distinct.len(), "each value once");
            }
        }
    }
}
