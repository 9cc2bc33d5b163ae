//! Terminal output: logging setup, progress bars, tables, errors.

use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use mlops_core::table::Table;
use pipelines::{PREPARE_STEPS, Progress, StepSummary};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Logs to a per-run file (everything from info up) and warnings to stderr. Returns the file.
/// The log file of this invocation, once logging is set up.
pub static LOG_FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

pub(crate) fn init_logging(cli: &Cli) -> Option<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
    let path = cli.log_dir.join(format!("mlops-{stamp}-{}.log", std::process::id()));
    let file = std::fs::create_dir_all(&cli.log_dir).ok().and_then(|()| std::fs::File::create(&path).ok());
    let stderr_level = if cli.quiet { "error" } else { "warn" };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_filter(EnvFilter::try_from_env("MLOPS_LOG").unwrap_or_else(|_| EnvFilter::new(stderr_level)));
    let registry = tracing_subscriber::registry().with(stderr);
    match file {
        Some(file) => {
            let _ = LOG_FILE.set(path.clone());
            let to_file = tracing_subscriber::fmt::layer()
                .with_writer(std::sync::Mutex::new(file))
                .with_ansi(false)
                .with_filter(EnvFilter::new("info"));
            registry.with(to_file).init();
            Some(path)
        }
        None => {
            registry.init();
            None
        }
    }
}

use crate::Cli;
use tracing_subscriber::Layer as _;

/// Prints an error and its causes, skipping causes the message already quotes.
pub(crate) fn print_error(err: &anyhow::Error, json: bool) {
    let top = err.to_string();
    let mut causes = Vec::new();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !top.contains(&text) && !causes.iter().any(|c: &String| c.contains(&text)) {
            causes.push(text);
        }
    }
    if json {
        let value = serde_json::json!({"error": top, "causes": causes});
        println!("{value}");
        return;
    }
    eprintln!("error: {top}");
    for cause in causes {
        eprintln!("  caused by: {cause}");
    }
}

/// A progress bar over the steps of a run.
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// A bar for the prepare run; hidden when output is for scripts.
    pub fn new(hidden: bool) -> Self {
        Bar::steps(hidden, PREPARE_STEPS.len())
    }

    /// A bar over `n` steps.
    pub fn steps(hidden: bool, n: usize) -> Self {
        let bar = if hidden { ProgressBar::hidden() } else { ProgressBar::new(n as u64) };
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Bar { bar }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn started(&mut self, step: &'static str) {
        self.bar.set_message(format!("{step}…"));
    }
    fn finished(&mut self, summary: &StepSummary) {
        self.bar.inc(1);
        self.bar.set_message(format!("{} done", summary.step));
    }
}

/// The summary table of a run.
pub(crate) fn steps_table(steps: &[StepSummary]) -> Table {
    let mut table =
        Table::new(["step", "rows", "cols", "time", "what happened"]).align_right(1).align_right(2).align_right(3);
    for s in steps {
        table.row([
            s.step.to_string(),
            s.rows.to_string(),
            s.columns.to_string(),
            format!("{:.2}s", s.seconds),
            s.note.clone(),
        ]);
    }
    table
}

pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Seconds for a table: milliseconds below one second.
pub(crate) fn seconds(s: f64) -> String {
    if s < 1.0 { format!("{:.1} ms", s * 1000.0) } else { format!("{s:.2} s") }
}

/// Bytes for a table.
pub(crate) fn bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}
