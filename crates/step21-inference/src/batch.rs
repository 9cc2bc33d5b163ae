//! Batch inference: a file in, predictions out, in chunks with constant memory. Each chunk is
//! checked against the signature and scored by the same [`Scorer`] the server uses, so a file
//! and a request give the same bits.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use mlops_core::{Row, TaskKind, Value};
use polars::prelude::{Column, DataFrame, LazyFrame, ParquetWriter, PlRefPath, ScanArgsParquet, Schema};
use serde::Serialize;
use step20_serve::{Cell, InputError, Scorer};

use crate::{InferenceError, Result};

/// What to do with rows that do not fit the signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBadRow {
    /// Fail on the first chunk with a bad row, listing its bad rows; nothing is written.
    Reject,
    /// Leave bad rows out of the output and list them in the report.
    Skip,
}

/// How to run a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchOptions {
    /// Rows per chunk (memory is bounded by a chunk, not the file).
    pub chunk_rows: usize,
    /// Bad rows: reject the file or skip them.
    pub on_error: OnBadRow,
    /// Input column copied to the output as the row id (default: the row number, as `row`).
    pub id_column: Option<String>,
    /// Threads scoring each chunk.
    pub threads: usize,
    /// Replace an existing output file (never the input itself).
    pub overwrite: bool,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            chunk_rows: 65_536,
            on_error: OnBadRow::Reject,
            id_column: None,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            overwrite: false,
        }
    }
}

/// A row that did not fit the signature.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BadRow {
    /// Row number in the input (from 0, not counting the header).
    pub row: usize,
    /// The offending column.
    pub column: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// Bad rows kept in a report (all are counted).
const BAD_ROWS_KEPT: usize = 1000;

/// What a batch did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BatchReport {
    /// The input file.
    pub input: PathBuf,
    /// The output file.
    pub output: PathBuf,
    /// Rows read.
    pub rows: usize,
    /// Rows predicted (written).
    pub predicted: usize,
    /// Rows left out.
    pub skipped: usize,
    /// The first bad rows (up to 1000).
    pub bad_rows: Vec<BadRow>,
    /// Chunks processed.
    pub chunks: usize,
    /// Wall time.
    pub seconds: f64,
}

/// Input file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Csv,
    Ndjson,
    Parquet,
}

fn format_of(path: &Path) -> Result<Format> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("csv") => Ok(Format::Csv),
        Some("ndjson" | "jsonl") => Ok(Format::Ndjson),
        Some("parquet") => Ok(Format::Parquet),
        _ => Err(InferenceError::Format { path: path.to_path_buf() }),
    }
}

fn io<'a>(path: &'a Path, what: &'static str) -> impl Fn(std::io::Error) -> InferenceError + 'a {
    move |source| InferenceError::Io { path: path.to_path_buf(), what, source }
}

/// One chunk of input rows, in the source's own form.
enum Chunk {
    Text(Vec<csv::StringRecord>),
    Json(Vec<serde_json::Map<String, serde_json::Value>>),
    /// One column of values per source column index.
    Values(Vec<Vec<Value>>, usize),
}

impl Chunk {
    fn len(&self) -> usize {
        match self {
            Chunk::Text(r) => r.len(),
            Chunk::Json(r) => r.len(),
            Chunk::Values(_, n) => *n,
        }
    }
}

/// Reads an input file chunk by chunk.
enum Source {
    Csv { reader: csv::Reader<BufReader<File>>, index: HashMap<String, usize> },
    Ndjson { lines: std::io::Lines<BufReader<File>>, line: usize },
    Parquet { frame: Box<LazyFrame>, offset: usize, index: HashMap<String, usize>, columns: Vec<String> },
}

impl Source {
    fn open(path: &Path) -> Result<Source> {
        match format_of(path)? {
            Format::Csv => {
                let file = File::open(path).map_err(io(path, "cannot open"))?;
                let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(BufReader::new(file));
                let header = reader.headers().map_err(|e| InferenceError::Read {
                    path: path.to_path_buf(),
                    row: None,
                    message: e.to_string(),
                })?;
                let index = header.iter().enumerate().map(|(k, h)| (h.to_string(), k)).collect();
                Ok(Source::Csv { reader, index })
            }
            Format::Ndjson => {
                let file = File::open(path).map_err(io(path, "cannot open"))?;
                Ok(Source::Ndjson { lines: BufReader::new(file).lines(), line: 0 })
            }
            Format::Parquet => {
                let text = path.to_str().ok_or_else(|| InferenceError::Format { path: path.to_path_buf() })?;
                let frame = LazyFrame::scan_parquet(PlRefPath::new(text), ScanArgsParquet::default()).map_err(|e| {
                    InferenceError::Read { path: path.to_path_buf(), row: None, message: e.to_string() }
                })?;
                let schema = frame.clone().collect_schema().map_err(|e| InferenceError::Read {
                    path: path.to_path_buf(),
                    row: None,
                    message: e.to_string(),
                })?;
                let columns: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
                let index = columns.iter().enumerate().map(|(k, c)| (c.clone(), k)).collect();
                Ok(Source::Parquet { frame: Box::new(frame), offset: 0, index, columns })
            }
        }
    }

    /// Column name → position, for sources with a header (`None` for NDJSON: by name per row).
    fn index(&self) -> Option<&HashMap<String, usize>> {
        match self {
            Source::Csv { index, .. } | Source::Parquet { index, .. } => Some(index),
            Source::Ndjson { .. } => None,
        }
    }

    fn next(&mut self, path: &Path, n: usize, first_row: usize) -> Result<Option<Chunk>> {
        let read =
            |row: Option<usize>, message: String| InferenceError::Read { path: path.to_path_buf(), row, message };
        match self {
            Source::Csv { reader, .. } => {
                let mut rows = Vec::with_capacity(n.min(1 << 16));
                while rows.len() < n {
                    let mut record = csv::StringRecord::new();
                    match reader.read_record(&mut record) {
                        Ok(true) => rows.push(record),
                        Ok(false) => break,
                        Err(e) => return Err(read(Some(first_row + rows.len()), e.to_string())),
                    }
                }
                Ok((!rows.is_empty()).then_some(Chunk::Text(rows)))
            }
            Source::Ndjson { lines, line } => {
                let mut rows = Vec::new();
                while rows.len() < n {
                    let Some(text) = lines.next() else { break };
                    let text = text.map_err(|e| read(Some(*line), e.to_string()))?;
                    *line += 1;
                    if text.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<serde_json::Value>(&text) {
                        Ok(serde_json::Value::Object(map)) => rows.push(map),
                        Ok(_) => return Err(read(Some(first_row + rows.len()), "not a JSON object".into())),
                        Err(e) => return Err(read(Some(first_row + rows.len()), format!("not valid JSON: {e}"))),
                    }
                }
                Ok((!rows.is_empty()).then_some(Chunk::Json(rows)))
            }
            Source::Parquet { frame, offset, columns, .. } => {
                let df = (**frame)
                    .clone()
                    .slice(i64::try_from(*offset).unwrap_or(i64::MAX), u32::try_from(n).unwrap_or(u32::MAX))
                    .collect()
                    .map_err(|e| read(None, e.to_string()))?;
                if df.height() == 0 {
                    return Ok(None);
                }
                *offset += df.height();
                let mut values = Vec::with_capacity(columns.len());
                for c in columns.iter() {
                    let col = df.column(c).map_err(|e| read(None, e.to_string()))?;
                    values.push(mlops_core::frame::column_values(col).map_err(|e| read(None, e.to_string()))?);
                }
                Ok(Some(Chunk::Values(values, df.height())))
            }
        }
    }
}

/// Where each signature input (and the id column) sits in the source.
struct Layout {
    /// Per signature input: its position in the source (`None`: absent), for sources with a
    /// header.
    at: Vec<Option<usize>>,
    names: Vec<String>,
    id: Option<(String, Option<usize>)>,
}

impl Layout {
    fn cell<'a>(&self, chunk: &'a Chunk, i: usize, j: usize) -> Option<Cell<'a>> {
        match chunk {
            Chunk::Text(rows) => self.at[j].and_then(|k| rows[i].get(k)).map(Cell::Text),
            Chunk::Json(rows) => rows[i].get(&self.names[j]).map(Cell::Json),
            Chunk::Values(cols, _) => self.at[j].map(|k| Cell::Value(&cols[k][i])),
        }
    }

    fn id(&self, chunk: &Chunk, i: usize, row: usize) -> IdValue {
        let Some((name, at)) = &self.id else { return IdValue::Int(row as i64) };
        let text = match chunk {
            Chunk::Text(rows) => at.and_then(|k| rows[i].get(k)).map(str::to_string),
            Chunk::Json(rows) => rows[i].get(name).map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
            Chunk::Values(cols, _) => at.map(|k| cols[k][i].to_string()),
        };
        IdValue::Text(text.unwrap_or_default())
    }
}

enum IdValue {
    Int(i64),
    Text(String),
}

/// One scored row ready to write.
struct Out {
    id: IdValue,
    label: serde_json::Value,
    proba: Option<Vec<f64>>,
}

/// Rows scored together inside a chunk: small enough that their rows stay in cache and their
/// memory is reused, large enough to amortize the model call.
const SCORE_BATCH: usize = 512;

/// Rows `lo..hi` of a chunk whose first row is row `first_row` of the file (errors name the
/// file's row).
#[derive(Clone, Copy)]
struct Slice {
    lo: usize,
    hi: usize,
    first_row: usize,
}

/// Conforms and scores rows `lo..hi` of a chunk, [`SCORE_BATCH`] rows at a time.
fn score_part(scorer: &Scorer, layout: &Layout, chunk: &Chunk, slice: Slice) -> (Vec<Out>, Vec<BadRow>) {
    let Slice { lo, hi, first_row } = slice;
    let mut out = Vec::with_capacity(hi - lo);
    let mut bad = Vec::new();
    let as_bad = |e: InputError, row: usize| BadRow { row, column: e.column, message: e.message };
    let conform = |i: usize| scorer.conform(first_row + i, |j| layout.cell(chunk, i, j)).map(|(row, _)| row);
    let mut start = lo;
    while start < hi {
        let end = (start + SCORE_BATCH).min(hi);
        let mut rows: Vec<Row> = Vec::with_capacity(end - start);
        let mut index = Vec::with_capacity(end - start);
        for i in start..end {
            match conform(i) {
                Ok(row) => {
                    rows.push(row);
                    index.push(i);
                }
                Err(e) => bad.push(as_bad(e, first_row + i)),
            }
        }
        let mut emit = |index: &[usize], s: step20_serve::Scored| {
            for (k, &i) in index.iter().enumerate() {
                out.push(Out {
                    id: layout.id(chunk, i, first_row + i),
                    label: scorer.label(s.predicted[k]),
                    proba: s.proba.as_ref().map(|p| p[k].clone()),
                });
            }
        };
        match scorer.score(&mut rows) {
            Ok(s) => emit(&index, s),
            // The pipeline refused a row: score them one by one, so one bad row does not sink
            // the others (rows are conformed again: the failed call changed them).
            Err(_) => {
                for &i in &index {
                    let scored = conform(i).map_err(|e| as_bad(e, first_row + i)).and_then(|row| {
                        scorer.score(&mut [row]).map_err(|e| match e {
                            step20_serve::ScoreError::Input(e) => as_bad(e, first_row + i),
                            e => BadRow { row: first_row + i, column: None, message: e.to_string() },
                        })
                    });
                    match scored {
                        Ok(s) => emit(&[i], s),
                        Err(b) => bad.push(b),
                    }
                }
            }
        }
        start = end;
    }
    bad.sort_by_key(|b| b.row);
    (out, bad)
}

/// The frame path: rows `lo..hi` of a chunk checked cell by cell exactly as the server checks
/// them, the good ones built into a frame column by column, then the feature pipeline's frame
/// path and the model in one call (the frame path equals the row path on every row: property
/// tests in `mlops-core`, and the end-to-end tests compare the bits). `None` when the pipeline or
/// the matrix refuses the frame; the caller then takes the row path.
fn score_part_frame(scorer: &Scorer, layout: &Layout, chunk: &Chunk, slice: Slice) -> Option<(Vec<Out>, Vec<BadRow>)> {
    let Slice { lo, hi, first_row } = slice;
    let inputs = scorer.inputs();
    let mut columns: Vec<Vec<Value>> = (0..inputs.len()).map(|_| Vec::with_capacity(hi - lo)).collect();
    let mut scratch: Vec<Value> = vec![Value::Null; inputs.len()];
    let mut good = Vec::with_capacity(hi - lo);
    let mut bad = Vec::new();
    'rows: for i in lo..hi {
        for &j in scorer.name_order() {
            match scorer.conform_cell(j, layout.cell(chunk, i, j), first_row + i) {
                Ok((v, _)) => scratch[j] = v,
                Err(e) => {
                    bad.push(BadRow { row: first_row + i, column: e.column, message: e.message });
                    continue 'rows;
                }
            }
        }
        for (col, v) in columns.iter_mut().zip(scratch.iter_mut()) {
            col.push(std::mem::replace(v, Value::Null));
        }
        good.push(i);
    }
    let mut out = Vec::with_capacity(good.len());
    if !good.is_empty() {
        let frame = DataFrame::new_infer_height(
            inputs
                .iter()
                .zip(&columns)
                .map(|(c, values)| mlops_core::frame::column_from_values(&c.name, c.dtype, values))
                .collect(),
        )
        .ok()?;
        drop(columns);
        let scored = score_frame(scorer, frame)?;
        for (k, &i) in good.iter().enumerate() {
            out.push(Out {
                id: layout.id(chunk, i, first_row + i),
                label: scorer.label(scored.predicted[k]),
                proba: scored.proba.as_ref().map(|p| p[k].clone()),
            });
        }
    }
    Some((out, bad))
}

/// Scores conformed input columns (`columns[j]`: signature input `j`, as the server parses a
/// request) through the feature pipeline's frame path (polars) and the model: the server's
/// [`step20_serve::BatchScorer`] for large requests. The frame path gives the row path's results
/// (a property the feature ops are tested for); `None` when it refuses the rows.
pub fn score_columns_frame(scorer: &Scorer, columns: &[Vec<Value>]) -> Option<step20_serve::Scored> {
    let frame = DataFrame::new_infer_height(
        scorer
            .inputs()
            .iter()
            .zip(columns)
            .map(|(c, values)| mlops_core::frame::column_from_values(&c.name, c.dtype, values))
            .collect(),
    )
    .ok()?;
    score_frame(scorer, frame)
}

/// The frame of conformed input columns through the pipeline's frame path and the model.
fn score_frame(scorer: &Scorer, frame: DataFrame) -> Option<step20_serve::Scored> {
    let rows = frame.height();
    let c = &scorer.package.contents;
    let features = c.pipeline.apply_frame(frame, mlops_core::frame::Stage::Inference).ok()?;
    if features.height() != rows {
        return None;
    }
    let x = mlops_core::frame::to_matrix(&features, &c.info.features).ok()?;
    let predicted = c.model.predict(&x).ok()?;
    let proba = c.model.predict_proba(&x).ok()?;
    Some(step20_serve::Scored { predicted, proba })
}

/// Writes predictions in the output's format.
enum Sink {
    Csv(Box<csv::Writer<BufWriter<File>>>),
    Ndjson(BufWriter<File>),
    Parquet(Box<polars::io::parquet::write::BatchedWriter<File>>),
}

struct Writer {
    sink: Sink,
    columns: Vec<String>,
    id_name: String,
    regression: bool,
}

impl Writer {
    fn create(
        path: &Path,
        format: Format,
        (regression, classes): (bool, &[String]),
        (id_name, id_is_text): (&str, bool),
    ) -> Result<Writer> {
        let file = File::create(path).map_err(io(path, "cannot create"))?;
        let mut columns = vec![id_name.to_string(), "prediction".to_string()];
        columns.extend(classes.iter().map(|c| format!("probability_{c}")));
        let write = |e: String| InferenceError::Write { path: path.to_path_buf(), message: e };
        let sink = match format {
            Format::Csv => {
                let mut w = csv::Writer::from_writer(BufWriter::new(file));
                w.write_record(&columns).map_err(|e| write(e.to_string()))?;
                Sink::Csv(Box::new(w))
            }
            Format::Ndjson => Sink::Ndjson(BufWriter::new(file)),
            Format::Parquet => {
                use polars::prelude::DataType;
                let mut schema = Schema::default();
                schema.insert(id_name.into(), if id_is_text { DataType::String } else { DataType::Int64 });
                schema.insert("prediction".into(), if regression { DataType::Float64 } else { DataType::String });
                for c in &columns[2..] {
                    schema.insert(c.as_str().into(), DataType::Float64);
                }
                Sink::Parquet(Box::new(ParquetWriter::new(file).batched(&schema).map_err(|e| write(e.to_string()))?))
            }
        };
        Ok(Writer { sink, columns, id_name: id_name.to_string(), regression })
    }

    fn write(&mut self, path: &Path, rows: &[Out]) -> Result<()> {
        let write = |e: String| InferenceError::Write { path: path.to_path_buf(), message: e };
        let label_text = |l: &serde_json::Value| match l {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match &mut self.sink {
            Sink::Csv(w) => {
                let mut record = Vec::with_capacity(self.columns.len());
                for r in rows {
                    record.clear();
                    record.push(match &r.id {
                        IdValue::Int(i) => i.to_string(),
                        IdValue::Text(t) => t.clone(),
                    });
                    record.push(label_text(&r.label));
                    if let Some(p) = &r.proba {
                        record.extend(p.iter().map(f64::to_string));
                    }
                    w.write_record(&record).map_err(|e| write(e.to_string()))?;
                }
            }
            Sink::Ndjson(w) => {
                for r in rows {
                    let mut obj = serde_json::Map::new();
                    obj.insert(
                        self.id_name.clone(),
                        match &r.id {
                            IdValue::Int(i) => (*i).into(),
                            IdValue::Text(t) => t.clone().into(),
                        },
                    );
                    obj.insert("prediction".into(), r.label.clone());
                    if let Some(p) = &r.proba {
                        for (c, v) in self.columns[2..].iter().zip(p) {
                            obj.insert(c.clone(), serde_json::json!(v));
                        }
                    }
                    serde_json::to_writer(&mut *w, &obj).map_err(|e| write(e.to_string()))?;
                    w.write_all(b"\n").map_err(|e| write(e.to_string()))?;
                }
            }
            Sink::Parquet(w) => {
                let id = match rows.first().map(|r| &r.id) {
                    Some(IdValue::Text(_)) => Column::new(
                        self.id_name.as_str().into(),
                        rows.iter()
                            .map(|r| match &r.id {
                                IdValue::Text(t) => t.clone(),
                                IdValue::Int(i) => i.to_string(),
                            })
                            .collect::<Vec<_>>(),
                    ),
                    _ => Column::new(
                        self.id_name.as_str().into(),
                        rows.iter().map(|r| if let IdValue::Int(i) = r.id { i } else { 0 }).collect::<Vec<i64>>(),
                    ),
                };
                let prediction = if self.regression {
                    Column::new("prediction".into(), rows.iter().map(|r| r.label.as_f64()).collect::<Vec<_>>())
                } else {
                    Column::new("prediction".into(), rows.iter().map(|r| label_text(&r.label)).collect::<Vec<_>>())
                };
                let mut cols = vec![id, prediction];
                for (k, c) in self.columns[2..].iter().enumerate() {
                    cols.push(Column::new(
                        c.as_str().into(),
                        rows.iter().map(|r| r.proba.as_ref().map_or(f64::NAN, |p| p[k])).collect::<Vec<_>>(),
                    ));
                }
                let df = DataFrame::new_infer_height(cols).map_err(|e| write(e.to_string()))?;
                w.write_batch(&df).map_err(|e| write(e.to_string()))?;
            }
        }
        Ok(())
    }

    fn finish(self, path: &Path) -> Result<()> {
        let write = |e: String| InferenceError::Write { path: path.to_path_buf(), message: e };
        match self.sink {
            Sink::Csv(mut w) => w.flush().map_err(|e| write(e.to_string())),
            Sink::Ndjson(mut w) => w.flush().map_err(|e| write(e.to_string())),
            Sink::Parquet(w) => w.finish().map(|_| ()).map_err(|e| write(e.to_string())),
        }
    }
}

/// Predicts every row of `input` into `output` (`.csv`, `.ndjson` or `.parquet`): the id column,
/// `prediction`, and `probability_<class>` per class for classifiers. The output appears only
/// when the whole file succeeded (written to a temporary name, then renamed). `progress` gets
/// the rows done after each chunk.
pub fn predict_file(
    scorer: &Scorer,
    input: &Path,
    output: &Path,
    options: &BatchOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<BatchReport> {
    let kind = (scorer.task() == TaskKind::Regression, scorer.classes());
    run_batch(scorer.inputs(), kind, (input, output), options, progress, &mut |layout, chunk, first| {
        let n = chunk.len();
        let threads = options.threads.clamp(1, 16).min(n.div_ceil(256).max(1));
        let per = n.div_ceil(threads);
        let parts: Vec<(Vec<Out>, Vec<BadRow>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (lo, hi) = ((t * per).min(n), ((t + 1) * per).min(n));
                    s.spawn(move || {
                        let slice = Slice { lo, hi, first_row: first };
                        score_part_frame(scorer, layout, chunk, slice)
                            .unwrap_or_else(|| score_part(scorer, layout, chunk, slice))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| (Vec::new(), Vec::new()))).collect()
        });
        let mut out = Vec::with_capacity(n);
        let mut bad = Vec::new();
        for (o, b) in parts {
            out.extend(o);
            bad.extend(b);
        }
        Ok((out, bad))
    })
}

/// Rows per request of [`predict_file_remote`]: a few MB of JSON, under the server's default
/// `max_body_bytes` (16 MiB) and `max_batch_rows`.
const REMOTE_ROWS: usize = 5_000;

/// Like [`predict_file`], but the rows are scored by a running server through `client`, in
/// requests of at most 5,000 rows.
pub fn predict_file_remote(
    client: &crate::Client,
    runtime: &tokio::runtime::Handle,
    input: &Path,
    output: &Path,
    options: &BatchOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<BatchReport> {
    let info = runtime.block_on(client.model_info())?;
    let signature = runtime.block_on(client.signature())?;
    let classes: Vec<String> = info["classes"]
        .as_array()
        .map(|c| c.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let regression = info["task"] == "regression";
    let inputs = signature.inputs;
    run_batch(&inputs, (regression, &classes), (input, output), options, progress, &mut |layout, chunk, first| {
        let mut rows = Vec::with_capacity(chunk.len());
        let mut index = Vec::with_capacity(chunk.len());
        let mut bad = Vec::new();
        for i in 0..chunk.len() {
            match typed_row(&inputs, layout, chunk, (i, first + i)) {
                Ok(row) => {
                    rows.push(row);
                    index.push(i);
                }
                Err(b) => bad.push(b),
            }
        }
        // Requests of at most REMOTE_ROWS rows, well under the server's body and row limits.
        let mut out = Vec::with_capacity(rows.len());
        for (part, at) in rows.chunks(REMOTE_ROWS).zip(index.chunks(REMOTE_ROWS)) {
            let (scored, refused) = predict_part(client, runtime, part, |k| first + at[k], (input, options.on_error))?;
            bad.extend(refused);
            out.extend(scored.into_iter().map(|(k, p)| {
                let i = at[k];
                Out { id: layout.id(chunk, i, first + i), label: p.label, proba: p.probabilities }
            }));
        }
        Ok((out, bad))
    })
}

/// A part's predictions, each with its place in the part.
type Scored = Vec<(usize, crate::Prediction)>;

/// Scores one request's rows on the server. A row the server refuses (a 4xx naming the row) is
/// a bad row of the file, at its place in the file (`file_row(k)` for the part's row `k`):
/// under `Skip` it is left out and the others are asked again; under `Reject` the file fails
/// naming it. Returns the scored rows by their place in the part, and the refused rows.
fn predict_part(
    client: &crate::Client,
    runtime: &tokio::runtime::Handle,
    part: &[Row],
    file_row: impl Fn(usize) -> usize,
    (input, on_error): (&Path, OnBadRow),
) -> Result<(Scored, Vec<BadRow>)> {
    let mut left: Vec<usize> = (0..part.len()).collect();
    let mut refused = Vec::new();
    while !left.is_empty() {
        let asked: Vec<&Row> = left.iter().map(|&k| &part[k]).collect();
        match runtime.block_on(client.predict(&asked)) {
            Ok(predictions) => return Ok((left.into_iter().zip(predictions).collect(), refused)),
            Err(InferenceError::Server { status: 400 | 422, row: Some(r), column, message, .. }) if r < left.len() => {
                let k = left.remove(r);
                let row = file_row(k);
                // The server's message starts with the row (of its request) and the column, which
                // it also sends apart.
                let message = message
                    .strip_prefix("row ")
                    .and_then(|m| m.split_once(": "))
                    .filter(|(n, _)| n.parse::<usize>().is_ok())
                    .map_or(message.as_str(), |(_, m)| m);
                let message = column
                    .as_ref()
                    .and_then(|c| message.strip_prefix(&format!("column `{c}`: ")))
                    .unwrap_or(message)
                    .to_string();
                refused.push(BadRow { row, column, message });
                if on_error == OnBadRow::Reject {
                    return Err(InferenceError::BadRows { path: input.to_path_buf(), rows: refused });
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok((Vec::new(), refused))
}

/// Row `i` of a chunk as typed values, each cell read as the server reads it (the client sends
/// them as JSON; the server then applies the signature's null and category rules).
fn typed_row(
    inputs: &[mlops_core::ColumnSchema],
    layout: &Layout,
    chunk: &Chunk,
    (i, row): (usize, usize),
) -> std::result::Result<Row, BadRow> {
    let mut out = Row::new();
    for (j, col) in inputs.iter().enumerate() {
        if let Some(cell) = layout.cell(chunk, i, j) {
            let v = step20_serve::cell_value(col, cell, row).map_err(|e| BadRow {
                row,
                column: e.column,
                message: e.message,
            })?;
            out.insert(col.name.clone(), v);
        }
    }
    Ok(out)
}

type ChunkScorer<'s> = dyn FnMut(&Layout, &Chunk, usize) -> Result<(Vec<Out>, Vec<BadRow>)> + 's;

/// Reads `input` chunk by chunk, scores each with `score` and writes `output` atomically.
/// The output goes into a folder that exists, is not the input (the predictions would replace
/// the rows they come from), and replaces an existing file only when asked.
fn check_output(input: &Path, output: &Path, overwrite: bool) -> Result<()> {
    if let Some(folder) = output.parent().filter(|f| !f.as_os_str().is_empty() && !f.is_dir()) {
        return Err(InferenceError::Argument {
            name: "output",
            message: format!("{}: the folder {} does not exist", output.display(), folder.display()),
        });
    }
    if !output.exists() {
        return Ok(());
    }
    let same = match (std::fs::canonicalize(input), std::fs::canonicalize(output)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Err(InferenceError::Argument {
            name: "output",
            message: format!(
                "{} is the input file: the predictions would replace the rows they come from",
                output.display()
            ),
        });
    }
    if !overwrite {
        return Err(InferenceError::Argument {
            name: "output",
            message: format!("{} already exists: give another file, or --force to replace it", output.display()),
        });
    }
    Ok(())
}

fn run_batch(
    inputs: &[mlops_core::ColumnSchema],
    kind: (bool, &[String]),
    (input, output): (&Path, &Path),
    options: &BatchOptions,
    progress: &mut dyn FnMut(usize),
    score: &mut ChunkScorer<'_>,
) -> Result<BatchReport> {
    if options.chunk_rows == 0 {
        return Err(InferenceError::Argument { name: "chunk_rows", message: "must be at least 1".into() });
    }
    let format = format_of(output)?;
    let started = Instant::now();
    let mut source = Source::open(input)?;
    let names: Vec<String> = inputs.iter().map(|c| c.name.clone()).collect();
    let at: Vec<Option<usize>> = names.iter().map(|n| source.index().and_then(|ix| ix.get(n).copied())).collect();
    // A header without a column the model needs fails the file: no row could be scored.
    if source.index().is_some() {
        let missing: Vec<String> =
            inputs.iter().zip(&at).filter(|(c, a)| a.is_none() && !c.nullable).map(|(c, _)| c.name.clone()).collect();
        if !missing.is_empty() {
            return Err(InferenceError::MissingColumns { path: input.to_path_buf(), missing });
        }
    }
    let id = match &options.id_column {
        None => None,
        Some(name) => {
            let pos = source.index().and_then(|ix| ix.get(name).copied());
            if source.index().is_some() && pos.is_none() {
                return Err(InferenceError::Argument {
                    name: "id",
                    message: format!("column `{name}` is not in {}", input.display()),
                });
            }
            Some((name.clone(), pos))
        }
    };
    let layout = Layout { at, names, id };
    check_output(input, output, options.overwrite)?;
    let id_name = options.id_column.clone().unwrap_or_else(|| "row".into());
    // Same folder (the rename is atomic); temporaries a killed run left there go first.
    let tmp = mlops_core::io::temp_sibling(output);
    let mut run = || -> Result<BatchReport> {
        let mut writer = Writer::create(&tmp, format, kind, (&id_name, options.id_column.is_some()))?;
        let mut report = BatchReport {
            input: input.to_path_buf(),
            output: output.to_path_buf(),
            rows: 0,
            predicted: 0,
            skipped: 0,
            bad_rows: Vec::new(),
            chunks: 0,
            seconds: 0.0,
        };
        while let Some(chunk) = source.next(input, options.chunk_rows, report.rows)? {
            let n = chunk.len();
            let (out, mut bad) = score(&layout, &chunk, report.rows)?;
            if out.len() + bad.len() != n {
                return Err(InferenceError::Write {
                    path: output.to_path_buf(),
                    message: format!("{n} rows in, {} scored and {} bad", out.len(), bad.len()),
                });
            }
            bad.sort_by_key(|b| b.row);
            if !bad.is_empty() && options.on_error == OnBadRow::Reject {
                return Err(InferenceError::BadRows { path: input.to_path_buf(), rows: bad });
            }
            writer.write(&tmp, &out)?;
            report.rows += n;
            report.predicted += out.len();
            report.skipped += bad.len();
            let room = BAD_ROWS_KEPT.saturating_sub(report.bad_rows.len());
            report.bad_rows.extend(bad.into_iter().take(room));
            report.chunks += 1;
            tracing::debug!(rows = report.rows, chunk = report.chunks, "batch chunk scored");
            progress(report.rows);
        }
        writer.finish(&tmp)?;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    };
    match run() {
        Ok(report) => {
            std::fs::rename(&tmp, output).map_err(io(output, "cannot move the predictions into place"))?;
            tracing::info!(rows = report.rows, predicted = report.predicted, skipped = report.skipped, "batch done");
            Ok(report)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}
