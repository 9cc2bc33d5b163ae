//! Workbooks (xlsx, xlsm, xlsb, xls, ods) through calamine.

use calamine::{Data, Reader, open_workbook_auto};
use mlops_core::Value;
use polars::prelude::DataFrame;

use crate::config::{ExcelSource, SheetRef};
use crate::error::{IngestError, Result};
use crate::records::Columns;

fn cell_value(cell: &Data, null_values: &[String]) -> Value {
    match cell {
        Data::Empty => Value::Null,
        Data::Int(i) => Value::Int(*i),
        Data::Float(f) => Value::Float(*f),
        Data::Bool(b) => Value::Bool(*b),
        Data::String(s) if null_values.iter().any(|n| n == s) => Value::Null,
        Data::String(s) => Value::Str(s.clone()),
        Data::DateTime(dt) => dt.as_datetime().map_or(Value::Null, |d| Value::Datetime(d.and_utc().timestamp_micros())),
        Data::DateTimeIso(s) => mlops_core::ops::parse_datetime(
            s,
            &["%Y-%m-%dT%H:%M:%S%.f".to_string(), "%Y-%m-%dT%H:%M:%S".to_string(), "%Y-%m-%d".to_string()],
        )
        .map_or_else(|| Value::Str(s.clone()), Value::Datetime),
        Data::DurationIso(s) => Value::Str(s.clone()),
        Data::Error(e) => {
            tracing::warn!(error = %e, "workbook cell holds an error value; read as null");
            Value::Null
        }
    }
}

fn header_name(cell: &Data, index: usize) -> String {
    match cell {
        Data::Empty => format!("column_{}", index + 1),
        Data::String(s) if s.trim().is_empty() => format!("column_{}", index + 1),
        Data::String(s) => s.clone(),
        Data::Float(f) if f.fract() == 0.0 => format!("{f:.0}"),
        other => other.to_string(),
    }
}

/// Whole-number floats in a column that holds nothing else become ints, as pandas reads them.
fn narrow_whole_floats(records: &mut [Vec<Value>]) {
    let Some(width) = records.first().map(Vec::len) else { return };
    for j in 0..width {
        let column = || records.iter().filter_map(|r| r.get(j));
        let all_whole = column().all(|v| match v {
            Value::Null | Value::Int(_) => true,
            Value::Float(f) => f.fract() == 0.0 && f.abs() < 9.0e15,
            _ => false,
        });
        let any_float = column().any(|v| matches!(v, Value::Float(_)));
        if all_whole && any_float {
            for r in records.iter_mut() {
                if let Some(Value::Float(f)) = r.get(j) {
                    #[allow(clippy::cast_possible_truncation)]
                    let i = *f as i64;
                    r[j] = Value::Int(i);
                }
            }
        }
    }
}

pub(crate) fn read(opts: &ExcelSource) -> Result<DataFrame> {
    let path = opts.path.as_path();
    if !path.exists() {
        return Err(IngestError::NotFound { path: path.to_path_buf() });
    }
    let mut workbook =
        open_workbook_auto(path).map_err(|e| IngestError::Read { path: path.to_path_buf(), message: e.to_string() })?;
    let names = workbook.sheet_names();
    let range = match &opts.sheet {
        SheetRef::Name(name) => {
            if !names.contains(name) {
                return Err(IngestError::SheetNotFound {
                    path: path.to_path_buf(),
                    sheet: name.clone(),
                    available: names,
                });
            }
            workbook.worksheet_range(name)
        }
        SheetRef::Index(i) => match workbook.worksheet_range_at(*i) {
            Some(r) => r,
            None => {
                return Err(IngestError::SheetNotFound {
                    path: path.to_path_buf(),
                    sheet: format!("#{i} (0-based)"),
                    available: names,
                });
            }
        },
    }
    .map_err(|e| IngestError::Read { path: path.to_path_buf(), message: e.to_string() })?;

    let mut rows = range.rows();
    let width = range.width();
    let header: Vec<String> = if opts.has_header {
        match rows.next() {
            Some(first) => first.iter().enumerate().map(|(i, c)| header_name(c, i)).collect(),
            None => return Err(IngestError::Empty { path: path.to_path_buf() }),
        }
    } else {
        (0..width).map(|i| format!("column_{}", i + 1)).collect()
    };
    let mut records: Vec<Vec<Value>> = rows
        .take(opts.limit.unwrap_or(usize::MAX))
        .map(|r| r.iter().map(|c| cell_value(c, &opts.null_values)).collect())
        .collect();
    narrow_whole_floats(&mut records);
    let mut columns = Columns::with_names(&header);
    for record in records {
        columns.push(header.iter().cloned().zip(record));
    }
    columns.finish(path, opts.columns.as_deref())
}
