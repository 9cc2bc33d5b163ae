//! `mlops eda`: step 7's report with step 9's charts.

use anyhow::Result;
use mlops_core::table::Table;
use pipelines::explore;
use std::process::ExitCode;

use crate::dataset::{load_data, training_config};
use crate::output::print_json;
use crate::{Cli, EdaArgs};

pub(crate) fn eda_cmd(cli: &Cli, args: &EdaArgs) -> Result<ExitCode> {
    let config = training_config(&args.data)?;
    let Some(data) = load_data(cli, &args.data, &config)? else { return Ok(ExitCode::FAILURE) };
    let out = args.out.clone().unwrap_or_else(|| config.reports.join(&data.rel));
    let explored = explore(&data.frame, &data.title, &pipelines::Exploration::of(&config), &out)?;
    if cli.json {
        print_json(&explored)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(["", ""]);
    t.row([String::from("dataset"), explored.title.clone()]);
    t.row([String::from("shape"), format!("{} rows x {} columns", explored.rows, explored.columns)]);
    t.row([String::from("profiled in"), format!("{:.2}s", explored.profile_seconds)]);
    t.row([String::from("drawn in"), format!("{:.2}s", explored.draw_seconds)]);
    t.row([String::from("warnings"), explored.warnings.len().to_string()]);
    t.row([String::from("charts"), explored.plots.len().to_string()]);
    print!("{t}");
    for w in &explored.warnings {
        println!("warning: {w}");
    }
    println!(
        "\nreport: {} ({} KiB)\n  json: {}",
        explored.html.display(),
        explored.html_bytes / 1024,
        explored.json.display()
    );
    Ok(ExitCode::SUCCESS)
}
