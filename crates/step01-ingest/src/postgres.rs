//! PostgreSQL sources: a query (or a whole table) run in one read-only transaction and read
//! through a server-side cursor (a portal) in batches of `batch_rows` rows, so the reader holds
//! one batch of the server's answer at a time. Each column is typed from the server's own type,
//! decoded from the binary protocol:
//!
//! | PostgreSQL | frame |
//! | --- | --- |
//! | `smallint`, `integer`, `bigint`, `oid` | integer |
//! | `real`, `double precision`, `numeric` | float (`numeric` rounded to the nearest float; NaN is null) |
//! | `boolean` | boolean |
//! | `date` | date (`±infinity` is null) |
//! | `timestamp`, `timestamptz` | datetime, microseconds (`timestamptz` in UTC; `±infinity` is null) |
//! | `text`, `varchar`, `char(n)`, `name`, `"char"`, `citext`-like text, enums | text |
//! | `uuid` | text, hyphenated |
//! | `json`, `jsonb` | text (the JSON) |
//! | arrays of the above | text: a JSON array (nested for several dimensions) |
//!
//! Any other type is an error naming the column and the type, with the cast to write.
//!
//! [`connect`] (the password from an environment variable, never the config) and
//! [`server_error`] serve the PostgreSQL sink of step 6 too.
//!
//! Connections are pooled within a process: a connection a read (or the sink) has committed its
//! work on is kept, per connection string and password, and the next one with both takes it after checking
//! that it still answers, so the sources of one config on one server and the sink after them log
//! in once.

use std::sync::Mutex;
use std::time::Duration;

use polars::prelude::{
    BooleanChunkedBuilder, ChunkedBuilder, Column, DataFrame, DataType, Float64Type, Int32Type, Int64Type, IntoColumn,
    IntoSeries, PlSmallStr, PrimitiveChunkedBuilder, StringChunkedBuilder, TimeUnit,
};
use postgres::types::{FromSql, Kind, ToSql, Type};
use postgres::{Client, Config, NoTls};

use crate::Env;
use crate::config::PostgresSource;
use crate::error::{IngestError, Result};

/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const EPOCH_MICROS: i64 = 946_684_800_000_000;

/// What a read gives: the frame, the bytes of values received and the server it came from.
#[derive(Debug)]
pub(crate) struct Read {
    pub frame: DataFrame,
    pub bytes: u64,
    pub server: String,
    pub query: String,
}

/// A value as the server sent it, whatever its type: decoded here by column type.
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// The connection settings of `opts`, with the password from its environment variable, and the
/// server as lineage names it (`postgres://user@host:port/db`, never a password).
fn connection(opts: &PostgresSource, env: Env<'_>) -> Result<(Config, String)> {
    if opts.batch_rows == 0 || opts.batch_rows > i32::MAX as usize {
        return Err(IngestError::Config {
            key: "postgres.batch_rows".into(),
            message: format!("{} is not between 1 and {}", opts.batch_rows, i32::MAX),
        });
    }
    let server = Server {
        url: &opts.url,
        password_env: opts.password_env.as_deref(),
        connect_timeout_seconds: opts.connect_timeout_seconds,
        key: "postgres",
    };
    settings(&server, env)
}

/// Where a PostgreSQL server is and how to log in: the settings a source and a sink share.
pub struct Server<'a> {
    /// `postgres://user@host:port/database` (or `host=... dbname=...`), without a password.
    pub url: &'a str,
    /// The environment variable holding the password.
    pub password_env: Option<&'a str>,
    /// Seconds to wait for the connection.
    pub connect_timeout_seconds: u64,
    /// The config key these settings sit under, for messages (`postgres`, `curate.postgres`).
    pub key: &'a str,
}

fn settings(s: &Server<'_>, env: Env<'_>) -> Result<(Config, String)> {
    let key = |k: &str, message: String| IngestError::Config { key: format!("{}.{k}", s.key), message };
    let mut config: Config =
        s.url.parse().map_err(|e| key("url", format!("{:?} is not a PostgreSQL URL: {e}", redact(s.url))))?;
    if config.get_password().is_some() {
        return Err(key(
            "url",
            "holds a password; put it in an environment variable and name it in `password_env`".into(),
        ));
    }
    if let Some(var) = s.password_env {
        let password =
            env(var).ok_or_else(|| key("password_env", format!("the environment variable `{var}` is not set")))?;
        config.password(password);
    }
    config.connect_timeout(Duration::from_secs(s.connect_timeout_seconds.max(1)));
    config.application_name("mlops");
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    let at = if user.is_empty() { String::new() } else { format!("{user}@") };
    let name = format!("postgres://{at}{host}:{port}/{db}");
    Ok((config, name))
}

/// Connects to `server` (the password from `env`, the process's environment for callers
/// outside this crate's tests), reusing a pooled connection when one is there. Answers the
/// client and the server's name for messages and lineage (`postgres://user@host:port/db`, never a
/// password).
pub fn connect(server: &Server<'_>, env: Env<'_>) -> Result<(Pooled, String)> {
    let (config, name) = settings(server, env)?;
    let client = checkout(&config, server.url).map_err(|e| server_error(&name, None, &e))?;
    Ok((client, name))
}

/// Idle connections kept per pool key at most.
const POOL_IDLE: usize = 4;

/// Idle connections: the key (server name and password) and the client.
static POOL: Mutex<Vec<(String, Client)>> = Mutex::new(Vec::new());

fn pool() -> std::sync::MutexGuard<'static, Vec<(String, Client)>> {
    POOL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A pooled connection: a [`Client`] that [`Pooled::release`] puts back into the pool once its
/// work is committed. Dropped without that (a failure half-way, a transaction left open), the
/// connection is closed and the server rolls back whatever was open.
pub struct Pooled {
    key: String,
    client: Client,
}

impl std::ops::Deref for Pooled {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl Pooled {
    /// Puts the connection back for the next read or write on the same server (call it only
    /// outside any transaction).
    pub fn release(self) {
        if self.client.is_closed() {
            return;
        }
        let mut idle = pool();
        if idle.iter().filter(|(k, _)| *k == self.key).count() < POOL_IDLE {
            idle.push((self.key, self.client));
        }
    }
}

/// A connection with `config` (from the connection string `url`): an idle pooled one with the
/// same string and password that still answers, else a new one.
fn checkout(config: &Config, url: &str) -> std::result::Result<Pooled, postgres::Error> {
    let password = config.get_password().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default();
    // The whole string: hosts, options (`search_path`), session attributes and TLS all count.
    let key = format!("{url}\u{0}{password}");
    loop {
        let found = {
            let mut idle = pool();
            idle.iter().rposition(|(k, _)| *k == key).map(|i| idle.swap_remove(i).1)
        };
        let Some(mut client) = found else { break };
        if client.is_valid(config.get_connect_timeout().copied().unwrap_or(Duration::from_secs(10))).is_ok() {
            tracing::debug!(server = url, "pooled connection reused");
            return Ok(Pooled { key, client });
        }
    }
    let client = config.connect(NoTls)?;
    Ok(Pooled { key, client })
}

/// A URL with any password replaced, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// `"schema"."table"` from `schema.table` or `table`, each part quoted as an identifier.
pub fn quoted_table(table: &str) -> String {
    table.split('.').map(|part| format!("\"{}\"", part.replace('"', "\"\""))).collect::<Vec<_>>().join(".")
}

/// The query `opts` runs: `query`, or every row of `table`.
pub(crate) fn query_of(opts: &PostgresSource) -> Result<String> {
    let key = |message: &str| IngestError::Config { key: "postgres.query".into(), message: message.into() };
    match (&opts.query, &opts.table) {
        (Some(q), None) if !q.trim().is_empty() => Ok(q.clone()),
        (None, Some(t)) if !t.trim().is_empty() => Ok(format!("SELECT * FROM {}", quoted_table(t))),
        (Some(_), Some(_)) => Err(key("set `query` or `table`, not both")),
        _ => Err(key("set `query` (a SELECT) or `table` (a table's name)")),
    }
}

/// An error of the server or the connection, with the server's message, detail, hint and the
/// place in the query it points at.
pub fn server_error(server: &str, query: Option<&str>, e: &postgres::Error) -> IngestError {
    let message = match e.as_db_error() {
        Some(db) => {
            let mut m = format!("{}: {}", db.severity(), db.message());
            if let Some(postgres::error::ErrorPosition::Original(at)) = db.position()
                && let Some(q) = query
            {
                let at = (*at as usize).saturating_sub(1);
                let start = q.char_indices().map(|(i, _)| i).take_while(|i| *i <= at).last().unwrap_or(0);
                let near: String = q[start..].chars().take(20).collect();
                m.push_str(&format!(" (at character {}: `{near}`)", at + 1));
            }
            if let Some(detail) = db.detail() {
                m.push_str(&format!("; {detail}"));
            }
            if let Some(hint) = db.hint() {
                m.push_str(&format!("; hint: {hint}"));
            }
            m
        }
        None => {
            // The client's message plus its cause (a refused or timed-out connection).
            let mut m = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                m.push_str(&format!(": {s}"));
                source = s.source();
            }
            m
        }
    };
    IngestError::Server { server: server.to_string(), query: query.map(str::to_string), message }
}

/// One parameter, typed as the statement's placeholder wants it.
fn param(n: usize, ty: &Type, v: &serde_json::Value) -> Result<Box<dyn ToSql + Sync>> {
    use serde_json::Value as J;
    let bad = |want: &str| IngestError::Config {
        key: format!("postgres.params[{}]", n - 1),
        message: format!("${n} is {ty} and {v} is not {want}"),
    };
    let text = || match v {
        J::String(s) => Some(s.clone()),
        J::Number(x) => Some(x.to_string()),
        J::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let int = || v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()));
    let float = || v.as_f64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()));
    if v.is_null() {
        return Ok(match *ty {
            Type::INT2 => Box::new(None::<i16>),
            Type::INT4 => Box::new(None::<i32>),
            Type::INT8 => Box::new(None::<i64>),
            Type::FLOAT4 => Box::new(None::<f32>),
            Type::FLOAT8 => Box::new(None::<f64>),
            Type::BOOL => Box::new(None::<bool>),
            Type::DATE => Box::new(None::<chrono::NaiveDate>),
            Type::TIMESTAMP => Box::new(None::<chrono::NaiveDateTime>),
            Type::TIMESTAMPTZ => Box::new(None::<chrono::DateTime<chrono::Utc>>),
            _ => Box::new(None::<String>),
        });
    }
    Ok(match *ty {
        Type::INT2 => Box::new(int().and_then(|i| i16::try_from(i).ok()).ok_or_else(|| bad("a smallint"))?),
        Type::INT4 => Box::new(int().and_then(|i| i32::try_from(i).ok()).ok_or_else(|| bad("an integer"))?),
        Type::INT8 => Box::new(int().ok_or_else(|| bad("a bigint"))?),
        Type::FLOAT4 => Box::new(float().ok_or_else(|| bad("a number"))? as f32),
        Type::FLOAT8 => Box::new(float().ok_or_else(|| bad("a number"))?),
        Type::BOOL => Box::new(v.as_bool().ok_or_else(|| bad("true or false"))?),
        Type::DATE => Box::new(
            v.as_str()
                .and_then(|s| chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok())
                .ok_or_else(|| bad("a date (YYYY-MM-DD)"))?,
        ),
        Type::TIMESTAMP => Box::new(
            v.as_str()
                .and_then(|s| {
                    let formats = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d"].map(String::from);
                    mlops_core::ops::parse_datetime(s, &formats)
                })
                .and_then(|us| chrono::DateTime::from_timestamp_micros(us).map(|t| t.naive_utc()))
                .ok_or_else(|| bad("a date and time (YYYY-MM-DD HH:MM:SS)"))?,
        ),
        Type::TIMESTAMPTZ => Box::new(
            v.as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s.trim()).ok())
                .map(|t| t.with_timezone(&chrono::Utc))
                .ok_or_else(|| bad("an RFC 3339 instant (2024-05-01T12:00:00Z)"))?,
        ),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            Box::new(text().ok_or_else(|| bad("text"))?)
        }
        _ => {
            return Err(IngestError::Config {
                key: format!("postgres.params[{}]", n - 1),
                message: format!(
                    "${n} is {ty}, which parameters cannot be yet: write `${n}::text` in the query and cast from there (`${n}::text::{ty}`)"
                ),
            });
        }
    })
}

/// A column being filled, by the frame type the server's type maps to: polars' own builders,
/// so a value goes from the server's bytes into the column's buffer without a copy between.
enum Builder {
    Int(PrimitiveChunkedBuilder<Int64Type>),
    Float(PrimitiveChunkedBuilder<Float64Type>),
    Bool(BooleanChunkedBuilder),
    Date(PrimitiveChunkedBuilder<Int32Type>),
    Datetime(PrimitiveChunkedBuilder<Int64Type>),
    Text(StringChunkedBuilder),
}

/// How a column's values are decoded.
#[derive(Clone, Copy)]
enum Decode {
    I16,
    I32,
    I64,
    U32,
    F32,
    F64,
    Numeric,
    Bool,
    Date,
    Timestamp,
    Text,
    Char,
    Uuid,
    Json,
    Jsonb,
}

fn decode_of(ty: &Type) -> Option<Decode> {
    Some(match *ty {
        Type::INT2 => Decode::I16,
        Type::INT4 => Decode::I32,
        Type::INT8 => Decode::I64,
        Type::OID => Decode::U32,
        Type::FLOAT4 => Decode::F32,
        Type::FLOAT8 => Decode::F64,
        Type::NUMERIC => Decode::Numeric,
        Type::BOOL => Decode::Bool,
        Type::DATE => Decode::Date,
        Type::TIMESTAMP | Type::TIMESTAMPTZ => Decode::Timestamp,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => Decode::Text,
        Type::CHAR => Decode::Char,
        Type::UUID => Decode::Uuid,
        Type::JSON => Decode::Json,
        Type::JSONB => Decode::Jsonb,
        _ => match ty.kind() {
            // Enums and domains over text arrive as their text.
            Kind::Enum(_) => Decode::Text,
            Kind::Domain(inner) => return decode_of(inner),
            _ => return None,
        },
    })
}

/// A column's decoder and builder: scalars into their own frame type, arrays into JSON text.
struct Reader {
    name: String,
    ty: Type,
    decode: Decode,
    array: bool,
    builder: Builder,
}

fn fixed<const N: usize>(raw: &[u8]) -> std::result::Result<[u8; N], String> {
    raw.try_into().map_err(|_| format!("{} byte(s) where {N} were expected", raw.len()))
}

/// `numeric` from its binary form (base-10000 digits, a weight, a sign) to the nearest float,
/// through its decimal text so that the rounding is the correctly rounded one.
fn numeric(raw: &[u8]) -> std::result::Result<Option<f64>, String> {
    if raw.len() < 8 {
        return Err("a numeric shorter than its header".into());
    }
    let word = |i: usize| u16::from_be_bytes([raw[2 * i], raw[2 * i + 1]]);
    let (ndigits, weight, sign) = (word(0) as usize, word(1) as i16, word(2));
    match sign {
        0xC000 => return Ok(None),
        0xD000 => return Ok(Some(f64::INFINITY)),
        0xF000 => return Ok(Some(f64::NEG_INFINITY)),
        _ => {}
    }
    if raw.len() < 8 + 2 * ndigits {
        return Err("a numeric shorter than its digits".into());
    }
    if ndigits == 0 {
        return Ok(Some(0.0));
    }
    let mut text = String::with_capacity(ndigits * 4 + 8);
    if sign == 0x4000 {
        text.push('-');
    }
    for i in 0..ndigits {
        let d = word(4 + i);
        if i == 0 {
            text.push_str(&d.to_string());
        } else {
            text.push_str(&format!("{d:04}"));
        }
    }
    let exponent = (i32::from(weight) - (ndigits as i32 - 1)) * 4;
    text.push_str(&format!("e{exponent}"));
    text.parse::<f64>().map(Some).map_err(|e| e.to_string())
}

fn uuid(raw: &[u8]) -> std::result::Result<String, String> {
    let b: [u8; 16] = fixed(raw)?;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]))
}

fn utf8(raw: &[u8]) -> std::result::Result<String, String> {
    std::str::from_utf8(raw).map(str::to_string).map_err(|e| e.to_string())
}

/// One scalar as JSON (an array's element).
fn json_scalar(decode: Decode, raw: Option<&[u8]>) -> std::result::Result<serde_json::Value, String> {
    use serde_json::Value as J;
    let Some(raw) = raw else { return Ok(J::Null) };
    Ok(match decode {
        Decode::I16 => J::from(i16::from_be_bytes(fixed(raw)?)),
        Decode::I32 => J::from(i32::from_be_bytes(fixed(raw)?)),
        Decode::I64 => J::from(i64::from_be_bytes(fixed(raw)?)),
        Decode::U32 => J::from(u32::from_be_bytes(fixed(raw)?)),
        Decode::F32 => {
            serde_json::Number::from_f64(f64::from(f32::from_be_bytes(fixed(raw)?))).map_or(J::Null, J::Number)
        }
        Decode::F64 => serde_json::Number::from_f64(f64::from_be_bytes(fixed(raw)?)).map_or(J::Null, J::Number),
        Decode::Numeric => numeric(raw)?.and_then(serde_json::Number::from_f64).map_or(J::Null, J::Number),
        Decode::Bool => J::Bool(raw.first().is_some_and(|b| *b != 0)),
        Decode::Date => date(raw)?.map_or(J::Null, |d| J::String(mlops_core::Value::Date(d).to_string())),
        Decode::Timestamp => timestamp(raw)?.map_or(J::Null, |t| J::String(mlops_core::Value::Datetime(t).to_string())),
        Decode::Text | Decode::Char => J::String(utf8(raw)?),
        Decode::Uuid => J::String(uuid(raw)?),
        Decode::Json => serde_json::from_slice(raw).map_err(|e| e.to_string())?,
        Decode::Jsonb => serde_json::from_slice(raw.get(1..).unwrap_or_default()).map_err(|e| e.to_string())?,
    })
}

/// Days since 1970-01-01; `±infinity` is none.
fn date(raw: &[u8]) -> std::result::Result<Option<i32>, String> {
    let d = i32::from_be_bytes(fixed(raw)?);
    Ok((d != i32::MAX && d != i32::MIN).then(|| d + EPOCH_DAYS))
}

/// Microseconds since 1970-01-01T00:00:00 (UTC for `timestamptz`); `±infinity` is none.
fn timestamp(raw: &[u8]) -> std::result::Result<Option<i64>, String> {
    let t = i64::from_be_bytes(fixed(raw)?);
    Ok((t != i64::MAX && t != i64::MIN).then(|| t + EPOCH_MICROS))
}

/// An array (of any dimensions) as JSON text.
fn array_json(element: Decode, raw: &[u8]) -> std::result::Result<String, String> {
    use fallible_iterator::FallibleIterator;
    use postgres_protocol::types::{ArrayDimension, array_from_sql};
    let array = array_from_sql(raw).map_err(|e| e.to_string())?;
    let dims: Vec<usize> = {
        let mut d = array.dimensions();
        let mut out = Vec::new();
        while let Some(ArrayDimension { len, .. }) = d.next().map_err(|e| e.to_string())? {
            out.push(usize::try_from(len).unwrap_or(0));
        }
        out
    };
    let mut values = Vec::new();
    let mut it = array.values();
    while let Some(v) = it.next().map_err(|e| e.to_string())? {
        values.push(json_scalar(element, v)?);
    }
    // Nest the flat, row-major values by the dimensions, innermost first.
    let mut nested = values;
    for &len in dims.iter().skip(1).rev() {
        nested = nested.chunks(len.max(1)).map(|c| serde_json::Value::Array(c.to_vec())).collect();
    }
    Ok(serde_json::Value::Array(nested).to_string())
}

impl Reader {
    fn new(name: &str, ty: &Type, capacity: usize) -> Option<Reader> {
        let (decode, array) = match ty.kind() {
            Kind::Array(element) => (decode_of(element)?, true),
            _ => (decode_of(ty)?, false),
        };
        let n: PlSmallStr = name.into();
        let builder = match (decode, array) {
            (_, true) => Builder::Text(StringChunkedBuilder::new(n, capacity)),
            (Decode::I16 | Decode::I32 | Decode::I64 | Decode::U32, _) => {
                Builder::Int(PrimitiveChunkedBuilder::new(n, capacity))
            }
            (Decode::F32 | Decode::F64 | Decode::Numeric, _) => {
                Builder::Float(PrimitiveChunkedBuilder::new(n, capacity))
            }
            (Decode::Bool, _) => Builder::Bool(BooleanChunkedBuilder::new(n, capacity)),
            (Decode::Date, _) => Builder::Date(PrimitiveChunkedBuilder::new(n, capacity)),
            (Decode::Timestamp, _) => Builder::Datetime(PrimitiveChunkedBuilder::new(n, capacity)),
            _ => Builder::Text(StringChunkedBuilder::new(n, capacity)),
        };
        Some(Reader { name: name.to_string(), ty: ty.clone(), decode, array, builder })
    }

    fn push(&mut self, raw: Option<&[u8]>) -> std::result::Result<(), String> {
        let (decode, array) = (self.decode, self.array);
        match &mut self.builder {
            Builder::Text(b) if array => match raw {
                None => b.append_null(),
                Some(r) => b.append_value(array_json(decode, r)?),
            },
            Builder::Int(b) => match raw {
                None => b.append_null(),
                Some(r) => b.append_value(match decode {
                    Decode::I16 => i64::from(i16::from_be_bytes(fixed(r)?)),
                    Decode::I32 => i64::from(i32::from_be_bytes(fixed(r)?)),
                    Decode::U32 => i64::from(u32::from_be_bytes(fixed(r)?)),
                    _ => i64::from_be_bytes(fixed(r)?),
                }),
            },
            Builder::Float(b) => b.append_option(match raw {
                None => None,
                Some(r) => match decode {
                    Decode::F32 => Some(f64::from(f32::from_be_bytes(fixed(r)?))),
                    Decode::F64 => Some(f64::from_be_bytes(fixed(r)?)),
                    _ => numeric(r)?,
                },
            }),
            Builder::Bool(b) => b.append_option(raw.map(|r| r.first().is_some_and(|x| *x != 0))),
            Builder::Date(b) => b.append_option(raw.map(date).transpose()?.flatten()),
            Builder::Datetime(b) => b.append_option(raw.map(timestamp).transpose()?.flatten()),
            Builder::Text(b) => match raw {
                None => b.append_null(),
                Some(r) => match decode {
                    Decode::Uuid => b.append_value(uuid(r)?),
                    Decode::Jsonb => b.append_value(text(r.get(1..).unwrap_or_default())?),
                    _ => b.append_value(text(r)?),
                },
            },
        }
        Ok(())
    }

    fn finish(self) -> std::result::Result<Column, polars::prelude::PolarsError> {
        let series = match self.builder {
            Builder::Int(b) => b.finish().into_series(),
            Builder::Float(b) => b.finish().into_series(),
            Builder::Bool(b) => b.finish().into_series(),
            Builder::Date(b) => b.finish().into_series().cast(&DataType::Date)?,
            Builder::Datetime(b) => b.finish().into_series().cast(&DataType::Datetime(TimeUnit::Microseconds, None))?,
            Builder::Text(b) => b.finish().into_series(),
        };
        Ok(series.into_column())
    }
}

/// Text as the server sent it (UTF-8: the connection's client encoding).
fn text(raw: &[u8]) -> std::result::Result<&str, String> {
    std::str::from_utf8(raw).map_err(|e| e.to_string())
}

/// Reads the source: connects, runs the query in a read-only transaction and fetches its rows
/// through a portal, `batch_rows` at a time. The password comes from `env`.
pub(crate) fn read(opts: &PostgresSource, env: Env<'_>) -> Result<Read> {
    let query = query_of(opts)?;
    let (config, server) = connection(opts, env)?;
    let at_server = |e: &postgres::Error| server_error(&server, None, e);
    let in_query = |e: &postgres::Error| server_error(&server, Some(&query), e);
    let mut client = checkout(&config, &opts.url).map_err(|e| at_server(&e))?;
    let mut tx = client.build_transaction().read_only(true).start().map_err(|e| at_server(&e))?;
    let statement = tx.prepare(&query).map_err(|e| in_query(&e))?;
    if statement.params().len() != opts.params.len() {
        return Err(IngestError::Config {
            key: "postgres.params".into(),
            message: format!(
                "the query has {} placeholder(s) ($1, $2, ...) and {} value(s) are given",
                statement.params().len(),
                opts.params.len()
            ),
        });
    }
    let params: Vec<Box<dyn ToSql + Sync>> = statement
        .params()
        .iter()
        .zip(&opts.params)
        .enumerate()
        .map(|(i, (ty, v))| param(i + 1, ty, v))
        .collect::<Result<_>>()?;
    let mut readers = Vec::with_capacity(statement.columns().len());
    for c in statement.columns() {
        let reader = Reader::new(c.name(), c.type_(), opts.batch_rows.min(1 << 20)).ok_or_else(|| IngestError::Server {
            server: server.clone(),
            query: Some(query.clone()),
            message: format!(
                "column `{}` has type {}, which the reader does not map: cast it in the query (`{}::text`, or `::float8` for a number)",
                c.name(),
                c.type_(),
                c.name()
            ),
        })?;
        readers.push(reader);
    }
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
    let portal = tx.bind(&statement, &refs).map_err(|e| in_query(&e))?;
    let batch = i32::try_from(opts.batch_rows).unwrap_or(i32::MAX);
    let (mut bytes, mut rows) = (0u64, 0usize);
    loop {
        let fetched = tx.query_portal(&portal, batch).map_err(|e| in_query(&e))?;
        for row in &fetched {
            for (j, reader) in readers.iter_mut().enumerate() {
                let raw: Option<Raw<'_>> = row.try_get(j).map_err(|e| in_query(&e))?;
                bytes += raw.as_ref().map_or(0, |r| r.0.len() as u64);
                reader.push(raw.map(|r| r.0)).map_err(|m| IngestError::Server {
                    server: server.clone(),
                    query: Some(query.clone()),
                    message: format!("row {}: column `{}` ({}): {m}", rows + 1, reader.name, reader.ty),
                })?;
            }
            rows += 1;
        }
        tracing::debug!(rows, "postgres batch read");
        if fetched.len() < opts.batch_rows {
            break;
        }
    }
    tx.commit().map_err(|e| at_server(&e))?;
    client.release();
    let columns: Vec<Column> =
        readers.into_iter().map(Reader::finish).collect::<std::result::Result<_, _>>().map_err(|e| {
            IngestError::Server { server: server.clone(), query: Some(query.clone()), message: e.to_string() }
        })?;
    let frame = DataFrame::new(rows, columns).map_err(|e| IngestError::Server {
        server: server.clone(),
        query: Some(query.clone()),
        message: e.to_string(),
    })?;
    Ok(Read { frame, bytes, server, query })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerics_decode_to_the_nearest_float() {
        // 12345.6789: two base-10000 digits before the point (1, 2345) and 6789 after.
        let raw = |ndigits: u16, weight: i16, sign: u16, digits: &[u16]| -> Vec<u8> {
            let mut v = Vec::new();
            for w in [ndigits, weight as u16, sign, 4] {
                v.extend_from_slice(&w.to_be_bytes());
            }
            for d in digits {
                v.extend_from_slice(&d.to_be_bytes());
            }
            v
        };
        assert_eq!(numeric(&raw(3, 1, 0, &[1, 2345, 6789])).unwrap(), Some(12345.6789));
        assert_eq!(numeric(&raw(1, -1, 0x4000, &[5])).unwrap(), Some(-0.0005));
        assert_eq!(numeric(&raw(0, 0, 0, &[])).unwrap(), Some(0.0));
        assert_eq!(numeric(&raw(0, 0, 0xC000, &[])).unwrap(), None);
        assert!(numeric(&[0, 1]).is_err());
    }

    #[test]
    fn passwords_stay_out_of_urls_and_messages() {
        assert_eq!(redact("postgres://ann:s3cret@db:5432/x"), "postgres://ann:***@db:5432/x");
        assert_eq!(redact("postgres://ann@db/x"), "postgres://ann@db/x");
        let none = |_: &str| None;
        let err =
            connection(&PostgresSource::new("postgres://ann:s3cret@db/x", "SELECT 1"), &none).unwrap_err().to_string();
        assert!(err.contains("postgres.url") && err.contains("password_env") && !err.contains("s3cret"), "{err}");
        let mut opts = PostgresSource::new("postgres://ann@db/x", "SELECT 1");
        opts.password_env = Some("MLOPS_TEST_NO_SUCH_VARIABLE".into());
        let err = connection(&opts, &none).unwrap_err().to_string();
        assert!(err.contains("postgres.password_env") && err.contains("MLOPS_TEST_NO_SUCH_VARIABLE"), "{err}");
        assert_eq!(quoted_table("public.my \"t\""), "\"public\".\"my \"\"t\"\"\"");
    }
}
