//! Real services for tests (the `testing` feature, for dev-dependencies only): a throwaway
//! PostgreSQL cluster in a temporary folder and a Kafka-protocol broker (tansu, in-memory
//! storage) and an S3-compatible object store (moto's server mode), each on a free loopback
//! port, stopped when dropped; and a fresh store on either backend for the store tests
//! ([`TestStore`], [`crate::store_tests!`]).
//!
//! The broker binary comes from `MLOPS_TANSU`, else `~/.cache/mlops-tools/bin/tansu` (where
//! `make test-deps` installs it), else `tansu` on the `PATH`.
//!
//! The server binaries come from `MLOPS_PG_BIN`, else from `pg_config --bindir`, else from the
//! newest `/usr/lib/postgresql/<version>/bin` (Debian's layout). PostgreSQL refuses to run as
//! root: as root, the cluster runs as the `postgres` user (`runuser`), which owns its folder.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running PostgreSQL server of its own: one cluster, password authentication for the
/// superuser `postgres` (TCP on 127.0.0.1 only), `fsync` off.
pub struct PostgresCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// The superuser's password.
    pub password: String,
}

fn bin_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("MLOPS_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").is_file() {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("no PostgreSQL server binaries (set MLOPS_PG_BIN, or install postgresql): {e}"))?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| "no PostgreSQL server binaries in /usr/lib/postgresql".into())
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

impl PostgresCluster {
    /// Creates and starts a cluster whose superuser `postgres` has `password`.
    pub fn start(password: &str) -> Result<PostgresCluster, String> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new().prefix("mlops-pg").tempdir().map_err(|e| e.to_string())?;
        let as_postgres = is_root();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, password).map_err(|e| e.to_string())?;
        if as_postgres {
            let chown = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status();
            if !chown.map(|s| s.success()).unwrap_or(false) {
                return Err(format!("cannot hand {} to the postgres user", dir.path().display()));
            }
        }
        let mut cluster = PostgresCluster { dir, bin, as_postgres, port: 0, password: password.to_string() };
        let data = cluster.dir.path().join("data");
        cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--auth=scram-sha-256".as_ref(),
                format!("--pwfile={}", pwfile.display()).as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-sync".as_ref(),
            ],
        )?;
        // A port taken between the probe and the start makes pg_ctl fail: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
                cluster.dir.path().display()
            );
            let log = cluster.dir.path().join("server.log");
            match cluster.run(
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-o".as_ref(),
                    options.as_ref(),
                    "-l".as_ref(),
                    log.as_os_str(),
                    "-w".as_ref(),
                    "-t".as_ref(),
                    "60".as_ref(),
                    "start".as_ref(),
                ],
            ) {
                Ok(()) => {
                    cluster.port = port;
                    return Ok(cluster);
                }
                Err(e) => last = format!("{e}\n{}", std::fs::read_to_string(&log).unwrap_or_default()),
            }
        }
        Err(last)
    }

    fn run(&self, tool: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
        let program = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = cmd.args(args).current_dir(self.dir.path()).output().map_err(|e| format!("{tool}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{tool} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// The URL of `database` for the superuser, without the password.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs SQL through `psql` as the superuser (stops at the first error).
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                database,
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-c", sql])
            .env("PGPASSWORD", &self.password)
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The cluster's folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`), as a crash would.
    pub fn stop(&self) -> Result<(), String> {
        let data = self.dir.path().join("data");
        self.run("pg_ctl", &["-D".as_ref(), data.as_os_str(), "-m".as_ref(), "immediate".as_ref(), "stop".as_ref()])
    }
}

impl Drop for PostgresCluster {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// A running Kafka-protocol broker of its own: tansu with in-memory storage on a free loopback
/// port. Topics are not created on first use: [`KafkaBroker::create_topic`] makes them.
pub struct KafkaBroker {
    dir: tempfile::TempDir,
    bin: PathBuf,
    child: Option<std::process::Child>,
    /// Whether clients must authenticate (SASL) first.
    authentication: bool,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

fn tansu_bin() -> Result<PathBuf, String> {
    if let Ok(bin) = std::env::var("MLOPS_TANSU") {
        return Ok(PathBuf::from(bin));
    }
    if let Some(home) = std::env::var_os("HOME") {
        let cached = Path::new(&home).join(".cache/mlops-tools/bin/tansu");
        if cached.is_file() {
            return Ok(cached);
        }
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("tansu"))
        .find(|p| p.is_file());
    on_path.ok_or_else(|| "no tansu binary: run `make test-deps` (it installs tansu into ~/.cache/mlops-tools)".into())
}

impl KafkaBroker {
    /// Starts a broker and waits until it takes connections.
    pub fn start() -> Result<KafkaBroker, String> {
        Self::started(false)
    }

    /// Starts a broker that refuses clients until they authenticate (SASL).
    pub fn start_authenticating() -> Result<KafkaBroker, String> {
        Self::started(true)
    }

    fn started(authentication: bool) -> Result<KafkaBroker, String> {
        let dir = tempfile::Builder::new().prefix("mlops-kafka").tempdir().map_err(|e| e.to_string())?;
        let mut broker = KafkaBroker { dir, bin: tansu_bin()?, child: None, authentication, port: free_port()? };
        broker.launch()?;
        Ok(broker)
    }

    /// `127.0.0.1:PORT`, as a client's bootstrap list names it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) -> Result<(), String> {
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("broker.log"))
            .map_err(|e| e.to_string())?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&self.bin)
            .args(["broker", "--storage-engine", "memory://tansu/", "--cluster-id", "mlops-test"])
            .args(["--listener-url", &listener, "--advertised-listener-url", &listener])
            .args(self.authentication.then_some("--authentication"))
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("{}: {e}", self.bin.display()))?;
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!("tansu exited ({status}): {}", self.log()));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(format!("tansu did not listen on {} within 30 s: {}", self.port, self.log()))
    }

    /// What the broker printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), String> {
        let out = Command::new(&self.bin)
            .args(["topic", "create", topic, "--partitions", &partitions.to_string()])
            .args(["--broker", &format!("tcp://127.0.0.1:{}", self.port)])
            .output()
            .map_err(|e| format!("tansu topic create: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("tansu topic create {topic}: {}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// Produces messages to one partition of `topic` in one batch: `(timestamp in ms, value)`.
    pub fn produce(&self, topic: &str, partition: i32, messages: &[(i64, &str)]) -> Result<(), String> {
        use rskafka::client::partition::{Compression, UnknownTopicHandling};
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(async {
            let client =
                crate::kafka::connect(&[self.address()], "mlops-test", std::time::Duration::from_secs(10)).await?;
            let pc = client
                .partition_client(topic, partition, UnknownTopicHandling::Retry)
                .await
                .map_err(|e| e.to_string())?;
            let mut records = Vec::with_capacity(messages.len());
            for (ts, value) in messages {
                records.push(rskafka::record::Record {
                    key: None,
                    value: Some(value.as_bytes().to_vec()),
                    headers: Default::default(),
                    timestamp: chrono::DateTime::from_timestamp_millis(*ts).ok_or("a timestamp out of range")?,
                });
            }
            pc.produce(records, Compression::NoCompression).await.map_err(|e| e.to_string())?;
            Ok(())
        })
    }

    /// Kills the broker (its in-memory topics go with it).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port, empty.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.launch()
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A fresh, empty store for one test, on either backend, so that a store test written once
/// runs on both ([`crate::store_tests!`]).
///
/// On PostgreSQL each one is a database of its own. When the test run provides a server
/// (`make test` starts one: `MLOPS_TEST_PG_URL`, the superuser's URL without a database, and
/// `MLOPS_TEST_PG_PASSWORD`), the database is created there; otherwise the test starts a
/// cluster of its own, stopped when the `TestStore` is dropped.
#[cfg(feature = "store")]
pub struct TestStore {
    /// Where the store is.
    pub location: crate::store::Location,
    password: Option<String>,
    _dir: Option<tempfile::TempDir>,
    _cluster: Option<PostgresCluster>,
}

#[cfg(feature = "store")]
impl TestStore {
    /// A SQLite file in a temporary folder of its own.
    pub fn sqlite() -> TestStore {
        let dir = tempfile::Builder::new().prefix("mlops-store").tempdir().expect("a temporary folder");
        let location = crate::store::Location::Sqlite(dir.path().join("registry.db"));
        TestStore { location, password: None, _dir: Some(dir), _cluster: None }
    }

    /// A new database on the test run's PostgreSQL server, or on a cluster of its own.
    pub fn postgres() -> TestStore {
        static DATABASES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let (base, password, cluster) =
            match (std::env::var("MLOPS_TEST_PG_URL"), std::env::var("MLOPS_TEST_PG_PASSWORD")) {
                (Ok(url), Ok(password)) => (url.trim_end_matches('/').to_string(), password, None),
                _ => {
                    let cluster = PostgresCluster::start("store-test").expect("a PostgreSQL cluster for the test");
                    (format!("postgres://postgres@127.0.0.1:{}", cluster.port), cluster.password.clone(), Some(cluster))
                }
            };
        let name = format!(
            "mlops_test_{}_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            chrono::Utc::now().timestamp_micros()
        );
        let admin = crate::store::Store::open_with(
            &crate::store::Location::Postgres(format!("{base}/postgres")),
            Some(&password),
        )
        .expect("the test PostgreSQL server");
        admin.execute(&format!("CREATE DATABASE {name}"), &[]).expect("a test database");
        // The code under test opens the store by its URL, as a config names it.
        crate::store::register_password(&format!("{base}/{name}"), &password);
        TestStore {
            location: crate::store::Location::Postgres(format!("{base}/{name}")),
            password: Some(password),
            _dir: None,
            _cluster: cluster,
        }
    }

    /// The PostgreSQL password (none for SQLite).
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// A new connection to the store.
    pub fn open(&self) -> crate::store::Store {
        crate::store::Store::open_with(&self.location, self.password.as_deref()).expect("the test store opens")
    }

    /// The store's setting as a config or the command line takes it (a path or a URL).
    pub fn setting(&self) -> String {
        self.location.to_string()
    }
}

/// Runs each store test `fn name(store: &TestStore)` twice, as `name::sqlite` and
/// `name::postgres`, on a fresh store of each backend: one test body, both backends.
#[cfg(feature = "store")]
#[macro_export]
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(&$crate::testing::TestStore::sqlite());
            }
            #[test]
            fn postgres() {
                super::$name(&$crate::testing::TestStore::postgres());
            }
        }
    )*};
}

/// A running S3-compatible object store of its own: moto's server mode (`moto_server`, from the
/// tests' Python environment, `make test-deps`) on a free loopback port, in memory, stopped when
/// dropped. It takes any credentials.
pub struct S3Server {
    child: std::process::Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl S3Server {
    /// Starts the server and waits until it answers.
    pub fn start() -> Result<S3Server, String> {
        let bin = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .map(|d| d.join("moto_server"))
            .find(|p| p.is_file())
            .ok_or(
                "no moto_server on the PATH: run the tests with the test environment's bin first (`make test` does)",
            )?;
        let port = free_port()?;
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("moto_server: {e}"))?;
        let mut server = S3Server { child, port };
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(30) {
            if server.http("GET", "/").is_ok() {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("moto_server exited: {status}"));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Err("moto_server did not answer within 30 s".into())
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `AWS_*` variables a client needs for this server.
    pub fn vars(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, name: &str) -> Result<(), String> {
        let status = self.http("PUT", &format!("/{name}"))?;
        if status == 200 { Ok(()) } else { Err(format!("creating bucket {name}: HTTP {status}")) }
    }

    /// One request without a body; answers the status.
    fn http(&self, method: &str, path: &str) -> Result<u16, String> {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).map_err(|e| e.to_string())?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).map_err(|e| e.to_string())?;
        answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an HTTP answer: {answer:.80}"))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
