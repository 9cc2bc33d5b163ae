//! A loaded package that scores rows: the signature check, the feature pipeline's row path, the
//! model. The server and batch inference both score through it.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use mlops_core::{ColumnSchema, DType, Row, TaskKind, Transform, Value};
use ndarray::Array2;
use serde::Serialize;
use step16_package::Package;
use step17_registry::{ModelUri, Registry};

use crate::config::CategoryPolicy;
use crate::{Result, ServeError};

/// What Python's `Infinity` and `-Infinity` tokens are read as: strings no client sends, which
/// the cell reader turns back into infinite numbers (and so into the one error for infinity).
pub const INFINITY: &str = "\u{0}mlops:Infinity";
/// What Python's `-Infinity` token is read as (see [`INFINITY`]).
pub const NEG_INFINITY: &str = "\u{0}mlops:-Infinity";

/// One input cell as a request carries it.
#[derive(Clone, Copy, Debug)]
pub enum Cell<'a> {
    /// A JSON value (JSON bodies, OIP tensors).
    Json(&'a serde_json::Value),
    /// Text (CSV bodies): parsed by the column's type; empty is null.
    Text(&'a str),
    /// A typed value (a Parquet file): ints widen to floats, text parses as the column's type.
    Value(&'a Value),
    /// A JSON value read straight from a body, without a `serde_json::Value` tree (a
    /// [`Cell::Json`] reads as its token).
    Token(&'a Token<'a>),
}

/// One JSON value of a request body as the body's parser hands it over, text borrowed from the
/// body where it has no escapes. Arrays and objects are only named (no cell takes one).
#[derive(Clone, Debug, PartialEq)]
pub enum Token<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number without fraction or exponent that fits an `i64`.
    Int(i64),
    /// A number without fraction or exponent above `i64::MAX`.
    UInt(u64),
    /// Any other number.
    Float(f64),
    /// A string.
    Str(std::borrow::Cow<'a, str>),
    /// An array (skipped).
    Array,
    /// An object (skipped).
    Object,
}

impl<'a> Token<'a> {
    /// The token of a JSON value (text borrowed; arrays and objects only named).
    pub fn of(v: &'a serde_json::Value) -> Token<'a> {
        match v {
            serde_json::Value::Null => Token::Null,
            serde_json::Value::Bool(b) => Token::Bool(*b),
            serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Token::Int(i),
                (None, Some(u)) => Token::UInt(u),
                (None, None) => Token::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) if s == INFINITY => Token::Float(f64::INFINITY),
            serde_json::Value::String(s) if s == NEG_INFINITY => Token::Float(f64::NEG_INFINITY),
            serde_json::Value::String(s) => Token::Str(std::borrow::Cow::Borrowed(s)),
            serde_json::Value::Array(_) => Token::Array,
            serde_json::Value::Object(_) => Token::Object,
        }
    }

    /// The type's name in an error.
    fn type_name(&self) -> &'static str {
        match self {
            Token::Null => "null",
            Token::Bool(_) => "bool",
            Token::Int(_) | Token::UInt(_) => "int",
            Token::Float(_) => "float",
            Token::Str(_) => "string",
            Token::Array => "array",
            Token::Object => "object",
        }
    }
}

/// Which 4xx a bad input gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputErrorKind {
    /// 400: the body cannot be read as the protocol says, a required column is missing, or a
    /// value has the wrong type.
    Malformed,
    /// 422: well-formed, but a value the model does not accept (null or NaN where none is
    /// allowed, an infinite number, an unseen category under the strict policy).
    Invalid,
    /// 413: more rows than `max_batch_rows` (or a body over `max_body_bytes`).
    TooLarge,
    /// 415: a content type the route does not read.
    UnsupportedMediaType,
}

/// A client's bad input: which column, which row, what is wrong.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InputError {
    /// Which status it gets.
    pub kind: InputErrorKind,
    /// The offending column, when one is.
    pub column: Option<String>,
    /// The offending row (from 0), when one is.
    pub row: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl InputError {
    /// A 400 about the body as a whole.
    pub fn malformed(message: impl Into<String>) -> InputError {
        InputError { kind: InputErrorKind::Malformed, column: None, row: None, message: message.into() }
    }

    fn column(kind: InputErrorKind, column: &str, row: usize, message: String) -> InputError {
        InputError { kind, column: Some(column.to_string()), row: Some(row), message }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self.kind {
            InputErrorKind::Malformed => 400,
            InputErrorKind::Invalid => 422,
            InputErrorKind::TooLarge => 413,
            InputErrorKind::UnsupportedMediaType => 415,
        }
    }

    /// Short reason, the label of `mlops_rejected_inputs_total`.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            InputErrorKind::Malformed => "malformed",
            InputErrorKind::Invalid => "invalid",
            InputErrorKind::TooLarge => "too_large",
            InputErrorKind::UnsupportedMediaType => "media_type",
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(row) = self.row {
            write!(f, "row {row}: ")?;
        }
        if let Some(column) = &self.column {
            write!(f, "column `{column}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for InputError {}

/// Where the served model came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Origin {
    /// Registered name (a package path: its directory's name).
    pub name: String,
    /// Registered version, when served from the registry.
    pub version: Option<u32>,
    /// The alias it was resolved through, when it was.
    pub alias: Option<String>,
    /// What was asked for (`models:/NAME@ALIAS` or the path).
    pub uri: String,
    /// The package directory.
    pub path: PathBuf,
}

/// Where to load the model from.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelSource {
    /// A `models:/` URI resolved in the registry.
    Registry {
        /// The store: a SQLite file or a `postgres://` URL.
        store: PathBuf,
        /// The artifact folder.
        artifacts: PathBuf,
        /// `models:/NAME@ALIAS`, `models:/NAME/VERSION` or `models:/NAME`.
        uri: String,
    },
    /// A package directory.
    Package(PathBuf),
}

impl ModelSource {
    /// A `models:/` URI in the given store, or else a package path.
    pub fn parse(model: &str, store: &Path, artifacts: &Path) -> ModelSource {
        if model.starts_with("models:/") {
            ModelSource::Registry { store: store.to_path_buf(), artifacts: artifacts.to_path_buf(), uri: model.into() }
        } else {
            ModelSource::Package(PathBuf::from(model))
        }
    }

    /// The version and package directory the source points at now.
    pub fn resolve(&self) -> Result<Origin> {
        match self {
            ModelSource::Registry { store, artifacts, uri } => {
                let parsed = ModelUri::parse(uri)?;
                if mlops_core::store::Location::from_path(store).is_missing_file() {
                    return Err(ServeError::Registry(step17_registry::RegistryError::NotFound(format!(
                        "{uri}: no registry at {} (run `make train` first)",
                        store.display()
                    ))));
                }
                let registry = Registry::open(store, artifacts, "serve")?;
                let version = registry.resolve(uri)?;
                let alias = match parsed {
                    ModelUri::Alias(_, alias) => Some(alias),
                    _ => None,
                };
                // The package's content address under this store's artifacts (downloaded once
                // from a bucket), its manifest the one registered: the files match the manifest
                // (checked on load), so a rewritten package cannot pass.
                let path = registry.package_dir(&version)?;
                Ok(Origin { name: version.name, version: Some(version.version), alias, uri: uri.clone(), path })
            }
            ModelSource::Package(dir) => {
                let name = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .filter(|n| !n.is_empty() && n != "package")
                    .unwrap_or_else(|| "model".into());
                Ok(Origin { name, version: None, alias: None, uri: dir.display().to_string(), path: dir.clone() })
            }
        }
    }

    /// Resolves and loads (verifying every checksum).
    pub fn load(&self, policy: CategoryPolicy) -> Result<Scorer> {
        let origin = self.resolve()?;
        let package = step16_package::load(&origin.path)?;
        Scorer::new(package, origin, policy)
    }
}

/// A model's outputs for some rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    /// Class index (classification) or predicted value (regression), per row.
    pub predicted: Vec<f64>,
    /// Class probabilities per row (classification).
    pub proba: Option<Vec<Vec<f64>>>,
}

/// A loaded package, ready to score rows.
#[derive(Debug)]
pub struct Scorer {
    /// The package.
    pub package: Package,
    /// Where it came from.
    pub origin: Origin,
    /// When it was loaded (RFC 3339).
    pub loaded_at: String,
    policy: CategoryPolicy,
    categories: Vec<Option<HashSet<String>>>,
    /// Signature inputs in name order.
    by_name: Vec<usize>,
}

impl Scorer {
    /// Wraps a loaded package.
    pub fn new(package: Package, origin: Origin, policy: CategoryPolicy) -> Result<Scorer> {
        let info = &package.contents.info;
        if info.task != TaskKind::Regression && info.classes.len() < 2 {
            return Err(ServeError::Model(format!(
                "{}: a classifier with {} class(es) in model.json",
                origin.path.display(),
                info.classes.len()
            )));
        }
        let categories = package
            .contents
            .signature
            .inputs
            .iter()
            .map(|c| c.categories.as_ref().map(|cats| cats.iter().cloned().collect()))
            .collect();
        let loaded_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let inputs = &package.contents.signature.inputs;
        let mut by_name: Vec<usize> = (0..inputs.len()).collect();
        by_name.sort_by(|&a, &b| inputs[a].name.cmp(&inputs[b].name));
        Ok(Scorer { package, origin, loaded_at, policy, categories, by_name })
    }

    /// The input columns, in signature order.
    pub fn inputs(&self) -> &[ColumnSchema] {
        &self.package.contents.signature.inputs
    }

    /// Class names in the order of the probabilities (empty for regression).
    pub fn classes(&self) -> &[String] {
        &self.package.contents.info.classes
    }

    /// What an unseen category gets.
    pub fn policy(&self) -> CategoryPolicy {
        self.policy
    }

    /// The task.
    pub fn task(&self) -> TaskKind {
        self.package.contents.info.task
    }

    /// Builds input row `row` from its cells (`get(j)`: the cell of signature input `j`, `None`
    /// when the request does not carry the column). Returns the row and how many of its values
    /// the model was not trained on (unseen categories accepted under the `warn` policy, numbers
    /// outside the training range). Columns are checked in name order; the error names the first
    /// offending one.
    pub fn conform<'a>(
        &self,
        row: usize,
        get: impl Fn(usize) -> Option<Cell<'a>>,
    ) -> std::result::Result<(Row, usize), InputError> {
        let mut out = Vec::with_capacity(self.by_name.len());
        let mut novel = 0;
        self.conform_each(row, get, |j, value, new| {
            novel += usize::from(new.is_some());
            out.push((self.inputs()[j].name.clone(), value));
        })?;
        // In name order already: the map is built without a search per column.
        Ok((out.into_iter().collect(), novel))
    }

    /// [`conform`](Scorer::conform) into columns: row `row`'s value of signature input `j` is
    /// pushed onto `columns[j]`, and a value the model was not trained on counted in `novel[j]`.
    pub fn conform_into<'a>(
        &self,
        row: usize,
        get: impl Fn(usize) -> Option<Cell<'a>>,
        columns: &mut [Vec<Value>],
        novel: &mut [Novel],
    ) -> std::result::Result<(), InputError> {
        self.conform_each(row, get, |j, value, new| {
            columns[j].push(value);
            match new {
                Some(Novelty::Unseen) => novel[j].unseen += 1,
                Some(Novelty::OutOfRange) => novel[j].out_of_range += 1,
                None => {}
            }
        })
    }

    /// The check both share: every signature input in name order, its value handed to `put`.
    fn conform_each<'a>(
        &self,
        row: usize,
        get: impl Fn(usize) -> Option<Cell<'a>>,
        mut put: impl FnMut(usize, Value, Option<Novelty>),
    ) -> std::result::Result<(), InputError> {
        for &j in &self.by_name {
            let (value, new) = self.conform_cell(j, get(j), row)?;
            put(j, value, new);
        }
        Ok(())
    }

    /// Signature input `j`'s value from its cell (`None`: the column is absent), as [`conform`]
    /// checks it, and whether the model was trained on nothing like it (an unseen category
    /// accepted under the `warn` policy, a number outside the training range).
    ///
    /// [`conform`]: Scorer::conform
    pub fn conform_cell(
        &self,
        j: usize,
        cell: Option<Cell<'_>>,
        row: usize,
    ) -> std::result::Result<(Value, Option<Novelty>), InputError> {
        let col = &self.inputs()[j];
        let value = match cell {
            None if col.nullable => Value::Null,
            None => {
                return Err(InputError::column(
                    InputErrorKind::Malformed,
                    &col.name,
                    row,
                    format!("required column is missing (expected {})", col.dtype),
                ));
            }
            Some(cell) => cell_value(col, cell, row)?,
        };
        let value = match value {
            Value::Float(f) if f.is_nan() => Value::Null,
            v => v,
        };
        if value.is_null() && !col.nullable {
            return Err(InputError::column(
                InputErrorKind::Invalid,
                &col.name,
                row,
                format!("null or NaN, but the model was trained without missing {} values here", col.dtype),
            ));
        }
        if let (Value::Str(s), Some(Some(cats))) = (&value, self.categories.get(j))
            && !cats.contains(s)
        {
            if self.policy == CategoryPolicy::Strict {
                return Err(InputError::column(
                    InputErrorKind::Invalid,
                    &col.name,
                    row,
                    format!(
                        "unseen category {s:?} (the strict policy allows only the {} seen in training)",
                        cats.len()
                    ),
                ));
            }
            return Ok((value, Some(Novelty::Unseen)));
        }
        let outside = |x: f64| col.range.is_some_and(|(lo, hi)| x < lo || x > hi);
        let novelty = match value {
            Value::Float(x) if outside(x) => Some(Novelty::OutOfRange),
            Value::Int(i) if outside(i as f64) => Some(Novelty::OutOfRange),
            _ => None,
        };
        Ok((value, novelty))
    }

    /// Signature input positions in name order (the order [`conform`](Scorer::conform) checks).
    pub fn name_order(&self) -> &[usize] {
        &self.by_name
    }

    /// Scores conformed rows: the feature pipeline's row path (in place), then the model.
    pub fn score(&self, rows: &mut [Row]) -> std::result::Result<Scored, ScoreError> {
        let c = &self.package.contents;
        for (i, row) in rows.iter_mut().enumerate() {
            c.pipeline.transform_row(row).map_err(|e| {
                ScoreError::Input(InputError {
                    kind: InputErrorKind::Invalid,
                    column: None,
                    row: Some(i),
                    message: e.to_string(),
                })
            })?;
        }
        let features = &c.info.features;
        let x = Array2::from_shape_fn((rows.len(), features.len()), |(i, j)| {
            rows[i].get(&features[j]).and_then(Value::as_f64).unwrap_or(f64::NAN)
        });
        let predicted = c.model.predict(&x).map_err(|e| ScoreError::Model(e.to_string()))?;
        let proba = c.model.predict_proba(&x).map_err(|e| ScoreError::Model(e.to_string()))?;
        Ok(Scored { predicted, proba })
    }

    /// The label of a prediction: the class name, or the value.
    pub fn label(&self, predicted: f64) -> serde_json::Value {
        match self.task() {
            TaskKind::Regression => {
                serde_json::Number::from_f64(predicted).map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
            _ => self
                .classes()
                .get(predicted as usize)
                .map_or(serde_json::Value::Null, |c| serde_json::Value::String(c.clone())),
        }
    }
}

/// A value unlike any the model was trained on, answered all the same and counted for monitoring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Novelty {
    /// A text value outside the categories seen in training (under the `warn` policy).
    Unseen,
    /// A number outside the range seen in training.
    OutOfRange,
}

/// One column's count of values the model was not trained on, in a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Novel {
    /// Unseen categories.
    #[serde(skip_serializing_if = "is_zero")]
    pub unseen: usize,
    /// Numbers outside the training range.
    #[serde(skip_serializing_if = "is_zero")]
    pub out_of_range: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Novel {
    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.unseen == 0 && self.out_of_range == 0
    }
}

/// Scoring failed: the client's input (4xx) or the model (500).
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// The feature pipeline refused a row.
    #[error(transparent)]
    Input(InputError),
    /// The model failed.
    #[error("model: {0}")]
    Model(String),
}

type Conversion = std::result::Result<Value, (InputErrorKind, String)>;

/// One cell as a value of the column's type.
fn convert(col: &ColumnSchema, cell: Cell<'_>) -> Conversion {
    let wrong = |found: &str| Err((InputErrorKind::Malformed, format!("has type {found}, expected {}", col.dtype)));
    match cell {
        // A JSON value reads as the token the body's parser would have handed over.
        Cell::Json(v) => convert(col, Cell::Token(&Token::of(v))),
        Cell::Token(Token::Null) => Ok(Value::Null),
        Cell::Token(t) => match (col.dtype, t) {
            (DType::Float, Token::Int(i)) => Ok(Value::Float(*i as f64)),
            (DType::Float, Token::UInt(u)) => Ok(Value::Float(*u as f64)),
            (DType::Float, Token::Float(f)) => Ok(Value::Float(*f)),
            (DType::Int, Token::Int(i)) => Ok(Value::Int(*i)),
            (DType::Int, Token::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Value::Int(*f as i64)),
            (DType::Int, Token::Float(_) | Token::UInt(_)) => wrong("float"),
            (DType::Bool, Token::Bool(b)) => Ok(Value::Bool(*b)),
            (DType::Str, Token::Str(s)) => Ok(Value::Str(s.to_string())),
            (DType::Date | DType::Datetime, Token::Str(s)) => text(col, s),
            (_, other) => wrong(other.type_name()),
        },
        Cell::Text(t) => text(col, t),
        Cell::Value(v) => match (col.dtype, v) {
            (_, Value::Null) => Ok(Value::Null),
            (d, v) if v.dtype() == Some(d) => Ok(v.clone()),
            (DType::Float, Value::Int(i)) => Ok(Value::Float(*i as f64)),
            (DType::Datetime, Value::Date(d)) => Ok(Value::Datetime(i64::from(*d) * 86_400_000_000)),
            (_, Value::Str(s)) => text(col, s),
            (_, other) => wrong(&other.dtype().map_or_else(|| "null".to_string(), |d| d.to_string())),
        },
    }
}

/// One cell as a value of `col`'s type, as the server reads it: the error names the column and
/// the row. Clients use it to send typed values read from text files.
/// An infinite number is refused (422) wherever it comes from (`inf`, `Infinity` or `1e999` in a
/// CSV cell, Python's `Infinity` in JSON, a Parquet value): no model was trained on one, and a
/// scaler or a linear model would turn it into an infinite or NaN score.
pub fn cell_value(col: &ColumnSchema, cell: Cell<'_>, row: usize) -> std::result::Result<Value, InputError> {
    match convert(col, cell) {
        Ok(Value::Float(f)) if f.is_infinite() => Err(InputError::column(
            InputErrorKind::Invalid,
            &col.name,
            row,
            format!(
                "{f} is not a finite number (the model takes finite numbers, or null where missing values are allowed)"
            ),
        )),
        Ok(v) => Ok(v),
        Err((kind, m)) => Err(InputError::column(kind, &col.name, row, m)),
    }
}

/// A text cell (CSV, dates in JSON) as a value of the column's type.
fn text(col: &ColumnSchema, t: &str) -> Conversion {
    // The source's missing markers (`NA`) as it was read in training, before any trimming.
    if col.null_values.iter().any(|n| n == t) {
        return Ok(Value::Null);
    }
    let t = t.trim();
    if t.is_empty() {
        return Ok(Value::Null);
    }
    let not = |what: &str| Err((InputErrorKind::Malformed, format!("{t:?} is not {what}")));
    match col.dtype {
        DType::Str => Ok(Value::Str(t.to_string())),
        DType::Float => match t {
            "NA" | "NaN" | "nan" | "null" => Ok(Value::Null),
            _ => t.parse::<f64>().map(Value::Float).or_else(|_| not("a number")),
        },
        DType::Int => match t {
            "NA" | "null" => Ok(Value::Null),
            _ => t.parse::<i64>().map(Value::Int).or_else(|_| not("an integer")),
        },
        DType::Bool => match t {
            "true" | "True" | "TRUE" | "1" => Ok(Value::Bool(true)),
            "false" | "False" | "FALSE" | "0" => Ok(Value::Bool(false)),
            _ => not("a boolean (true or false)"),
        },
        // A date, or a datetime at midnight as pandas writes dates (`2007-11-12T00:00:00.000`).
        DType::Date => Value::parse_date(t)
            .or_else(|| datetime(t).filter(|d| d.time() == chrono::NaiveTime::MIN).map(|d| d.date()))
            .map(|d| Value::Date(Value::days_from_date(d)))
            .map_or_else(|| not("a date (YYYY-MM-DD)"), Ok),
        DType::Datetime => datetime(t)
            .or_else(|| Value::parse_date(t).and_then(|d| d.and_hms_opt(0, 0, 0)))
            .map(|d| Value::Datetime(d.and_utc().timestamp_micros()))
            .map_or_else(|| not("a datetime (YYYY-MM-DDTHH:MM:SS)"), Ok),
    }
}

fn datetime(t: &str) -> Option<chrono::NaiveDateTime> {
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(t.trim_end_matches('Z'), f).ok())
}
