//! `mlops transform`: step 5 on one file, with the other sources it joins.

use anyhow::Result;
use pipelines::PipelineError;
use std::process::ExitCode;

use crate::Cli;
use crate::clean::finish_step;
use crate::files::{load_config, parse_pairs, read_file};

pub(crate) fn transform_cmd(cli: &Cli, args: &crate::TransformArgs) -> Result<ExitCode> {
    let config = load_config(&args.step.config)?;
    let data = read_file(&args.step.file, "data")?.frame;
    let sources = parse_pairs(&args.sources, "--source")?;
    let out = config.transform.fit_transform(data, &sources).map_err(|e| PipelineError::step("transform", e))?;
    for w in &out.report.warnings {
        eprintln!("warning: {w}");
    }
    finish_step(cli, &args.step, &out.frame, out.ops, serde_json::to_value(&out.report)?)
}
