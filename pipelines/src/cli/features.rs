//! `mlops features`: steps 8 and 10, the split with features fitted on the training part.

use anyhow::Result;
use std::process::ExitCode;

use crate::Cli;
use crate::dataset::{load_data, training_config};
use crate::output::print_json;
use crate::split::parts_table;

pub(crate) fn features_cmd(cli: &Cli, args: &crate::FeaturesArgs) -> Result<ExitCode> {
    let config = training_config(&args.data)?;
    let Some(data) = load_data(cli, &args.data, &config)? else { return Ok(ExitCode::FAILURE) };
    let engineered = pipelines::engineer(&data.frame, &config, None)?;
    let dir = args.out.clone().unwrap_or_else(|| config.interim.join(&data.rel).join("features"));
    let summary = engineered.write(&dir)?;
    if cli.json {
        print_json(&serde_json::json!({"dir": dir, "summary": summary}))?;
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", parts_table(&summary.parts, &summary.split));
    println!(
        "
{} feature(s) created: {}",
        summary.features.created.len(),
        summary.features.created.join(", ")
    );
    if let Some(sel) = &summary.features.selection {
        println!("{} kept, {} dropped", sel.kept.len(), sel.dropped.len());
        for d in &sel.dropped {
            println!("  dropped {}: {}", d.column, d.reason);
        }
    }
    println!("{} fitted op(s) in {}", engineered.pipeline.len(), dir.join("pipeline.json").display());
    Ok(ExitCode::SUCCESS)
}
