//! `mlops select`: step 8's column and row selection on a dataset.

use anyhow::{Context, Result};
use std::process::ExitCode;

use crate::Cli;
use crate::dataset::{load_data, training_config};
use crate::output::print_json;

pub(crate) fn type_set(text: &str) -> Result<step08_select::TypeSet> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .with_context(|| format!("--types {text:?}: use number, int, float, string, bool, date or datetime"))
}

pub(crate) fn select_cmd(cli: &Cli, args: &crate::SelectArgs) -> Result<ExitCode> {
    let mut config = training_config(&args.data)?;
    if let Some(seed) = args.seed {
        config.seed = mlops_core::Seed(seed);
    }
    let flags = !args.columns.is_empty()
        || args.pattern.is_some()
        || !args.types.is_empty()
        || !args.exclude.is_empty()
        || args.filter.is_some()
        || args.start.is_some()
        || args.stop.is_some()
        || args.sample_n.is_some()
        || args.sample_fraction.is_some();
    let selection = if flags {
        step08_select::Selection {
            columns: step08_select::Columns {
                names: args.columns.clone(),
                pattern: args.pattern.clone(),
                types: args.types.iter().map(|t| type_set(t)).collect::<Result<_>>()?,
                exclude: args.exclude.clone(),
            },
            rows: step08_select::Rows {
                filter: args.filter.clone(),
                positions: (args.start.is_some() || args.stop.is_some())
                    .then_some(step08_select::Positions { start: args.start, stop: args.stop }),
                labels: None,
            },
            sample: (args.sample_n.is_some() || args.sample_fraction.is_some())
                .then_some(step08_select::Sample::Random { n: args.sample_n, fraction: args.sample_fraction }),
        }
    } else {
        config.select.clone()
    };
    let Some(data) = load_data(cli, &args.data, &config)? else { return Ok(ExitCode::FAILURE) };
    let out = selection.apply(&data.frame, config.seed).map_err(|e| pipelines::PipelineError::step("select", e))?;
    if let Some(path) = &args.output {
        pipelines::write_frame(&out, path)?;
    }
    if cli.json {
        print_json(
            &serde_json::json!({"rows": out.height(), "columns": out.width(), "names": mlops_core::frame::column_names(&out), "output": args.output}),
        )?;
    } else {
        if args.output.is_none() {
            println!("{}", out.head(Some(10)));
        }
        println!("selected {} rows x {} columns from {}", out.height(), out.width(), data.title);
        if let Some(path) = &args.output {
            println!("  {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
