//! Tests of the visualize step: every kind renders in both formats with its text, tooltips and
//! determinism; bad specs are named.

use polars::prelude::*;
use proptest::prelude::*;

use crate::*;

/// A penguin-like frame: two correlated measurements, a species, dates and a skewed column.
fn penguins() -> DataFrame {
    let n = 300;
    let species: Vec<&str> = (0..n).map(|i| ["Adelie", "Gentoo", "Chinstrap"][i % 3]).collect();
    let bill: Vec<Option<f64>> =
        (0..n).map(|i| (i % 17 != 0).then_some(35.0 + (i % 3) as f64 * 6.0 + (i % 11) as f64 * 0.7)).collect();
    let depth: Vec<f64> = (0..n).map(|i| 14.0 + (i % 3) as f64 * 2.0 + (i % 7) as f64 * 0.4).collect();
    let mass: Vec<f64> = (0..n).map(|i| 3000.0 + ((i * 37) % 100) as f64 * 20.0).collect();
    let skewed: Vec<f64> = (0..n).map(|i| 1.0 + ((i * 13) % 50) as f64).collect();
    let days: Vec<i32> = (0..n).map(|i| 14_000 + (i % 40) as i32).collect();
    df!("species" => species, "bill_length_mm" => bill, "bill_depth_mm" => depth, "body_mass_g" => mass, "skewed" => skewed, "date" => days)
        .unwrap()
        .lazy()
        .with_column(col("date").cast(DataType::Date))
        .collect()
        .unwrap()
}

fn every_kind() -> Vec<PlotSpec> {
    let s = |v: &str| v.to_string();
    vec![
        PlotSpec::Line { x: s("date"), y: vec![s("body_mass_g")], title: None },
        PlotSpec::Bar { column: s("species"), top: 30, title: None },
        PlotSpec::Histogram { column: s("body_mass_g"), bins: 20, title: None },
        PlotSpec::Scatter { x: s("bill_length_mm"), y: s("bill_depth_mm"), hue: Some(s("species")), title: None },
        PlotSpec::Box { column: s("body_mass_g"), by: Some(s("species")), title: None },
        PlotSpec::Violin { column: s("body_mass_g"), by: Some(s("species")), title: None },
        PlotSpec::Heatmap { columns: vec![], method: Method::Spearman, annotate: true, title: None },
        PlotSpec::Qq { column: s("body_mass_g"), title: None },
        PlotSpec::Pairs {
            columns: vec![s("bill_length_mm"), s("bill_depth_mm"), s("body_mass_g")],
            hue: Some(s("species")),
            title: None,
        },
        PlotSpec::Compare { column: s("skewed"), transform: ValueTransform::Log, title: None },
    ]
}

#[test]
fn every_kind_renders_text_and_tooltips_in_svg() {
    let df = penguins();
    for spec in every_kind() {
        let p = plot(&df, &spec).unwrap();
        let svg = to_svg(&p).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{}", spec.kind());
        assert!(svg.contains(&crate::render::escape_for_test(&p.title)), "{}: title", spec.kind());
        assert!(svg.contains("<title>"), "{}: tooltips", spec.kind());
        let text_elements = svg.matches("<text").count();
        assert!(text_elements >= 5, "{}: only {text_elements} text elements", spec.kind());
    }
    let scatter = to_svg(&plot(&df, &every_kind()[3]).unwrap()).unwrap();
    for label in ["bill_length_mm", "bill_depth_mm", "Adelie", "Gentoo", "Chinstrap"] {
        assert!(scatter.contains(label), "scatter lacks {label}");
    }
    let hist = to_svg(&plot(&df, &every_kind()[2]).unwrap()).unwrap();
    let first_bar = hist.split("<title>").nth(1).unwrap_or_default();
    assert!(
        first_bar.starts_with("[3000, 3099): "),
        "a histogram bar's tooltip gives its range and count: {first_bar}"
    );
}

#[test]
fn every_kind_renders_png_with_ink_in_the_title_band() {
    let df = penguins();
    for spec in every_kind() {
        let p = plot(&df, &spec).unwrap();
        let bytes = to_png(&p).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), p.size(), "{}", spec.kind());
        // The title is drawn in the top 30 pixels: some of them must be dark.
        let row_bytes = info.line_size;
        let dark = buf[..30 * row_bytes].chunks(3).filter(|px| px.iter().all(|&c| c < 100)).count();
        assert!(dark > 50, "{}: title band has {dark} dark pixels", spec.kind());
    }
}

#[test]
fn the_same_input_gives_the_same_bytes() {
    let df = penguins();
    for spec in every_kind() {
        let (a, b) = (plot(&df, &spec).unwrap(), plot(&df, &spec).unwrap());
        assert_eq!(to_svg(&a).unwrap(), to_svg(&b).unwrap(), "{}", spec.kind());
        assert_eq!(to_png(&a).unwrap(), to_png(&b).unwrap(), "{}", spec.kind());
    }
}

#[test]
fn statistics_behind_the_charts() {
    let b = box_stats("x", &[1.0, 2.0, 3.0, 4.0, 5.0, 100.0]).unwrap();
    assert_eq!((b.q1, b.median, b.q3), (2.25, 3.5, 4.75));
    assert_eq!((b.low, b.high, b.outliers.clone()), (1.0, 5.0, vec![100.0]));
    // scipy.stats.probplot([1, 2, 3, 4, 5])[0][0]: [-1.12899754, -0.48565271, 0, 0.48565271, 1.12899754].
    let (points, (slope, intercept)) = qq_points(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
    for (got, want) in points.iter().zip([-1.12899754, -0.48565271, 0.0, 0.48565271, 1.12899754]) {
        assert!((got.0 - want).abs() < 1e-8, "{got:?} against {want}");
    }
    assert!(slope > 0.0 && (intercept - 3.0).abs() < 1e-9);
    let d = density(&[0.0, 0.0, 1.0, 2.0], 50);
    let area: f64 = d.windows(2).map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0).sum();
    assert!((area - 1.0).abs() < 0.02, "density integrates to {area}");
}

#[test]
fn bad_specs_are_named() {
    let df = penguins();
    let err = plot(&df, &PlotSpec::Histogram { column: "species".into(), bins: 10, title: None }).unwrap_err();
    assert!(matches!(&err, PlotError::WrongType { column, .. } if column == "species"), "{err}");
    assert!(err.to_string().contains("plot histogram: column: column `species` is str"), "{err}");
    let err = plot(&df, &PlotSpec::Scatter { x: "nope".into(), y: "bill_depth_mm".into(), hue: None, title: None })
        .unwrap_err();
    assert!(matches!(&err, PlotError::MissingColumn { column, .. } if column == "nope"), "{err}");
    let err = plot(&df.head(Some(0)), &every_kind()[2]).unwrap_err();
    assert!(matches!(err, PlotError::NoData { .. }));
    let err = plot(&df, &PlotSpec::Pairs { columns: vec!["body_mass_g".into()], hue: None, title: None }).unwrap_err();
    assert!(matches!(err, PlotError::Invalid { .. }));
    let err =
        plot(&df, &PlotSpec::Line { x: "species".into(), y: vec!["body_mass_g".into()], title: None }).unwrap_err();
    assert!(matches!(&err, PlotError::WrongType { column, .. } if column == "species"), "{err}");
    let yaml = "kind: histogram\ncolumn: body_mass_g\nbinz: 3\n";
    let err = mlops_core::config::parse_yaml::<PlotSpec>(yaml, std::path::Path::new("plots.yaml")).unwrap_err();
    assert!(err.to_string().contains("binz"), "{err}");
}

#[test]
fn report_figures_cover_every_column_and_both_heatmaps() {
    let profile = step07_eda::profile(&penguins(), &step07_eda::EdaParams::default()).unwrap();
    let figures = report_figures(&profile).unwrap();
    for v in &profile.variables {
        assert!(figures.iter().any(|f| f.slot == step07_eda::Slot::Variable(v.name.clone())), "{}", v.name);
    }
    for slot in
        [step07_eda::Slot::Pearson, step07_eda::Slot::Spearman, step07_eda::Slot::Missing, step07_eda::Slot::Outliers]
    {
        assert!(figures.iter().any(|f| f.slot == slot), "{slot:?}");
    }
}

proptest! {
    #[test]
    fn plots_of_arbitrary_numbers_never_panic(values in proptest::collection::vec(proptest::option::of(-1e9f64..1e9), 1..60)) {
        let df = df!("v" => values.clone(), "w" => values.iter().rev().copied().collect::<Vec<_>>()).unwrap();
        for spec in [
            PlotSpec::Histogram { column: "v".into(), bins: 7, title: None },
            PlotSpec::Box { column: "v".into(), by: None, title: None },
            PlotSpec::Violin { column: "v".into(), by: None, title: None },
            PlotSpec::Qq { column: "v".into(), title: None },
            PlotSpec::Scatter { x: "v".into(), y: "w".into(), hue: None, title: None },
        ] {
            if let Ok(p) = plot(&df, &spec) {
                prop_assert!(to_svg(&p).is_ok());
            }
        }
    }
}
