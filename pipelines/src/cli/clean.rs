//! `mlops clean` and `mlops standardize`: steps 3 and 4 on one file, through one handler (the
//! step's `fit_transform`), and the summary both share with `mlops transform`.

use anyhow::Result;
use mlops_core::FeaturePipeline;
use pipelines::PipelineError;
use polars::prelude::DataFrame;
use std::process::ExitCode;

use crate::Cli;
use crate::files::{load_config, read_file, show_frame, write_frame};
use crate::output::print_json;

pub(crate) fn finish_step(
    cli: &Cli,
    args: &crate::StepArgs,
    frame: &DataFrame,
    ops: Vec<mlops_core::Op>,
    report: serde_json::Value,
) -> Result<ExitCode> {
    if let Some(path) = &args.pipeline {
        let mut pipeline = FeaturePipeline::new();
        pipeline.extend(ops);
        pipeline.save(path)?;
    }
    if cli.json {
        print_json(&serde_json::json!({"rows": frame.height(), "columns": frame.width(), "report": report}))?;
        if let Some(path) = &args.output {
            write_frame(frame, path)?;
        }
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
        show_frame(cli, frame, args.output.as_ref())?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn step_cmd(cli: &Cli, args: &crate::StepArgs, step: &'static str) -> Result<ExitCode> {
    let config = load_config(&args.config)?;
    let data = read_file(&args.file, "data")?.frame;
    match step {
        "clean" => {
            let out = config.clean.fit_transform(data).map_err(|e| PipelineError::step("clean", e))?;
            finish_step(cli, args, &out.frame, out.ops, serde_json::to_value(&out.report)?)
        }
        _ => {
            let out = config.standardize.fit_transform(data).map_err(|e| PipelineError::step("standardize", e))?;
            finish_step(cli, args, &out.frame, out.ops, serde_json::to_value(&out.report)?)
        }
    }
}
