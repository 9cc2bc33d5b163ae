//! `mlops curate`: step 6, a versioned dataset from one file.

use anyhow::{Result, bail};
use mlops_core::FeaturePipeline;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::Cli;
use crate::files::{load_config, read_file};
use crate::output::print_json;

pub(crate) fn curate_cmd(cli: &Cli, args: &crate::CurateArgs) -> Result<ExitCode> {
    let from_config = match &args.config {
        Some(path) => load_config(path)?.curate,
        None => None,
    };
    let mut params = match (from_config, &args.name) {
        (Some(p), _) => p,
        (None, Some(name)) => step06_curate::CurateParams {
            name: name.clone(),
            dir: PathBuf::from("data/processed"),
            partition_by: None,
            compression: step06_curate::Compression::Zstd,
            row_group_size: None,
            postgres: None,
        },
        (None, None) => bail!("give --name, or --config with a `curate` section"),
    };
    if let Some(name) = &args.name {
        params.name.clone_from(name);
    }
    if let Some(dir) = &args.dir {
        params.dir.clone_from(dir);
    }
    if args.partition_by.is_some() {
        params.partition_by.clone_from(&args.partition_by);
    }
    let ingested = read_file(&args.file, "data")?;
    let config_sha256 = mlops_core::hash::sha256_json(&params)?;
    let provenance = step06_curate::Provenance {
        parents: vec![format!("sha256:{}", ingested.lineage.sha256)],
        run_key: config_sha256.clone(),
        config_sha256,
        sources: vec![ingested.lineage],
        steps: serde_json::json!({}),
    };
    let curated = step06_curate::curate(&ingested.frame, &params, &provenance, &FeaturePipeline::new())?;
    if cli.json {
        print_json(
            &serde_json::json!({"version": curated.metadata.version, "path": curated.path, "reused": curated.reused, "rows": curated.metadata.rows}),
        )?;
    } else {
        println!(
            "dataset {}@{}: {} rows x {} columns{}\n  {}",
            curated.metadata.name,
            curated.metadata.version,
            curated.metadata.rows,
            curated.metadata.columns,
            if curated.reused { " (already curated)" } else { "" },
            curated.path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
