//! Drawing pieces common to the report's figures, so that they keep one look: text style and
//! sizes, tick labels, the pale grid, an axis ticked exactly where asked, legend entries, lines
//! with markers, bands, axis titles for a grid of panels and the "no data" note. It must never
//! hold a figure's layout (sizes, margins, where a legend goes): only the figure knows what its
//! legend must not cover.

use super::FAMILY;
use plotters::chart::MeshStyle;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, ValueFormatter};
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

// Text sizes are plotters sizes; the SVG font size is size / 1.24, so 18 gives 14.5 px.
/// Tick labels and legend entries.
pub(super) const TICK: f64 = 18.0;
/// Axis titles and "no data".
pub(super) const LABEL: f64 = 20.0;
/// Grid lines, pale so that the data stays the first thing seen.
const GRID: RGBColor = RGBColor(225, 225, 225);
/// Length of a legend entry's line sample, in pixels.
pub(super) const SAMPLE_W: u32 = 36;
/// Gap between a legend entry's sample and its label, in pixels.
pub(super) const SAMPLE_GAP: u32 = 8;
/// Opacity of a band's fill; a one-point band, drawn as a thin stroke, gets twice as much.
const BAND_ALPHA: f64 = 0.2;

/// Black text at `size` in the figures' one font family.
pub(super) fn style(size: f64) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size).into_font()).color(&BLACK)
}

/// Text centred on its anchor both ways: titles, notes, axis titles.
pub(super) fn centred(size: f64) -> TextStyle<'static> {
    style(size).pos(Pos::new(HPos::Center, VPos::Center))
}

/// Text that starts at its anchor, centred vertically: legend labels, row titles.
pub(super) fn left_aligned(size: f64) -> TextStyle<'static> {
    style(size).pos(Pos::new(HPos::Left, VPos::Center))
}

/// A generous width for `text` at `size`, from the character count alone, so a figure's layout
/// is known before any font is loaded and does not depend on which backend measures it
/// (Liberation Sans averages about 0.55 em a character).
pub(super) fn text_width(text: &str, size: f64) -> u32 {
    (text.chars().count() as f64 * size * 0.55).ceil() as u32
}

/// A tick value with as few decimals as it needs: ticks sit on round steps, so trimming the
/// zeros of a fixed six-decimal form gives "2", "2.5" and "0.05", never "2.0" or an exponent.
pub(super) fn fmt_tick(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// A linear axis with exactly the given ticks: plotters' own f64 axis cannot take both custom
/// ticks and a label formatter.
pub(super) struct FixedTicks {
    pub range: Range<f64>,
    pub ticks: Vec<f64>,
}

impl Ranged for FixedTicks {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let t = (v - self.range.start) / (self.range.end - self.range.start);
        limit.0 + (t * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// `chart`'s mesh in the figures' look: pale grid lines at the ticks, none between them, tick
/// labels at `TICK` and axis titles at `LABEL`. The caller adds its ticks, formatters and titles.
pub(super) fn styled_mesh<'a, 'b, DB, X, Y, XT, YT>(
    chart: &'b mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> MeshStyle<'a, 'b, X, Y, DB>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = XT> + ValueFormatter<XT>,
    Y: Ranged<ValueType = YT> + ValueFormatter<YT>,
{
    let mut mesh = chart.configure_mesh();
    mesh.bold_line_style(GRID)
        .light_line_style(WHITE)
        .label_style(style(TICK))
        .axis_desc_style(style(LABEL));
    mesh
}

/// A line through `xy` in `c` with a filled marker of radius `marker` on every point.
pub(super) fn draw_marked_line<DB, CT>(
    chart: &mut ChartContext<'_, DB, CT>,
    xy: &[(f64, f64)],
    c: RGBColor,
    marker: i32,
) -> Result<(), String>
where
    DB: DrawingBackend,
    CT: CoordTranslate<From = (f64, f64)>,
{
    chart
        .draw_series(LineSeries::new(xy.iter().copied(), c.stroke_width(2)))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(xy.iter().map(|&p| Circle::new(p, marker, c.filled())))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The band `(x, low, high)` in a tint of `c`: the area between its edges, or a short vertical
/// stroke where it has a single point, so a lone band still shows.
pub(super) fn draw_band<DB, CT>(
    chart: &mut ChartContext<'_, DB, CT>,
    band: &[(f64, f64, f64)],
    c: RGBColor,
) -> Result<(), String>
where
    DB: DrawingBackend,
    CT: CoordTranslate<From = (f64, f64)>,
{
    match band {
        [] => {}
        &[(x, lo, hi)] => {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, lo), (x, hi)],
                    c.mix(BAND_ALPHA * 2.0).stroke_width(3),
                )))
                .map_err(|e| e.to_string())?;
        }
        _ => {
            let outline: Vec<(f64, f64)> = band
                .iter()
                .map(|&(x, lo, _)| (x, lo))
                .chain(band.iter().rev().map(|&(x, _, hi)| (x, hi)))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(
                    outline,
                    c.mix(BAND_ALPHA).filled(),
                )))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// A legend entry whose sample starts at `(x, y)`: a line in `c`, with a marker of radius
/// `marker` in its middle when the series it names has markers, then `label`.
pub(super) fn legend_entry<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    c: RGBColor,
    marker: Option<i32>,
    label: &str,
) -> Result<(), String> {
    area.draw(&PathElement::new(
        vec![(x, y), (x + SAMPLE_W as i32, y)],
        c.stroke_width(2),
    ))
    .map_err(|e| e.to_string())?;
    if let Some(r) = marker {
        area.draw(&Circle::new((x + SAMPLE_W as i32 / 2, y), r, c.filled()))
            .map_err(|e| e.to_string())?;
    }
    legend_label(area, (x, y), label)
}

/// The label of a legend entry whose sample starts at `(x, y)`, for samples drawn by the caller.
pub(super) fn legend_label<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    label: &str,
) -> Result<(), String> {
    area.draw_text(
        label,
        &left_aligned(TICK),
        (x + (SAMPLE_W + SAMPLE_GAP) as i32, y),
    )
    .map_err(|e| e.to_string())
}

/// The axis titles of a grid of panels that share their axes: `x_title` centred on `x_area`
/// between the pixels `left` and `right` (where the panels' plotting areas run), `y_title`
/// turned and centred on `y_area`.
pub(super) fn grid_axis_titles<DB: DrawingBackend>(
    (x_area, x_title): (&DrawingArea<DB, Shift>, &str),
    (left, right): (i32, i32),
    (y_area, y_title): (&DrawingArea<DB, Shift>, &str),
) -> Result<(), String> {
    let (_, x_h) = x_area.dim_in_pixel();
    x_area
        .draw_text(
            x_title,
            &centred(LABEL),
            (left + (right - left) / 2, x_h as i32 / 2),
        )
        .map_err(|e| e.to_string())?;
    let (y_w, y_h) = y_area.dim_in_pixel();
    y_area
        .draw_text(
            y_title,
            &centred(LABEL).transform(FontTransform::Rotate270),
            (y_w as i32 / 2, y_h as i32 / 2),
        )
        .map_err(|e| e.to_string())
}

/// "no data", centred on `at` in `area`.
pub(super) fn no_data<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
) -> Result<(), String> {
    area.draw_text("no data", &centred(LABEL), at)
        .map_err(|e| e.to_string())
}

/// "no data" in the middle of `chart`'s plotting area, written on `area`, which holds the chart.
pub(super) fn no_data_over<DB, CT>(
    area: &DrawingArea<DB, Shift>,
    chart: &ChartContext<'_, DB, CT>,
) -> Result<(), String>
where
    DB: DrawingBackend,
    CT: CoordTranslate,
{
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let (x0, y0) = area.get_base_pixel();
    no_data(
        area,
        ((xr.start + xr.end) / 2 - x0, (yr.start + yr.end) / 2 - y0),
    )
}
