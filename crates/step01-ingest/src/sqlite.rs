//! SQL sources through SQLite: a query against a database file opened read-only.

use mlops_core::Value;
use polars::prelude::DataFrame;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::config::SqliteSource;
use crate::error::{IngestError, Result};
use crate::records::Columns;

pub(crate) fn read(opts: &SqliteSource) -> Result<DataFrame> {
    let path = opts.path.as_path();
    if !path.is_file() {
        return Err(IngestError::NotFound { path: path.to_path_buf() });
    }
    let sql_error = |e: rusqlite::Error| IngestError::Sql {
        path: path.to_path_buf(),
        query: opts.query.clone(),
        message: e.to_string(),
    };
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(sql_error)?;
    let mut stmt = conn.prepare(&opts.query).map_err(sql_error)?;
    let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
    let mut columns = Columns::with_names(&names);
    let mut rows = stmt.query([]).map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let mut record = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let v = match row.get_ref(i).map_err(sql_error)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(x) => Value::Int(x),
                ValueRef::Real(x) => Value::Float(x),
                ValueRef::Text(t) => Value::Str(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(_) => {
                    return Err(IngestError::Sql {
                        path: path.to_path_buf(),
                        query: opts.query.clone(),
                        message: format!("column `{name}` holds binary data (BLOB); select hex({name}) instead"),
                    });
                }
            };
            record.push((name.clone(), v));
        }
        columns.push(record);
    }
    columns.finish(path, None)
}
