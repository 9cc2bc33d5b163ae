//! `mlops validate`: step 2, every check of a schema, or a starting schema inferred from the data.

use anyhow::{Result, anyhow};
use std::process::ExitCode;

use crate::Cli;
use crate::files::{parse_pairs, read_file};
use crate::output::print_json;

pub(crate) fn validate_cmd(cli: &Cli, args: &crate::ValidateArgs) -> Result<ExitCode> {
    let data = read_file(&args.file, "data")?.frame;
    if args.infer {
        let schema = step02_validate::infer(&data)?;
        let yaml = step02_validate::schema_to_yaml(&schema)?;
        match &args.output {
            Some(path) => {
                mlops_core::io::atomic_write(path, yaml.as_bytes())?;
                if !cli.json {
                    println!("wrote a schema for {} columns to {}", schema.columns.len(), path.display());
                }
            }
            None if cli.json => print_json(&schema)?,
            None => print!("{yaml}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let schema_path = args.schema.as_ref().ok_or_else(|| anyhow!("--schema is required"))?;
    let schema = step02_validate::load_schema(schema_path)?;
    let refs = parse_pairs(&args.refs, "--ref")?;
    let report = step02_validate::validate(&data, &schema, &refs)?;
    if cli.json {
        print_json(&serde_json::json!({"passed": report.passed(), "report": report}))?;
    } else {
        print!("{report}");
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
