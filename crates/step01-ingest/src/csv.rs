//! CSV: one streaming pre-pass over the bytes (hash, encoding check, record shape), then polars'
//! lazy reader, which parses in parallel and pushes column selection and row limits down.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use mlops_core::frame::polars_dtype;
use mlops_core::hash::Hasher;
use polars::prelude::{
    CsvEncoding, CsvReadOptions, DataFrame, Field, IntoLazy, LazyCsvReader, LazyFileListReader, LazyFrame, NullValues,
    PlRefPath, PlSmallStr, Schema, SerReader,
};

use crate::config::{CsvSource, Encoding};
use crate::error::{IngestError, Result};

/// What the pre-pass learns about a file.
pub(crate) struct Scan {
    pub sha256: String,
    pub size: u64,
    /// The text to parse when it differs from the file: transcoded from Latin-1, or without blank
    /// lines (which polars would read as rows of nulls, and pandas skips).
    pub transcoded: Option<Vec<u8>>,
}

impl Scan {
    /// Stands for "parse the file as it is" while the real pre-pass is still running.
    pub(crate) fn untouched() -> Scan {
        Scan { sha256: String::new(), size: 0, transcoded: None }
    }
}

/// Record-shape tracking across buffer boundaries.
struct Shape {
    delimiter: u8,
    quote: Option<u8>,
    comment: Option<u8>,
    skip_lines: usize,
    line: usize,
    in_quotes: bool,
    maybe_close: bool,
    quote_line: usize,
    at_field_start: bool,
    record_has_content: bool,
    at_record_start: bool,
    in_comment: bool,
    fields: usize,
    record_line: usize,
    expected: Option<usize>,
    blank_lines: usize,
}

impl Shape {
    fn new(opts: &CsvSource) -> Shape {
        Shape {
            delimiter: u8::try_from(opts.delimiter).unwrap_or(b','),
            quote: opts.quote_char.and_then(|c| u8::try_from(c).ok()),
            comment: opts.comment_prefix.as_ref().and_then(|p| p.bytes().next()),
            skip_lines: opts.skip_rows,
            line: 1,
            in_quotes: false,
            maybe_close: false,
            quote_line: 0,
            at_field_start: true,
            record_has_content: false,
            at_record_start: true,
            in_comment: false,
            fields: 1,
            record_line: 1,
            expected: None,
            blank_lines: 0,
        }
    }

    fn end_record(&mut self, path: &Path) -> Result<()> {
        if !self.record_has_content {
            self.blank_lines += 1;
        }
        if self.record_has_content {
            match self.expected {
                None => self.expected = Some(self.fields),
                Some(expected) if expected != self.fields => {
                    return Err(IngestError::Ragged {
                        path: path.to_path_buf(),
                        line: self.record_line,
                        expected,
                        found: self.fields,
                    });
                }
                Some(_) => {}
            }
        }
        self.fields = 1;
        self.record_has_content = false;
        self.at_field_start = true;
        self.at_record_start = true;
        self.record_line = self.line;
        Ok(())
    }

    /// Whether the next byte starts a record with no pending state, so a whole line can be
    /// taken at once.
    fn at_clean_record_start(&self) -> bool {
        self.at_record_start && !self.in_quotes && !self.maybe_close && self.skip_lines == 0 && !self.in_comment
    }

    fn feed(&mut self, bytes: &[u8], path: &Path) -> Result<()> {
        let mut i = 0;
        while i < bytes.len() {
            // Fast path: a complete line without quotes or comment is one record; count its
            // delimiters in one vectorized pass instead of stepping through the state machine.
            if self.at_clean_record_start()
                && let Some(nl) = memchr::memchr(b'\n', &bytes[i..])
            {
                let line = &bytes[i..i + nl];
                let quoted = self.quote.is_some_and(|q| memchr::memchr(q, line).is_some());
                let commented = self.comment.is_some_and(|c| line.first() == Some(&c));
                if !quoted && !commented {
                    self.record_has_content = line.iter().any(|&b| b != b'\r');
                    self.fields = 1 + line.iter().filter(|&&b| b == self.delimiter).count();
                    self.line += 1;
                    self.end_record(path)?;
                    i += nl + 1;
                    continue;
                }
            }
            self.step(bytes[i], path)?;
            i += 1;
        }
        Ok(())
    }

    /// The state machine, one byte at a time: quotes, doubled quotes, comments, skipped lines.
    fn step(&mut self, b: u8, path: &Path) -> Result<()> {
        if b == b'\n' && !self.in_quotes {
            self.maybe_close = false;
            self.line += 1;
            if self.skip_lines > 0 {
                self.skip_lines -= 1;
                self.record_line = self.line;
                return Ok(());
            }
            if self.in_comment {
                self.in_comment = false;
                self.at_record_start = true;
                self.record_line = self.line;
                return Ok(());
            }
            return self.end_record(path);
        }
        if self.skip_lines > 0 || self.in_comment {
            return Ok(());
        }
        if b == b'\n' {
            self.line += 1;
        }
        if self.at_record_start && Some(b) == self.comment && !self.in_quotes {
            self.in_comment = true;
            return Ok(());
        }
        if b != b'\r' {
            self.at_record_start = false;
            self.record_has_content = true;
        }
        if self.maybe_close {
            self.maybe_close = false;
            if Some(b) == self.quote {
                // A doubled quote inside quotes is a literal quote.
                return Ok(());
            }
            self.in_quotes = false;
            if b == b'\n' {
                // The quote closed just before the end of the record.
                return self.end_record(path);
            }
        }
        if self.in_quotes {
            if Some(b) == self.quote {
                self.maybe_close = true;
            }
            return Ok(());
        }
        if b == self.delimiter {
            self.fields += 1;
            self.at_field_start = true;
            return Ok(());
        }
        if Some(b) == self.quote && self.at_field_start {
            self.in_quotes = true;
            self.quote_line = self.line;
        }
        self.at_field_start = false;
        Ok(())
    }

    fn finish(&mut self, path: &Path) -> Result<()> {
        if self.maybe_close {
            self.in_quotes = false;
        }
        if self.in_quotes {
            return Err(IngestError::UnclosedQuote { path: path.to_path_buf(), line: self.quote_line });
        }
        if !self.in_comment && self.skip_lines == 0 {
            let trailing_empty = !self.record_has_content;
            self.end_record(path)?;
            // The end of the file after its last newline is not a blank line.
            if trailing_empty {
                self.blank_lines -= 1;
            }
        }
        Ok(())
    }
}

/// Reads the file once: hashes it, checks its encoding and that every record has the header's
/// number of fields, and transcodes Latin-1 to UTF-8.
pub(crate) fn scan(opts: &CsvSource) -> Result<Scan> {
    let path = opts.path.as_path();
    let mut file = File::open(path).map_err(|e| open_error(path, e))?;
    let mut hasher = Hasher::new();
    let mut shape = Shape::new(opts);
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let mut pending: Vec<u8> = Vec::new();
    let mut transcoded = (opts.encoding == Encoding::Latin1).then(Vec::new);
    let mut lines_before = 0usize;
    loop {
        let n = file.read(&mut buf).map_err(|e| mlops_core::CoreError::io("cannot read", path, e))?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        hasher.update(chunk);
        size += n as u64;
        match &mut transcoded {
            Some(out) => {
                out.reserve(n);
                for &b in chunk {
                    if b < 0x80 {
                        out.push(b);
                    } else {
                        // ISO-8859-1 byte b is code point b; as UTF-8 that is two bytes.
                        out.push(0xC0 | (b >> 6));
                        out.push(0x80 | (b & 0x3F));
                    }
                }
            }
            None => {
                // Validate UTF-8 across buffer boundaries: carry an incomplete trailing sequence
                // (at most three bytes) into the next block; only then is a block copied.
                let joined;
                let text = if pending.is_empty() {
                    chunk
                } else {
                    pending.extend_from_slice(chunk);
                    joined = std::mem::take(&mut pending);
                    joined.as_slice()
                };
                match std::str::from_utf8(text) {
                    Ok(_) => {}
                    Err(e) if e.error_len().is_none() => pending = text[e.valid_up_to()..].to_vec(),
                    Err(e) => {
                        let newlines = text[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count();
                        return Err(IngestError::Encoding {
                            path: path.to_path_buf(),
                            line: lines_before + newlines + 1,
                            encoding: "UTF-8",
                        });
                    }
                }
            }
        }
        shape.feed(chunk, path)?;
        lines_before = shape.line - 1;
    }
    if !pending.is_empty() {
        return Err(IngestError::Encoding { path: path.to_path_buf(), line: shape.line, encoding: "UTF-8" });
    }
    if size == 0 {
        return Err(IngestError::Empty { path: path.to_path_buf() });
    }
    shape.finish(path)?;
    if shape.blank_lines > 0 && shape.expected.is_some_and(|n| n > 1) {
        let text = match transcoded.take() {
            Some(t) => t,
            None => std::fs::read(path).map_err(|e| mlops_core::CoreError::io("cannot read", path, e))?,
        };
        tracing::debug!(blank_lines = shape.blank_lines, "skipping blank lines");
        transcoded = Some(drop_blank_lines(&text, shape.quote));
    }
    Ok(Scan { sha256: hasher.finish_hex(), size, transcoded })
}

/// Removes lines that are empty (or only `\r`) outside quoted fields.
fn drop_blank_lines(text: &[u8], quote: Option<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut in_quotes = false;
    let mut line_start = 0;
    for (i, &b) in text.iter().enumerate() {
        if Some(b) == quote {
            in_quotes = !in_quotes;
        } else if b == b'\n' && !in_quotes {
            let line = &text[line_start..=i];
            if line.iter().any(|c| !matches!(c, b'\r' | b'\n')) {
                out.extend_from_slice(line);
            }
            line_start = i + 1;
        }
    }
    out.extend_from_slice(&text[line_start..]);
    out
}

pub(crate) fn open_error(path: &Path, e: std::io::Error) -> IngestError {
    if e.kind() == std::io::ErrorKind::NotFound {
        IngestError::NotFound { path: path.to_path_buf() }
    } else {
        mlops_core::CoreError::io("cannot open", path, e).into()
    }
}

pub(crate) fn read_error(path: &Path, e: polars::prelude::PolarsError) -> IngestError {
    let message = e.to_string();
    let message = parse_failure(&message).unwrap_or(message);
    IngestError::Read { path: path.to_path_buf(), message }
}

/// How a value that does not fit its column's type starts its message (the reader then infers the
/// types again from every row).
pub(crate) const PARSE_FAILURE: &str = "could not read `";

/// polars' "could not parse `v` as dtype `i64` at column 'c'" in the config's words: its advice
/// names its own Python arguments (`infer_schema_length`, `schema_overrides`, `ignore_errors`),
/// which a data config does not have.
fn parse_failure(message: &str) -> Option<String> {
    let rest = message.strip_prefix("could not parse `")?;
    let (value, rest) = rest.split_once("` as dtype `")?;
    let (dtype, rest) = rest.split_once("` at column '")?;
    let (column, _) = rest.split_once('\'')?;
    let dtype = match dtype {
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" => "int",
        "f32" | "f64" => "float",
        "bool" => "bool",
        "str" => "string",
        "date" => "date",
        d if d.starts_with("datetime") => "datetime",
        d => d,
    };
    Some(format!(
        "column `{column}`: {PARSE_FAILURE}{value}` as {dtype}; fix the value, list it in the source's `null_values`, \
         or give the column another type in `dtypes` (when the type was inferred, `infer_schema_rows` sets how many rows it is inferred from)"
    ))
}

fn dtype_overrides(opts: &CsvSource) -> Option<Arc<Schema>> {
    (!opts.dtypes.is_empty()).then(|| {
        Arc::new(opts.dtypes.iter().map(|(name, t)| Field::new(name.as_str().into(), polars_dtype(*t))).collect())
    })
}

fn null_values(opts: &CsvSource) -> Option<NullValues> {
    (!opts.null_values.is_empty())
        .then(|| NullValues::AllColumns(opts.null_values.iter().map(|s| PlSmallStr::from(s.as_str())).collect()))
}

/// The delimiter and quote character as bytes; an error names one that is not a single ASCII
/// character.
fn delimiter_and_quote(opts: &CsvSource) -> Result<(u8, Option<u8>)> {
    let path = opts.path.as_path();
    let delimiter = u8::try_from(opts.delimiter).map_err(|_| IngestError::Read {
        path: path.to_path_buf(),
        message: format!("delimiter {:?} is not a single ASCII character", opts.delimiter),
    })?;
    let quote = match opts.quote_char {
        None => None,
        Some(c) => Some(u8::try_from(c).map_err(|_| IngestError::Read {
            path: path.to_path_buf(),
            message: format!("quote_char {c:?} is not a single ASCII character"),
        })?),
    };
    Ok((delimiter, quote))
}

/// polars' eager reader options for a source; `infer_rows` of `None` infers types from every row.
pub(crate) fn reader_options(opts: &CsvSource, infer_rows: Option<usize>) -> Result<CsvReadOptions> {
    let (delimiter, quote) = delimiter_and_quote(opts)?;
    Ok(CsvReadOptions::default()
        .with_has_header(opts.has_header)
        .with_skip_rows(opts.skip_rows)
        .with_infer_schema_length(infer_rows)
        .with_dtype_overwrite(None)
        .with_schema_overwrite(dtype_overrides(opts))
        .with_low_memory(opts.low_memory)
        .map_parse_options(|p| {
            p.with_separator(delimiter)
                .with_quote_char(quote)
                .with_null_values(null_values(opts))
                .with_try_parse_dates(opts.parse_dates)
                .with_encoding(CsvEncoding::Utf8)
                .with_comment_prefix(opts.comment_prefix.as_deref())
        }))
}

/// Whether the text's last field is a lone opening quote (`1,"` at its end, a `\r` after it at
/// most). polars 0.55's CSV parser then slices `field[1..0]` unchecked: undefined behaviour, found
/// by fuzzing (fuzz/ csv target). A quote closing a field (`1,"x"`) is not one.
pub(crate) fn ends_in_lone_quote(text: &[u8], quote: u8, delimiter: u8) -> bool {
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    match text {
        [.., before, last] => *last == quote && (*before == delimiter || *before == b'\n'),
        [last] => *last == quote,
        [] => false,
    }
}

/// [`ends_in_lone_quote`] for a file, from its last three bytes.
fn file_ends_in_lone_quote(path: &Path, quote: u8, delimiter: u8) -> std::io::Result<bool> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let from = size.saturating_sub(3);
    file.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::with_capacity(3);
    file.read_to_end(&mut tail)?;
    Ok(ends_in_lone_quote(&tail, quote, delimiter))
}

/// Reads the CSV into a frame. `infer_rows` of `None` infers types from the whole file.
pub(crate) fn read(opts: &CsvSource, scan: &Scan, infer_rows: Option<usize>) -> Result<DataFrame> {
    let path = opts.path.as_path();
    let (delimiter, quote) = delimiter_and_quote(opts)?;
    let eager = || reader_options(opts, infer_rows);
    let whole_file = opts.columns.is_none() && opts.limit.is_none() && !opts.low_memory;
    // polars' parser reads out of bounds on text whose last field is a lone opening quote: such
    // text is parsed from memory with a line end appended, which polars reads safely (the
    // pre-pass names the unclosed quote).
    let guarded = |bytes: &[u8]| {
        let mut owned = bytes.to_vec();
        if quote.is_some_and(|q| ends_in_lone_quote(bytes, q, delimiter)) {
            owned.push(b'\n');
        }
        owned
    };
    let lone_quote = scan.transcoded.is_none()
        && match quote {
            Some(q) => file_ends_in_lone_quote(path, q, delimiter).map_err(|e| open_error(path, e))?,
            None => false,
        };
    let in_memory = match &scan.transcoded {
        Some(bytes) => Some(guarded(bytes)),
        None if lone_quote => Some(guarded(&std::fs::read(path).map_err(|e| open_error(path, e))?)),
        None => None,
    };
    let lazy: LazyFrame = match in_memory {
        Some(bytes) => {
            // Text in memory (transcoded, or guarded): parse it with the eager reader.
            let cursor = std::io::Cursor::new(bytes);
            eager()?.into_reader_with_file_handle(cursor).finish().map_err(|e| read_error(path, e))?.lazy()
        }
        // The whole file, in memory: polars' eager reader, which splits the file and parses the
        // parts on its thread pool (the lazy scan runs on the streaming engine).
        None if whole_file => eager()?
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|reader| reader.finish())
            .map_err(|e| read_error(path, e))?
            .lazy(),
        None => {
            let path_str = path.to_str().ok_or_else(|| IngestError::Read {
                path: path.to_path_buf(),
                message: "path is not valid UTF-8".into(),
            })?;
            LazyCsvReader::new(PlRefPath::new(path_str))
                .with_has_header(opts.has_header)
                .with_separator(delimiter)
                .with_quote_char(quote)
                .with_null_values(null_values(opts))
                .with_skip_rows(opts.skip_rows)
                .with_infer_schema_length(infer_rows)
                .with_dtype_overwrite(dtype_overrides(opts))
                .with_low_memory(opts.low_memory)
                .with_try_parse_dates(opts.parse_dates)
                .with_comment_prefix(opts.comment_prefix.as_deref().map(PlSmallStr::from))
                .finish()
                .map_err(|e| read_error(path, e))?
        }
    };
    let lazy = crate::project(lazy, path, opts.columns.as_deref(), opts.limit)?;
    // `low_memory` runs the query on polars' streaming engine, which parses in bounded batches.
    lazy.with_streaming(opts.low_memory).collect().map_err(|e| read_error(path, e))
}
