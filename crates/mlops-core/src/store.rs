//! One store interface, two backends (the `store` feature): an embedded SQLite file, the
//! default, and a PostgreSQL database for a team whose machines share one store.
//!
//! The steps that keep state (runs, the registry, the prediction log, deployments, alerts,
//! lifecycle) write their SQL once, in the common dialect of both: numbered parameters `?1`,
//! `?2`, ... (sent to PostgreSQL as `$1`, `$2`, ...), `INSERT ... ON CONFLICT`, `RETURNING`,
//! `CAST(?1 AS TEXT)` where a parameter's type cannot be told from the statement. Schemas go
//! through [`Tx::ddl`], which maps SQLite's column types to PostgreSQL's (`INTEGER` → `BIGINT`,
//! `REAL` → `DOUBLE PRECISION`, `BLOB` → `BYTEA`, an `AUTOINCREMENT` key → an identity column).
//!
//! Each step's schema is versioned: [`Store::migrate`] applies the migrations a store has not
//! seen, in one transaction, and refuses a store whose schema is newer than the binary's.
//! [`Store::transaction`] is one transaction (SQLite: `BEGIN IMMEDIATE`, so writers queue on
//! the busy timeout instead of failing; PostgreSQL: read committed), and [`Tx::lock`] takes a
//! lock on a name for its duration (PostgreSQL: an advisory transaction lock; SQLite's write
//! lock already covers the whole file), which keeps counters such as version numbers gap-free
//! and unique across processes and machines.
//!
//! The PostgreSQL password never sits in the configuration: a URL that carries one is refused,
//! and [`Store::open`] takes it from `PGPASSWORD`, as `psql` does.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use crate::CoreError;
use crate::rt::off_runtime;

/// Where a store lives: a SQLite file, or a PostgreSQL database (`postgres://` or
/// `postgresql://`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    /// The embedded store: one SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string, without a password.
    Postgres(String),
}

impl Location {
    /// Reads a store setting: a `postgres://` or `postgresql://` URL, else a file path.
    pub fn parse(s: &str) -> Location {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Location::Postgres(s.to_string())
        } else {
            Location::Sqlite(PathBuf::from(s))
        }
    }

    /// [`Location::parse`] of a path setting (a config's `store:` deserialised as a path).
    pub fn from_path(path: &Path) -> Location {
        match path.to_str() {
            Some(s) => Location::parse(s),
            None => Location::Sqlite(path.to_path_buf()),
        }
    }

    /// Whether this is a SQLite file that does not exist (yet): readers say so instead of
    /// creating an empty store. A PostgreSQL database is never missing in this sense.
    pub fn is_missing_file(&self) -> bool {
        self.sqlite_path().is_some_and(|p| !p.exists())
    }

    /// The SQLite file, for the embedded store.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(url) => f.write_str(&redacted(url)),
        }
    }
}

/// A connection string with any password in it replaced by `***`, for messages.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let rest = match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => rest.to_string(),
        },
        None => rest.to_string(),
    };
    // libpq's `?password=...` (or `&password=...`) in the query string.
    let rest = match rest.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| if kv.starts_with("password=") { "password=***".to_string() } else { kv.to_string() })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => rest,
    };
    format!("{scheme}://{rest}")
}

impl serde::Serialize for Location {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Location {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Location, D::Error> {
        String::deserialize(d).map(|s| Location::parse(&s))
    }
}

/// What goes wrong with a store. Every message names the store (its file, or its URL).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database refused a statement (a locked SQLite file past the busy timeout, a
    /// constraint, a lost connection, ...).
    #[error("store {location}: {message}")]
    Sql {
        /// The store.
        location: String,
        /// The database's message.
        message: String,
        /// The driver's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The store could not be reached or refused the credentials.
    #[error("store {location}: cannot connect: {message}")]
    Connect {
        /// The store.
        location: String,
        /// Why.
        message: String,
    },
    /// A setting that cannot work (a password in the URL, a malformed URL).
    #[error("store {location}: {message}")]
    Config {
        /// The store.
        location: String,
        /// What to change.
        message: String,
    },
    /// The store was migrated by a newer binary.
    #[error(
        "store {location}: the {component} schema is at version {found}, newer than this binary's {supported}: upgrade mlops, or point `store:` elsewhere"
    )]
    SchemaNewer {
        /// The store.
        location: String,
        /// Whose schema (`registry`, `runs`, ...).
        component: String,
        /// The version the store has.
        found: u32,
        /// The newest version this binary knows.
        supported: u32,
    },
    /// A stored value is not of the type asked for.
    #[error("store value in column {column}: {found}, expected {expected}")]
    Type {
        /// Column index in the row.
        column: usize,
        /// What was there.
        found: String,
        /// What the reader wanted.
        expected: &'static str,
    },
    /// The SQLite file's folder could not be made.
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl StoreError {
    fn sql(location: &str, e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        let message = match e.source().map(|s| s.to_string()) {
            // postgres::Error's own text is a generic "db error"; the server's message is in its source.
            Some(inner) if e.to_string() == "db error" => inner,
            _ => e.to_string(),
        };
        StoreError::Sql { location: location.to_string(), message, source: Some(Box::new(e)) }
    }

    /// Whether the database refused the statement for a unique or primary key.
    pub fn is_unique_violation(&self) -> bool {
        let StoreError::Sql { source: Some(source), .. } = self else { return false };
        if let Some(pg) = source.downcast_ref::<postgres::Error>() {
            return pg.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION);
        }
        matches!(
            source.downcast_ref::<rusqlite::Error>(),
            Some(rusqlite::Error::SqliteFailure(e, _)) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        )
    }
}

/// Result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (embedded).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A parameter of a statement, borrowed from the caller.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Param<'a> {
    /// SQL `NULL`.
    Null,
    /// An integer (a `BIGINT` on PostgreSQL; narrowed where the column is narrower).
    Int(i64),
    /// A float.
    Real(f64),
    /// Text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

/// A value that binds as a statement parameter.
pub trait Bind: Sync {
    /// The parameter.
    fn param(&self) -> Param<'_>;
}

macro_rules! bind_int {
    ($($t:ty),*) => {$(
        impl Bind for $t {
            fn param(&self) -> Param<'_> {
                Param::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
bind_int!(i64, i32, u32, u64, usize, u16, u8);

impl Bind for f64 {
    fn param(&self) -> Param<'_> {
        Param::Real(*self)
    }
}
impl Bind for bool {
    fn param(&self) -> Param<'_> {
        Param::Int(i64::from(*self))
    }
}
impl Bind for str {
    fn param(&self) -> Param<'_> {
        Param::Text(self)
    }
}
impl Bind for String {
    fn param(&self) -> Param<'_> {
        Param::Text(self)
    }
}
impl Bind for [u8] {
    fn param(&self) -> Param<'_> {
        Param::Blob(self)
    }
}
impl Bind for Vec<u8> {
    fn param(&self) -> Param<'_> {
        Param::Blob(self)
    }
}
impl<T: Bind + ?Sized> Bind for &T {
    fn param(&self) -> Param<'_> {
        (**self).param()
    }
}
impl<T: Bind> Bind for Option<T> {
    fn param(&self) -> Param<'_> {
        self.as_ref().map_or(Param::Null, Bind::param)
    }
}

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let mismatch = || -> Box<dyn std::error::Error + Sync + Send> {
            format!("a parameter of type {ty} cannot take {self:?}").into()
        };
        match *self {
            Param::Null => Ok(IsNull::Yes),
            Param::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i).map_err(|_| mismatch())?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i).map_err(|_| mismatch())?.to_sql(ty, out),
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => Err(mismatch()),
            },
            Param::Real(x) => match *ty {
                Type::FLOAT8 => x.to_sql(ty, out),
                Type::FLOAT4 => (x as f32).to_sql(ty, out),
                _ => Err(mismatch()),
            },
            Param::Text(s) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => s.to_sql(ty, out),
                _ => Err(mismatch()),
            },
            Param::Blob(b) => match *ty {
                Type::BYTEA => b.to_sql(ty, out),
                _ => Err(mismatch()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Param::Null => ValueRef::Null,
            Param::Int(i) => ValueRef::Integer(i),
            Param::Real(x) => ValueRef::Real(x),
            Param::Text(s) => ValueRef::Text(s.as_bytes()),
            Param::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// A stored value, as read back.
#[derive(Clone, Debug, PartialEq)]
pub enum Datum {
    /// SQL `NULL`.
    Null,
    /// An integer (or a boolean, as 0 and 1).
    Int(i64),
    /// A float.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl Datum {
    fn kind(&self) -> String {
        match self {
            Datum::Null => "NULL".into(),
            Datum::Int(i) => format!("the integer {i}"),
            Datum::Real(x) => format!("the number {x}"),
            Datum::Text(s) => format!("the text {s:?}"),
            Datum::Blob(b) => format!("{} bytes", b.len()),
        }
    }
}

/// A type a column reads into.
pub trait FromDatum: Sized {
    /// Converts, or `None` when the value does not fit (the caller names the column).
    fn from_datum(d: Datum) -> std::result::Result<Self, Datum>;
    /// What the reader expects, for the error.
    const EXPECTED: &'static str;
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl FromDatum for $t {
            const EXPECTED: &'static str = "an integer";
            fn from_datum(d: Datum) -> std::result::Result<Self, Datum> {
                match d {
                    Datum::Int(i) => <$t>::try_from(i).map_err(|_| Datum::Int(i)),
                    other => Err(other),
                }
            }
        }
    )*};
}
from_int!(i64, i32, u32, u64, usize);

impl FromDatum for f64 {
    const EXPECTED: &'static str = "a number";
    fn from_datum(d: Datum) -> std::result::Result<Self, Datum> {
        match d {
            Datum::Real(x) => Ok(x),
            Datum::Int(i) => Ok(i as f64),
            other => Err(other),
        }
    }
}
impl FromDatum for bool {
    const EXPECTED: &'static str = "a boolean";
    fn from_datum(d: Datum) -> std::result::Result<Self, Datum> {
        match d {
            Datum::Int(i) => Ok(i != 0),
            other => Err(other),
        }
    }
}
impl FromDatum for String {
    const EXPECTED: &'static str = "text";
    fn from_datum(d: Datum) -> std::result::Result<Self, Datum> {
        match d {
            Datum::Text(s) => Ok(s),
            other => Err(other),
        }
    }
}
impl FromDatum for Vec<u8> {
    const EXPECTED: &'static str = "bytes";
    fn from_datum(d: Datum) -> std::result::Result<Self, Datum> {
        match d {
            Datum::Blob(b) => Ok(b),
            Datum::Text(s) => Ok(s.into_bytes()),
            other => Err(other),
        }
    }
}
impl<T: FromDatum> FromDatum for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    fn from_datum(d: Datum) -> std::result::Result<Self, Datum> {
        match d {
            Datum::Null => Ok(None),
            other => T::from_datum(other).map(Some),
        }
    }
}
impl FromDatum for Datum {
    const EXPECTED: &'static str = "any value";
    fn from_datum(d: Datum) -> std::result::Result<Self, Datum> {
        Ok(d)
    }
}

/// One row of a result.
#[derive(Clone, Debug, PartialEq)]
pub struct Row(Vec<Datum>);

impl Row {
    /// Column `i`, converted.
    pub fn get<T: FromDatum>(&self, i: usize) -> Result<T> {
        let d = self.0.get(i).cloned().unwrap_or(Datum::Null);
        T::from_datum(d).map_err(|found| StoreError::Type { column: i, found: found.kind(), expected: T::EXPECTED })
    }

    /// How many columns.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A versioned step of a component's schema.
#[derive(Clone, Copy)]
pub struct Migration {
    /// Its number, from 1, in order.
    pub version: u32,
    /// What it changes.
    pub apply: fn(&mut Tx<'_>) -> Result<()>,
}

struct PgConn {
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
}

/// What a transaction is for.
#[derive(Clone, Copy)]
enum Kind {
    /// Changes: SQLite's write lock at once, PostgreSQL's read committed.
    Write,
    /// One consistent read of several statements.
    Snapshot,
}

enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(Box<PgConn>),
    /// Only while the store is dropped.
    Closed,
}

/// An open store: one connection, shared by the threads that hold the `Store` (each statement
/// or transaction has it to itself).
pub struct Store {
    location: Location,
    name: String,
    conn: Mutex<Conn>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("location", &self.location).finish()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // The PostgreSQL client owns a runtime of its own, which must not be dropped on a thread
        // that drives an async runtime (a server's).
        let conn =
            std::mem::replace(self.conn.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner), Conn::Closed);
        if let Conn::Postgres(pg) = conn {
            off_runtime(move || drop(pg));
        }
    }
}

static PASSWORDS: std::sync::OnceLock<Mutex<HashMap<String, String>>> = std::sync::OnceLock::new();

fn lock_passwords() -> MutexGuard<'static, HashMap<String, String>> {
    PASSWORDS.get_or_init(Mutex::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Gives the password of the PostgreSQL store at `url` to every later [`Store::open`] in this
/// process: for programs that hold credentials from elsewhere than the environment (a secret
/// manager, a test's own server).
pub fn register_password(url: &str, password: &str) {
    lock_passwords().insert(url.to_string(), password.to_string());
}

/// The password [`Store::open`] uses for `location`: the one [`register_password`] gave for its
/// URL, else `PGPASSWORD` (none for SQLite). For code that connects again later (a writer
/// thread that lost its connection).
pub fn password_for(location: &Location) -> Option<String> {
    match location {
        Location::Postgres(url) => lock_passwords().get(url).cloned().or_else(|| std::env::var("PGPASSWORD").ok()),
        Location::Sqlite(_) => None,
    }
}

/// How long opening a PostgreSQL store waits for the server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Store {
    /// Opens the store at `location`: a SQLite file (created with its folder if needed; WAL,
    /// foreign keys on, a 30 s busy timeout), or a PostgreSQL database with the password
    /// [`register_password`] gave for its URL, else the one in `PGPASSWORD`.
    pub fn open(location: &Location) -> Result<Store> {
        Store::open_with(location, password_for(location).as_deref())
    }

    /// [`Store::open`] with the PostgreSQL password given.
    pub fn open_with(location: &Location, password: Option<&str>) -> Result<Store> {
        let name = location.to_string();
        let conn = match location {
            Location::Sqlite(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| CoreError::io("cannot create directory", parent, e))?;
                }
                let sql = |e| StoreError::sql(&name, e);
                let conn = rusqlite::Connection::open(path).map_err(sql)?;
                conn.busy_timeout(Duration::from_secs(30)).map_err(sql)?;
                conn.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
                conn.pragma_update(None, "foreign_keys", "ON").map_err(sql)?;
                Conn::Sqlite(conn)
            }
            Location::Postgres(url) => Conn::Postgres(Box::new(PgConn {
                client: off_runtime(|| connect(url, password))?,
                statements: HashMap::new(),
            })),
        };
        tracing::debug!(store = %name, "store opened");
        Ok(Store { location: location.clone(), name, conn: Mutex::new(conn) })
    }

    /// Opens the store for reading only: a SQLite file that must exist, opened read-only with
    /// its pages memory-mapped (a window of a million logged rows is hundreds of megabytes of
    /// text); a PostgreSQL database in read-only transactions.
    pub fn open_read_only(location: &Location) -> Result<Store> {
        let name = location.to_string();
        let store = match location {
            Location::Sqlite(path) => {
                let sql = |e| StoreError::sql(&name, e);
                let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(sql)?;
                conn.busy_timeout(Duration::from_secs(30)).map_err(sql)?;
                conn.pragma_update(None, "mmap_size", 1_i64 << 32).map_err(sql)?;
                Store { location: location.clone(), name, conn: Mutex::new(Conn::Sqlite(conn)) }
            }
            Location::Postgres(_) => {
                let store = Store::open(location)?;
                store.read(|t| t.batch("SET default_transaction_read_only = on"))?;
                store
            }
        };
        Ok(store)
    }

    /// Where the store lives.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Which database it runs on.
    pub fn backend(&self) -> Backend {
        match self.location {
            Location::Sqlite(_) => Backend::Sqlite,
            Location::Postgres(_) => Backend::Postgres,
        }
    }

    /// How long a statement waits for another writer before it fails (SQLite's busy timeout;
    /// PostgreSQL's `lock_timeout`).
    pub fn set_busy_timeout(&self, wait: Duration) -> Result<()> {
        match &mut *self.lock() {
            Conn::Sqlite(c) => c.busy_timeout(wait).map_err(|e| StoreError::sql(&self.name, e)),
            Conn::Closed => Ok(()),
            Conn::Postgres(pg) => off_runtime(|| {
                pg.client
                    .batch_execute(&format!("SET lock_timeout = {}", wait.as_millis().max(1)))
                    .map_err(|e| StoreError::sql(&self.name, e))
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Conn> {
        // A panic while holding the connection leaves it usable: every transaction it had open
        // was rolled back when the transaction was dropped.
        self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the connection outside a transaction (each statement commits by itself).
    pub fn read<T: Send, E: From<StoreError> + Send>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E> + Send,
    ) -> Result<T, E> {
        let mut conn = self.lock();
        let name = self.name.as_str();
        match &mut *conn {
            Conn::Sqlite(c) => f(&mut Tx { inner: TxInner::SqliteConn(c), location: name }),
            Conn::Closed => Err(closed(name).into()),
            Conn::Postgres(pg) => off_runtime(|| {
                let PgConn { client, statements } = &mut **pg;
                f(&mut Tx { inner: TxInner::PgClient(client, statements), location: name })
            }),
        }
    }

    /// Runs `f` on one consistent snapshot of the store, for a read of several statements
    /// (pages of a log that other processes append to): a deferred read transaction on SQLite,
    /// `REPEATABLE READ READ ONLY` on PostgreSQL, where concurrent writers commit out of key order.
    pub fn snapshot<T: Send, E: From<StoreError> + Send>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E> + Send,
    ) -> Result<T, E> {
        self.within(Kind::Snapshot, f)
    }

    /// Runs `f` in one transaction: committed when `f` answers `Ok`, rolled back otherwise.
    pub fn transaction<T: Send, E: From<StoreError> + Send>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E> + Send,
    ) -> Result<T, E> {
        self.within(Kind::Write, f)
    }

    /// `f` in a transaction of `kind`, committed when it answers `Ok`.
    fn within<T: Send, E: From<StoreError> + Send>(
        &self,
        kind: Kind,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E> + Send,
    ) -> Result<T, E> {
        let mut conn = self.lock();
        let name = self.name.as_str();
        let run = |mut tx: Tx<'_>| -> Result<T, E> {
            let out = f(&mut tx)?;
            tx.commit()?;
            Ok(out)
        };
        match &mut *conn {
            Conn::Sqlite(c) => {
                let behavior = match kind {
                    Kind::Write => rusqlite::TransactionBehavior::Immediate,
                    Kind::Snapshot => rusqlite::TransactionBehavior::Deferred,
                };
                let t = c.transaction_with_behavior(behavior).map_err(|e| StoreError::sql(name, e))?;
                run(Tx { inner: TxInner::Sqlite(t), location: name })
            }
            Conn::Closed => Err(closed(name).into()),
            Conn::Postgres(pg) => off_runtime(|| {
                let PgConn { client, statements } = &mut **pg;
                let t = match kind {
                    Kind::Write => client.transaction(),
                    Kind::Snapshot => client
                        .build_transaction()
                        .isolation_level(postgres::IsolationLevel::RepeatableRead)
                        .read_only(true)
                        .start(),
                }
                .map_err(|e| StoreError::sql(name, e))?;
                run(Tx { inner: TxInner::Postgres(t, statements), location: name })
            }),
        }
    }

    /// Runs one statement outside a transaction; answers the rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn Bind]) -> Result<u64> {
        self.read(|t| t.execute(sql, params))
    }

    /// Runs one query outside a transaction.
    pub fn query(&self, sql: &str, params: &[&dyn Bind]) -> Result<Vec<Row>> {
        self.read(|t| t.query(sql, params))
    }

    /// The first row of a query, if any.
    pub fn query_opt(&self, sql: &str, params: &[&dyn Bind]) -> Result<Option<Row>> {
        self.read(|t| t.query_opt(sql, params))
    }

    /// Brings `component`'s schema to the newest of `migrations` (numbered 1, 2, ... in order):
    /// the ones the store has not seen run in one transaction, under a lock, so concurrent
    /// openers migrate once. A store migrated by a newer binary is refused, naming both versions.
    pub fn migrate(&self, component: &str, migrations: &[Migration]) -> Result<()> {
        let supported = migrations.last().map_or(0, |m| m.version);
        let current = |t: &mut Tx<'_>| -> Result<Option<u32>> {
            if !t.has_table("mlops_schema")? {
                return Ok(None);
            }
            t.query_opt("SELECT version FROM mlops_schema WHERE component = ?1", &[&component])?
                .map(|r| r.get::<u32>(0))
                .transpose()
        };
        let refuse = |found: u32| StoreError::SchemaNewer {
            location: self.name.clone(),
            component: component.to_string(),
            found,
            supported,
        };
        // Most opens find the schema current: a read, without the write lock.
        match self.read(current)? {
            Some(found) if found > supported => return Err(refuse(found)),
            Some(found) if found == supported => return Ok(()),
            _ => {}
        }
        self.transaction(|t| {
            t.lock("mlops_schema")?;
            t.batch(
                "CREATE TABLE IF NOT EXISTS mlops_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL, migrated_at TEXT NOT NULL)",
            )?;
            let found = current(t)?.unwrap_or(0);
            if found > supported {
                return Err(refuse(found));
            }
            for m in migrations.iter().filter(|m| m.version > found) {
                (m.apply)(t)?;
                tracing::info!(store = %self.name, component, version = m.version, "store schema migrated");
            }
            t.execute(
                "INSERT INTO mlops_schema (component, version, migrated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (component) DO UPDATE SET version = ?2, migrated_at = ?3",
                &[&component, &supported, &now()],
            )?;
            Ok(())
        })
    }
}

fn closed(location: &str) -> StoreError {
    StoreError::Config { location: location.to_string(), message: "the store is closed".into() }
}

/// The time now, as the stores record it (RFC 3339, milliseconds, UTC).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn connect(url: &str, password: Option<&str>) -> Result<postgres::Client> {
    let bad = |message: String| StoreError::Config { location: redacted(url), message };
    let mut config: postgres::Config = url.parse().map_err(|e| bad(format!("not a PostgreSQL URL: {e}")))?;
    if config.get_password().is_some() {
        return Err(bad("the URL carries a password; put it in PGPASSWORD instead, never in a config file".into()));
    }
    if let Some(p) = password {
        config.password(p);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.application_name("mlops");
    config.connect(postgres::NoTls).map_err(|e| {
        let mut message = e.to_string();
        if let Some(inner) = std::error::Error::source(&e) {
            message = format!("{message}: {inner}");
        }
        if password.is_none() && message.contains("password") {
            message.push_str(" (PGPASSWORD is not set)");
        }
        StoreError::Connect { location: redacted(url), message }
    })
}

/// Numbered SQLite parameters (`?1`) as PostgreSQL's (`$1`), outside quoted text.
fn dollar_params(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('$');
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    out
}

/// SQLite's column types in a schema as PostgreSQL's.
fn postgres_ddl(sql: &str) -> String {
    // SQLite's rowid keys, with or without AUTOINCREMENT, number themselves: an identity column.
    let sql = sql
        .replace("INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER PRIMARY KEY")
        .replace("INTEGER PRIMARY KEY", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY");
    let mut out = String::with_capacity(sql.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(match word.as_str() {
            "INTEGER" => "BIGINT",
            "REAL" => "DOUBLE PRECISION",
            "BLOB" => "BYTEA",
            w => w,
        });
        word.clear();
    };
    for c in sql.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

enum TxInner<'a> {
    SqliteConn(&'a rusqlite::Connection),
    Sqlite(rusqlite::Transaction<'a>),
    PgClient(&'a mut postgres::Client, &'a mut HashMap<String, postgres::Statement>),
    Postgres(postgres::Transaction<'a>, &'a mut HashMap<String, postgres::Statement>),
}

/// The connection inside [`Store::read`] or [`Store::transaction`].
pub struct Tx<'a> {
    inner: TxInner<'a>,
    location: &'a str,
}

fn pg_row(row: &postgres::Row) -> std::result::Result<Row, postgres::Error> {
    let mut out = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let d = match *col.type_() {
            Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Datum::Int),
            Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map(|v| Datum::Int(v.into())),
            Type::INT2 => row.try_get::<_, Option<i16>>(i)?.map(|v| Datum::Int(v.into())),
            Type::BOOL => row.try_get::<_, Option<bool>>(i)?.map(|v| Datum::Int(v.into())),
            Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.map(Datum::Real),
            Type::FLOAT4 => row.try_get::<_, Option<f32>>(i)?.map(|v| Datum::Real(v.into())),
            Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i)?.map(Datum::Blob),
            // Text and JSON, as text. Anything else must be cast by the statement (NUMERIC:
            // `CAST(SUM(x) AS BIGINT)`); reading it as text is an error naming the type.
            _ => row.try_get::<_, Option<Text>>(i)?.map(|t| Datum::Text(t.0)),
        };
        out.push(d.unwrap_or(Datum::Null));
    }
    Ok(Row(out))
}

/// A text-like PostgreSQL value (text, varchar, json, jsonb) as its text.
struct Text(String);

impl<'a> postgres::types::FromSql<'a> for Text {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Text, Box<dyn std::error::Error + Sync + Send>> {
        // jsonb's binary form is a version byte, then the text.
        let raw = if *ty == Type::JSONB { raw.get(1..).unwrap_or_default() } else { raw };
        Ok(Text(String::from_utf8(raw.to_vec())?))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON | Type::JSONB | Type::UNKNOWN)
    }
}

fn sqlite_row(row: &rusqlite::Row<'_>, n: usize) -> rusqlite::Result<Row> {
    use rusqlite::types::ValueRef;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(match row.get_ref(i)? {
            ValueRef::Null => Datum::Null,
            ValueRef::Integer(v) => Datum::Int(v),
            ValueRef::Real(v) => Datum::Real(v),
            ValueRef::Text(t) => Datum::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Datum::Blob(b.to_vec()),
        });
    }
    Ok(Row(out))
}

fn sqlite_query(conn: &rusqlite::Connection, sql: &str, params: &[Param<'_>]) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let n = stmt.column_count();
    let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| sqlite_row(r, n))?;
    rows.collect()
}

fn sqlite_execute(conn: &rusqlite::Connection, sql: &str, params: &[Param<'_>]) -> rusqlite::Result<u64> {
    conn.prepare_cached(sql)?.execute(rusqlite::params_from_iter(params.iter())).map(|n| n as u64)
}

impl Tx<'_> {
    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self.inner {
            TxInner::SqliteConn(_) | TxInner::Sqlite(_) => Backend::Sqlite,
            TxInner::PgClient(..) | TxInner::Postgres(..) => Backend::Postgres,
        }
    }

    fn err(&self, e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::sql(self.location, e)
    }

    fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.inner {
            TxInner::SqliteConn(c) => Some(c),
            TxInner::Sqlite(t) => Some(t),
            _ => None,
        }
    }

    /// A prepared PostgreSQL statement for `sql`, from the connection's cache.
    fn pg_statement(&mut self, sql: &str) -> Result<postgres::Statement> {
        let location = self.location;
        let cached = match &mut self.inner {
            TxInner::PgClient(_, cache) | TxInner::Postgres(_, cache) => cache.get(sql).cloned(),
            _ => None,
        };
        if let Some(s) = cached {
            return Ok(s);
        }
        let text = dollar_params(sql);
        let (prepared, cache) = match &mut self.inner {
            TxInner::PgClient(c, cache) => (c.prepare(&text), cache),
            TxInner::Postgres(t, cache) => (t.prepare(&text), cache),
            TxInner::SqliteConn(_) | TxInner::Sqlite(_) => {
                return Err(StoreError::Config { location: location.into(), message: "not a PostgreSQL store".into() });
            }
        };
        let s = prepared.map_err(|e| StoreError::sql(location, e))?;
        cache.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    /// Runs one statement; answers the rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[&dyn Bind]) -> Result<u64> {
        let params: Vec<Param<'_>> = params.iter().map(|p| p.param()).collect();
        if let Some(c) = self.sqlite() {
            return sqlite_execute(c, sql, &params).map_err(|e| self.err(e));
        }
        let stmt = self.pg_statement(sql)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let done = match &mut self.inner {
            TxInner::PgClient(c, _) => c.execute(&stmt, &refs),
            TxInner::Postgres(t, _) => t.execute(&stmt, &refs),
            TxInner::SqliteConn(_) | TxInner::Sqlite(_) => return Ok(0),
        };
        done.map_err(|e| self.err(e))
    }

    /// Runs one query.
    pub fn query(&mut self, sql: &str, params: &[&dyn Bind]) -> Result<Vec<Row>> {
        let params: Vec<Param<'_>> = params.iter().map(|p| p.param()).collect();
        if let Some(c) = self.sqlite() {
            return sqlite_query(c, sql, &params).map_err(|e| self.err(e));
        }
        let stmt = self.pg_statement(sql)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = match &mut self.inner {
            TxInner::PgClient(c, _) => c.query(&stmt, &refs),
            TxInner::Postgres(t, _) => t.query(&stmt, &refs),
            TxInner::SqliteConn(_) | TxInner::Sqlite(_) => return Ok(Vec::new()),
        };
        let rows = rows.map_err(|e| self.err(e))?;
        rows.iter().map(pg_row).collect::<std::result::Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The first row of a query, if any.
    pub fn query_opt(&mut self, sql: &str, params: &[&dyn Bind]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first column of the first row (a count, a `MAX`, ...).
    pub fn query_one<T: FromDatum>(&mut self, sql: &str, params: &[&dyn Bind]) -> Result<T> {
        match self.query_opt(sql, params)? {
            Some(row) => row.get(0),
            None => T::from_datum(Datum::Null).map_err(|found| StoreError::Type {
                column: 0,
                found: found.kind(),
                expected: T::EXPECTED,
            }),
        }
    }

    /// Streams `data` into PostgreSQL's `COPY ... FROM STDIN` statement `copy` (the bulk path:
    /// one round trip for a whole batch); answers the rows copied. SQLite has no COPY: there it
    /// is an error, and callers insert instead.
    pub fn copy_in(&mut self, copy: &str, data: &[u8]) -> Result<u64> {
        use std::io::Write as _;
        let location = self.location;
        let mut writer = match &mut self.inner {
            TxInner::PgClient(c, _) => c.copy_in(copy),
            TxInner::Postgres(t, _) => t.copy_in(copy),
            TxInner::SqliteConn(_) | TxInner::Sqlite(_) => {
                return Err(StoreError::Config { location: location.into(), message: "COPY needs PostgreSQL".into() });
            }
        }
        .map_err(|e| StoreError::sql(location, e))?;
        writer.write_all(data).map_err(|e| StoreError::sql(location, e))?;
        writer.finish().map_err(|e| StoreError::sql(location, e))
    }

    /// Runs several statements as they are (no parameters, no translation).
    pub fn batch(&mut self, sql: &str) -> Result<()> {
        let done = match &mut self.inner {
            TxInner::SqliteConn(c) => return c.execute_batch(sql).map_err(|e| self.err(e)),
            TxInner::Sqlite(t) => return t.execute_batch(sql).map_err(|e| self.err(e)),
            TxInner::PgClient(c, _) => c.batch_execute(sql),
            TxInner::Postgres(t, _) => t.batch_execute(sql),
        };
        done.map_err(|e| self.err(e))
    }

    /// Runs schema statements written with SQLite's column types, mapped to PostgreSQL's there.
    pub fn ddl(&mut self, sql: &str) -> Result<()> {
        match self.backend() {
            Backend::Sqlite => self.batch(sql),
            Backend::Postgres => self.batch(&postgres_ddl(sql)),
        }
    }

    /// Whether `table` exists.
    pub fn has_table(&mut self, table: &str) -> Result<bool> {
        let sql = match self.backend() {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?1"
            }
        };
        Ok(self.query_one::<i64>(sql, &[&table])? > 0)
    }

    /// Whether `table` has `column` (for migrations of stores made before versioning).
    pub fn has_column(&mut self, table: &str, column: &str) -> Result<bool> {
        let sql = match self.backend() {
            Backend::Sqlite => "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2",
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?1 AND column_name = ?2"
            }
        };
        Ok(self.query_one::<i64>(sql, &[&table, &column])? > 0)
    }

    /// Holds a lock on `name` until the transaction ends, across every process and machine on
    /// the store (PostgreSQL: `pg_advisory_xact_lock`; SQLite's `BEGIN IMMEDIATE` already holds
    /// the whole file's write lock).
    /// Outside a transaction ([`Store::read`]) there is nothing to hold it for: an error.
    pub fn lock(&mut self, name: &str) -> Result<()> {
        match self.inner {
            TxInner::Postgres(..) => {
                self.execute("SELECT pg_advisory_xact_lock(hashtext(?1))", &[&name])?;
                Ok(())
            }
            TxInner::Sqlite(_) => Ok(()),
            TxInner::PgClient(..) | TxInner::SqliteConn(_) => Err(StoreError::Config {
                location: self.location.to_string(),
                message: format!("a lock on `{name}` needs a transaction (Store::transaction)"),
            }),
        }
    }

    fn commit(self) -> Result<()> {
        let location = self.location;
        match self.inner {
            TxInner::Sqlite(t) => t.commit().map_err(|e| StoreError::sql(location, e)),
            TxInner::Postgres(t, _) => t.commit().map_err(|e| StoreError::sql(location, e)),
            TxInner::SqliteConn(_) | TxInner::PgClient(..) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_for_postgres_outside_quotes() {
        assert_eq!(dollar_params("SELECT ?1, '?2', \"a?3\" WHERE x = ?12"), "SELECT $1, '?2', \"a?3\" WHERE x = $12");
    }

    #[test]
    fn schemas_map_to_postgres_types() {
        let sql = "CREATE TABLE t (seq INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER, x REAL, b BLOB, integer_col TEXT)";
        assert_eq!(
            postgres_ddl(sql),
            "CREATE TABLE t (seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n BIGINT, x DOUBLE PRECISION, b BYTEA, integer_col TEXT)"
        );
        assert_eq!(
            postgres_ddl("CREATE TABLE u (seq INTEGER PRIMARY KEY, v INTEGER)"),
            "CREATE TABLE u (seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v BIGINT)"
        );
    }

    #[test]
    fn bad_postgres_settings_are_named_before_any_connection() {
        let err = Store::open_with(&Location::Postgres("postgres://h:notaport/db".into()), None).unwrap_err();
        assert!(
            matches!(&err, StoreError::Config { location, message } if location == "postgres://h:notaport/db" && message.starts_with("not a PostgreSQL URL")),
            "{err}"
        );
        let err = Store::open_with(&Location::Postgres("postgres://u:hunter2@h/db".into()), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "store postgres://u:***@h/db: the URL carries a password; put it in PGPASSWORD instead, never in a config file"
        );
    }

    #[test]
    fn locations_tell_files_from_urls() {
        assert_eq!(Location::parse("postgres://u@h/db"), Location::Postgres("postgres://u@h/db".into()));
        assert_eq!(Location::parse("postgresql://h/db"), Location::Postgres("postgresql://h/db".into()));
        assert_eq!(Location::parse("models/registry.db"), Location::Sqlite("models/registry.db".into()));
        assert_eq!(Location::parse("postgres://u:secret@h/db").to_string(), "postgres://u:***@h/db");
        assert_eq!(Location::parse("postgres://u@h/db").to_string(), "postgres://u@h/db");
        assert_eq!(
            Location::parse("postgres://u@h/db?sslmode=disable&password=secret").to_string(),
            "postgres://u@h/db?sslmode=disable&password=***"
        );
    }
}
