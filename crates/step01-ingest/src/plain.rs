//! Plain CSV: the common file with a header, no line breaks inside quoted fields, no blank lines
//! and `\n` line ends, read in one pass per piece instead of a pre-pass and polars' parse.
//!
//! polars infers the types from the first `infer_schema_rows` rows, as for any CSV; the body is
//! then cut at line ends into pieces that are read and parsed on all cores, a block at a time,
//! while another core hashes the file. A piece checks its own record shapes and encoding as it
//! parses, so the bytes are walked once. Numbers are parsed with the functions polars' reader
//! uses (`atoi_simd`, `fast-float2`), so the frame is the one polars would give.
//!
//! Anything this reader does not handle sends the file to the general reader, which reads it or
//! names the problem: a line break inside quotes, a quote inside an unquoted field, `\r`, a blank
//! line, a record of the wrong width, invalid UTF-8, a value the inferred type cannot hold, or a
//! type other than integer, float or text.

use polars::prelude::{
    ChunkedBuilder, Column, DataFrame, DataType, Float64Type, Int64Type, IntoColumn, IntoSeries,
    PrimitiveChunkedBuilder, Schema, SerReader, StringChunkedBuilder,
};

use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::{CsvSource, Encoding};
use crate::csv::{Scan, ends_in_lone_quote, open_error, read_error, reader_options};
use crate::error::{IngestError, Result};

/// Whether a source's options leave the file to this reader (the file itself may still not).
pub(crate) fn applies(opts: &CsvSource) -> bool {
    opts.encoding == Encoding::Utf8
        && opts.has_header
        && opts.skip_rows == 0
        && opts.comment_prefix.is_none()
        && opts.columns.is_none()
        && opts.limit.is_none()
        && !opts.low_memory
        && !opts.parse_dates
        && opts.infer_schema_rows > 0
        && u8::try_from(opts.delimiter).is_ok_and(|d| d.is_ascii() && d != b'\n' && d != b'\r')
        && opts.quote_char.is_none_or(|q| q.is_ascii() && q != opts.delimiter)
}

/// Bytes each piece worker reads at a time; lines are parsed block by block from one buffer.
/// Small under test, so that lines cross blocks and outgrow the buffer.
const BLOCK: usize = if cfg!(test) { 4096 } else { 1 << 20 };

/// Reads `buf.len()` bytes at `pos`.
fn read_at(file: &mut File, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(pos))?;
    file.read_exact(buf)
}

/// Reads a plain CSV file: its scan facts and frame, or `None` when the file is not plain and the
/// general reader should take it. Errors are only those of opening and reading the file.
///
/// The file is never held whole: each piece's worker reads its byte range block by block into
/// one buffer of its own. The hash reads the file in order on a thread of its own, started
/// first so that it runs beside the type inference; it stops early when the file is not plain.
pub(crate) fn read(opts: &CsvSource) -> Result<Option<(Scan, DataFrame)>> {
    let path = opts.path.as_path();
    let mut file = File::open(path).map_err(|e| open_error(path, e))?;
    let size = file.metadata().map_err(|e| read_failed(path, e))?.len();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        // A small stack, as mlops_core::par's threads have: the hash needs little.
        let hashing = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn_scoped(s, || mlops_core::hash::sha256_file_unless(path, &stop))
            .map_err(|e| read_failed(path, e))?;
        // Whatever way this returns, a hash still running is no longer wanted.
        let _stop = StopOnDrop(&stop);
        let Some(frame) = parse(opts, &mut file, size)? else {
            return Ok(None);
        };
        let sha256 = hashing.join().map_err(|_| {
            read_error(path, polars::prelude::PolarsError::ComputeError("the hashing thread failed".into()))
        })?;
        let sha256 = sha256.map_err(IngestError::from)?;
        Ok(sha256.map(|sha256| (Scan { sha256, size, transcoded: None }, frame)))
    })
}

/// Sets the flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The frame of a plain file, or `None` when it is not plain.
fn parse(opts: &CsvSource, file: &mut File, size: u64) -> Result<Option<DataFrame>> {
    let path = opts.path.as_path();
    // The header and the first rows, read by polars: the column names and inferred types.
    let Some(head) = read_head(file, size, opts.infer_schema_rows + 1).map_err(|e| read_failed(path, e))? else {
        return Ok(None);
    };
    let Some(header_end) = memchr::memchr(b'\n', &head) else { return Ok(None) };
    // A byte-order mark, or invalid UTF-8 in the header or the sample (polars' sample read
    // would take it; the pieces check only the rows they parse): the general reader's.
    let delimiter = u8::try_from(opts.delimiter).unwrap_or(b',');
    let lone_quote =
        opts.quote_char.and_then(|q| u8::try_from(q).ok()).is_some_and(|q| ends_in_lone_quote(&head, q, delimiter));
    if head.starts_with(b"\xEF\xBB\xBF") || std::str::from_utf8(&head).is_err() || lone_quote {
        return Ok(None);
    }
    let sample =
        reader_options(opts, Some(opts.infer_schema_rows))?.into_reader_with_file_handle(Cursor::new(&head)).finish();
    let Ok(sample) = sample else { return Ok(None) };
    let schema = sample.schema();
    let kinds: Option<Vec<Kind>> = schema.iter_values().map(Kind::of).collect();
    let Some(kinds) = kinds else { return Ok(None) };
    let header = &head[..header_end];
    if sample.height() == 0 || header.iter().filter(|&&b| b == delimiter).count() + 1 != kinds.len() {
        return Ok(None);
    }
    // The first line must be the header polars read: it skips leading blank lines (found by
    // fuzzing: `\nq\n8` was two rows here, one there) and renames duplicate names. Unquoted
    // names are compared as they stand; a quoted header goes to the general reader.
    let quoted = opts.quote_char.and_then(|q| u8::try_from(q).ok()).is_some_and(|q| header.contains(&q));
    if header.is_empty() || quoted || !schema.iter_names().map(|n| n.as_bytes()).eq(header.split(|&b| b == delimiter)) {
        return Ok(None);
    }
    let layout = Layout {
        delimiter,
        quote: opts.quote_char.and_then(|q| u8::try_from(q).ok()),
        nulls: opts.null_values.iter().map(|s| s.as_bytes().to_vec()).collect(),
        schema: schema.clone(),
        kinds,
        bytes_per_row: (head.len() - header_end) / sample.height().max(1) + 1,
    };
    let body_start = header_end as u64 + 1;
    let cuts = line_cuts(file, body_start, size, mlops_core::par::cores() * 4).map_err(|e| read_failed(path, e))?;
    let pieces: Vec<(u64, u64)> = cuts.windows(2).filter(|w| w[0] < w[1]).map(|w| (w[0], w[1])).collect();
    let done = mlops_core::par::map(&pieces, |&(from, to)| {
        File::open(path).and_then(|mut f| layout.parse_range(&mut f, from, to)).map_err(|e| read_failed(path, e))
    })
    .ok_or_else(|| read_error(path, polars::prelude::PolarsError::ComputeError("a parsing thread failed".into())))?;
    let mut columns: Option<Vec<Column>> = None;
    for part in done {
        match (part?, &mut columns) {
            (None, _) => {
                tracing::debug!("not a plain CSV; the general reader takes it");
                return Ok(None);
            }
            (Some(part), None) => columns = Some(part),
            (Some(part), Some(columns)) => {
                for (c, p) in columns.iter_mut().zip(part) {
                    c.append(&p).map_err(|e| read_error(path, e))?;
                }
            }
        }
    }
    let Some(columns) = columns else { return Ok(None) };
    let height = columns.first().map_or(0, Column::len);
    let frame = DataFrame::new(height, columns).map_err(|e| read_error(path, e))?;
    tracing::debug!(rows = frame.height(), "read as a plain CSV");
    Ok(Some(frame))
}

fn read_failed(path: &Path, e: std::io::Error) -> IngestError {
    mlops_core::CoreError::io("cannot read", path, e).into()
}

/// The file's first `lines` lines (all of it when shorter); `None` for an empty file.
fn read_head(file: &mut File, size: u64, lines: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    let mut found = 0;
    while (head.len() as u64) < size {
        let from = head.len();
        let want = (BLOCK as u64).min(size - from as u64) as usize;
        head.resize(from + want, 0);
        read_at(file, &mut head[from..], from as u64)?;
        for nl in memchr::memchr_iter(b'\n', &head[from..]) {
            found += 1;
            if found == lines {
                head.truncate(from + nl + 1);
                return Ok(Some(head));
            }
        }
    }
    Ok((!head.is_empty()).then_some(head))
}

/// Offsets that cut `from..size` into about `parts` ranges of whole lines: each cut falls just
/// after a line end.
fn line_cuts(file: &mut File, from: u64, size: u64, parts: usize) -> std::io::Result<Vec<u64>> {
    let mut cuts = vec![from];
    let step = (size - from.min(size)) / parts.max(1) as u64 + 1;
    let mut window = vec![0u8; 64 * 1024];
    let mut at = from + step;
    while at < size {
        // The first line end at or after `at - 1`, read a window at a time.
        let mut pos = at - 1;
        let cut = loop {
            if pos >= size {
                break size;
            }
            let n = (window.len() as u64).min(size - pos) as usize;
            read_at(file, &mut window[..n], pos)?;
            if let Some(i) = memchr::memchr(b'\n', &window[..n]) {
                break pos + i as u64 + 1;
            }
            pos += n as u64;
        };
        if cut > *cuts.last().unwrap_or(&from) {
            cuts.push(cut);
        }
        at = cut.max(at) + step;
    }
    if *cuts.last().unwrap_or(&from) < size {
        cuts.push(size);
    }
    Ok(cuts)
}

/// The column types this reader parses.
#[derive(Clone, Copy)]
enum Kind {
    Int,
    Float,
    Text,
}

impl Kind {
    fn of(dtype: &DataType) -> Option<Kind> {
        match dtype {
            DataType::Int64 => Some(Kind::Int),
            DataType::Float64 => Some(Kind::Float),
            DataType::String => Some(Kind::Text),
            _ => None,
        }
    }
}

enum Builder {
    Int(PrimitiveChunkedBuilder<Int64Type>),
    Float(PrimitiveChunkedBuilder<Float64Type>),
    Text(StringChunkedBuilder),
}

impl Builder {
    fn null(&mut self) {
        match self {
            Builder::Int(b) => b.append_null(),
            Builder::Float(b) => b.append_null(),
            Builder::Text(b) => b.append_null(),
        }
    }

    /// Appends a non-null field; `None` when the column's type cannot hold it.
    fn value(&mut self, field: &str) -> Option<()> {
        let bytes = field.as_bytes();
        match self {
            Builder::Text(b) => b.append_value(field),
            // polars skips leading blanks before a number; such files go to its reader.
            _ if bytes.first().is_some_and(|&b| b <= b' ') => return None,
            Builder::Int(b) => b.append_value(atoi_simd::parse::<i64, true, true>(bytes).ok()?),
            Builder::Float(b) => b.append_value(fast_float2::parse::<f64, _>(bytes).ok()?),
        }
        Some(())
    }

    fn finish(self) -> Column {
        match self {
            Builder::Int(b) => b.finish().into_series().into_column(),
            Builder::Float(b) => b.finish().into_series().into_column(),
            Builder::Text(b) => b.finish().into_series().into_column(),
        }
    }
}

struct Layout {
    delimiter: u8,
    quote: Option<u8>,
    nulls: Vec<Vec<u8>>,
    schema: std::sync::Arc<Schema>,
    kinds: Vec<Kind>,
    /// Bytes per row in the sample, to size the builders.
    bytes_per_row: usize,
}

impl Layout {
    fn is_null(&self, field: &[u8]) -> bool {
        self.nulls.iter().any(|n| n.len() == field.len() && n.first() == field.first() && n == field)
    }

    /// Appends an unquoted field; `None` when its type cannot hold it.
    fn push(&self, builder: &mut Builder, field: &str) -> Option<()> {
        if field.is_empty() || self.is_null(field.as_bytes()) {
            builder.null();
            Some(())
        } else {
            builder.value(field)
        }
    }

    /// Appends the text between a field's quotes, as polars does: compared with the null
    /// markers as it stands, a number parsed from it, text with doubled quotes made single
    /// (`""` is an empty text, not a null).
    fn push_quoted(&self, builder: &mut Builder, inner: &str, doubled: bool, quote: u8) -> Option<()> {
        if self.is_null(inner.as_bytes()) {
            builder.null();
            return Some(());
        }
        match builder {
            Builder::Text(b) if doubled => {
                let q = char::from(quote);
                b.append_value(inner.replace(&format!("{q}{q}"), &q.to_string()));
                Some(())
            }
            Builder::Text(b) => {
                b.append_value(inner);
                Some(())
            }
            _ if doubled => None,
            _ if inner.is_empty() => {
                builder.null();
                Some(())
            }
            _ => builder.value(inner),
        }
    }

    /// Parses the lines of `from..to` of the file into one column per field, reading a block
    /// at a time into one buffer; `Ok(None)` when the range is not plain.
    fn parse_range(&self, file: &mut File, from: u64, to: u64) -> std::io::Result<Option<Vec<Column>>> {
        let rows = ((to - from) as usize / self.bytes_per_row).max(1);
        let mut builders: Vec<Builder> = self
            .schema
            .iter_names()
            .zip(&self.kinds)
            .map(|(name, kind)| match kind {
                Kind::Int => Builder::Int(PrimitiveChunkedBuilder::new(name.clone(), rows)),
                Kind::Float => Builder::Float(PrimitiveChunkedBuilder::new(name.clone(), rows)),
                Kind::Text => Builder::Text(StringChunkedBuilder::new(name.clone(), rows)),
            })
            .collect();
        let mut buf = vec![0u8; BLOCK];
        let mut carried = 0;
        let mut pos = from;
        while pos < to {
            if carried == buf.len() {
                // A line longer than the buffer: make room for it.
                buf.resize(buf.len() * 2, 0);
            }
            let n = ((buf.len() - carried) as u64).min(to - pos) as usize;
            read_at(file, &mut buf[carried..carried + n], pos)?;
            pos += n as u64;
            let filled = carried + n;
            // Whole lines only; the range's end is a line end, or the end of the file.
            let lines_end = if pos == to {
                filled
            } else {
                match memchr::memrchr(b'\n', &buf[..filled]) {
                    Some(i) => i + 1,
                    None => {
                        carried = filled;
                        continue;
                    }
                }
            };
            if self.parse_lines(&buf[..lines_end], &mut builders).is_none() {
                return Ok(None);
            }
            buf.copy_within(lines_end..filled, 0);
            carried = filled - lines_end;
        }
        Ok(Some(builders.into_iter().map(Builder::finish).collect()))
    }

    /// Where the unquoted field starting at `start` ends: at the next delimiter, or at the
    /// line's end for the last field; `None` when the line has too few or too many fields.
    fn field_end(&self, line: &[u8], start: usize, last: bool) -> Option<usize> {
        let rest = line.get(start..)?;
        match (rest.iter().position(|&b| b == self.delimiter), last) {
            (Some(i), false) => Some(start + i),
            (None, true) => Some(line.len()),
            _ => None,
        }
    }

    /// Parses whole lines into the builders; `None` when they are not plain.
    fn parse_lines(&self, lines: &[u8], builders: &mut [Builder]) -> Option<()> {
        if memchr::memchr(b'\r', lines).is_some() {
            return None;
        }
        let text = std::str::from_utf8(lines).ok()?;
        let Some(q) = self.quote else {
            return self.parse_unquoted(text, builders);
        };
        // Runs of lines without a quote go through the one-pass parser; each line holding a
        // quote is parsed on its own.
        let bytes = text.as_bytes();
        let mut at = 0;
        while let Some(found) = memchr::memchr(q, &bytes[at..]) {
            let quote = at + found;
            let line_start = memchr::memrchr(b'\n', &bytes[at..quote]).map_or(at, |i| at + i + 1);
            self.parse_unquoted(&text[at..line_start], builders)?;
            let line_end = memchr::memchr(b'\n', &bytes[quote..]).map_or(bytes.len(), |i| quote + i);
            self.parse_quoted_line(&text[line_start..line_end], q, builders)?;
            at = (line_end + 1).min(bytes.len());
        }
        self.parse_unquoted(&text[at..], builders)
    }

    /// Lines without a quote character (the usual block): every delimiter and line end is found
    /// in one pass over the block, a vector at a time, and the fields between them go to the
    /// builders in turn. `None` when a line is empty or has too few or too many fields.
    fn parse_unquoted(&self, text: &str, builders: &mut [Builder]) -> Option<()> {
        let bytes = text.as_bytes();
        let last = builders.len() - 1;
        let (mut field, mut start, mut line_start) = (0, 0, 0);
        for end in memchr::memchr2_iter(self.delimiter, b'\n', bytes) {
            if bytes[end] == b'\n' {
                if field != last || end == line_start {
                    return None;
                }
                self.push(&mut builders[last], &text[start..end])?;
                field = 0;
                line_start = end + 1;
            } else {
                if field == last {
                    return None;
                }
                self.push(&mut builders[field], &text[start..end])?;
                field += 1;
            }
            start = end + 1;
        }
        // The file's last line may have no line end.
        if start < bytes.len() || field > 0 {
            if field != last {
                return None;
            }
            self.push(&mut builders[last], &text[start..])?;
        }
        Some(())
    }

    /// A line with a quote character: a quoted field runs to a quote followed by the delimiter or
    /// the line's end, with doubled quotes inside it. A quote anywhere else, or a quoted field
    /// the line does not close (it would hold a line break), makes the line not plain.
    fn parse_quoted_line(&self, line: &str, q: u8, builders: &mut [Builder]) -> Option<()> {
        let bytes = line.as_bytes();
        let last = builders.len() - 1;
        let mut start = 0;
        for (k, builder) in builders.iter_mut().enumerate() {
            if bytes.get(start) == Some(&q) {
                let mut i = start + 1;
                let mut doubled = false;
                let close = loop {
                    let j = i + memchr::memchr(q, &bytes[i..])?;
                    if bytes.get(j + 1) == Some(&q) {
                        doubled = true;
                        i = j + 2;
                    } else {
                        break j;
                    }
                };
                let after = bytes.get(close + 1);
                let closes_field = if k < last { after == Some(&self.delimiter) } else { after.is_none() };
                if !closes_field {
                    return None;
                }
                self.push_quoted(builder, &line[start + 1..close], doubled, q)?;
                start = close + 2;
            } else {
                let end = self.field_end(bytes, start, k == last)?;
                let field = &line[start..end];
                if field.as_bytes().contains(&q) {
                    return None;
                }
                self.push(builder, field)?;
                start = end + 1;
            }
        }
        Some(())
    }
}
