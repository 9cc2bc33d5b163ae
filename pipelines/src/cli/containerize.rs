//! `mlops containerize`: step 18, the Docker build context of a registered model.

use anyhow::{Context, Result};
use std::process::ExitCode;

use crate::deployment::deployment_with;
use crate::output::print_json;
use crate::{Cli, ContainerizeArgs};

pub(crate) fn containerize_cmd(cli: &Cli, args: &ContainerizeArgs) -> Result<ExitCode> {
    let config = deployment_with(&args.config, args.model.as_deref(), None, None)?;
    let root = std::env::current_dir().context("cannot read the current directory")?;
    let (facts, files) = pipelines::containerize(&config, &args.out, &root, args.force)?;
    if cli.json {
        print_json(&serde_json::json!({ "out": args.out, "image": facts, "files": files }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "build context for {} (version {}) in {}: {}",
        facts.uri,
        facts.version,
        args.out.display(),
        files.join(" ")
    );
    println!("  docker build -t {}:{} {}", facts.model, facts.version, args.out.display());
    Ok(ExitCode::SUCCESS)
}
