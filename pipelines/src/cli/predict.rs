//! `mlops predict`: step 21, predictions for a file, locally or through a server.

use anyhow::Result;
use indicatif::ProgressBar;
use std::process::ExitCode;
use std::time::Duration;

use crate::deployment::{deployment, runtime};
use crate::output::print_json;
use crate::{Cli, OnErrorArg, PredictArgs};

pub(crate) fn predict_cmd(cli: &Cli, args: &PredictArgs) -> Result<ExitCode> {
    let config = deployment(&args.config)?;
    let options = step21_inference::BatchOptions {
        chunk_rows: args.chunk_rows,
        on_error: match args.on_error {
            OnErrorArg::Reject => step21_inference::OnBadRow::Reject,
            OnErrorArg::Skip => step21_inference::OnBadRow::Skip,
        },
        id_column: args.id.clone(),
        overwrite: args.force,
        ..step21_inference::BatchOptions::default()
    };
    let bar = if cli.json || cli.quiet { ProgressBar::hidden() } else { ProgressBar::new_spinner() };
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut progress = |rows: usize| bar.set_message(format!("{rows} rows predicted"));
    let (report, model) = match (&args.url, &args.model) {
        (Some(url), _) => {
            let rt = runtime()?;
            let client = step21_inference::Client::new(url, step21_inference::ClientConfig::default())?;
            bar.set_message(format!("asking {url}"));
            let report = step21_inference::predict_file_remote(
                &client,
                rt.handle(),
                &args.input,
                &args.output,
                &options,
                &mut progress,
            );
            (report, url.clone())
        }
        (None, Some(model)) => {
            let source = step20_serve::ModelSource::parse(model, &config.store, &config.artifacts);
            bar.set_message(format!("loading {model}"));
            let scorer = source.load(config.serve.unknown_categories)?;
            let report = step21_inference::predict_file(&scorer, &args.input, &args.output, &options, &mut progress);
            let version = scorer.origin.version.map_or_else(String::new, |v| format!(" (version {v})"));
            (report, format!("{model}{version}"))
        }
        (None, None) => anyhow::bail!("--model or --url is required"),
    };
    bar.finish_and_clear();
    let report = report?;
    if cli.json {
        print_json(&serde_json::json!({ "model": model, "report": report }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let rate = report.rows as f64 / report.seconds.max(1e-9);
    println!(
        "{} rows predicted with {model} in {:.2}s ({rate:.0} rows/s, {} chunk(s)): {}",
        report.predicted,
        report.seconds,
        report.chunks,
        report.output.display()
    );
    if report.skipped > 0 {
        println!("{} row(s) skipped (they do not fit the signature):", report.skipped);
        for b in report.bad_rows.iter().take(20) {
            let column = b.column.as_ref().map_or_else(String::new, |c| format!("column `{c}`: "));
            println!("  row {}: {column}{}", b.row, b.message);
        }
        if report.skipped > 20 {
            println!("  ... {} more in --json", report.skipped - 20);
        }
    }
    Ok(ExitCode::SUCCESS)
}
