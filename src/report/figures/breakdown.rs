//! The seed paper's "Breakdown of epoch time": for each number of learners p, one stacked bar of
//! the time per epoch a learner spends in each activity (compute, pull, push, server update,
//! wait), with the total written above it. Groups (e.g. one per network) are panels on one
//! shared y scale, so bars compare across panels: side by side, in balanced rows when one row
//! would not hold them at a readable width. The y axis is ticked once per row and titled once,
//! the x axis titled once under all panels; the legend sits in its own strip so it never covers
//! a bar. The unit (s, ms or us) follows the tallest bar so totals stay short. It draws the time
//! it is given and must never normalise, reorder or fill it in: a negative or non-finite segment
//! is left out, never clamped into a bar.

use super::common::{
    FixedTicks, TICK, centred, fmt_tick, grid_axis_titles, left_aligned, no_data, no_data_over,
    style, styled_mesh, text_width,
};
use super::{Figure, PALETTE};
use crate::outcome::Activity;
use crate::report::summary::BreakdownSecs;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Stacked bars of time per epoch by activity, one panel per group.
#[derive(Clone, Debug, PartialEq)]
pub struct Breakdown {
    pub caption: String,
    /// What each bar of a panel is, written once under all panels (e.g. "learners p").
    pub x_label: String,
    pub groups: Vec<BreakdownGroup>,
}

/// One panel: its title (e.g. a network's name) and one bar per p, labelled e.g. "4".
#[derive(Clone, Debug, PartialEq)]
pub struct BreakdownGroup {
    pub label: String,
    pub bars: Vec<(String, BreakdownSecs)>,
}

/// Panel titles, a plotters text size like `common::TICK`.
const TITLE: f64 = 22.0;
const ROW_H: u32 = 460;
const MIN_WIDTH: u32 = 900;
const MAX_WIDTH: u32 = 1600;
const BAR_SLOT: u32 = 90;
/// A panel's width beyond its bars: the gap to the next panel.
const PANEL_PAD: u32 = 24;
/// The y tick labels of a row, left of its first panel.
const Y_TICKS: u32 = 64;
/// The turned y title left of every row.
const Y_TITLE: u32 = 36;
const X_TITLE: u32 = 44;
const X_TICKS: u32 = 36;
const LEGEND_W: u32 = 190;
const TITLE_H: u32 = 40;
/// Headroom above the tallest bar for its total.
const HEADROOM: f64 = 1.15;
/// Totals narrower than their bar's slot by this many pixels are written across; wider, turned.
const TOTAL_GAP: i32 = 6;

/// Fixed per activity so the same activity has the same colour in every report.
fn activity_color(a: Activity) -> RGBColor {
    match a {
        Activity::Compute => PALETTE[0],
        Activity::Pull => PALETTE[5],
        Activity::Push => PALETTE[2],
        Activity::ServerUpdate => PALETTE[1],
        // Idle time is grey: it is the absence of work, not another kind of it.
        Activity::Wait => RGBColor(150, 150, 150),
    }
}

/// A segment's height in seconds, or `None` when it cannot be drawn honestly.
fn segment(secs: &BreakdownSecs, a: Activity) -> Option<f64> {
    let v = secs.get(a);
    (v.is_finite() && v > 0.0).then_some(v)
}

fn drawn_total(secs: &BreakdownSecs) -> f64 {
    Activity::ALL.iter().filter_map(|&a| segment(secs, a)).sum()
}

/// Three significant digits, no exponent. Not `speedup::fmt_p`, which drops the decimals of a
/// whole number: a total keeps its three digits ("5.00") so totals line up in precision.
fn fmt_secs(v: f64) -> String {
    if v <= 0.0 {
        return "0".to_string();
    }
    let decimals = (2 - v.log10().floor() as i32).clamp(0, 6) as usize;
    format!("{v:.decimals$}")
}

/// The unit the axis and totals are written in for a tallest bar of `max` seconds, and how
/// many of it make a second: seconds from 1 s up, milliseconds from 1 ms, microseconds below.
fn unit(max: f64) -> (&'static str, f64) {
    if max >= 1.0 || max <= 0.0 {
        ("seconds", 1.0)
    } else if max >= 1e-3 {
        ("milliseconds", 1e3)
    } else {
        ("microseconds", 1e6)
    }
}

/// `n` panels in `rows` rows, as even as they go: the first rows take one more when they must.
fn row_lengths(n: usize, rows: usize) -> Vec<usize> {
    let rows = rows.clamp(1, n.max(1));
    (0..rows)
        .map(|r| n / rows + usize::from(r < n % rows))
        .collect()
}

impl Breakdown {
    fn titled(&self) -> bool {
        self.groups.len() > 1 || self.groups.iter().any(|g| !g.label.is_empty())
    }

    /// Width each panel asks for: its bars and gap, or its title if that is wider.
    fn panel_widths(&self) -> Vec<u32> {
        self.groups
            .iter()
            .map(|g| {
                let bars = PANEL_PAD + BAR_SLOT * g.bars.len().max(1) as u32;
                let title = if self.titled() {
                    text_width(&g.label, TITLE) + PANEL_PAD
                } else {
                    0
                };
                bars.max(title)
            })
            .collect()
    }

    /// The panels of each row, as index ranges into `groups`: the fewest rows whose widest
    /// fits the widest figure.
    fn rows(&self) -> Vec<std::ops::Range<usize>> {
        let widths = self.panel_widths();
        let room = MAX_WIDTH - LEGEND_W - Y_TITLE - Y_TICKS;
        let layout = |rows: usize| {
            let mut start = 0;
            row_lengths(widths.len(), rows)
                .into_iter()
                .map(|len| {
                    let r = start..start + len;
                    start += len;
                    r
                })
                .collect::<Vec<_>>()
        };
        (1..=widths.len().max(1))
            .map(layout)
            .find(|rows| {
                rows.iter()
                    .all(|r| widths[r.clone()].iter().sum::<u32>() <= room)
            })
            .unwrap_or_else(|| layout(widths.len()))
    }

    /// The widest row's asked width, panels only.
    fn widest_row(&self) -> u32 {
        let widths = self.panel_widths();
        self.rows()
            .iter()
            .map(|r| widths[r.clone()].iter().sum::<u32>())
            .max()
            .unwrap_or(0)
    }

    fn y_top(&self) -> f64 {
        let max = self
            .groups
            .iter()
            .flat_map(|g| g.bars.iter().map(|(_, s)| drawn_total(s)))
            .fold(0.0, f64::max);
        if max > 0.0 { max * HEADROOM } else { 1.0 }
    }

    /// One panel on `area`, in `per_s` units a second; `ticks` when it carries its row's y
    /// tick labels (they take `Y_TICKS` at its left).
    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        group: &BreakdownGroup,
        ticks: bool,
        (y_top, per_s): (f64, f64),
    ) -> Result<(), String> {
        let (area, title) = if self.titled() {
            let (title, rest) = area.split_vertically(TITLE_H);
            (rest, Some(title))
        } else {
            (area.clone(), None)
        };
        let n = group.bars.len();
        // Bar `i` is centred on `i`.
        let x_axis = FixedTicks {
            range: -0.5..(n.max(1) as f64 - 0.5),
            ticks: (0..n).map(|i| i as f64).collect(),
        };
        let mut chart = ChartBuilder::on(&area)
            .margin_top(6)
            .margin_right(PANEL_PAD as i32)
            .x_label_area_size(X_TICKS)
            .y_label_area_size(if ticks { Y_TICKS } else { 2 })
            .build_cartesian_2d(x_axis, 0.0..y_top * per_s)
            .map_err(|e| e.to_string())?;
        let (xr, _) = chart.plotting_area().get_pixel_range();
        if let Some(title) = title {
            let x0 = title.get_base_pixel().0;
            title
                .draw_text(
                    &group.label,
                    &centred(TITLE),
                    ((xr.start + xr.end) / 2 - x0, TITLE_H as i32 / 2),
                )
                .map_err(|e| e.to_string())?;
        }
        let bar_label = |v: &f64| {
            let i = v.round().max(0.0) as usize;
            group
                .bars
                .get(i)
                .map(|(l, _)| l.clone())
                .unwrap_or_default()
        };
        let y_tick = |v: &f64| if ticks { fmt_tick(*v) } else { String::new() };
        styled_mesh(&mut chart)
            .disable_x_mesh()
            .y_labels(6)
            .x_label_formatter(&bar_label)
            .y_label_formatter(&y_tick)
            .draw()
            .map_err(|e| e.to_string())?;

        if group.bars.is_empty() {
            return no_data_over(&area, &chart);
        }

        const HALF: f64 = 0.3;
        let slot = (xr.end - xr.start) / n as i32;
        for (i, (_, secs)) in group.bars.iter().enumerate() {
            let x = i as f64;
            let mut bottom = 0.0;
            for a in Activity::ALL {
                let Some(v) = segment(secs, a) else { continue };
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x - HALF, bottom * per_s), (x + HALF, (bottom + v) * per_s)],
                        activity_color(a).filled(),
                    )))
                    .map_err(|e| e.to_string())?;
                bottom += v;
            }
            let label = fmt_secs(bottom * per_s);
            let across = text_width(&label, TICK) as i32 + TOTAL_GAP <= slot;
            let text = if across {
                style(TICK).pos(Pos::new(HPos::Center, VPos::Bottom))
            } else {
                style(TICK)
                    .transform(FontTransform::Rotate270)
                    .pos(Pos::new(HPos::Left, VPos::Center))
            };
            let total = EmptyElement::at((x, bottom * per_s)) + Text::new(label, (0, -4), text);
            chart
                .draw_series(std::iter::once(total))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The legend, top to bottom in the order the segments stack from the top down.
    fn draw_legend<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let top = if self.titled() { TITLE_H as i32 } else { 0 } + 16;
        for (row, a) in Activity::ALL.iter().rev().enumerate() {
            let y = top + row as i32 * 30;
            area.draw(&Rectangle::new(
                [(16, y), (34, y + 18)],
                activity_color(*a).filled(),
            ))
            .map_err(|e| e.to_string())?;
            area.draw_text(a.name(), &left_aligned(TICK), (44, y + 9))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

impl Figure for Breakdown {
    fn titles(&self) -> (String, String) {
        ("breakdown".to_string(), self.caption.clone())
    }

    fn size(&self) -> (u32, u32) {
        let w = self.widest_row() + Y_TICKS + Y_TITLE + LEGEND_W;
        let rows = self.rows().len().max(1) as u32;
        (w.clamp(MIN_WIDTH, MAX_WIDTH), rows * ROW_H + X_TITLE)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (w, h) = root.dim_in_pixel();
        let (body, x_title) = root.split_vertically(h - X_TITLE);
        let (y_title, rest) = body.split_horizontally(Y_TITLE);
        let (plots, legend) = rest.split_horizontally(w - Y_TITLE - LEGEND_W);
        self.draw_legend(&legend)?;
        let (pw, ph) = plots.dim_in_pixel();
        let (unit, per_s) = unit(self.y_top() / HEADROOM);
        let y_desc = format!("{unit} per epoch");
        if self.groups.is_empty() {
            no_data(&plots, (pw as i32 / 2, ph as i32 / 2))?;
            return grid_axis_titles(
                (&x_title, self.x_label.as_str()),
                (Y_TITLE as i32, (Y_TITLE + pw) as i32),
                (&y_title, &y_desc),
            );
        }
        // Panels share the width in proportion to what they ask for, one scale for every row,
        // so bars keep one width across the figure.
        let widths = self.panel_widths();
        let rows = self.rows();
        let scale = f64::from(pw - Y_TICKS) / f64::from(self.widest_row().max(1));
        let row_areas = plots.split_evenly((rows.len(), 1));
        let y_top = self.y_top();
        let mut right = 0;
        for (range, row) in rows.iter().zip(&row_areas) {
            let mut x = 0;
            for (k, i) in range.clone().enumerate() {
                let width = (f64::from(widths[i]) * scale).round() as i32
                    + if k == 0 { Y_TICKS as i32 } else { 0 };
                let area = row
                    .clone()
                    .shrink((x, 0), (width as u32, ph / rows.len() as u32));
                self.draw_panel(&area, &self.groups[i], k == 0, (y_top, per_s))?;
                x += width;
            }
            right = right.max(x);
        }
        grid_axis_titles(
            (&x_title, self.x_label.as_str()),
            (
                (Y_TITLE + Y_TICKS) as i32,
                Y_TITLE as i32 + right - PANEL_PAD as i32,
            ),
            (&y_title, &y_desc),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::figures::render;
    use crate::report::figures::testing::{
        assert_deterministic, assert_has_texts, has_color, render_checked, texts,
    };

    fn secs(compute: f64, pull: f64, push: f64, server_update: f64, wait: f64) -> BreakdownSecs {
        BreakdownSecs {
            compute,
            pull,
            push,
            server_update,
            wait,
        }
    }

    fn sample() -> Breakdown {
        let group = |label: &str, scale: f64| BreakdownGroup {
            label: label.to_string(),
            bars: [1u32, 2, 4, 8, 16]
                .iter()
                .map(|&p| {
                    let p = f64::from(p);
                    (
                        format!("{p}"),
                        secs(
                            40.0 / p,
                            scale * 2.0,
                            scale * 2.5,
                            0.3,
                            scale * (p - 1.0) * 0.8,
                        ),
                    )
                })
                .collect(),
        };
        Breakdown {
            caption: "Epoch time by activity".to_string(),
            x_label: "learners p".into(),
            groups: vec![group("InfiniBand", 1.0), group("Ethernet", 4.0)],
        }
    }

    #[test]
    fn renders_titles_legend_axes_and_totals() {
        let (out, rgb) = render_checked(&sample());
        assert_has_texts(
            &out.svg,
            &[
                "InfiniBand",
                "Ethernet",
                "seconds per epoch",
                "learners p",
                "compute",
                "pull",
                "push",
                "server_update",
                "wait",
                "16",
            ],
        );
        let t = texts(&out.svg);
        // Total of the p = 1 InfiniBand bar: 40 + 2 + 2.5 + 0.3 + 0.
        assert!(t.iter().any(|s| s == "44.8"), "{t:?}");
        for a in Activity::ALL {
            assert!(has_color(&rgb, activity_color(a)), "{a:?} not drawn");
        }
    }

    #[test]
    fn single_unlabelled_group_has_no_title() {
        let mut fig = sample();
        fig.groups.truncate(1);
        fig.groups[0].label.clear();
        let out = render(&fig).expect("renders");
        assert!(!texts(&out.svg).iter().any(|s| s == "InfiniBand"));
        let titled = render(&sample()).expect("renders");
        assert_has_texts(&titled.svg, &["InfiniBand"]);
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_deterministic(sample);
    }

    #[test]
    fn degenerate_inputs_render() {
        let cases = [
            Breakdown {
                caption: String::new(),
                x_label: "learners p".into(),
                groups: vec![],
            },
            Breakdown {
                caption: String::new(),
                x_label: "learners p".into(),
                groups: vec![BreakdownGroup {
                    label: "empty".to_string(),
                    bars: vec![],
                }],
            },
            Breakdown {
                caption: String::new(),
                x_label: "learners p".into(),
                groups: vec![BreakdownGroup {
                    label: String::new(),
                    bars: vec![
                        (
                            "1".to_string(),
                            secs(f64::NAN, f64::INFINITY, -1.0, 0.0, 0.0),
                        ),
                        ("2".to_string(), secs(0.0, 0.0, 0.0, 0.0, 0.0)),
                        ("4".to_string(), secs(1.0, 1.0, 1.0, 1.0, 1.0)),
                    ],
                }],
            },
        ];
        for fig in &cases {
            render_checked(fig);
        }
        let no_data = render(&cases[0]).expect("renders");
        assert_has_texts(&no_data.svg, &["no data"]);
        // The non-finite and negative segments are left out, not summed into the total.
        let nan = render(&cases[2]).expect("renders");
        assert_has_texts(&nan.svg, &["5.00"]);
        assert!(!nan.svg.contains("NaN") && !nan.svg.contains("inf"));
    }

    #[test]
    fn many_bars_stay_within_the_maximum_width() {
        let mut fig = sample();
        fig.groups[0].bars = (0..40)
            .map(|i| (i.to_string(), secs(1.0, 0.0, 0.0, 0.0, 0.0)))
            .collect();
        assert_eq!(fig.size().0, MAX_WIDTH);
        render(&fig).expect("renders");
    }

    #[test]
    fn ten_panels_wrap_into_balanced_rows_with_one_axis_title_each_way() {
        let mut fig = sample();
        fig.groups = (0..10)
            .map(|i| BreakdownGroup {
                label: format!("staleness-aware {i}"),
                ..fig.groups[0].clone()
            })
            .collect();
        fig.groups.iter_mut().for_each(|g| g.bars.truncate(2));
        let rows: Vec<usize> = fig.rows().iter().map(|r| r.len()).collect();
        assert_eq!(rows, [5, 5]);
        let (w, h) = fig.size();
        assert!(w <= MAX_WIDTH && h == 2 * ROW_H + X_TITLE, "{w} x {h}");
        let (out, _) = render_checked(&fig);
        let t = texts(&out.svg);
        for once in ["learners p", "seconds per epoch"] {
            assert_eq!(t.iter().filter(|s| *s == once).count(), 1, "{once}: {t:?}");
        }
        // The y ticks are written once per row, on its first panel.
        let tops = t.iter().filter(|s| *s == "40").count();
        assert_eq!(tops, 2, "{t:?}");
    }

    #[test]
    fn panels_that_fit_stay_in_one_row() {
        assert_eq!(sample().rows().len(), 1, "two panels fit one row");
        assert_eq!(row_lengths(7, 3), [3, 2, 2]);
        assert_eq!(row_lengths(0, 1), [0]);
    }

    #[test]
    fn short_epochs_are_written_in_milliseconds() {
        let mut fig = sample();
        for g in &mut fig.groups {
            for (_, s) in &mut g.bars {
                *s = secs(0.02, 0.003, 0.0007, 0.0, 0.0);
            }
        }
        let out = render(&fig).expect("renders");
        assert_has_texts(&out.svg, &["milliseconds per epoch", "23.7"]);
        assert_eq!(unit(2.0), ("seconds", 1.0));
        assert_eq!(unit(0.5e-3), ("microseconds", 1e6));
        assert_eq!(unit(0.0), ("seconds", 1.0));
    }

    #[test]
    fn totals_have_three_significant_digits() {
        assert_eq!(fmt_secs(44.8), "44.8");
        assert_eq!(fmt_secs(0.01234), "0.0123");
        assert_eq!(fmt_secs(1234.4), "1234");
        assert_eq!(fmt_secs(0.0), "0");
    }
}
