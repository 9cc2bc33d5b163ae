//! `mlops plot`: one chart of step 9 from the command line.

use anyhow::{Context, Result, bail};
use std::process::ExitCode;
use step09_visualize::{Format, Method, PlotSpec, ValueTransform};

use crate::dataset::{load_data, training_config};
use crate::output::print_json;
use crate::{Cli, MethodArg, PlotArgs, PlotKind, TransformArg};

pub(crate) fn need<'a>(value: &'a Option<String>, kind: &str, flag: &str) -> Result<&'a String> {
    value.as_ref().with_context(|| format!("plot {kind}: --{flag} is required"))
}

pub(crate) fn spec(args: &PlotArgs) -> Result<PlotSpec> {
    let title = args.title.clone();
    let column = |kind| need(&args.column, kind, "column").cloned();
    Ok(match args.kind {
        PlotKind::Line => {
            if args.y.is_empty() {
                bail!("plot line: --y is required");
            }
            PlotSpec::Line { x: need(&args.x, "line", "x")?.clone(), y: args.y.clone(), title }
        }
        PlotKind::Bar => PlotSpec::Bar { column: column("bar")?, top: args.top, title },
        PlotKind::Histogram => PlotSpec::Histogram { column: column("histogram")?, bins: args.bins, title },
        PlotKind::Scatter => {
            let [y] = args.y.as_slice() else { bail!("plot scatter: --y takes exactly one column") };
            PlotSpec::Scatter { x: need(&args.x, "scatter", "x")?.clone(), y: y.clone(), hue: args.hue.clone(), title }
        }
        PlotKind::Box => PlotSpec::Box { column: column("box")?, by: args.by.clone(), title },
        PlotKind::Violin => PlotSpec::Violin { column: column("violin")?, by: args.by.clone(), title },
        PlotKind::Heatmap => PlotSpec::Heatmap {
            columns: args.columns.clone(),
            method: match args.method {
                MethodArg::Pearson => Method::Pearson,
                MethodArg::Spearman => Method::Spearman,
            },
            annotate: true,
            title,
        },
        PlotKind::Qq => PlotSpec::Qq { column: column("qq")?, title },
        PlotKind::Pairs => PlotSpec::Pairs { columns: args.columns.clone(), hue: args.hue.clone(), title },
        PlotKind::Compare => PlotSpec::Compare {
            column: column("compare")?,
            transform: match args.transform {
                TransformArg::Log => ValueTransform::Log,
                TransformArg::Log1p => ValueTransform::Log1p,
                TransformArg::Sqrt => ValueTransform::Sqrt,
            },
            title,
        },
    })
}

pub(crate) fn plot_cmd(cli: &Cli, args: &PlotArgs) -> Result<ExitCode> {
    let spec = spec(args)?;
    let config = training_config(&args.data)?;
    let out =
        args.out.clone().unwrap_or_else(|| config.reports.join("plots").join(format!("{}.svg", spec.file_stem())));
    let format = match out.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).as_deref() {
        Some("svg") => Format::Svg,
        Some("png") => Format::Png,
        _ => bail!("{}: --out must end in .svg or .png", out.display()),
    };
    let Some(data) = load_data(cli, &args.data, &config)? else { return Ok(ExitCode::FAILURE) };
    let plot = step09_visualize::plot(&data.frame, &spec).map_err(|e| pipelines::PipelineError::step("plot", e))?;
    let bytes = step09_visualize::render(&plot, format).map_err(|e| pipelines::PipelineError::step("plot", e))?;
    mlops_core::io::atomic_write(&out, &bytes)?;
    if cli.json {
        print_json(
            &serde_json::json!({"path": out, "bytes": bytes.len(), "title": plot.title, "dataset": data.title}),
        )?;
    } else {
        println!("wrote {} ({} KiB): {}", out.display(), bytes.len().div_ceil(1024), plot.title);
    }
    Ok(ExitCode::SUCCESS)
}
