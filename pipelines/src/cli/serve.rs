//! `mlops serve`: step 20, the model server.

use anyhow::Result;
use std::process::ExitCode;
use step20_serve::Server;

use crate::deployment::{deployment_with, runtime, shutdown_signal};
use crate::output::print_json;
use crate::{Cli, ServeArgs};

/// Requests with at least this many rows are scored on the frame path (polars): its fixed cost
/// (about 2 ms) pays off from here (measured: even at 512 rows, 1.4x faster at 1000; below, the
/// row path wins, 2.8x at 64 rows).
pub(crate) const FRAME_PATH_ROWS: usize = 512;

pub(crate) fn serve_cmd(cli: &Cli, args: &ServeArgs) -> Result<ExitCode> {
    let mut config = deployment_with(&args.config, args.model.as_deref(), args.host.as_deref(), args.port)?;
    if let Some(s) = &args.store {
        config.store.clone_from(s);
    }
    if let Some(a) = &args.artifacts {
        config.artifacts.clone_from(a);
    }
    let source = config.source();
    runtime()?.block_on(async {
        let server = Server::bind(config.serve.clone(), source, Some(&config.store)).await?;
        // Large requests go through the feature pipeline's frame path (step 21).
        server.set_batch_scorer(FRAME_PATH_ROWS, std::sync::Arc::new(step21_inference::score_columns_frame));
        let origin = server.origin();
        let url = format!("http://{}", server.local_addr());
        if cli.json {
            print_json(&serde_json::json!({
                "url": url, "model": origin.name, "version": origin.version, "uri": origin.uri,
                "package": origin.path, "prediction_log": config.store,
            }))?;
        } else {
            let version = origin.version.map_or_else(String::new, |v| format!(" version {v}"));
            println!("serving {} ({}{version}) on {url}", origin.uri, origin.name);
            println!("  curl {url}/ping    ·    {url}/openapi.json    ·    Ctrl-C or SIGTERM stops");
        }
        let stopped = server.run(shutdown_signal()).await?;
        if cli.json {
            print_json(&serde_json::json!({ "stopped": stopped }))?;
        } else if !cli.quiet {
            eprintln!(
                "stopped; in-flight requests finished and the prediction log is flushed: {} row(s) predicted, {} logged, {} not logged",
                stopped.predicted, stopped.log_written, stopped.log_dropped
            );
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
