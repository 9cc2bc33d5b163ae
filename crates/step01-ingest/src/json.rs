//! JSON and NDJSON records, flattened like pandas' `json_normalize`.

use std::io::{BufRead, BufReader};
use std::path::Path;

use mlops_core::Value;
use polars::prelude::DataFrame;
use serde_json::Value as Json;

use crate::config::JsonSource;
use crate::csv::open_error;
use crate::error::{IngestError, Result};
use crate::records::Columns;

fn scalar(v: &Json) -> Value {
    match v {
        Json::Array(_) | Json::Object(_) => Value::Str(v.to_string()),
        other => Value::from_json(other),
    }
}

/// How records are flattened: nested keys joined by `separator`, objects deeper than
/// `max_level` kept as JSON text.
#[derive(Clone, Copy)]
pub(crate) struct Flat<'a> {
    pub separator: &'a str,
    pub max_level: Option<usize>,
}

/// Flattens one object into dotted keys.
pub(crate) fn flatten(
    prefix: &str,
    obj: &serde_json::Map<String, Json>,
    flat: Flat<'_>,
    depth: usize,
    out: &mut Vec<(String, Value)>,
) {
    for (k, v) in obj {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}{}{k}", flat.separator) };
        match v {
            Json::Object(inner) if flat.max_level.is_none_or(|max| depth < max) => {
                flatten(&key, inner, flat, depth + 1, out);
            }
            other => out.push((key, scalar(other))),
        }
    }
}

/// The node at a dotted `path` of `doc` (the whole document without one), or the part missing.
pub(crate) fn at_path<'a>(doc: &'a Json, path: Option<&str>) -> std::result::Result<&'a Json, String> {
    let mut node = doc;
    if let Some(path) = path {
        for part in path.split('.') {
            node = node.get(part).ok_or_else(|| format!("record_path `{path}`: no key `{part}` in the document"))?;
        }
    }
    Ok(node)
}

fn not_records(path: &Path, line: usize, what: &str) -> IngestError {
    IngestError::Json { path: path.to_path_buf(), line, column: 1, message: what.to_string() }
}

fn parse_error(path: &Path, e: &serde_json::Error, line_offset: usize) -> IngestError {
    let mut message = e.to_string();
    if let Some(at) = message.find(" at line ") {
        message.truncate(at);
    }
    IngestError::Json { path: path.to_path_buf(), line: e.line() + line_offset, column: e.column(), message }
}

pub(crate) fn read_json(opts: &JsonSource, bytes: &[u8]) -> Result<DataFrame> {
    let path = opts.path.as_path();
    let doc: Json = serde_json::from_slice(bytes).map_err(|e| parse_error(path, &e, 0))?;
    let node = at_path(&doc, opts.record_path.as_deref()).map_err(|m| not_records(path, 1, &m))?;
    let flat = Flat { separator: &opts.separator, max_level: opts.max_level };
    let mut columns = Columns::default();
    let mut push = |v: &Json| -> Result<()> {
        let Json::Object(obj) = v else {
            return Err(not_records(
                path,
                1,
                &format!("expected an array of objects, found an element that is {}", kind(v)),
            ));
        };
        let mut record = Vec::new();
        flatten("", obj, flat, 0, &mut record);
        columns.push(record);
        Ok(())
    };
    match node {
        Json::Array(items) => {
            for item in items.iter().take(opts.limit.unwrap_or(usize::MAX)) {
                push(item)?;
            }
        }
        Json::Object(_) => push(node)?,
        other => return Err(not_records(path, 1, &format!("expected an array of objects, found {}", kind(other)))),
    }
    columns.finish(path, opts.columns.as_deref())
}

pub(crate) fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

pub(crate) fn read_ndjson(opts: &JsonSource) -> Result<DataFrame> {
    let path = opts.path.as_path();
    let file = std::fs::File::open(path).map_err(|e| open_error(path, e))?;
    let flat = Flat { separator: &opts.separator, max_level: opts.max_level };
    let mut columns = Columns::default();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        if columns.rows() >= opts.limit.unwrap_or(usize::MAX) {
            break;
        }
        let line =
            line.map_err(|_| IngestError::Encoding { path: path.to_path_buf(), line: i + 1, encoding: "UTF-8" })?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Json = serde_json::from_str(&line).map_err(|e| parse_error(path, &e, i))?;
        let Json::Object(obj) = &v else {
            return Err(not_records(path, i + 1, &format!("expected one object per line, found {}", kind(&v))));
        };
        let mut record = Vec::new();
        flatten("", obj, flat, 0, &mut record);
        columns.push(record);
    }
    columns.finish(path, opts.columns.as_deref())
}
