//! `mlops ingest`: step 1 on one file or on a config's sources.

use anyhow::{Result, bail};
use mlops_core::table::Table;
use pipelines::PipelineError;
use std::process::ExitCode;
use step01_ingest::{Ingested, Reader};

use crate::Cli;
use crate::files::{load_config, read_file, show_frame};
use crate::output::print_json;

pub(crate) fn ingest_cmd(cli: &Cli, args: &crate::IngestArgs) -> Result<ExitCode> {
    let ingested: Vec<(String, Ingested)> = match (&args.file, &args.config) {
        (Some(file), None) => {
            let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "data".into());
            let got = read_file(file, &name)?;
            vec![(name, got)]
        }
        (None, Some(config_path)) => {
            let config = load_config(config_path)?;
            let mut out = Vec::new();
            if let Some(name) = &args.source
                && !config.sources.contains_key(name)
            {
                bail!(
                    "{}: no source named `{name}` (sources: {})",
                    config_path.display(),
                    config.sources.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            for (name, source) in &config.sources {
                if args.source.as_ref().is_some_and(|s| s != name) {
                    continue;
                }
                let got = source
                    .read(name)
                    .map_err(|error| PipelineError::Ingest { source_name: name.clone(), error: Box::new(error) })?;
                out.push((name.clone(), got));
            }
            out
        }
        _ => bail!("give a data file or --config"),
    };
    if args.output.is_some() && ingested.len() != 1 {
        bail!("--output needs exactly one source; pick one with --source");
    }
    if cli.json {
        let lineage: Vec<_> = ingested.iter().map(|(_, i)| &i.lineage).collect();
        print_json(&lineage)?;
    } else {
        let mut table = Table::new(["source", "format", "rows", "cols", "bytes", "sha256", "uri"])
            .align_right(2)
            .align_right(3)
            .align_right(4);
        for (name, i) in &ingested {
            let l = &i.lineage;
            table.row([
                name.clone(),
                l.format.clone(),
                l.rows.to_string(),
                l.columns.to_string(),
                l.size_bytes.to_string(),
                l.sha256[..12].to_string(),
                l.uri.clone(),
            ]);
        }
        print!("{table}");
    }
    if let Some((_, one)) = ingested.first()
        && (args.output.is_some() || (!cli.json && ingested.len() == 1))
    {
        show_frame(cli, &one.frame, args.output.as_ref())?;
    }
    Ok(ExitCode::SUCCESS)
}
