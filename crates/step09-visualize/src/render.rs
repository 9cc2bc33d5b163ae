//! Rendering a plot to SVG (with hover tooltips) or PNG.

use std::fmt::Write as _;
use std::sync::OnceLock;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::chart::{FONT, Plot, Tip, draw};
use crate::{PlotError, Result};

/// DejaVu Sans, embedded so text renders the same on every machine with no font lookup.
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok());
    if ok {
        Ok(())
    } else {
        Err(PlotError::Draw { title: String::new(), message: "the embedded font did not load".into() })
    }
}

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Scalable vector graphics, with a `<title>` tooltip on every bar, cell and sampled point.
    Svg,
    /// A PNG bitmap.
    Png,
}

impl Format {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Png => "png",
        }
    }
}

fn failed(plot: &Plot) -> impl Fn(String) -> PlotError + '_ {
    move |message| PlotError::Draw { title: plot.title.clone(), message }
}

/// The plot as an SVG document whose shapes carry hover tooltips.
pub fn to_svg(plot: &Plot) -> Result<String> {
    register_font()?;
    let size = plot.size();
    let mut svg = String::new();
    let mut tips = Vec::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw(&root, plot, &mut tips).map_err(|e| failed(plot)(e.to_string()))?;
        root.present().map_err(|e| failed(plot)(e.to_string()))?;
    }
    Ok(with_tips(svg, &tips))
}

/// The plot as PNG bytes.
pub fn to_png(plot: &Plot) -> Result<Vec<u8>> {
    register_font()?;
    let (w, h) = plot.size();
    let mut pixels = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        draw(&root, plot, &mut Vec::new()).map_err(|e| failed(plot)(e.to_string()))?;
        root.present().map_err(|e| failed(plot)(e.to_string()))?;
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| failed(plot)(e.to_string()))?;
    writer.write_image_data(&pixels).map_err(|e| failed(plot)(e.to_string()))?;
    writer.finish().map_err(|e| failed(plot)(e.to_string()))?;
    Ok(out)
}

/// The plot in a format, as bytes.
pub fn render(plot: &Plot, format: Format) -> Result<Vec<u8>> {
    match format {
        Format::Svg => to_svg(plot).map(String::into_bytes),
        Format::Png => to_png(plot),
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Adds one transparent rectangle with a `<title>` per tip, above everything else, so hovering
/// shows the values in any browser without scripts.
fn with_tips(mut svg: String, tips: &[Tip]) -> String {
    let Some(end) = svg.rfind("</svg>") else { return svg };
    let mut layer = String::from("<g class=\"tips\" fill=\"#000\" fill-opacity=\"0\">");
    for t in tips {
        let (x0, y0, x1, y1) = t.rect;
        let _ = write!(
            layer,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{}</title></rect>",
            x0.min(x1),
            y0.min(y1),
            (x1 - x0).abs().max(1),
            (y1 - y0).abs().max(1),
            xml_escape(&t.text)
        );
    }
    layer.push_str("</g>\n");
    svg.insert_str(end, &layer);
    svg
}

#[cfg(test)]
pub(crate) fn escape_for_test(text: &str) -> String {
    xml_escape(text)
}
