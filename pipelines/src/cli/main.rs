//! `mlops`: the command line of the MLOps toolkit.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod clean;
mod containerize;
mod curate;
mod data;
mod dataset;
mod deploy;
mod deployment;
mod eda;
mod features;
mod files;
mod fit;
mod healthcheck;
mod ingest;
mod lifecycle;
mod monitor;
mod output;
mod package;
mod plot;
mod predict;
mod prepare;
mod registry;
mod runs;
mod select;
mod serve;
mod split;
mod train;
mod transform;
mod validate;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

/// From raw tabular data to a production model, one step or one run at a time.
#[derive(Parser)]
#[command(name = "mlops", version, about = "From raw tabular data to a production model: the steps of the MLOps workflow, one at a time or as runs.", long_about = None)]
pub struct Cli {
    /// Print machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// No progress bars or warnings on stderr.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Folder for the per-run log file.
    #[arg(long, global = true, default_value = "logs", value_name = "DIR")]
    log_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run steps 1-6 (ingest → curate) from a data config.
    Prepare(ConfigArg),
    /// Step 1: read a file (or a config source) and show its lineage and schema.
    Ingest(IngestArgs),
    /// Step 2: check a file against a schema, or infer a schema from it.
    Validate(ValidateArgs),
    /// Step 3: clean a file with the `clean` section of a data config.
    Clean(StepArgs),
    /// Step 4: standardize a file with the `standardize` section of a data config.
    Standardize(StepArgs),
    /// Step 5: transform a file with the `transform` section of a data config.
    Transform(TransformArgs),
    /// Step 6: write a file as a curated, versioned dataset.
    Curate(CurateArgs),
    /// The catalog of curated dataset versions.
    #[command(subcommand)]
    Data(DataCommand),
    /// Step 7: profile a dataset into an HTML report (with the charts of step 9) and JSON.
    Eda(EdaArgs),
    /// Step 9: draw one chart of a dataset to SVG or PNG.
    Plot(PlotArgs),
    /// Step 8: select columns and rows (and a sample) of a dataset.
    Select(SelectArgs),
    /// Step 8: split a dataset into train / validation / test Parquet files.
    Split(SplitArgs),
    /// Steps 8 and 10: split, fit the features on the training part, transform the others.
    Features(FeaturesArgs),
    /// Steps 7-17: EDA, split, features, cross-validated search over the candidates, final fits,
    /// evaluation reports, the choice of the best, its package and its registration.
    Train(TrainArgs),
    /// Step 11: fit one model on the parts `mlops features` wrote and score the test part.
    Fit(FitArgs),
    /// Step 16: model packages.
    #[command(subcommand)]
    Package(PackageCommand),
    /// Step 17: the model registry (versions, aliases, tags, status, audit log).
    Registry(RegistryArgs),
    /// Step 12: tracked training runs.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Step 18: a container build context (Dockerfile, compose file, nginx front) for a
    /// registered model.
    Containerize(ContainerizeArgs),
    /// Step 19: deploy a registered model: Kubernetes manifests, or a server process on this
    /// machine behind a router on the endpoint (blue/green).
    #[command(subcommand)]
    Deploy(DeployCommand),
    /// Exit 0 when the server at URL answers 200 (the container's HEALTHCHECK; no curl needed).
    Healthcheck {
        /// For example http://127.0.0.1:8080/v2/health/ready.
        url: String,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
    /// Step 20: serve a model over HTTP (MLflow /invocations, Open Inference Protocol v2,
    /// /predict) until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Step 21: predictions for a file (CSV, Parquet, NDJSON), from a model or a running server.
    Predict(PredictArgs),
    /// Step 22: monitor a served model (feedback with actual outcomes).
    Monitor(MonitorArgs),
    /// Step 23: retrain, promote, roll back and retire models by policy (configs/lifecycle.yaml).
    Lifecycle(LifecycleArgs),
}

#[derive(Args)]
pub(crate) struct LifecycleArgs {
    /// The lifecycle policy: triggers, gate, retention (defaults when the default file is
    /// absent).
    #[arg(long, default_value = "configs/lifecycle.yaml", global = true)]
    config: PathBuf,
    /// The store: registry, prediction log, feedback, alert and lifecycle state (default: the
    /// policy's).
    #[arg(long, global = true)]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: LifecycleCommand,
}

#[derive(Subcommand)]
pub(crate) enum LifecycleCommand {
    /// Evaluate the triggers, retrain when one holds, gate the challenger, promote it or keep
    /// the champion, then apply retention. Exit 0: nothing due or promoted; 2: the champion
    /// kept; 3: retraining failed; 4: another lifecycle run holds the lock; 1: the run failed.
    Run {
        /// The registered model (default: the policy's `model`).
        name: Option<String>,
    },
    /// Versions (total, active, retired), latest, champion and challenger, the last lifecycle
    /// run, open alerts and the next scheduled retraining.
    Status {
        /// The registered model (default: the policy's `model`).
        name: Option<String>,
    },
    /// Move the serving alias back to the version it pointed at before its last move.
    Rollback {
        /// The registered model (default: the policy's `model`).
        name: Option<String>,
        /// Why (recorded in the registry's audit log).
        #[arg(long)]
        reason: String,
    },
    /// Retire a version by hand (never one an alias points at or a deployment serves).
    Retire {
        /// The registered model.
        name: String,
        /// The version.
        version: u32,
        /// Why (recorded in the registry's audit log).
        #[arg(long)]
        reason: String,
    },
    /// When each trigger falls due, and a crontab line that runs `mlops lifecycle run`.
    Schedule {
        /// The registered model (default: the policy's `model`).
        name: Option<String>,
        /// The crontab schedule of the line (five fields).
        #[arg(long, default_value = "0 * * * *")]
        cron: String,
    },
}

#[derive(Args)]
pub(crate) struct MonitorArgs {
    /// The monitoring config: model, store, drift rules, alert rules, sinks (defaults when the
    /// default file is absent).
    #[arg(long, default_value = "configs/monitoring.yaml", global = true)]
    config: PathBuf,
    /// The store: registry, prediction log, feedback and alert state (default: the config's).
    #[arg(long, global = true)]
    store: Option<PathBuf>,
    /// The model watched: models:/NAME@ALIAS, models:/NAME/VERSION or a package directory
    /// (default: the config's `model`).
    #[arg(long)]
    model: Option<String>,
    /// The window's start, an RFC 3339 instant (2026-12-07T10:00:00Z).
    #[arg(long, conflicts_with = "last")]
    from: Option<String>,
    /// The window's end (exclusive), an RFC 3339 instant.
    #[arg(long, conflicts_with = "last")]
    to: Option<String>,
    /// The window: the last span up to now (24h, 7d, 90m; default: the config's `window.last`).
    #[arg(long)]
    last: Option<String>,
    /// For cron and CI: exit 0 with no open alert, 1 with a warning open, 2 with a critical one
    /// open, 3 when the run itself failed.
    #[arg(long)]
    check: bool,
    /// Where dashboards go (default: the config's `reports`).
    #[arg(long)]
    reports: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<MonitorCommand>,
}

#[derive(Subcommand)]
pub(crate) enum MonitorCommand {
    /// Record actual outcomes from a CSV file beside the prediction log, joined to the logged
    /// predictions by request id and row, or by a key column of the model's inputs.
    Feedback {
        /// The CSV file of actuals.
        #[arg(long)]
        input: PathBuf,
        /// Its column of request ids (the `request_id` the server answered).
        #[arg(long, default_value = "request_id")]
        id: String,
        /// Its column of rows within the request (0 when the file has no such column).
        #[arg(long, default_value = "row")]
        row: String,
        /// Its column of actual outcomes.
        #[arg(long, default_value = "actual")]
        actual: String,
        /// Join by this input column of the model's signature instead (with --model): each
        /// actual goes to the latest logged prediction whose input held its key.
        #[arg(long)]
        key: Option<String>,
        /// The model whose logged inputs --key looks in: a name, models:/NAME/VERSION or
        /// models:/NAME@ALIAS.
        #[arg(long)]
        model: Option<String>,
        /// The registry's artifact folder (to resolve a models:/ URI).
        #[arg(long, default_value = "models/artifacts")]
        artifacts: PathBuf,
    },
    /// Send a file's rows to a running server as production traffic (`POST /predict/batch`,
    /// a few rows per request) and, when the file has the actual outcomes, send them after as
    /// feedback (`POST /feedback`): how `make monitor` plays a day of production.
    Replay {
        /// The server (http://127.0.0.1:8080).
        #[arg(long)]
        url: String,
        /// The rows: a data file as the source delivers it (CSV, Parquet, ...).
        #[arg(long)]
        input: PathBuf,
        /// Its column of actual outcomes: left out of the requests, sent as feedback.
        #[arg(long)]
        actual: Option<String>,
        /// Rows per request.
        #[arg(long, default_value_t = 16)]
        rows_per_request: usize,
        /// Milliseconds to wait between requests (traffic spread over time).
        #[arg(long, default_value_t = 0)]
        interval_ms: u64,
    },
    /// Write Prometheus alerting rules for the server's own /metrics (from the config's latency,
    /// error-rate and volume rules, plus reload and prediction-log failures) and a Grafana
    /// dashboard of the same metrics, for the watched model.
    ExportRules {
        /// The folder written into: `<model>-rules.yml` and `<model>-dashboard.json`.
        #[arg(long, default_value = "build/monitoring")]
        out: PathBuf,
    },
    /// Compare two data files column by column (Parquet, CSV, ...) with the config's drift
    /// rules, as Evidently's data drift report does.
    Drift {
        /// The reference data.
        #[arg(long)]
        reference: PathBuf,
        /// The current data.
        #[arg(long)]
        current: PathBuf,
        /// One method for every column instead of the config's rules: auto, ks, wasserstein,
        /// chisquare, z, jensenshannon, psi, ks_or_psi.
        #[arg(long)]
        method: Option<String>,
    },
}

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// The deployment config (its `serve` section; defaults when the default file is absent).
    #[arg(long, default_value = "configs/deployment.yaml")]
    pub config: PathBuf,
    /// What to serve: models:/NAME@ALIAS, models:/NAME/VERSION or a package directory
    /// (default: the config's `model`).
    #[arg(long)]
    pub model: Option<String>,
    /// Address to bind (default: the config's, 127.0.0.1).
    #[arg(long)]
    pub host: Option<String>,
    /// Port (0: any free port; default: the config's, 8080).
    #[arg(long)]
    pub port: Option<u16>,
    /// The SQLite store: registry and prediction log (default: the config's).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// The registry's artifact folder (default: the config's).
    #[arg(long)]
    pub artifacts: Option<PathBuf>,
}

/// A registered model and a directory to write for it (`containerize`, `deploy kubernetes`).
#[derive(Args)]
pub(crate) struct ContainerizeArgs {
    /// The model: models:/NAME@ALIAS or models:/NAME/VERSION (default: the config's `model`).
    #[arg(long)]
    pub model: Option<String>,
    /// The output directory (refused when it exists and is not empty, unless --force).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace a non-empty output directory.
    #[arg(long)]
    pub force: bool,
    /// The deployment config (its `containerize`, `kubernetes` and `serve` sections, store,
    /// artifacts).
    #[arg(long, default_value = "configs/deployment.yaml")]
    pub config: PathBuf,
}

#[derive(Subcommand)]
pub(crate) enum DeployCommand {
    /// Write Kubernetes manifests for the model (Deployment, Service, HorizontalPodAutoscaler,
    /// PodDisruptionBudget, ConfigMap, optional Ingress and canary) into a directory.
    Kubernetes(ContainerizeArgs),
    /// Start the model as a background server and route the endpoint to it; what served the
    /// endpoint before is stopped only once the new server is ready.
    Local(DeployLocalArgs),
    /// The deployments serving now, and the latest attempts.
    Status {
        /// The deployment config (its store).
        #[arg(long, default_value = "configs/deployment.yaml")]
        config: PathBuf,
        /// How many of the latest attempts to list.
        #[arg(long, default_value_t = 10)]
        history: usize,
    },
    /// Stop the deployment on an endpoint (every one when no --port is given).
    Stop {
        /// The deployment config (its store).
        #[arg(long, default_value = "configs/deployment.yaml")]
        config: PathBuf,
        /// The endpoint's port.
        #[arg(long)]
        port: Option<u16>,
        /// The endpoint's address (default: the config's, 127.0.0.1).
        #[arg(long)]
        host: Option<String>,
    },
    /// The endpoint's router (started by `deploy local`).
    #[command(hide = true)]
    Router {
        /// The endpoint, host:port.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// The store holding the deployments.
        #[arg(long)]
        store: PathBuf,
        /// The largest request body passed on.
        #[arg(long, default_value_t = 16 * 1024 * 1024)]
        max_body: usize,
        /// Milliseconds to wait for the server's answer.
        #[arg(long, default_value_t = 15_000)]
        timeout_ms: u64,
    },
}

#[derive(Args)]
pub(crate) struct DeployLocalArgs {
    /// The model: models:/NAME@ALIAS, models:/NAME/VERSION or a package directory (default:
    /// the config's `model`); an alias is pinned to the version it points at now.
    #[arg(long)]
    pub model: Option<String>,
    /// The endpoint's address (default: the config's serve.host).
    #[arg(long)]
    pub host: Option<String>,
    /// The endpoint's port (default: the config's serve.port).
    #[arg(long)]
    pub port: Option<u16>,
    /// Seconds the new server has to get ready (default: local.ready_timeout_seconds).
    #[arg(long)]
    pub ready_timeout: Option<u64>,
    /// The deployment config.
    #[arg(long, default_value = "configs/deployment.yaml")]
    pub config: PathBuf,
}

#[derive(Args)]
pub(crate) struct PredictArgs {
    /// The model: models:/NAME@ALIAS, models:/NAME/VERSION or a package directory.
    #[arg(long, conflicts_with = "url", required_unless_present = "url")]
    pub model: Option<String>,
    /// A running server to ask instead (http://127.0.0.1:8080).
    #[arg(long)]
    pub url: Option<String>,
    /// Input file: .csv, .parquet or .ndjson.
    #[arg(long)]
    pub input: PathBuf,
    /// Output file (.csv, .parquet or .ndjson): the id column, the prediction, the probabilities.
    #[arg(long)]
    pub output: PathBuf,
    /// Column that identifies rows (default: the row number, as `row`).
    #[arg(long)]
    pub id: Option<String>,
    /// Rows per chunk.
    #[arg(long, default_value_t = 65_536)]
    pub chunk_rows: usize,
    /// Rows that do not fit the signature: reject the whole file (default) or skip them
    /// (listed with their row numbers).
    #[arg(long, value_enum, default_value = "reject")]
    pub on_error: OnErrorArg,
    /// Replace the output file when it exists (never the input file).
    #[arg(long)]
    pub force: bool,
    /// The deployment config (store, artifacts, category policy).
    #[arg(long, default_value = "configs/deployment.yaml")]
    pub config: PathBuf,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum OnErrorArg {
    Reject,
    Skip,
}

#[derive(Subcommand)]
enum PackageCommand {
    /// Verify every checksum of a package and show what it holds.
    Inspect {
        /// The package directory.
        dir: PathBuf,
    },
}

#[derive(Args)]
pub(crate) struct RegistryArgs {
    /// The store (SQLite).
    #[arg(long, default_value = "models/registry/registry.db", global = true)]
    store: PathBuf,
    /// The content-addressed package store.
    #[arg(long, default_value = "models/artifacts", global = true)]
    artifacts: PathBuf,
    #[command(subcommand)]
    command: RegistryCommand,
}

#[derive(Subcommand)]
pub(crate) enum RegistryCommand {
    /// Every registered model, or the versions of one.
    List {
        /// A model's name.
        name: Option<String>,
    },
    /// A model with its versions, or one version (`models:/NAME/3`, `models:/NAME@champion`).
    Show {
        /// NAME or a models:/ URI.
        model: String,
    },
    /// Register a package (verified, stored once by content) as the next version of NAME.
    Register {
        /// Model name: letters, digits, `.`, `_`, `-`.
        name: String,
        /// The package directory.
        #[arg(long)]
        package: PathBuf,
        /// Point this alias at the new version.
        #[arg(long)]
        alias: Option<String>,
        /// Description of the version.
        #[arg(long, default_value = "")]
        description: String,
        /// Tags of the version, KEY=VALUE.
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
    },
    /// Point ALIAS of NAME at VERSION, or remove it with --delete.
    Alias {
        /// Model name.
        name: String,
        /// Alias (`champion`, `challenger`, any lowercase name).
        alias: String,
        /// The version.
        #[arg(required_unless_present = "delete")]
        version: Option<u32>,
        /// Remove the alias.
        #[arg(long)]
        delete: bool,
    },
    /// Set a tag on a model, or on one version with --version.
    Tag {
        /// Model name.
        name: String,
        /// Key.
        key: String,
        /// Value.
        value: String,
        /// The version.
        #[arg(long)]
        version: Option<u32>,
    },
    /// Retire a version: kept on record, no longer resolved.
    Retire {
        /// Model name.
        name: String,
        /// The version.
        version: u32,
    },
    /// Delete a version and its aliases (its number is not reused).
    Delete {
        /// Model name.
        name: String,
        /// The version.
        version: u32,
    },
    /// The audit log: every change, who made it, when, from which value.
    History {
        /// Only this model.
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum RunsCommand {
    /// Every run, oldest first.
    List {
        /// Only this experiment.
        #[arg(long)]
        experiment: Option<String>,
        /// The run store.
        #[arg(long, default_value = "models/registry/registry.db")]
        store: PathBuf,
    },
    /// One run: info, params, metrics with their history, tags, artifacts.
    Show {
        /// Run id or a unique prefix.
        run: String,
        /// The run store.
        #[arg(long, default_value = "models/registry/registry.db")]
        store: PathBuf,
    },
    /// Params and metrics of several runs side by side.
    Compare {
        /// Run ids or unique prefixes.
        #[arg(required = true, num_args = 2..)]
        runs: Vec<String>,
        /// The run store.
        #[arg(long, default_value = "models/registry/registry.db")]
        store: PathBuf,
    },
}

#[derive(Args)]
struct SelectArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Columns by name, comma-separated (flags replace the config's `select` section).
    #[arg(long, value_delimiter = ',')]
    columns: Vec<String>,
    /// Columns whose name matches this regular expression.
    #[arg(long)]
    pattern: Option<String>,
    /// Columns of these types: number, int, float, string, bool, date, datetime.
    #[arg(long, value_delimiter = ',')]
    types: Vec<String>,
    /// Columns to leave out.
    #[arg(long, value_delimiter = ',')]
    exclude: Vec<String>,
    /// Keep rows where this holds, e.g. "age > 18 and email contains \"@gmail.com\"".
    #[arg(long)]
    filter: Option<String>,
    /// First row position (iloc).
    #[arg(long, allow_hyphen_values = true)]
    start: Option<i64>,
    /// One past the last row position.
    #[arg(long, allow_hyphen_values = true)]
    stop: Option<i64>,
    /// A random sample of this many rows.
    #[arg(long, conflicts_with = "sample_fraction")]
    sample_n: Option<usize>,
    /// A random sample of this share of rows.
    #[arg(long)]
    sample_fraction: Option<f64>,
    /// Seed for the sample [default: the config's].
    #[arg(long)]
    seed: Option<u64>,
    /// Write the selection here (.parquet or .csv) instead of printing its head.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// Split methods of `mlops split`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum SplitKind {
    Random,
    Stratified,
    Time,
    Group,
}

#[derive(Args)]
struct SplitArgs {
    #[command(flatten)]
    data: DataArgs,
    /// How rows are assigned [default: the config's `split.method`].
    #[arg(long, value_enum)]
    method: Option<SplitKind>,
    /// The stratify, group or time column.
    #[arg(long)]
    by: Option<String>,
    /// Time split: rows at or after this date are the test part.
    #[arg(long)]
    test_from: Option<String>,
    /// Share of rows in the test part.
    #[arg(long)]
    test: Option<f64>,
    /// Share of rows in the validation part.
    #[arg(long)]
    validation: Option<f64>,
    /// Seed [default: the config's].
    #[arg(long)]
    seed: Option<u64>,
    /// Folder for train/validation/test.parquet and split.json [default: <interim>/<dataset>/<version>/split].
    #[arg(long, short)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct FeaturesArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Folder for the parts, pipeline.json, split.json and features.json [default: <interim>/<dataset>/<version>/features].
    #[arg(long, short)]
    out: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct FitArgs {
    /// A folder with `train.parquet` and `test.parquet` (as `mlops features` writes them).
    dir: PathBuf,
    /// The column to predict; every other numeric or boolean column is a feature.
    #[arg(long)]
    target: String,
    /// The model and its hyperparameters, as in a config's candidates:
    /// `gaussian_nb` or `{gradient_boosting_classifier: {max_iter: 200}}`.
    #[arg(long)]
    model: String,
    /// Classification or regression [default: decided from the target column].
    #[arg(long, value_enum, default_value = "auto")]
    task: TaskArg,
    /// Fits to time; the median is reported.
    #[arg(long, default_value_t = 1)]
    repeats: usize,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum TaskArg {
    Auto,
    Classification,
    Regression,
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Register the new version under this alias whatever it scores, leaving the champion's
    /// alias alone (`mlops lifecycle run` registers its challengers so; its gate decides).
    #[arg(long, value_name = "ALIAS")]
    register_as: Option<String>,
    /// Record the training run as a child of this run (the lifecycle run that started it).
    #[arg(long, value_name = "RUN_ID")]
    parent_run: Option<String>,
}

/// Where the data of `eda` and `plot` comes from.
#[derive(Args)]
struct DataArgs {
    /// A curated dataset: NAME (its newest version), NAME@VERSION or a version prefix.
    #[arg(long, conflicts_with = "file")]
    dataset: Option<String>,
    /// Any data file (.csv, .parquet, .xlsx, ...) instead of a curated dataset.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Training config: its data config, report folder, `eda` and `plots` sections
    /// [default: configs/training.yaml when it exists].
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Catalog folder for --dataset [default: the data config's curate.dir].
    #[arg(long)]
    catalog: Option<PathBuf>,
}

#[derive(Args)]
struct EdaArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Folder for eda.html, eda.json and plots/ [default: <reports>/<dataset>/<version>].
    #[arg(long, short)]
    out: Option<PathBuf>,
}

/// Chart kinds of `mlops plot`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum PlotKind {
    Line,
    Bar,
    Histogram,
    Scatter,
    Box,
    Violin,
    Heatmap,
    Qq,
    Pairs,
    Compare,
}

#[derive(Args)]
struct PlotArgs {
    /// What to draw.
    kind: PlotKind,
    #[command(flatten)]
    data: DataArgs,
    /// The column (bar, histogram, box, violin, qq, compare).
    #[arg(long)]
    column: Option<String>,
    /// X column (line, scatter).
    #[arg(long)]
    x: Option<String>,
    /// Y column(s) (line: several, comma-separated; scatter: one).
    #[arg(long, value_delimiter = ',')]
    y: Vec<String>,
    /// Colour by this column (scatter, pairs).
    #[arg(long)]
    hue: Option<String>,
    /// Group by this column (box, violin).
    #[arg(long)]
    by: Option<String>,
    /// Columns, comma-separated (heatmap: default all numeric; pairs: 2 to 6).
    #[arg(long, value_delimiter = ',')]
    columns: Vec<String>,
    /// Bins (histogram).
    #[arg(long, default_value_t = 30)]
    bins: usize,
    /// Bars at most (bar).
    #[arg(long, default_value_t = 30)]
    top: usize,
    /// Correlation method (heatmap).
    #[arg(long, value_enum, default_value = "pearson")]
    method: MethodArg,
    /// Transform compared with the original (compare).
    #[arg(long, value_enum, default_value = "log")]
    transform: TransformArg,
    /// Title [default: generated from the kind and columns].
    #[arg(long)]
    title: Option<String>,
    /// Output file; .svg or .png [default: <reports>/plots/<kind>-<columns>.svg].
    #[arg(long, short)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MethodArg {
    Pearson,
    Spearman,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum TransformArg {
    Log,
    Log1p,
    Sqrt,
}

#[derive(Args)]
struct ConfigArg {
    /// Data config file.
    #[arg(long, short, default_value = "configs/data.yaml")]
    config: PathBuf,
}

#[derive(Args)]
struct IngestArgs {
    /// A data file (.csv, .tsv, .xlsx, .xls, .ods, .parquet, .json, .ndjson, .html: its first table); or use --config.
    file: Option<PathBuf>,
    /// Read the sources of this data config instead of a file.
    #[arg(long, short, conflicts_with = "file")]
    config: Option<PathBuf>,
    /// With --config: only this source.
    #[arg(long, requires = "config")]
    source: Option<String>,
    /// Write the frame here (.parquet or .csv).
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(Args)]
struct ValidateArgs {
    /// The data file.
    file: PathBuf,
    /// Schema file (YAML).
    #[arg(long, short, required_unless_present = "infer")]
    schema: Option<PathBuf>,
    /// Another source foreign keys refer to, as NAME=FILE.
    #[arg(long = "ref", value_name = "NAME=FILE")]
    refs: Vec<String>,
    /// Write a schema inferred from the data instead of checking it.
    #[arg(long, conflicts_with = "schema")]
    infer: bool,
    /// With --infer: write the schema here instead of stdout.
    #[arg(long, short, requires = "infer")]
    output: Option<PathBuf>,
}

#[derive(Args)]
struct StepArgs {
    /// The data file.
    file: PathBuf,
    /// Data config whose section to use.
    #[arg(long, short, default_value = "configs/data.yaml")]
    config: PathBuf,
    /// Write the result here (.parquet or .csv).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Write the fitted operations (a FeaturePipeline) here as JSON.
    #[arg(long)]
    pipeline: Option<PathBuf>,
}

#[derive(Args)]
struct TransformArgs {
    #[command(flatten)]
    step: StepArgs,
    /// A source that joins or concatenation name, as NAME=FILE.
    #[arg(long = "source", value_name = "NAME=FILE")]
    sources: Vec<String>,
}

#[derive(Args)]
struct CurateArgs {
    /// The data file.
    file: PathBuf,
    /// Data config whose `curate` section to use.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Dataset name (overrides the config).
    #[arg(long)]
    name: Option<String>,
    /// Catalog folder (overrides the config).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Partition column (overrides the config).
    #[arg(long)]
    partition_by: Option<String>,
}

#[derive(Subcommand)]
enum DataCommand {
    /// List dataset versions.
    List {
        /// Catalog folder.
        #[arg(long, default_value = "data/processed")]
        dir: PathBuf,
    },
    /// Show one version's metadata (a version prefix, or NAME@VERSION).
    Show {
        /// The version.
        version: String,
        /// Catalog folder.
        #[arg(long, default_value = "data/processed")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    quiet_broken_pipe();
    let cli = Cli::parse();
    let log = output::init_logging(&cli);
    let result = run(&cli);
    match result {
        Ok(code) => code,
        Err(err) => {
            output::print_error(&err, cli.json);
            if let Some(log) = log {
                eprintln!("log: {}", log.display());
            }
            ExitCode::FAILURE
        }
    }
}

/// `mlops ... | head` closes the pipe early: stop quietly, as command-line tools do, instead of
/// reporting a panic (Rust ignores SIGPIPE, so the write fails and `println!` panics).
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// Runs the chosen subcommand; `Ok` carries the exit code.
fn run(cli: &Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Prepare(args) => prepare::prepare_cmd(cli, &args.config),
        Command::Ingest(args) => ingest::ingest_cmd(cli, args),
        Command::Validate(args) => validate::validate_cmd(cli, args),
        Command::Clean(args) => clean::step_cmd(cli, args, "clean"),
        Command::Standardize(args) => clean::step_cmd(cli, args, "standardize"),
        Command::Transform(args) => transform::transform_cmd(cli, args),
        Command::Curate(args) => curate::curate_cmd(cli, args),
        Command::Data(DataCommand::List { dir }) => data::data_list(cli, dir),
        Command::Data(DataCommand::Show { version, dir }) => data::data_show(cli, version, dir),
        Command::Eda(args) => eda::eda_cmd(cli, args),
        Command::Plot(args) => plot::plot_cmd(cli, args),
        Command::Select(args) => select::select_cmd(cli, args),
        Command::Split(args) => split::split_cmd(cli, args),
        Command::Features(args) => features::features_cmd(cli, args),
        Command::Train(args) => train::train_cmd(cli, args),
        Command::Fit(args) => fit::fit_cmd(cli, args),
        Command::Registry(args) => registry::registry_cmd(cli, args),
        Command::Package(PackageCommand::Inspect { dir }) => package::package_inspect(cli, dir),
        Command::Runs(cmd) => runs::runs_cmd(cli, cmd),
        Command::Serve(args) => serve::serve_cmd(cli, args),
        Command::Containerize(args) => containerize::containerize_cmd(cli, args),
        Command::Deploy(command) => deploy::deploy_cmd(cli, command),
        Command::Healthcheck { url, timeout } => healthcheck::healthcheck_cmd(url, *timeout),
        Command::Predict(args) => predict::predict_cmd(cli, args),
        Command::Monitor(args) => monitor::monitor_cmd(cli, args),
        Command::Lifecycle(args) => lifecycle::lifecycle_cmd(cli, args),
    }
}
