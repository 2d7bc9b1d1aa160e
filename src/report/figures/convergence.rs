//! Accuracy curves in a grid: one row per quantity (e.g. "train accuracy"), one panel per setting
//! (e.g. "p = 4"), every panel on the same x and y ranges so panels compare at a glance. A label
//! keeps one colour across the whole figure, its lines carry small markers and their bands a
//! translucent fill in the same colour, and one legend below the grid names them all. It must
//! never let the legend cover a curve, and never join a curve across a missing (non-finite)
//! point: the curve breaks there instead.

use super::common::{
    LABEL, SAMPLE_GAP, SAMPLE_W, TICK, centred, draw_band, draw_marked_line, fmt_tick,
    grid_axis_titles, left_aligned, legend_entry, no_data, styled_mesh, text_width,
};
use super::{Figure, Line, Panel, color};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Accuracy (or any percentage) against epochs or time, as a grid of panels.
#[derive(Clone, Debug, PartialEq)]
pub struct Convergence {
    pub name: String,
    pub caption: String,
    pub x_label: String,
    pub y_label: String,
    /// Row title and its panels, left to right.
    pub rows: Vec<(String, Vec<Panel>)>,
}

// Title sizes are plotters text sizes like `common::TICK`.
const PANEL_TITLE: f64 = 23.0;
const ROW_TITLE: f64 = 26.0;
const PANEL_W: u32 = 340;
const PANEL_H: u32 = 290;
const MIN_WIDTH: u32 = 900;
const MAX_WIDTH: u32 = 1600;
const TOP: u32 = 8;
const LEFT: u32 = 40;
const RIGHT: u32 = 10;
const ROW_TITLE_H: u32 = 36;
const PANEL_TITLE_H: u32 = 30;
const X_LABEL_H: u32 = 40;
const LEGEND_ROW_H: u32 = 30;
const LEGEND_PAD: u32 = 12;
/// Gap between a legend item (`common::legend_entry`) and the next one in its row.
const ITEM_GAP: u32 = 30;
/// Marker radius in pixels: 3 in these small panels, where the single-chart speedup figure uses 4.
const MARKER: i32 = 3;

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// `[lo, hi]` over `values` padded by `pad` of the span on each side, never of zero width;
/// `fallback` when no value is finite.
fn padded_range(values: impl Iterator<Item = f64>, pad: f64, fallback: (f64, f64)) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return fallback;
    }
    let span = hi - lo;
    if span > 0.0 {
        (lo - pad * span, hi + pad * span)
    } else {
        let half = (lo.abs() * 0.05).max(1.0);
        (lo - half, hi + half)
    }
}

/// Maximal runs of consecutive points that pass `keep`, so a curve breaks at a gap.
fn runs<T: Copy>(points: &[T], keep: impl Fn(&T) -> bool) -> Vec<Vec<T>> {
    points
        .split(|p| !keep(p))
        .filter(|r| !r.is_empty())
        .map(|r| r.to_vec())
        .collect()
}

fn has_point(p: &(f64, f64, f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite()
}

fn has_band(p: &(f64, f64, f64, f64)) -> bool {
    p.0.is_finite() && p.2.is_finite() && p.3.is_finite() && p.2 < p.3
}

impl Convergence {
    fn cols(&self) -> usize {
        self.rows
            .iter()
            .map(|(_, ps)| ps.len())
            .max()
            .unwrap_or(0)
            .max(1)
    }

    fn lines(&self) -> impl Iterator<Item = &Line> {
        self.rows
            .iter()
            .flat_map(|(_, ps)| ps.iter().flat_map(|p| p.lines.iter()))
    }

    /// Labels in order of first appearance over the whole figure; index = colour index.
    fn labels(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for l in self.lines() {
            if !out.contains(&l.label.as_str()) {
                out.push(&l.label);
            }
        }
        out
    }

    fn color_of(&self, label: &str) -> RGBColor {
        color(self.labels().iter().position(|l| *l == label).unwrap_or(0))
    }

    /// Legend items laid out left to right, wrapping at `width`: (row, x offset, label).
    fn legend_layout(&self, width: u32) -> Vec<(u32, u32, usize)> {
        let avail = width.saturating_sub(2 * LEGEND_PAD);
        let (mut row, mut x) = (0u32, 0u32);
        let mut out = Vec::new();
        for (i, label) in self.labels().iter().enumerate() {
            if label.is_empty() {
                continue;
            }
            let w = SAMPLE_W + SAMPLE_GAP + text_width(label, TICK);
            if x > 0 && x + w > avail {
                row += 1;
                x = 0;
            }
            out.push((row, x, i));
            x += w + ITEM_GAP;
        }
        out
    }

    fn legend_height(&self, width: u32) -> u32 {
        match self.legend_layout(width).last() {
            Some((row, _, _)) => (row + 1) * LEGEND_ROW_H + 2 * LEGEND_PAD,
            None => 0,
        }
    }

    fn width(&self) -> u32 {
        (LEFT + RIGHT + self.cols() as u32 * PANEL_W).clamp(MIN_WIDTH, MAX_WIDTH)
    }

    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let points = || self.lines().flat_map(|l| l.points.iter());
        let x = padded_range(points().map(|p| p.0), 0.03, (0.0, 1.0));
        let y = padded_range(
            points().flat_map(|&(x, y, lo, hi)| {
                // A band counts only where it is drawn; a y counts only where its x does.
                let band = has_band(&(x, y, lo, hi));
                [finite(x).map(|_| y), band.then_some(lo), band.then_some(hi)]
                    .into_iter()
                    .flatten()
            }),
            0.05,
            (0.0, 100.0),
        );
        (x, y)
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        panel: &Panel,
        (x, y): ((f64, f64), (f64, f64)),
    ) -> Result<(), String> {
        let (w, _) = area.dim_in_pixel();
        area.draw_text(
            &panel.title,
            &centred(PANEL_TITLE),
            (w as i32 / 2, PANEL_TITLE_H as i32 / 2),
        )
        .map_err(|e| e.to_string())?;
        let (_, body) = area.split_vertically(PANEL_TITLE_H);
        let mut chart = ChartBuilder::on(&body)
            .margin_top(6)
            .margin_right(18)
            .margin_left(4)
            .x_label_area_size(34)
            .y_label_area_size(52)
            .build_cartesian_2d(x.0..x.1, y.0..y.1)
            .map_err(|e| e.to_string())?;
        let x_tick = |v: &f64| fmt_tick(*v);
        let y_tick = |v: &f64| fmt_tick(*v);
        styled_mesh(&mut chart)
            .x_labels(7)
            .y_labels(6)
            .x_label_formatter(&x_tick)
            .y_label_formatter(&y_tick)
            .draw()
            .map_err(|e| e.to_string())?;

        if panel.lines.iter().all(|l| !l.points.iter().any(has_point)) {
            chart
                .draw_series(std::iter::once(Text::new(
                    "no data",
                    ((x.0 + x.1) / 2.0, (y.0 + y.1) / 2.0),
                    centred(LABEL),
                )))
                .map_err(|e| e.to_string())?;
            return Ok(());
        }
        // Bands first, so no band ever covers a line.
        for line in &panel.lines {
            let c = self.color_of(&line.label);
            for run in runs(&line.points, has_band) {
                let band: Vec<(f64, f64, f64)> = run.iter().map(|p| (p.0, p.2, p.3)).collect();
                draw_band(&mut chart, &band, c)?;
            }
        }
        for line in &panel.lines {
            let c = self.color_of(&line.label);
            for run in runs(&line.points, has_point) {
                let xy: Vec<(f64, f64)> = run.iter().map(|p| (p.0, p.1)).collect();
                draw_marked_line(&mut chart, &xy, c, MARKER)?;
            }
        }
        Ok(())
    }

    fn draw_legend<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (w, _) = area.dim_in_pixel();
        let labels = self.labels();
        let layout = self.legend_layout(w);
        let item_w = |i: usize| SAMPLE_W + SAMPLE_GAP + text_width(labels[i], TICK);
        // Each row is centred under the grid.
        let row_w = |row: u32| {
            layout
                .iter()
                .filter(|l| l.0 == row)
                .map(|&(_, x, i)| x + item_w(i))
                .max()
                .unwrap_or(0)
        };
        for &(row, x, i) in &layout {
            let shift = w.saturating_sub(2 * LEGEND_PAD + row_w(row)) / 2;
            let x = (LEGEND_PAD + shift + x) as i32;
            let y = (LEGEND_PAD + row * LEGEND_ROW_H + LEGEND_ROW_H / 2) as i32;
            legend_entry(area, (x, y), color(i), Some(MARKER), labels[i])?;
        }
        Ok(())
    }
}

impl Figure for Convergence {
    fn titles(&self) -> (String, String) {
        (self.name.clone(), self.caption.clone())
    }

    fn size(&self) -> (u32, u32) {
        let w = self.width();
        let rows = self.rows.len().max(1) as u32;
        (
            w,
            TOP + rows * (ROW_TITLE_H + PANEL_H) + X_LABEL_H + self.legend_height(w),
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (w, h) = root.dim_in_pixel();
        let legend_h = self.legend_height(w);
        let (body, legend) = root.split_vertically(h.saturating_sub(legend_h));
        let body = body.margin(TOP, 0, 0, 0);
        self.draw_legend(&legend)?;
        let (_, body_h) = body.dim_in_pixel();
        let (grid, x_label) = body.split_vertically(body_h.saturating_sub(X_LABEL_H));
        let (y_label, grid) = grid.split_horizontally(LEFT);
        let (grid_w, grid_h) = grid.dim_in_pixel();
        let grid = grid.margin(0, 0, 0, RIGHT);
        let grid_w = grid_w.saturating_sub(RIGHT);

        if self.rows.is_empty() {
            return no_data(&grid, (grid_w as i32 / 2, grid_h as i32 / 2));
        }
        // The panels' plotting areas start past their margin (4) and tick labels (52).
        let plot_left = (LEFT + 4 + 52) as i32;
        grid_axis_titles(
            (&x_label, &self.x_label),
            (plot_left, w as i32 - RIGHT as i32),
            (&y_label, &self.y_label),
        )?;

        let ranges = self.ranges();
        let cols = self.cols() as u32;
        let row_h = grid_h / self.rows.len() as u32;
        let cell_w = grid_w / cols;
        for (r, (title, panels)) in self.rows.iter().enumerate() {
            let top = r as u32 * row_h;
            let row = grid.clone().shrink((0, top), (grid_w, row_h));
            row.draw_text(title, &left_aligned(ROW_TITLE), (4, ROW_TITLE_H as i32 / 2))
                .map_err(|e| e.to_string())?;
            for (c, panel) in panels.iter().enumerate() {
                let cell = row.clone().shrink(
                    (c as u32 * cell_w, ROW_TITLE_H),
                    (cell_w, row_h.saturating_sub(ROW_TITLE_H)),
                );
                self.draw_panel(&cell, panel, ranges)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::figures::render;
    use crate::report::figures::testing::{
        assert_deterministic, assert_has_texts, count_color, render_checked, texts,
    };

    fn curve(label: &str, rate: f64, epochs: usize, band: f64) -> Line {
        Line {
            label: label.to_string(),
            points: (1..=epochs)
                .map(|e| {
                    let e = e as f64;
                    let y = 95.0 - 85.0 * (-rate * e).exp();
                    (e, y, y - band, y + band)
                })
                .collect(),
        }
    }

    fn sample() -> Convergence {
        let panels = |offset: f64| {
            [1u32, 4, 16]
                .iter()
                .map(|&p| Panel {
                    title: format!("p = {p}"),
                    lines: vec![
                        curve("Downpour", 0.4 / f64::from(p).sqrt() + offset, 12, 1.5),
                        curve("SSGD", 0.3 + offset, 12, 0.0),
                    ],
                })
                .collect()
        };
        Convergence {
            name: "convergence-epochs".to_string(),
            caption: "Accuracy per epoch".to_string(),
            x_label: "epoch".to_string(),
            y_label: "accuracy (%)".to_string(),
            rows: vec![
                ("train accuracy".to_string(), panels(0.05)),
                ("test accuracy".to_string(), panels(0.0)),
            ],
        }
    }

    #[test]
    fn renders_titles_legend_and_axes() {
        let (out, rgb) = render_checked(&sample());
        assert_has_texts(
            &out.svg,
            &[
                "train accuracy",
                "test accuracy",
                "p = 1",
                "p = 16",
                "epoch",
                "accuracy (%)",
                "Downpour",
                "SSGD",
            ],
        );
        let t = texts(&out.svg);
        // One legend: each label is written once.
        assert_eq!(t.iter().filter(|s| *s == "Downpour").count(), 1);
        assert!(count_color(&rgb, color(0)) > 100, "Downpour not drawn");
        assert!(count_color(&rgb, color(1)) > 100, "SSGD not drawn");
    }

    #[test]
    fn colours_follow_first_appearance_over_the_figure() {
        let mut fig = sample();
        // In the second row SSGD comes first; it must keep its colour from the first row.
        fig.rows[1].1.iter_mut().for_each(|p| p.lines.reverse());
        assert_eq!(fig.labels(), ["Downpour", "SSGD"]);
        assert_eq!(fig.color_of("SSGD"), color(1));
        fig.rows[0].1[0].lines.reverse();
        assert_eq!(fig.labels(), ["SSGD", "Downpour"]);
        assert_eq!(fig.color_of("SSGD"), color(0));
    }

    #[test]
    fn ranges_are_shared_and_include_bands() {
        let fig = sample();
        let ((x0, x1), (y0, y1)) = fig.ranges();
        let all: Vec<_> = fig.lines().flat_map(|l| l.points.iter()).collect();
        for p in all {
            assert!(x0 < p.0 && p.0 < x1);
            assert!(y0 < p.2 && p.3 < y1);
        }
    }

    #[test]
    fn legend_wraps_but_never_leaves_the_figure() {
        let mut fig = sample();
        fig.rows[0].1[0].lines = (0..12)
            .map(|i| curve(&format!("a rather long method name {i}"), 0.3, 5, 0.0))
            .collect();
        let (w, _) = fig.size();
        let layout = fig.legend_layout(w);
        assert!(
            layout.iter().any(|&(row, _, _)| row > 0),
            "expected wrapping"
        );
        let labels = fig.labels();
        for (_, x, i) in layout {
            let right = LEGEND_PAD + x + SAMPLE_W + SAMPLE_GAP + text_width(labels[i], TICK);
            assert!(right <= w, "{} leaves the figure", labels[i]);
        }
        render(&fig).expect("renders");
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_deterministic(sample);
    }

    #[test]
    fn degenerate_inputs_render() {
        let base = sample();
        let with_rows = |rows: Vec<(String, Vec<Panel>)>| Convergence {
            rows,
            ..base.clone()
        };
        let one = |lines: Vec<Line>| {
            with_rows(vec![(
                "train accuracy".to_string(),
                vec![Panel {
                    title: "p = 2".to_string(),
                    lines,
                }],
            )])
        };
        let cases = [
            with_rows(vec![]),
            with_rows(vec![("train accuracy".to_string(), vec![])]),
            one(vec![]),
            one(vec![Line::plain("single", [(3.0, 50.0)])]),
            one(vec![Line::plain("flat", [(1.0, 50.0), (2.0, 50.0)])]),
            one(vec![Line {
                label: "gaps".to_string(),
                points: vec![
                    (1.0, f64::NAN, 0.0, 1.0),
                    (2.0, 40.0, f64::NEG_INFINITY, 45.0),
                    (f64::INFINITY, 50.0, 45.0, 55.0),
                    (4.0, 60.0, 55.0, 65.0),
                    (5.0, 70.0, 75.0, 65.0),
                ],
            }]),
            one(vec![Line::plain("all nan", [(f64::NAN, f64::NAN)])]),
        ];
        for fig in &cases {
            let (out, _) = render_checked(fig);
            assert!(!out.svg.contains("NaN"));
        }
        for i in [0, 2, 6] {
            let out = render(&cases[i]).expect("renders");
            assert!(texts(&out.svg).iter().any(|s| s == "no data"), "case {i}");
        }
        let ((x0, x1), (y0, y1)) = cases[5].ranges();
        assert!(x0 < 1.0 && 5.0 < x1 && y0 < 40.0 && 70.0 < y1 && y1 < 80.0);
        let (_, rgb) = render_checked(&cases[3]);
        assert!(count_color(&rgb, color(0)) > 10, "single point not drawn");
    }
}
