//! Request bodies into conformed rows, and outputs into response bodies, for each protocol. Pure
//! functions of the body and the [`Scorer`]: the server calls them, and so do the benches.

use std::collections::HashMap;

use mlops_core::{DType, Row, TaskKind, Value};
use serde_json::{Map, Value as Json, json};

use crate::config::ConfidenceThresholds;
use crate::scorer::{Cell, InputError, InputErrorKind, Novel, Scored, Scorer};

/// Rows read from a request, conformed to the signature, held by column.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    /// The values by signature input: `columns[j][i]` is row `i`'s value of input `j`.
    pub columns: Vec<Vec<Value>>,
    /// How many rows.
    pub rows: usize,
    /// Per signature input, the values the model was not trained on (unseen categories accepted
    /// under the `warn` policy, numbers outside the training range).
    pub novel: Vec<Novel>,
}

impl Parsed {
    /// The rows, each a map from input name to value (what the feature pipeline's row path takes).
    pub fn to_rows(&self, scorer: &Scorer) -> Vec<Row> {
        let inputs = scorer.inputs();
        (0..self.rows)
            .map(|i| {
                scorer.name_order().iter().map(|&j| (inputs[j].name.clone(), self.columns[j][i].clone())).collect()
            })
            .collect()
    }
}

/// What Python's `Infinity` and `-Infinity` tokens are read as (the cell reader owns them).
pub use crate::scorer::{INFINITY, NEG_INFINITY};

/// The body as JSON. Python's `json.dumps` (and so MLflow's client with a pandas frame holding
/// missing values) writes the bare tokens `NaN`, `Infinity` and `-Infinity`, which JSON lacks:
/// `NaN` is read as a missing value (null), and an infinity as the infinite number it is (which a
/// cell refuses, as it refuses `inf` in a CSV body).
fn parse_json(body: &[u8]) -> Result<Json, InputError> {
    serde_json::from_slice(body).or_else(|e| {
        let malformed = || InputError::malformed(format!("the body is not valid JSON: {e}"));
        let fixed = non_finite_tokens(body).ok_or_else(malformed)?;
        serde_json::from_slice(&fixed).map_err(|_| malformed())
    })
}

/// `body` with `NaN` outside strings replaced by `null`, and `Infinity` and `-Infinity` by the
/// strings [`INFINITY`] and [`NEG_INFINITY`], or `None` if it has none of them.
pub fn non_finite_tokens(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len() + 16);
    let (mut i, mut in_string, mut replaced) = (0, false, false);
    while i < body.len() {
        let b = body[i];
        if in_string {
            out.push(b);
            if b == b'\\' && i + 1 < body.len() {
                out.push(body[i + 1]);
                i += 2;
                continue;
            }
            in_string = b != b'"';
            i += 1;
            continue;
        }
        // The strings as JSON writes them (a test checks they read as the constants).
        let token = [
            (&b"NaN"[..], &b"null"[..]),
            (b"Infinity", br#""\u0000mlops:Infinity""#),
            (b"-Infinity", br#""\u0000mlops:-Infinity""#),
        ]
        .into_iter()
        .find(|(t, _)| body[i..].starts_with(t));
        match token {
            Some((t, with)) => {
                out.extend_from_slice(with);
                i += t.len();
                replaced = true;
            }
            None => {
                in_string = b == b'"';
                out.push(b);
                i += 1;
            }
        }
    }
    replaced.then_some(out)
}

fn too_many(rows: usize, max: usize) -> Result<(), InputError> {
    if rows > max {
        return Err(InputError {
            kind: InputErrorKind::TooLarge,
            column: None,
            row: None,
            message: format!("{rows} rows in one request; the limit is {max} (`max_batch_rows`)"),
        });
    }
    Ok(())
}

/// Rows from `n` records, `cell(i, j)` giving row `i`'s cell for signature input `j`.
fn collect<'a>(
    scorer: &Scorer,
    n: usize,
    max: usize,
    cell: impl Fn(usize, usize) -> Option<Cell<'a>>,
) -> Result<Parsed, InputError> {
    too_many(n, max)?;
    let mut columns: Vec<Vec<Value>> = scorer.inputs().iter().map(|_| Vec::with_capacity(n)).collect();
    let mut novel = vec![Novel::default(); columns.len()];
    for i in 0..n {
        scorer.conform_into(i, |j| cell(i, j), &mut columns, &mut novel)?;
    }
    Ok(Parsed { columns, rows: n, novel })
}

/// A list of objects (`[{"col": value, ...}, ...]`).
fn records(scorer: &Scorer, list: &[Json], max: usize, key: &str) -> Result<Parsed, InputError> {
    let objects: Vec<&Map<String, Json>> = list
        .iter()
        .enumerate()
        .map(|(i, r)| r.as_object().ok_or_else(|| InputError::malformed(format!("`{key}[{i}]` is not an object"))))
        .collect::<Result<_, _>>()?;
    let names: Vec<&str> = scorer.inputs().iter().map(|c| c.name.as_str()).collect();
    // Clients send every record with the same keys in the same order: take the columns'
    // positions from the first record, and read the others by walking their keys (no hashing),
    // falling back to a lookup when a record differs.
    let keys: Vec<&str> = objects.first().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
    let at: Vec<Option<usize>> = names.iter().map(|n| keys.iter().position(|k| k == n)).collect();
    let cells: Vec<Vec<Option<&Json>>> = objects
        .iter()
        .map(|o| {
            let same = o.len() == keys.len() && o.keys().zip(&keys).all(|(a, b)| a == b);
            if same {
                let values: Vec<&Json> = o.values().collect();
                at.iter().map(|p| p.map(|p| values[p])).collect()
            } else {
                names.iter().map(|n| o.get(*n)).collect()
            }
        })
        .collect();
    collect(scorer, objects.len(), max, |i, j| cells[i][j].map(Cell::Json))
}

/// A list of lists, positional in signature order.
fn positional(scorer: &Scorer, list: &[Json], max: usize, key: &str) -> Result<Parsed, InputError> {
    let width = scorer.inputs().len();
    let rows: Vec<&Vec<Json>> = list
        .iter()
        .enumerate()
        .map(|(i, r)| match r.as_array() {
            Some(a) if a.len() == width => Ok(a),
            Some(a) => Err(InputError::malformed(format!(
                "`{key}[{i}]` has {} values; the model takes {width} columns in signature order (see GET /model_info)",
                a.len()
            ))),
            None => Err(InputError::malformed(format!("`{key}[{i}]` is not a list"))),
        })
        .collect::<Result<_, _>>()?;
    collect(scorer, rows.len(), max, |i, j| rows[i].get(j).map(Cell::Json))
}

/// An object of equally long lists (`{"col": [v1, v2], ...}`).
fn columnar(scorer: &Scorer, map: &Map<String, Json>, max: usize, key: &str) -> Result<Parsed, InputError> {
    let mut n = None;
    for (name, values) in map {
        let len = values.as_array().map_or(1, Vec::len);
        match n {
            None => n = Some(len),
            Some(m) if m != len => {
                return Err(InputError::malformed(format!(
                    "`{key}.{name}` has {len} values where the other columns have {m}"
                )));
            }
            Some(_) => {}
        }
    }
    let columns: Vec<Option<&Json>> = scorer.inputs().iter().map(|c| map.get(&c.name)).collect();
    collect(scorer, n.unwrap_or(0), max, |i, j| {
        columns[j].map(|v| match v {
            Json::Array(a) => Cell::Json(&a[i]),
            scalar => Cell::Json(scalar),
        })
    })
}

/// Records, lists in signature order, or columns: whichever shape `value` has.
fn any_shape(scorer: &Scorer, value: &Json, max: usize, key: &str) -> Result<Parsed, InputError> {
    match value {
        Json::Array(list) if list.iter().all(Json::is_object) => records(scorer, list, max, key),
        Json::Array(list) => positional(scorer, list, max, key),
        Json::Object(map) => columnar(scorer, map, max, key),
        _ => Err(InputError::malformed(format!("`{key}` must be a list of records or an object of columns"))),
    }
}

/// MLflow's JSON body: exactly one of `dataframe_split`, `dataframe_records`, `instances`,
/// `inputs` (with an optional `params`, ignored).
pub fn mlflow_json(scorer: &Scorer, body: &[u8], max: usize) -> Result<Parsed, InputError> {
    // Records and split frames are read straight into cells; any other body, and any body that
    // fails there, is read (and its error worded) by the general reader.
    let names: Vec<&str> = scorer.inputs().iter().map(|c| c.name.as_str()).collect();
    if let Ok(cells) = crate::direct::read(body, &names, max)
        && let Ok(parsed) = collect(scorer, cells.rows, max, |i, j| cells.get(i, j))
    {
        return Ok(parsed);
    }
    mlflow_json_general(scorer, body, max)
}

/// [`mlflow_json`] through a `serde_json::Value` tree: every shape, every error.
pub(crate) fn mlflow_json_general(scorer: &Scorer, body: &[u8], max: usize) -> Result<Parsed, InputError> {
    const KEYS: [&str; 4] = ["dataframe_split", "dataframe_records", "instances", "inputs"];
    let value = parse_json(body)?;
    let Json::Object(map) = &value else {
        return Err(InputError::malformed(format!("the body must be a JSON object with one of {}", KEYS.join(", "))));
    };
    if let Some(other) = map.keys().find(|k| !KEYS.contains(&k.as_str()) && k.as_str() != "params") {
        return Err(InputError::malformed(format!(
            "unknown key `{other}`: the body takes exactly one of {} (and optionally `params`)",
            KEYS.join(", ")
        )));
    }
    let present: Vec<&str> = KEYS.iter().copied().filter(|k| map.contains_key(*k)).collect();
    let [key] = present.as_slice() else {
        return Err(InputError::malformed(format!(
            "the body must have exactly one of {}; it has {}",
            KEYS.join(", "),
            if present.is_empty() { "none".to_string() } else { present.join(" and ") }
        )));
    };
    let inner = &map[*key];
    match *key {
        "dataframe_split" => {
            let split = inner.as_object().ok_or_else(|| {
                InputError::malformed("`dataframe_split` must be an object with `columns` and `data`")
            })?;
            let data = split
                .get("data")
                .and_then(Json::as_array)
                .ok_or_else(|| InputError::malformed("`dataframe_split.data` must be a list of rows"))?;
            match split.get("columns") {
                None => positional(scorer, data, max, "dataframe_split.data"),
                Some(Json::Array(columns)) => {
                    let index: HashMap<&str, usize> =
                        columns.iter().enumerate().filter_map(|(k, c)| c.as_str().map(|c| (c, k))).collect();
                    if index.len() != columns.len() {
                        return Err(InputError::malformed(
                            "`dataframe_split.columns` must be distinct column names (strings)",
                        ));
                    }
                    let rows: Vec<&Vec<Json>> = data
                        .iter()
                        .enumerate()
                        .map(|(i, r)| match r.as_array() {
                            Some(a) if a.len() == columns.len() => Ok(a),
                            _ => Err(InputError::malformed(format!(
                                "`dataframe_split.data[{i}]` must be a list of {} values, one per column",
                                columns.len()
                            ))),
                        })
                        .collect::<Result<_, _>>()?;
                    let at: Vec<Option<usize>> =
                        scorer.inputs().iter().map(|c| index.get(c.name.as_str()).copied()).collect();
                    collect(scorer, rows.len(), max, |i, j| at[j].map(|k| Cell::Json(&rows[i][k])))
                }
                Some(_) => Err(InputError::malformed("`dataframe_split.columns` must be a list of column names")),
            }
        }
        "dataframe_records" => match inner {
            Json::Array(list) => records(scorer, list, max, "dataframe_records"),
            _ => Err(InputError::malformed("`dataframe_records` must be a list of objects")),
        },
        key => any_shape(scorer, inner, max, key),
    }
}

/// A CSV body with a header row.
pub fn csv(scorer: &Scorer, body: &[u8], max: usize) -> Result<Parsed, InputError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(body);
    let header = reader.headers().map_err(|e| InputError::malformed(format!("CSV header: {e}")))?.clone();
    let index: HashMap<&str, usize> = header.iter().enumerate().map(|(k, h)| (h, k)).collect();
    let at: Vec<Option<usize>> = scorer.inputs().iter().map(|c| index.get(c.name.as_str()).copied()).collect();
    let mut records = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| InputError::malformed(format!("CSV row {i}: {e}")))?;
        records.push(record);
        too_many(records.len(), max)?;
    }
    collect(scorer, records.len(), max, |i, j| at[j].and_then(|k| records[i].get(k)).map(Cell::Text))
}

/// What an Open Inference Protocol request asks besides its rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OipRequest {
    /// The request's `id`, echoed.
    pub id: Option<String>,
    /// Output names asked for (`None`: all).
    pub outputs: Option<Vec<String>>,
}

/// An Open Inference Protocol tensor datatype.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Datatype {
    Bool,
    /// An integer type with its bounds.
    Int {
        name: &'static str,
        min: i128,
        max: i128,
    },
    /// `FP16`, `FP32` or `FP64`.
    Float(&'static str),
    Bytes,
}

impl Datatype {
    /// The smallest and largest value of an integer datatype.
    pub(crate) fn range(self) -> Option<(i128, i128)> {
        match self {
            Datatype::Int { min, max, .. } => Some((min, max)),
            _ => None,
        }
    }

    pub(crate) const NAMES: [&'static str; 13] = [
        "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64",
        "BYTES",
    ];

    pub(crate) fn parse(name: &str) -> Option<Datatype> {
        let int = |name, min: i128, max: i128| Some(Datatype::Int { name, min, max });
        match name {
            "BOOL" => Some(Datatype::Bool),
            "UINT8" => int("UINT8", 0, u8::MAX.into()),
            "UINT16" => int("UINT16", 0, u16::MAX.into()),
            "UINT32" => int("UINT32", 0, u32::MAX.into()),
            "UINT64" => int("UINT64", 0, u64::MAX.into()),
            "INT8" => int("INT8", i8::MIN.into(), i8::MAX.into()),
            "INT16" => int("INT16", i16::MIN.into(), i16::MAX.into()),
            "INT32" => int("INT32", i32::MIN.into(), i32::MAX.into()),
            "INT64" => int("INT64", i64::MIN.into(), i64::MAX.into()),
            "FP16" => Some(Datatype::Float("FP16")),
            "FP32" => Some(Datatype::Float("FP32")),
            "FP64" => Some(Datatype::Float("FP64")),
            "BYTES" => Some(Datatype::Bytes),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Datatype::Bool => "BOOL",
            Datatype::Int { name, .. } | Datatype::Float(name) => name,
            Datatype::Bytes => "BYTES",
        }
    }

    /// Whether a column of type `dtype` may arrive in a tensor of this datatype: BYTES carries
    /// anything, FP16/32/64 and INT64 a number column, BOOL a boolean one.
    pub(crate) fn carries(self, dtype: DType) -> bool {
        matches!(
            (self, dtype),
            (Datatype::Bytes, _)
                | (Datatype::Bool, DType::Bool)
                | (Datatype::Float(_) | Datatype::Int { name: "INT64", .. }, DType::Int | DType::Float)
        )
    }

    /// Whether a JSON datum fits: null (a missing value) always does; BYTES takes any value,
    /// because JSON has no bytes and one `[N, F]` tensor of a table's mixed columns can only be
    /// BYTES (the signature's conversion then judges each value).
    fn holds(self, v: &Json) -> bool {
        match (self, v) {
            (_, Json::Null) | (Datatype::Bytes, _) | (Datatype::Bool, Json::Bool(_)) => true,
            (Datatype::Float(_), Json::Number(_)) => true,
            // A whole number written with a fraction (`943.0`) is an integer, as JSON Schema
            // says.
            (Datatype::Int { min, max, .. }, Json::Number(n)) => {
                let n = n
                    .as_i64()
                    .map(i128::from)
                    .or_else(|| n.as_u64().map(i128::from))
                    .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1.0e19).map(|f| f as i128));
                n.is_some_and(|n| (min..=max).contains(&n))
            }
            _ => false,
        }
    }
}

/// Whether `data` is nested as `shape` says: one list per dimension, values innermost.
fn nested_as(data: &[Json], shape: &[usize]) -> bool {
    match shape {
        [] => false,
        [n] => data.len() == *n && data.iter().all(|v| !v.is_array()),
        [n, inner @ ..] => data.len() == *n && data.iter().all(|v| v.as_array().is_some_and(|a| nested_as(a, inner))),
    }
}

fn flatten<'a>(value: &'a Json, out: &mut Vec<&'a Json>) {
    match value {
        Json::Array(items) => items.iter().for_each(|v| flatten(v, out)),
        v => out.push(v),
    }
}

/// An Open Inference Protocol v2 infer request: one tensor per input column (shape `[N]` or
/// `[N, 1]`), or one tensor of shape `[N, F]` with the F signature inputs in order.
pub fn oip(scorer: &Scorer, body: &[u8], max: usize) -> Result<(Parsed, OipRequest), InputError> {
    // Typed, so the tensors' own objects are not built as maps (data stays JSON).
    #[derive(serde::Deserialize)]
    struct Body {
        id: Option<Json>,
        inputs: Option<Vec<Tensor>>,
        outputs: Option<Vec<Output>>,
    }
    #[derive(serde::Deserialize)]
    struct Tensor {
        name: Option<String>,
        shape: Option<Vec<Json>>,
        datatype: Option<Json>,
        data: Option<Json>,
    }
    #[derive(serde::Deserialize)]
    struct Output {
        name: Option<String>,
    }
    let parsed: Body = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(_) => {
            let value = parse_json(body)?;
            serde_json::from_value(value).map_err(|e| {
                InputError::malformed(format!("the body must be a JSON object with `inputs`, a list of tensors: {e}"))
            })?
        }
    };
    let request = OipRequest {
        id: parsed.id.and_then(|v| match v {
            Json::String(s) => Some(s),
            Json::Null => None,
            other => Some(other.to_string()),
        }),
        outputs: parsed.outputs.map(|list| list.into_iter().filter_map(|o| o.name).collect()),
    };
    let inputs = parsed.inputs.ok_or_else(|| InputError::malformed("`inputs` must be a list of tensors"))?;
    let mut tensors: Vec<(&str, Vec<usize>, Vec<&Json>)> = Vec::with_capacity(inputs.len());
    let columns = scorer.inputs();
    for (k, t) in inputs.iter().enumerate() {
        let name =
            t.name.as_deref().ok_or_else(|| InputError::malformed(format!("`inputs[{k}].name` must be a string")))?;
        let shape: Vec<usize> = t
            .shape
            .as_ref()
            .and_then(|s| s.iter().map(|d| d.as_u64().map(|d| d as usize)).collect::<Option<_>>())
            .ok_or_else(|| InputError::malformed(format!("input `{name}`: `shape` must be a list of sizes")))?;
        let Some(datatype) = t.datatype.as_ref().and_then(Json::as_str) else {
            return Err(InputError::malformed(format!("input `{name}`: `datatype` is required (FP64, BYTES, ...)")));
        };
        let datatype = Datatype::parse(datatype).ok_or_else(|| {
            InputError::malformed(format!(
                "input `{name}`: unknown datatype `{datatype}`; the Open Inference Protocol's are {}",
                Datatype::NAMES.join(", ")
            ))
        })?;
        let data =
            t.data.as_ref().ok_or_else(|| InputError::malformed(format!("input `{name}`: `data` is required")))?;
        // A list, flat (row-major) or nested as the shape says: a bare value, or lists nested
        // otherwise, are not the protocol's tensor data.
        if !data.as_array().is_some_and(|d| d.iter().all(|v| !v.is_array()) || nested_as(d, &shape)) {
            return Err(InputError::malformed(format!(
                "input `{name}`: `data` must be a list, flat or nested as shape {shape:?} says"
            )));
        }
        if let Some(c) = columns.iter().find(|c| c.name == name)
            && !datatype.carries(c.dtype)
        {
            return Err(InputError::malformed(format!(
                "input `{name}`: datatype {} cannot carry the column's {} values",
                datatype.name(),
                c.dtype
            )));
        }
        let mut flat = Vec::new();
        flatten(data, &mut flat);
        if let Some((k, v)) = flat.iter().enumerate().find(|(_, v)| !datatype.holds(v)) {
            return Err(InputError::malformed(format!(
                "input `{name}`: datatype {} does not hold `data[{k}]` = {v}",
                datatype.name()
            )));
        }
        // Sizes come from the client: a product past `usize` is a shape no request can fill.
        let size = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or_else(|| {
            InputError::malformed(format!(
                "input `{name}`: shape {shape:?} holds more values than any request can, `data` has {}",
                flat.len()
            ))
        })?;
        if flat.len() != size {
            return Err(InputError::malformed(format!(
                "input `{name}`: shape {shape:?} holds {size} values, `data` has {}",
                flat.len()
            )));
        }
        tensors.push((name, shape, flat));
    }
    let width = scorer.inputs().len();
    let known = |name: &str| scorer.inputs().iter().any(|c| c.name == name);
    let parsed = match tensors.as_slice() {
        [(name, shape, flat)] if shape.len() == 2 && shape[1] != 1 && !known(name) => {
            if shape[1] != width {
                return Err(InputError::malformed(format!(
                    "input `{name}` has shape {shape:?}; one tensor of shape [N, F] needs F = {width}, the signature's inputs in order"
                )));
            }
            collect(scorer, shape[0], max, |i, j| Some(Cell::Json(flat[i * width + j])))?
        }
        _ => {
            let mut n = None;
            for (name, shape, flat) in &tensors {
                if !(shape.len() == 1 || (shape.len() == 2 && shape[1] == 1)) {
                    return Err(InputError::malformed(format!(
                        "input `{name}` has shape {shape:?}; a column tensor has shape [N] or [N, 1]"
                    )));
                }
                match n {
                    None => n = Some(flat.len()),
                    Some(m) if m != flat.len() => {
                        return Err(InputError::malformed(format!(
                            "input `{name}` has {} rows where the other inputs have {m}",
                            flat.len()
                        )));
                    }
                    Some(_) => {}
                }
            }
            let index: HashMap<&str, usize> = tensors.iter().enumerate().map(|(k, t)| (t.0, k)).collect();
            let at: Vec<Option<usize>> = scorer.inputs().iter().map(|c| index.get(c.name.as_str()).copied()).collect();
            collect(scorer, n.unwrap_or(0), max, |i, j| at[j].map(|k| Cell::Json(tensors[k].2[i])))?
        }
    };
    Ok((parsed, request))
}

/// The body of `/predict`: one row, as `{"features": {...}}` or the bare object of columns.
pub fn predict_one(scorer: &Scorer, body: &[u8]) -> Result<Parsed, InputError> {
    let value = parse_json(body)?;
    let map = value.as_object().ok_or_else(|| InputError::malformed("the body must be a JSON object of columns"))?;
    let row = match map.get("features") {
        Some(Json::Object(inner)) if map.len() == 1 => inner,
        _ => map,
    };
    let names: Vec<&str> = scorer.inputs().iter().map(|c| c.name.as_str()).collect();
    collect(scorer, 1, 1, |_, j| row.get(names[j]).map(Cell::Json))
}

/// The body of `/predict/batch`: `{"instances": [...]}` or a bare list of records.
pub fn predict_batch(scorer: &Scorer, body: &[u8], max: usize) -> Result<Parsed, InputError> {
    let value = parse_json(body)?;
    let list = match &value {
        Json::Array(list) => list,
        Json::Object(map) => map
            .get("instances")
            .and_then(Json::as_array)
            .ok_or_else(|| InputError::malformed("the body must be a list of records or {\"instances\": [...]}"))?,
        _ => return Err(InputError::malformed("the body must be a list of records or {\"instances\": [...]}")),
    };
    records(scorer, list, max, "instances")
}

fn number(x: f64) -> Json {
    serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number)
}

/// MLflow's answer: `{"predictions": [...]}` (class names, or values).
pub fn mlflow_response(scorer: &Scorer, scored: &Scored) -> Json {
    json!({ "predictions": scored.predicted.iter().map(|&p| scorer.label(p)).collect::<Vec<_>>() })
}

/// The Open Inference Protocol answer: `label` (BYTES) and `probabilities` (FP64, `[N, C]`) for
/// classifiers, `prediction` (FP64) for regressors.
pub fn oip_response(scorer: &Scorer, scored: &Scored, request: &OipRequest) -> Json {
    let n = scored.predicted.len();
    let mut outputs = Vec::new();
    if scorer.task() == TaskKind::Regression {
        outputs.push(json!({
            "name": "prediction", "datatype": "FP64", "shape": [n],
            "data": scored.predicted.iter().map(|&p| number(p)).collect::<Vec<_>>(),
        }));
    } else {
        outputs.push(json!({
            "name": "label", "datatype": "BYTES", "shape": [n],
            "data": scored.predicted.iter().map(|&p| scorer.label(p)).collect::<Vec<_>>(),
        }));
        if let Some(proba) = &scored.proba {
            outputs.push(json!({
                "name": "probabilities", "datatype": "FP64", "shape": [n, scorer.classes().len()],
                "data": proba.iter().flatten().map(|&p| number(p)).collect::<Vec<_>>(),
            }));
        }
    }
    if let Some(wanted) = &request.outputs {
        outputs.retain(|o| o["name"].as_str().is_some_and(|name| wanted.iter().any(|w| w == name)));
    }
    let origin = &scorer.origin;
    let mut body = json!({
        "model_name": origin.name,
        "model_version": origin.version.map_or_else(|| "1".to_string(), |v| v.to_string()),
        "outputs": outputs,
    });
    if let Some(id) = &request.id {
        body["id"] = Json::String(id.clone());
    }
    body
}

/// One row's answer of `/predict`: the label, the top probability with its confidence band, and
/// every class's probability (classifiers).
pub fn predict_row(scorer: &Scorer, scored: &Scored, i: usize, bands: &ConfidenceThresholds) -> Json {
    let prediction = scorer.label(scored.predicted[i]);
    match scored.proba.as_ref().and_then(|p| p.get(i)) {
        Some(p) => {
            let top = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let confidence = if top > bands.high {
                "high"
            } else if top > bands.medium {
                "medium"
            } else {
                "low"
            };
            let probabilities: Map<String, Json> =
                scorer.classes().iter().zip(p).map(|(c, &v)| (c.clone(), number(v))).collect();
            json!({ "prediction": prediction, "probability": number(top), "confidence": confidence, "probabilities": probabilities })
        }
        None => json!({ "prediction": prediction, "probability": null, "confidence": null }),
    }
}
