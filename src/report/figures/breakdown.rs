//! The seed paper's "Breakdown of epoch time": for each number of learners p, one stacked bar of
//! the seconds per epoch a learner spends in each activity (compute, pull, push, server update,
//! wait), with the total written above it. Groups (e.g. one per network) are panels side by side
//! on one shared y scale, so bars compare across panels; the legend sits in its own strip so it
//! never covers a bar. It draws the seconds it is given and must never normalise, reorder or fill
//! them in: a negative or non-finite segment is left out, never clamped into a bar.

use super::common::{
    FixedTicks, TICK, centred, fmt_tick, left_aligned, no_data, no_data_over, style, styled_mesh,
};
use super::{Figure, PALETTE};
use crate::outcome::Activity;
use crate::report::summary::BreakdownSecs;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Stacked bars of seconds per epoch by activity, one panel per group.
#[derive(Clone, Debug, PartialEq)]
pub struct Breakdown {
    pub caption: String,
    /// What each bar of a panel is, under the bars (e.g. "learners p").
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
const TITLE: f64 = 24.0;
const HEIGHT: u32 = 560;
const MIN_WIDTH: u32 = 900;
const MAX_WIDTH: u32 = 1600;
const BAR_SLOT: u32 = 90;
const PANEL_EXTRA: u32 = 110;
const LEGEND_W: u32 = 190;
const TITLE_H: u32 = 40;
/// Headroom above the tallest bar for its total.
const HEADROOM: f64 = 1.15;

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

/// A segment's height, or `None` when it cannot be drawn honestly.
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

impl Breakdown {
    fn titled(&self) -> bool {
        self.groups.len() > 1 || self.groups.iter().any(|g| !g.label.is_empty())
    }

    /// Width each panel asks for before the figure is stretched to its minimum width.
    fn panel_widths(&self) -> Vec<u32> {
        self.groups
            .iter()
            .map(|g| PANEL_EXTRA + BAR_SLOT * g.bars.len().max(1) as u32)
            .collect()
    }

    fn y_top(&self) -> f64 {
        let max = self
            .groups
            .iter()
            .flat_map(|g| g.bars.iter().map(|(_, s)| drawn_total(s)))
            .fold(0.0, f64::max);
        if max > 0.0 { max * HEADROOM } else { 1.0 }
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        group: &BreakdownGroup,
        first: bool,
        y_top: f64,
    ) -> Result<(), String> {
        let area = if self.titled() {
            let (title, rest) = area.split_vertically(TITLE_H);
            let (w, _) = title.dim_in_pixel();
            title
                .draw_text(
                    &group.label,
                    &centred(TITLE),
                    (w as i32 / 2, TITLE_H as i32 / 2),
                )
                .map_err(|e| e.to_string())?;
            rest
        } else {
            area.clone()
        };
        let n = group.bars.len();
        // Bar `i` is centred on `i`.
        let x_axis = FixedTicks {
            range: -0.5..(n.max(1) as f64 - 0.5),
            ticks: (0..n).map(|i| i as f64).collect(),
        };
        let mut chart = ChartBuilder::on(&area)
            .margin_top(6)
            .margin_right(10)
            .x_label_area_size(64)
            .y_label_area_size(if first { 84 } else { 60 })
            .build_cartesian_2d(x_axis, 0.0..y_top)
            .map_err(|e| e.to_string())?;
        let bar_label = |v: &f64| {
            let i = v.round().max(0.0) as usize;
            group
                .bars
                .get(i)
                .map(|(l, _)| l.clone())
                .unwrap_or_default()
        };
        let y_tick = |v: &f64| fmt_tick(*v);
        let mut mesh = styled_mesh(&mut chart);
        mesh.disable_x_mesh()
            .y_labels(6)
            .x_label_formatter(&bar_label)
            .y_label_formatter(&y_tick)
            .x_desc(self.x_label.as_str());
        if first {
            mesh.y_desc("seconds per epoch");
        }
        mesh.draw().map_err(|e| e.to_string())?;

        if group.bars.is_empty() {
            return no_data_over(&area, &chart);
        }

        const HALF: f64 = 0.3;
        for (i, (_, secs)) in group.bars.iter().enumerate() {
            let x = i as f64;
            let mut bottom = 0.0;
            for a in Activity::ALL {
                let Some(v) = segment(secs, a) else { continue };
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x - HALF, bottom), (x + HALF, bottom + v)],
                        activity_color(a).filled(),
                    )))
                    .map_err(|e| e.to_string())?;
                bottom += v;
            }
            let total = EmptyElement::at((x, bottom))
                + Text::new(
                    fmt_secs(bottom),
                    (0, -4),
                    style(TICK).pos(Pos::new(HPos::Center, VPos::Bottom)),
                );
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
        let panels: u32 = self.panel_widths().iter().sum();
        ((panels + LEGEND_W).clamp(MIN_WIDTH, MAX_WIDTH), HEIGHT)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (w, h) = root.dim_in_pixel();
        let (plots, legend) = root.split_horizontally(w.saturating_sub(LEGEND_W));
        self.draw_legend(&legend)?;
        if self.groups.is_empty() {
            let (pw, _) = plots.dim_in_pixel();
            return no_data(&plots, (pw as i32 / 2, h as i32 / 2));
        }
        // Panels share the width in proportion to what they ask for, so bars keep one width.
        let widths = self.panel_widths();
        let asked: u32 = widths.iter().sum();
        let (pw, _) = plots.dim_in_pixel();
        let mut acc = 0u64;
        let breaks: Vec<i32> = widths[..widths.len() - 1]
            .iter()
            .map(|&wi| {
                acc += u64::from(wi);
                (acc * u64::from(pw) / u64::from(asked)) as i32
            })
            .collect();
        let areas = plots.split_by_breakpoints(breaks, Vec::<i32>::new());
        let y_top = self.y_top();
        for (i, (group, area)) in self.groups.iter().zip(&areas).enumerate() {
            self.draw_panel(area, group, i == 0, y_top)?;
        }
        Ok(())
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
    fn totals_have_three_significant_digits() {
        assert_eq!(fmt_secs(44.8), "44.8");
        assert_eq!(fmt_secs(0.01234), "0.0123");
        assert_eq!(fmt_secs(1234.4), "1234");
        assert_eq!(fmt_secs(0.0), "0");
    }
}
