//! `mlops split`: step 8's train / validation / test parts, and the table of parts `mlops features`
//! shows too.

use anyhow::{Context, Result};
use mlops_core::table::Table;
use std::process::ExitCode;

use crate::Cli;
use crate::dataset::{load_data, training_config};
use crate::output::print_json;

pub(crate) fn parts_table(rows: &[(String, usize, usize)], split: &step08_select::SplitReport) -> Table {
    let mut t = Table::new(["part", "rows", "columns", "class balance"]);
    for (part, n, cols) in rows {
        let balance = split
            .class_balance
            .as_ref()
            .and_then(|b| b.parts.get(part))
            .map(|counts| counts.iter().map(|(c, k)| format!("{c}: {k}")).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        t.row([part.clone(), n.to_string(), cols.to_string(), balance]);
    }
    t
}

pub(crate) fn split_cmd(cli: &Cli, args: &crate::SplitArgs) -> Result<ExitCode> {
    let mut config = training_config(&args.data)?;
    if let Some(seed) = args.seed {
        config.seed = mlops_core::Seed(seed);
    }
    if let Some(method) = args.method {
        let need = |flag: &Option<String>, name: &str| {
            flag.clone().with_context(|| format!("split --method {name}: --by is required"))
        };
        config.split.method = match method {
            crate::SplitKind::Random => step08_select::SplitMethod::Random,
            crate::SplitKind::Stratified => {
                step08_select::SplitMethod::Stratified { by: need(&args.by, "stratified")? }
            }
            crate::SplitKind::Group => step08_select::SplitMethod::Group { by: need(&args.by, "group")? },
            crate::SplitKind::Time => step08_select::SplitMethod::Time {
                column: args.by.clone().context("split --method time: --by names the time column")?,
                test_from: args.test_from.clone(),
                validation_from: None,
            },
        };
    }
    if let Some(t) = args.test {
        config.split.test = t;
    }
    if let Some(v) = args.validation {
        config.split.validation = v;
    }
    let Some(data) = load_data(cli, &args.data, &config)? else { return Ok(ExitCode::FAILURE) };
    let selected =
        config.select.apply(&data.frame, config.seed).map_err(|e| pipelines::PipelineError::step("select", e))?;
    let split = config.split.split(&selected, config.seed).map_err(|e| pipelines::PipelineError::step("split", e))?;
    let (train, validation, test) = split.frames(&selected).map_err(|e| pipelines::PipelineError::step("split", e))?;
    let dir = args.out.clone().unwrap_or_else(|| config.interim.join(&data.rel).join("split"));
    let mut rows = Vec::new();
    for (name, df) in [("train", &train), ("validation", &validation), ("test", &test)] {
        pipelines::write_frame(df, &dir.join(format!("{name}.parquet")))?;
        rows.push((name.to_string(), df.height(), df.width()));
    }
    mlops_core::io::atomic_write_json(&dir.join("split.json"), &split.report)?;
    if cli.json {
        print_json(&serde_json::json!({"dir": dir, "report": split.report}))?;
    } else {
        print!("{}", parts_table(&rows, &split.report));
        println!(
            "
{} split of {} (seed {}) written to {}",
            split.report.method,
            data.title,
            config.seed.0,
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
