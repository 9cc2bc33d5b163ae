//! `mlops healthcheck`: exit 0 when a URL answers 200 (the image's HEALTHCHECK).

use anyhow::Result;
use std::process::ExitCode;
use std::time::Duration;

/// GET `url`; success when it answers 200 (the container's HEALTHCHECK: the image has no curl).
pub(crate) fn healthcheck_cmd(url: &str, timeout: u64) -> Result<ExitCode> {
    let answer = step19_deploy::http_get(url, Duration::from_secs(timeout.max(1))).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(answer.status == 200, "{url}: answered {}", answer.status);
    Ok(ExitCode::SUCCESS)
}
