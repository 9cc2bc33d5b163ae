//! Building a frame from records whose types are only known per value (JSON, workbook cells, SQL
//! rows): columns are typed by what they hold, and columns that mix types become text.

use mlops_core::frame::{column_from_values, infer_dtype};
use mlops_core::{DType, Value};
use polars::prelude::{Column, DataFrame};

use crate::error::{IngestError, Result};
use std::collections::HashMap;
use std::path::Path;

/// Columns filled record by record; a key first seen late is back-filled with nulls.
#[derive(Default)]
pub(crate) struct Columns {
    names: Vec<String>,
    index: HashMap<String, usize>,
    values: Vec<Vec<Value>>,
    rows: usize,
}

impl Columns {
    /// Columns in a known order (a header), so that empty columns still appear.
    pub(crate) fn with_names(names: &[String]) -> Self {
        let mut c = Columns::default();
        for n in names {
            c.slot(n);
        }
        c
    }

    fn slot(&mut self, name: &str) -> usize {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        let i = self.names.len();
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        self.values.push(vec![Value::Null; self.rows]);
        i
    }

    /// Adds one record.
    pub(crate) fn push(&mut self, record: impl IntoIterator<Item = (String, Value)>) {
        for (k, v) in record {
            let i = self.slot(&k);
            let col = &mut self.values[i];
            if col.len() == self.rows {
                col.push(v);
            } else if let Some(last) = col.last_mut() {
                // A repeated key within one record: the later value wins, as in a JSON object.
                *last = v;
            }
        }
        self.rows += 1;
        for col in &mut self.values {
            if col.len() < self.rows {
                col.push(Value::Null);
            }
        }
    }

    /// Number of records so far.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// The frame, optionally restricted to `columns` (in that order).
    pub(crate) fn finish(self, path: &Path, columns: Option<&[String]>) -> Result<DataFrame> {
        let Columns { names, index, mut values, rows } = self;
        let order: Vec<usize> = match columns {
            None => (0..names.len()).collect(),
            Some(wanted) => {
                let missing: Vec<String> = wanted.iter().filter(|w| !index.contains_key(*w)).cloned().collect();
                if !missing.is_empty() {
                    return Err(IngestError::MissingColumns { path: path.to_path_buf(), missing, available: names });
                }
                wanted.iter().filter_map(|w| index.get(w).copied()).collect()
            }
        };
        let cols: Vec<Column> = order
            .into_iter()
            .map(|i| {
                let vals = std::mem::take(&mut values[i]);
                typed_column(&names[i], vals)
            })
            .collect();
        DataFrame::new(rows, cols).map_err(|e| IngestError::Read { path: path.to_path_buf(), message: e.to_string() })
    }
}

/// A column typed by its values: ints widen to float beside floats, whole-number floats of a
/// workbook stay floats, and anything else mixed becomes text.
fn typed_column(name: &str, mut values: Vec<Value>) -> Column {
    let t = infer_dtype(&values);
    if t == DType::Str {
        for v in &mut values {
            if !matches!(v, Value::Null | Value::Str(_)) {
                *v = Value::Str(v.to_string());
            }
        }
    }
    column_from_values(name, t, &values)
}
