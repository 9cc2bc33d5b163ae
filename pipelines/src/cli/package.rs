//! `mlops package inspect`: a package's checksums verified and its contents shown.

use anyhow::Result;
use mlops_core::table::Table;
use std::path::Path;
use std::process::ExitCode;

use crate::Cli;
use crate::output::{bytes, print_json};

/// `mlops package inspect DIR`: loads (verifying every checksum, and the manifest against its
/// content address in the registry's store) and shows a package.
pub(crate) fn package_inspect(cli: &Cli, dir: &Path) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    // A folder of the registry's content-addressed store is named by its manifest's SHA-256.
    if let Some(sha) = step17_registry::content_address(dir) {
        step17_registry::verify_manifest(dir, sha)?;
    }
    let package = step16_package::load(dir)?;
    let load_ms = started.elapsed().as_secs_f64() * 1000.0;
    let c = &package.contents;
    if cli.json {
        print_json(&serde_json::json!({
            "dir": package.dir,
            "manifest": package.manifest,
            "model": c.info,
            "signature": c.signature,
            "metrics": c.metrics,
            "lineage": c.lineage,
            "importances": c.importances,
            "profile_rows": c.profile.rows,
            "pipeline_ops": c.pipeline.len(),
            "load_ms": load_ms,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "package {} (format {}, written {}), verified and loaded in {load_ms:.1} ms",
        package.dir.display(),
        package.manifest.format_version,
        package.manifest.created_at
    );
    let mut t = Table::new(["", ""]);
    t.row([String::from("model"), c.info.family.clone()]);
    let params: Vec<String> = c.info.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    t.row([String::from("params"), params.join(" ")]);
    t.row([String::from("task"), pipelines::task_name(c.info.task).to_string()]);
    t.row([String::from("target"), c.info.target.clone()]);
    if !c.info.classes.is_empty() {
        t.row([String::from("classes"), c.info.classes.join(", ")]);
    }
    t.row([String::from("features"), format!("{} after {} pipeline op(s)", c.info.features.len(), c.pipeline.len())]);
    t.row([String::from("run"), c.lineage.run_id.clone()]);
    t.row([String::from("dataset"), c.lineage.dataset_version.clone().unwrap_or_default()]);
    t.row([String::from("config sha256"), c.lineage.config_sha256.clone().unwrap_or_default()]);
    t.row([String::from("source commit"), c.lineage.source_commit.clone().unwrap_or_default()]);
    t.row([String::from("toolkit"), c.lineage.toolkit_version.clone()]);
    t.row([String::from("reference rows"), c.profile.rows.to_string()]);
    print!("{t}");
    println!("\ninputs:");
    let mut inputs = Table::new(["column", "type", "nullable", "seen"]);
    for col in &c.signature.inputs {
        let seen = match (&col.categories, col.range) {
            (Some(cats), _) => cats.join(", "),
            (None, Some((lo, hi))) => format!("{lo} .. {hi}"),
            _ => String::new(),
        };
        inputs.row([col.name.clone(), col.dtype.to_string(), col.nullable.to_string(), seen]);
    }
    print!("{inputs}");
    let outputs: Vec<&str> = c.signature.outputs.iter().map(|o| o.name.as_str()).collect();
    println!("outputs: {}", outputs.join(", "));
    println!("\nmetrics:");
    for (k, v) in &c.metrics {
        println!("  {k:28} {v:.4}");
    }
    println!("\nfiles:");
    for f in &package.manifest.files {
        println!("  {:24} {:>9}  sha256 {}", f.path, bytes(f.bytes as usize), &f.sha256[..16]);
    }
    Ok(ExitCode::SUCCESS)
}
