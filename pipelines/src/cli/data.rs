//! `mlops data list` and `mlops data show`: the catalog of dataset versions.

use anyhow::Result;
use mlops_core::table::Table;
use std::path::Path;
use std::process::ExitCode;

use crate::Cli;
use crate::output::print_json;

pub(crate) fn data_list(cli: &Cli, dir: &Path) -> Result<ExitCode> {
    let entries = step06_curate::Catalog::open(dir).list()?;
    if cli.json {
        print_json(&entries)?;
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        println!("no dataset versions in {} (run `mlops prepare`)", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(["name", "version", "rows", "cols", "created", "path"]).align_right(2).align_right(3);
    for e in entries {
        table.row([
            e.name,
            e.version,
            e.rows.to_string(),
            e.columns.to_string(),
            e.created_at,
            e.path.display().to_string(),
        ]);
    }
    print!("{table}");
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn data_show(cli: &Cli, version: &str, dir: &Path) -> Result<ExitCode> {
    let m = step06_curate::Catalog::open(dir).show(version)?;
    if cli.json {
        print_json(&m)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}@{}  {} rows x {} columns  created {}", m.name, m.version, m.rows, m.columns, m.created_at);
    println!("sha256 {}\nconfig {}\npipeline ops {}", m.sha256, m.config_sha256, m.pipeline_ops);
    let mut table = Table::new(["column", "type", "storage", "nulls", "unique"]).align_right(3).align_right(4);
    for c in &m.schema {
        table.row([
            c.name.clone(),
            c.dtype.map_or_else(|| "-".into(), |t| t.to_string()),
            c.storage.clone(),
            c.nulls.to_string(),
            c.unique.to_string(),
        ]);
    }
    print!("\n{table}");
    let mut sources = Table::new(["source", "format", "rows", "sha256", "uri"]).align_right(2);
    for s in &m.sources {
        sources.row([
            s.source.clone(),
            s.format.clone(),
            s.rows.to_string(),
            s.sha256[..12].to_string(),
            s.uri.clone(),
        ]);
    }
    print!("\n{sources}");
    Ok(ExitCode::SUCCESS)
}
