//! `--plot FILE.svg`: one panel per bench, a row per variant with every sample, the median and
//! its interval. `plotters` with only its SVG backend and error bars: four small crates, about
//! 8 s of a clean release build on the 2-core VM.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use super::report::{comparisons, estimate};
use super::{BenchResult, Variant, human, ratio};

const WIDTH: u32 = 900;
const PANEL: u32 = 150;

fn color(v: Variant) -> RGBColor {
    match v {
        Variant::Native => RGBColor(0x1f, 0x77, 0xb4),
        Variant::Fallback => RGBColor(0xff, 0x7f, 0x0e),
        Variant::Epoll => RGBColor(0x2c, 0xa0, 0x2c),
    }
}

/// Row of a variant, top to bottom.
fn row(v: Variant) -> u32 {
    match v {
        Variant::Native => 2,
        Variant::Fallback => 1,
        Variant::Epoll => 0,
    }
}

fn label(r: &SegmentValue<u32>) -> String {
    let i = match r {
        SegmentValue::Exact(i) | SegmentValue::CenterOf(i) => *i,
        SegmentValue::Last => return String::new(),
    };
    [Variant::Epoll, Variant::Fallback, Variant::Native]
        .get(i as usize)
        .map_or(String::new(), |v| v.name().to_string())
}

fn draw(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    r: &BenchResult,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<_>| format!("drawing the plot: {e}");
    let top = r
        .variants
        .iter()
        .flat_map(|v| v.rates())
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.08;
    let ratios: Vec<String> = comparisons(r)
        .iter()
        .map(|c| {
            format!(
                "{}/{} {}x [{}, {}]: {}",
                short(c.a),
                short(c.b),
                ratio(c.ratio.estimate),
                ratio(c.ratio.low),
                ratio(c.ratio.high),
                c.verdict_text()
            )
        })
        .collect();
    let mut caption = format!("{} ({}/s)", r.bench.name, r.bench.unit);
    for line in ratios {
        caption += "  |  ";
        caption += &line;
    }
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 14))
        .margin(6)
        .x_label_area_size(22)
        .y_label_area_size(150)
        .build_cartesian_2d(0f64..top, (0u32..2).into_segmented())
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(TRANSPARENT)
        .x_labels(8)
        .x_label_formatter(&|x| human(*x))
        .y_label_formatter(&label)
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(e)?;
    for v in &r.variants {
        let y = row(v.variant);
        let c = color(v.variant);
        // Every sample, faint, then the median with its interval.
        chart
            .draw_series(
                v.rates()
                    .into_iter()
                    .map(|x| Circle::new((x, SegmentValue::CenterOf(y)), 3, c.mix(0.35).filled())),
            )
            .map_err(e)?;
        if let Some(i) = estimate(v) {
            let at = SegmentValue::CenterOf(y);
            chart
                .draw_series([ErrorBar::new_horizontal(
                    at.clone(),
                    i.low,
                    i.estimate,
                    i.high,
                    c.stroke_width(2),
                    14,
                )])
                .map_err(e)?;
            chart
                .draw_series([Circle::new((i.estimate, at), 5, c.filled())])
                .map_err(e)?;
        } else if let Some(why) = v.unavailable {
            chart
                .draw_series([Text::new(
                    why.to_string(),
                    (0.0, SegmentValue::CenterOf(y)),
                    ("sans-serif", 12),
                )])
                .map_err(e)?;
        }
    }
    Ok(())
}

fn short(v: Variant) -> &'static str {
    match v {
        Variant::Native => "native",
        Variant::Fallback => "off",
        Variant::Epoll => "epoll",
    }
}

/// The SVG document for `results`.
pub fn svg(results: &[BenchResult]) -> Result<String, String> {
    let mut out = String::new();
    {
        let height = PANEL * results.len().max(1) as u32 + 30;
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        let e = |e: DrawingAreaErrorKind<_>| format!("drawing the plot: {e}");
        root.fill(&WHITE).map_err(e)?;
        let (head, body) = root.split_vertically(30);
        head.draw_text(
            "safer-ring bench: every sample (faint), median and its 95% interval; \
             ratios with bootstrap 95% intervals",
            &("sans-serif", 13).into_text_style(&head),
            (8, 8),
        )
        .map_err(e)?;
        let panels = body.split_evenly((results.len().max(1), 1));
        for (area, r) in panels.iter().zip(results) {
            draw(area, r)?;
        }
        root.present().map_err(e)?;
    }
    Ok(out)
}
