//! `mlops prepare`: steps 1-6 from a data config.

use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;

use crate::Cli;
use crate::dataset::run_prepare;
use crate::output::{print_json, steps_table};

pub(crate) fn prepare_cmd(cli: &Cli, config_path: &Path) -> Result<ExitCode> {
    let Some(prepared) = run_prepare(cli, config_path)? else { return Ok(ExitCode::FAILURE) };
    if cli.json {
        print_json(&prepared)?;
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", steps_table(&prepared.steps));
    for w in &prepared.warnings {
        println!("warning: {w}");
    }
    let reused = match prepared.reused {
        Some("cached") => " (unchanged config and sources: reused)",
        Some(_) => " (same data as an earlier run)",
        None => "",
    };
    println!(
        "\ndataset {}@{}: {} rows x {} columns{reused}\n  {}",
        prepared.dataset,
        prepared.version,
        prepared.rows,
        prepared.columns,
        prepared.path.display()
    );
    Ok(ExitCode::SUCCESS)
}
