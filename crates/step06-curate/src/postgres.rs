//! The curated table in PostgreSQL (`curate.postgres`), written in one transaction beside the
//! Parquet version: the table is created (or dropped and created, or appended to), the rows go
//! in through binary `COPY`, and the transaction commits only after the version directory is in
//! place. Any failure before that rolls it back: the server keeps the table as it was.

use mlops_core::DType;
use mlops_core::frame::dtype_of;
use polars::prelude::{DataFrame, DataType, TimeUnit};
use postgres::Client;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use serde::{Deserialize, Serialize};
use step01_ingest::Env;
use step01_ingest::postgres::Pooled;
use step01_ingest::postgres::{Server, connect, quoted_table, server_error};

use crate::{CurateError, Result};

/// What to do when the table exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IfExists {
    /// Refuse: the run fails naming the table.
    #[default]
    Fail,
    /// Drop it and create it again with the curated columns.
    Replace,
    /// Add the curated rows to it (the columns must fit; a missing table is created).
    Append,
}

/// Where the curated table goes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSink {
    /// `postgres://user@host:port/database`, without a password.
    pub url: String,
    /// The table (`name` or `schema.name`).
    pub table: String,
    /// What to do when the table exists.
    #[serde(default)]
    pub if_exists: IfExists,
    /// The environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Seconds to wait for the connection.
    #[serde(default = "default_timeout")]
    pub connect_timeout_seconds: u64,
}

fn default_timeout() -> u64 {
    10
}

/// A table written in an open transaction: [`Staged::commit`] makes it visible; dropping it
/// closes the connection, and the server rolls the transaction back.
pub struct Staged {
    client: Pooled,
    server: String,
    /// The table as written (quoted).
    pub table: String,
    /// Rows copied.
    pub rows: usize,
}

impl Staged {
    /// Commits the transaction. Answers where the rows went (`postgres://user@host:port/db`
    /// and the table).
    pub fn commit(mut self) -> Result<String> {
        self.client.batch_execute("COMMIT").map_err(|e| failed(&self.server, None, &e))?;
        tracing::info!(server = %self.server, table = %self.table, rows = self.rows, "curated table committed");
        let Staged { client, server, table, .. } = self;
        client.release();
        Ok(format!("{server} {table}"))
    }
}

fn failed(server: &str, sql: Option<&str>, e: &postgres::Error) -> CurateError {
    CurateError::Sink { message: server_error(server, sql, e).to_string() }
}

/// The column's SQL type and its values, typed for `COPY`.
enum Values {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Text(Vec<Option<String>>),
    Date(Vec<Option<chrono::NaiveDate>>),
    Datetime(Vec<Option<chrono::NaiveDateTime>>),
}

impl Values {
    fn of(frame: &DataFrame, name: &str) -> Result<(Type, Values)> {
        let column = frame.column(name).map_err(|e| CurateError::Sink { message: e.to_string() })?;
        let err = |e: polars::prelude::PolarsError| CurateError::Sink { message: format!("column `{name}`: {e}") };
        Ok(match dtype_of(column.dtype()) {
            Some(DType::Int) => {
                let c = column.cast(&DataType::Int64).map_err(err)?;
                (Type::INT8, Values::Int(c.i64().map_err(err)?.iter().collect()))
            }
            Some(DType::Float) => {
                let c = column.cast(&DataType::Float64).map_err(err)?;
                (Type::FLOAT8, Values::Float(c.f64().map_err(err)?.iter().collect()))
            }
            Some(DType::Bool) => (Type::BOOL, Values::Bool(column.bool().map_err(err)?.iter().collect())),
            Some(DType::Date) => {
                let days = column.cast(&DataType::Int32).map_err(err)?;
                let dates = days.i32().map_err(err)?.iter().map(|d| d.and_then(mlops_core::Value::date_from_days));
                (Type::DATE, Values::Date(dates.collect()))
            }
            Some(DType::Datetime) => {
                let us = column.cast(&DataType::Datetime(TimeUnit::Microseconds, None)).map_err(err)?;
                let us = us.cast(&DataType::Int64).map_err(err)?;
                let times = us.i64().map_err(err)?.iter().map(|t| t.and_then(mlops_core::Value::datetime_from_micros));
                (Type::TIMESTAMP, Values::Datetime(times.collect()))
            }
            // Text, and anything else as its text (categories, durations).
            _ => {
                let c = column.cast(&DataType::String).map_err(err)?;
                (Type::TEXT, Values::Text(c.str().map_err(err)?.iter().map(|v| v.map(str::to_string)).collect()))
            }
        })
    }

    fn cell(&self, i: usize) -> &(dyn ToSql + Sync) {
        match self {
            Values::Int(v) => &v[i],
            Values::Float(v) => &v[i],
            Values::Bool(v) => &v[i],
            Values::Text(v) => &v[i],
            Values::Date(v) => &v[i],
            Values::Datetime(v) => &v[i],
        }
    }
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Writes `frame` into `sink`'s table inside a transaction left open (the password from `env`).
pub fn stage(frame: &DataFrame, sink: &PostgresSink, env: Env<'_>) -> Result<Staged> {
    let server = Server {
        url: &sink.url,
        password_env: sink.password_env.as_deref(),
        connect_timeout_seconds: sink.connect_timeout_seconds,
        key: "curate.postgres",
    };
    let (mut client, name) = connect(&server, env).map_err(|e| CurateError::Sink { message: e.to_string() })?;
    if sink.table.trim().is_empty() {
        return Err(CurateError::Sink { message: "curate.postgres.table: no table named".into() });
    }
    let table = quoted_table(&sink.table);
    let run = |client: &mut Client, sql: &str| client.batch_execute(sql).map_err(|e| failed(&name, Some(sql), &e));
    run(&mut client, "BEGIN")?;
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .and_then(|r| r.try_get(0))
        .map_err(|e| failed(&name, None, &e))?;
    let columns: Vec<String> = frame.get_column_names().iter().map(|c| c.to_string()).collect();
    let typed: Vec<(Type, Values)> = columns.iter().map(|c| Values::of(frame, c)).collect::<Result<_>>()?;
    let create = format!(
        "CREATE TABLE {table} ({})",
        columns
            .iter()
            .zip(&typed)
            .map(|(c, (t, _))| format!("{} {}", quoted(c), t.name()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    match (exists, sink.if_exists) {
        (true, IfExists::Fail) => {
            return Err(CurateError::Sink {
                message: format!(
                    "{name}: table {table} exists (curate.postgres.if_exists: fail; `replace` or `append` write over it)"
                ),
            });
        }
        (true, IfExists::Replace) => {
            run(&mut client, &format!("DROP TABLE {table}"))?;
            run(&mut client, &create)?;
        }
        (true, IfExists::Append) => {}
        (false, _) => run(&mut client, &create)?,
    }
    let copy = format!(
        "COPY {table} ({}) FROM STDIN (FORMAT binary)",
        columns.iter().map(|c| quoted(c)).collect::<Vec<_>>().join(", ")
    );
    let types: Vec<Type> = typed.iter().map(|(t, _)| t.clone()).collect();
    {
        let writer = client.copy_in(&copy).map_err(|e| failed(&name, Some(&copy), &e))?;
        let mut writer = BinaryCopyInWriter::new(writer, &types);
        let mut row: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(typed.len());
        for i in 0..frame.height() {
            row.clear();
            row.extend(typed.iter().map(|(_, v)| v.cell(i)));
            writer.write(&row).map_err(|e| failed(&name, Some(&copy), &e))?;
        }
        writer.finish().map_err(|e| failed(&name, Some(&copy), &e))?;
    }
    tracing::debug!(server = %name, %table, rows = frame.height(), "curated table staged");
    Ok(Staged { client, server: name, table, rows: frame.height() })
}
