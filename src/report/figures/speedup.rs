//! Speedup over the number of learners p: one line per method on a log2 p axis ticked at the p
//! values measured, a log2 speedup axis ticked at powers of two, and optionally the dotted ideal
//! y = p / base, a straight diagonal on these axes. A second measure of the same methods (epoch
//! time beside time to accuracy) is drawn dashed in each method's colour, so the legend names
//! every method once and says in a key what solid and dashed mean. The legend goes in the upper left when nothing
//! drawn passes under it and in a strip on the right otherwise: it must never hide data. Points
//! without a finite, positive p or a finite, positive speedup are skipped, never clamped onto
//! the axes.

use super::common::{
    SAMPLE_GAP, SAMPLE_W, TICK, draw_band, draw_marked_line, fmt_tick, legend_label, no_data_over,
    styled_mesh, text_width,
};
use super::{Figure, Line, color};
use plotters::coord::Shift;
use plotters::coord::combinators::{LogCoord, WithKeyPoints};
use plotters::element::DashedPathElement;
use plotters::prelude::*;

mod geometry;
use geometry::{inside, segment_hits};

/// Speedup against p, with an optional ideal line.
#[derive(Clone, Debug, PartialEq)]
pub struct Speedup {
    pub name: String,
    pub caption: String,
    pub x_label: String,
    pub y_label: String,
    /// The settings in the order of their colours, so that a setting keeps the colour the
    /// report's other figures give it; when empty, the order the lines first name them.
    pub settings: Vec<String>,
    /// One solid line per setting, each in its own colour.
    pub lines: Vec<Line>,
    /// A second measure of the same settings, drawn dashed in the colour of the setting with the
    /// same label; an unlabelled one (one line for every setting) in the key's grey.
    pub dashed: Vec<Line>,
    /// What the solid and the dashed lines measure, for the legend's key, shown when there are
    /// dashed lines.
    pub solid_means: String,
    pub dashed_means: String,
    /// Draw the ideal `y = x / base` when set (finite and > 0).
    pub ideal_base: Option<f64>,
}

const WIDTH: u32 = 960;
const HEIGHT: u32 = 640;
const X_AREA: u32 = 64;
const Y_AREA: u32 = 84;
const MARGIN: u32 = 16;
const MARGIN_RIGHT: u32 = 28;
const LEGEND_ROW: i32 = 28;
const LEGEND_PAD: i32 = 10;
const MARKER: i32 = 4;
/// Padding of the p axis on each side, in octaves.
const X_PAD_OCTAVES: f64 = 0.25;
const IDEAL: RGBColor = RGBColor(90, 90, 90);
/// Lines and samples that stand for no one setting: the key's and unlabelled dashed lines.
const KEY: RGBColor = RGBColor(110, 110, 110);
/// The ideal is dotted, the second measure dashed, so neither is taken for the other.
const IDEAL_DASH: (u32, u32) = (3, 5);
const DASH: (u32, u32) = (9, 5);
const IDEAL_SAMPLES: usize = 48;

type Chart<'a, DB> =
    ChartContext<'a, DB, Cartesian2d<WithKeyPoints<LogCoord<f64>>, WithKeyPoints<LogCoord<f64>>>>;

/// A polyline or polygon in backend pixels.
type PixelPath = Vec<(f64, f64)>;

/// A p tick: whole numbers without decimals ("16"), others to three significant digits.
fn fmt_p(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let decimals = (2 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
        format!("{v:.decimals$}")
    }
}

fn usable_x(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// The points of `line` that can be drawn, sorted by p.
fn points(line: &Line) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = line
        .points
        .iter()
        .filter(|p| usable_x(p.0) && p.1.is_finite() && p.1 > 0.0)
        .map(|p| (p.0, p.1))
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// The band of `line` where it can be drawn, sorted by p: `(x, low, high)`.
fn band(line: &Line) -> Vec<(f64, f64, f64)> {
    let mut out: Vec<(f64, f64, f64)> = line
        .points
        .iter()
        .filter(|p| usable_x(p.0) && p.2.is_finite() && p.3.is_finite() && 0.0 < p.2 && p.2 < p.3)
        .map(|p| (p.0, p.2, p.3))
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

enum Entry {
    /// A setting in its colour; `dashed` when it has only a dashed line.
    Setting {
        colour: RGBColor,
        dashed: bool,
    },
    /// What solid or dashed lines measure, in the key's grey.
    Key {
        dashed: bool,
    },
    Ideal,
}

/// A line sample from `(x, y)` with a marker in its middle, dashed or solid.
fn sample<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    c: RGBColor,
    dash: Option<(u32, u32)>,
    marker: bool,
) -> Result<(), String> {
    let line = vec![(x, y), (x + SAMPLE_W as i32, y)];
    match dash {
        Some((on, off)) => area.draw(&DashedPathElement::new(line, on, off, c.stroke_width(2))),
        None => area.draw(&PathElement::new(line, c.stroke_width(2))),
    }
    .map_err(|e| e.to_string())?;
    if marker {
        area.draw(&Circle::new(
            (x + SAMPLE_W as i32 / 2, y),
            MARKER,
            c.filled(),
        ))
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

impl Speedup {
    /// Every line drawn, solid then dashed, with whether it is dashed.
    fn all_lines(&self) -> impl Iterator<Item = (&Line, bool)> {
        self.lines
            .iter()
            .map(|l| (l, false))
            .chain(self.dashed.iter().map(|l| (l, true)))
    }

    /// The settings' labels, `settings` first, then those the lines name in the order they
    /// first appear: a setting's colour is its place here.
    fn order(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.settings.iter().map(String::as_str).collect();
        for (l, _) in self.all_lines() {
            if !l.label.is_empty() && !out.contains(&l.label.as_str()) {
                out.push(&l.label);
            }
        }
        out
    }

    fn colour_of(&self, line: &Line) -> RGBColor {
        self.order()
            .iter()
            .position(|s| *s == line.label)
            .map_or(KEY, color)
    }

    fn base(&self) -> Option<f64> {
        self.ideal_base.filter(|b| b.is_finite() && *b > 0.0)
    }

    /// Sorted distinct p values with data; `[1]` when there are none.
    fn ps(&self) -> Vec<f64> {
        let mut ps: Vec<f64> = self
            .all_lines()
            .flat_map(|(l, _)| points(l).into_iter().map(|p| p.0))
            .collect();
        ps.sort_by(f64::total_cmp);
        ps.dedup();
        if ps.is_empty() { vec![1.0] } else { ps }
    }

    /// The ideal line across the whole p axis (straight on the log-log axes), sampled evenly in
    /// log p.
    fn ideal(&self) -> Vec<(f64, f64)> {
        let Some(b) = self.base() else {
            return Vec::new();
        };
        let (lo, hi) = self.x_range();
        let step = (hi / lo).ln() / (IDEAL_SAMPLES - 1) as f64;
        (0..IDEAL_SAMPLES)
            .map(|i| {
                let x = if i + 1 == IDEAL_SAMPLES {
                    hi
                } else {
                    lo * (step * i as f64).exp()
                };
                (x, x / b)
            })
            .collect()
    }

    fn x_range(&self) -> (f64, f64) {
        let ps = self.ps();
        let pad = X_PAD_OCTAVES.exp2();
        (ps[0] / pad, ps[ps.len() - 1] * pad)
    }

    /// A log range around every positive value drawn, the ideal line included.
    fn y_range(&self) -> (f64, f64) {
        let ys = self
            .all_lines()
            .flat_map(|(l, _)| {
                let b = band(l);
                points(l)
                    .into_iter()
                    .map(|p| p.1)
                    .chain(b.into_iter().flat_map(|(_, lo, hi)| [lo, hi]))
            })
            .chain(self.ideal().into_iter().map(|p| p.1))
            .filter(|y| y.is_finite() && *y > 0.0);
        let (lo, hi) = ys.fold((f64::INFINITY, 0.0f64), |(lo, hi), y| {
            (lo.min(y), hi.max(y))
        });
        if lo > hi {
            return (0.5, 2.0);
        }
        // At least one octave on either side of 1 so a flat line still shows its level.
        (lo.min(1.0) / 1.25, hi.max(2.0) * 1.25)
    }

    /// Powers of two inside the y range: speedups of 1, 2, 4, ... read off at a glance.
    fn y_ticks(&self) -> Vec<f64> {
        let (lo, hi) = self.y_range();
        (-10..=12)
            .map(|k| 2f64.powi(k))
            .filter(|t| *t >= lo && *t <= hi)
            .collect()
    }

    fn entries(&self) -> Vec<(String, Entry)> {
        let mut out: Vec<(String, Entry)> = self
            .order()
            .into_iter()
            .enumerate()
            .filter(|(_, s)| self.all_lines().any(|(l, _)| l.label == *s))
            .map(|(i, s)| {
                let dashed = !self.lines.iter().any(|l| l.label == s);
                (
                    s.to_string(),
                    Entry::Setting {
                        colour: color(i),
                        dashed,
                    },
                )
            })
            .collect();
        if !self.dashed.is_empty() {
            if !self.lines.is_empty() {
                out.push((self.solid_means.clone(), Entry::Key { dashed: false }));
            }
            out.push((self.dashed_means.clone(), Entry::Key { dashed: true }));
        }
        if self.base().is_some() {
            out.push(("ideal".to_string(), Entry::Ideal));
        }
        out
    }

    fn legend_size(&self) -> (i32, i32) {
        let entries = self.entries();
        let text = entries
            .iter()
            .map(|(l, _)| text_width(l, TICK) as i32)
            .max()
            .unwrap_or(0);
        (
            2 * LEGEND_PAD + (SAMPLE_W + SAMPLE_GAP) as i32 + text,
            2 * LEGEND_PAD + LEGEND_ROW * entries.len() as i32,
        )
    }

    fn build<'a, DB: DrawingBackend>(
        &self,
        area: &'a DrawingArea<DB, Shift>,
        ticks: Vec<f64>,
    ) -> Result<Chart<'a, DB>, String> {
        let (x0, x1) = self.x_range();
        let (y0, y1) = self.y_range();
        ChartBuilder::on(area)
            .margin(MARGIN)
            .margin_right(MARGIN_RIGHT)
            .x_label_area_size(X_AREA)
            .y_label_area_size(Y_AREA)
            .build_cartesian_2d(
                (x0..x1).log_scale().with_key_points(ticks),
                (y0..y1).log_scale().with_key_points(self.y_ticks()),
            )
            .map_err(|e| e.to_string())
    }

    /// Every polyline and polygon the chart draws, in backend pixels.
    fn drawn_paths<DB: DrawingBackend>(
        &self,
        chart: &Chart<'_, DB>,
    ) -> (Vec<PixelPath>, Vec<PixelPath>) {
        let px = |p: (f64, f64)| {
            let (x, y) = chart.backend_coord(&p);
            (f64::from(x), f64::from(y))
        };
        let mut lines: Vec<PixelPath> = self
            .all_lines()
            .map(|(l, _)| points(l).into_iter().map(px).collect())
            .collect();
        lines.push(self.ideal().into_iter().map(px).collect());
        let bands = self
            .all_lines()
            .map(|(l, _)| band(l))
            .filter(|b| !b.is_empty())
            .map(|b| {
                b.iter()
                    .map(|&(x, lo, _)| px((x, lo)))
                    .chain(b.iter().rev().map(|&(x, _, hi)| px((x, hi))))
                    .collect()
            })
            .collect();
        (lines, bands)
    }

    /// The legend's box in the upper left of the plotting area, if nothing drawn passes under it.
    fn legend_inside<DB: DrawingBackend>(&self, chart: &Chart<'_, DB>) -> Option<(i32, i32)> {
        let (w, h) = self.legend_size();
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        let (x0, y0) = (xr.start + 12, yr.start + 8);
        if x0 + w > xr.end || y0 + h > yr.end {
            return None;
        }
        // Markers reach MARKER pixels beyond their point.
        let m = f64::from(MARKER + 2);
        let r = [
            f64::from(x0) - m,
            f64::from(y0) - m,
            f64::from(x0 + w) + m,
            f64::from(y0 + h) + m,
        ];
        let (lines, bands) = self.drawn_paths(chart);
        let hit_line = lines.iter().any(|l| match l[..] {
            [] => false,
            [p] => segment_hits(p, p, r),
            _ => l.windows(2).any(|s| segment_hits(s[0], s[1], r)),
        });
        let centre = ((r[0] + r[2]) / 2.0, (r[1] + r[3]) / 2.0);
        let hit_band = bands.iter().any(|b| {
            inside(centre, b)
                || b.iter()
                    .zip(b.iter().cycle().skip(1))
                    .any(|(&a, &c)| segment_hits(a, c, r))
        });
        (!hit_line && !hit_band).then_some((x0, y0))
    }

    fn draw_legend<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        (x0, y0): (i32, i32),
        boxed: bool,
    ) -> Result<(), String> {
        let (w, h) = self.legend_size();
        if boxed {
            area.draw(&Rectangle::new(
                [(x0, y0), (x0 + w, y0 + h)],
                WHITE.filled(),
            ))
            .map_err(|e| e.to_string())?;
            area.draw(&Rectangle::new(
                [(x0, y0), (x0 + w, y0 + h)],
                RGBColor(200, 200, 200),
            ))
            .map_err(|e| e.to_string())?;
        }
        for (row, (label, entry)) in self.entries().iter().enumerate() {
            let x = x0 + LEGEND_PAD;
            let y = y0 + LEGEND_PAD + row as i32 * LEGEND_ROW + LEGEND_ROW / 2;
            match *entry {
                Entry::Setting { colour, dashed } => {
                    sample(area, (x, y), colour, dashed.then_some(DASH), true)?
                }
                Entry::Key { dashed } => sample(area, (x, y), KEY, dashed.then_some(DASH), true)?,
                Entry::Ideal => sample(area, (x, y), IDEAL, Some(IDEAL_DASH), false)?,
            }
            legend_label(area, (x, y), label)?;
        }
        Ok(())
    }

    /// The data's p values, dropping those whose labels would touch the previous one.
    fn thinned_ticks<DB: DrawingBackend>(&self, chart: &Chart<'_, DB>) -> Vec<f64> {
        let half = |v: f64| text_width(&fmt_p(v), TICK) as i32 / 2;
        let mut kept: Vec<(f64, i32)> = Vec::new();
        for p in self.ps() {
            let (x, _) = chart.backend_coord(&(p, 1.0));
            match kept.last() {
                Some(&(q, qx)) if x - half(p) < qx + half(q) + 10 => {}
                _ => kept.push((p, x)),
            }
        }
        kept.into_iter().map(|(p, _)| p).collect()
    }
}

impl Figure for Speedup {
    fn titles(&self) -> (String, String) {
        (self.name.clone(), self.caption.clone())
    }

    fn size(&self) -> (u32, u32) {
        (WIDTH, HEIGHT)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        // A first chart on the whole figure only to measure: building draws nothing.
        let probe = self.build(root, self.ps())?;
        let inside = self.legend_inside(&probe);
        drop(probe);
        let (w, _) = root.dim_in_pixel();
        let (legend_w, _) = self.legend_size();
        let (plot_area, strip) = match inside {
            Some(_) => (root.clone(), None),
            None => {
                let (l, r) = root.split_horizontally(w as i32 - legend_w - 2 * LEGEND_PAD);
                (l, Some(r))
            }
        };
        let probe = self.build(&plot_area, self.ps())?;
        let ticks = self.thinned_ticks(&probe);
        drop(probe);
        let mut chart = self.build(&plot_area, ticks)?;
        let y_tick = |v: &f64| fmt_tick(*v);
        let x_tick = |v: &f64| fmt_p(*v);
        styled_mesh(&mut chart)
            .y_labels(8)
            .x_label_formatter(&x_tick)
            .y_label_formatter(&y_tick)
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .draw()
            .map_err(|e| e.to_string())?;

        for (line, _) in self.all_lines() {
            draw_band(&mut chart, &band(line), self.colour_of(line))?;
        }
        chart
            .draw_series(DashedLineSeries::new(
                self.ideal(),
                IDEAL_DASH.0,
                IDEAL_DASH.1,
                IDEAL.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
        for line in &self.dashed {
            let (xy, c) = (points(line), self.colour_of(line));
            chart
                .draw_series(DashedLineSeries::new(
                    xy.iter().copied(),
                    DASH.0,
                    DASH.1,
                    c.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(xy.iter().map(|&p| Circle::new(p, MARKER, c.filled())))
                .map_err(|e| e.to_string())?;
        }
        for line in &self.lines {
            draw_marked_line(&mut chart, &points(line), self.colour_of(line), MARKER)?;
        }
        if self.all_lines().all(|(l, _)| points(l).is_empty()) {
            no_data_over(root, &chart)?;
        }

        match (inside, strip) {
            (Some(at), _) => self.draw_legend(root, at, true),
            (None, Some(strip)) => self.draw_legend(&strip, (0, MARGIN as i32), false),
            (None, None) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
