//! Staleness histograms, one panel per setting (e.g. "p = 4"), up to four to a row: bars of the
//! share of updates (percent) applied with each staleness t, with the mean and maximum written
//! under each panel's title. Panels share the staleness axis so the spread compares across p;
//! each keeps its own share axis. It must never drop or rescale counts: a panel's bars always add
//! up to 100%, and a histogram without updates says so instead of drawing empty bars.

use super::common::{FixedTicks, TICK, centred, fmt_tick, grid_axis_titles, no_data, styled_mesh};
use super::{Figure, PALETTE};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Staleness histograms: `(panel title, histogram)`, where `histogram[t]` is the number of
/// updates applied with staleness t.
#[derive(Clone, Debug, PartialEq)]
pub struct Staleness {
    pub caption: String,
    pub panels: Vec<(String, Vec<u64>)>,
}

/// Panel titles, a plotters text size like `common::TICK`.
const TITLE: f64 = 23.0;
const MAX_COLS: usize = 4;
const PANEL_W: u32 = 300;
const PANEL_H: u32 = 300;
const MIN_WIDTH: u32 = 900;
const LEFT: u32 = 40;
const RIGHT: u32 = 10;
const TOP: u32 = 8;
const TITLE_H: u32 = 30;
const STATS_H: u32 = 24;
const X_LABEL_H: u32 = 40;
/// Most staleness ticks per panel before they are spaced out.
const MAX_TICKS: u64 = 7;
const BAR: RGBColor = PALETTE[0];
const X_LABEL: &str = "staleness (updates between read and apply)";
const Y_LABEL: &str = "share of updates (%)";

/// What a panel says about its histogram; `None` when it holds no update.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Stats {
    updates: u128,
    mean: f64,
    max: u64,
}

fn stats(hist: &[u64]) -> Option<Stats> {
    let updates: u128 = hist.iter().map(|&n| u128::from(n)).sum();
    if updates == 0 {
        return None;
    }
    let weighted: u128 = hist
        .iter()
        .enumerate()
        .map(|(t, &n)| t as u128 * u128::from(n))
        .sum();
    let max = hist.iter().rposition(|&n| n > 0).unwrap_or(0) as u64;
    Some(Stats {
        updates,
        mean: weighted as f64 / updates as f64,
        max,
    })
}

/// Ticks at multiples of a 1-2-5 step, at most `MAX_TICKS` of them, from 0 to `max`.
fn ticks(max: u64) -> Vec<f64> {
    let step = (0u32..)
        .flat_map(|e| [1u64, 2, 5].map(|m| m.saturating_mul(10u64.saturating_pow(e))))
        .find(|&s| max / s < MAX_TICKS)
        .unwrap_or(u64::MAX);
    (0..=max / step).map(|i| (i * step) as f64).collect()
}

impl Staleness {
    fn rows(&self) -> usize {
        self.panels.len().div_ceil(MAX_COLS).max(1)
    }

    /// As few columns as the rows allow, so five panels are three over two, not four over one.
    fn cols(&self) -> usize {
        self.panels.len().div_ceil(self.rows()).max(1)
    }

    /// The largest staleness with an update in any panel: the shared axis's end.
    fn max_t(&self) -> u64 {
        self.panels
            .iter()
            .filter_map(|(_, h)| stats(h))
            .map(|s| s.max)
            .max()
            .unwrap_or(0)
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        (title, hist): &(String, Vec<u64>),
    ) -> Result<(), String> {
        let (w, _) = area.dim_in_pixel();
        let stats = stats(hist);
        area.draw_text(title, &centred(TITLE), (w as i32 / 2, TITLE_H as i32 / 2))
            .map_err(|e| e.to_string())?;
        let note = match stats {
            Some(s) => format!("mean {:.2}, max {}", s.mean, s.max),
            None => "no updates".to_string(),
        };
        area.draw_text(
            &note,
            &centred(TICK),
            (w as i32 / 2, (TITLE_H + STATS_H / 2) as i32),
        )
        .map_err(|e| e.to_string())?;

        let (_, body) = area.split_vertically(TITLE_H + STATS_H);
        let max_t = self.max_t();
        let shares: Vec<f64> = match stats {
            Some(s) => hist
                .iter()
                .map(|&n| 100.0 * n as f64 / s.updates as f64)
                .collect(),
            None => Vec::new(),
        };
        let top = shares.iter().copied().fold(0.0, f64::max);
        let y_top = if top > 0.0 { top * 1.08 } else { 100.0 };
        // Staleness t is centred on t.
        let x_axis = FixedTicks {
            range: -0.5..max_t as f64 + 0.5,
            ticks: ticks(max_t),
        };
        let mut chart = ChartBuilder::on(&body)
            .margin_top(6)
            .margin_right(16)
            .margin_left(4)
            .x_label_area_size(34)
            .y_label_area_size(52)
            .build_cartesian_2d(x_axis, 0.0..y_top)
            .map_err(|e| e.to_string())?;
        let x_tick = |v: &f64| format!("{v:.0}");
        let y_tick = |v: &f64| fmt_tick(*v);
        styled_mesh(&mut chart)
            .disable_x_mesh()
            .y_labels(6)
            .x_label_formatter(&x_tick)
            .y_label_formatter(&y_tick)
            .draw()
            .map_err(|e| e.to_string())?;
        // Bars fill 80% of a slot, but touch when the slots are too narrow to show a gap.
        let (xr, _) = chart.plotting_area().get_pixel_range();
        let slot_px = f64::from(xr.end - xr.start) / (max_t as f64 + 1.0);
        let half = if slot_px >= 5.0 { 0.4 } else { 0.5 };
        chart
            .draw_series(
                shares
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| **s > 0.0)
                    .map(|(t, &s)| {
                        let t = t as f64;
                        Rectangle::new([(t - half, 0.0), (t + half, s)], BAR.filled())
                    }),
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

impl Figure for Staleness {
    fn titles(&self) -> (String, String) {
        ("staleness".to_string(), self.caption.clone())
    }

    fn size(&self) -> (u32, u32) {
        (
            (LEFT + RIGHT + self.cols() as u32 * PANEL_W).max(MIN_WIDTH),
            TOP + self.rows() as u32 * PANEL_H + X_LABEL_H,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (w, h) = root.dim_in_pixel();
        let (_, body) = root.split_vertically(TOP);
        let (grid, x_label) = body.split_vertically(h.saturating_sub(TOP + X_LABEL_H));
        let (y_label, grid) = grid.split_horizontally(LEFT);
        let grid = grid.margin(0, 0, 0, RIGHT);
        let (grid_w, grid_h) = grid.dim_in_pixel();
        if self.panels.is_empty() {
            return no_data(&grid, (grid_w as i32 / 2, grid_h as i32 / 2));
        }
        // The panels' plotting areas start past their margin (4) and tick labels (52).
        let plot_left = (LEFT + 4 + 52) as i32;
        grid_axis_titles(
            (&x_label, X_LABEL),
            (plot_left, w as i32 - RIGHT as i32),
            (&y_label, Y_LABEL),
        )?;
        let cells = grid.split_evenly((self.rows(), self.cols()));
        for (panel, cell) in self.panels.iter().zip(&cells) {
            self.draw_panel(cell, panel)?;
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

    fn sample() -> Staleness {
        Staleness {
            caption: "Staleness of applied updates".to_string(),
            panels: vec![
                ("p = 1".to_string(), vec![1000]),
                ("p = 2".to_string(), vec![480, 500, 20]),
                ("p = 4".to_string(), vec![100, 250, 400, 200, 40, 10]),
                (
                    "p = 8".to_string(),
                    vec![10, 40, 120, 200, 250, 200, 100, 50, 20, 8, 2],
                ),
                (
                    "p = 16".to_string(),
                    (0..24u64)
                        .map(|t| 300 - (t as i64 - 14).unsigned_abs() * 20)
                        .collect(),
                ),
            ],
        }
    }

    #[test]
    fn renders_titles_stats_and_axes() {
        let (out, rgb) = render_checked(&sample());
        assert_has_texts(
            &out.svg,
            &[
                "p = 1",
                "p = 16",
                X_LABEL,
                Y_LABEL,
                "mean 0.00, max 0",
                // (500 + 2 * 20) / 1000
                "mean 0.54, max 2",
            ],
        );
        assert!(has_color(&rgb, BAR));
    }

    #[test]
    fn grid_has_at_most_four_columns() {
        let fig = sample();
        assert_eq!((fig.rows(), fig.cols()), (2, 3));
        assert_eq!(
            fig.size(),
            (LEFT + RIGHT + 3 * PANEL_W, TOP + 2 * PANEL_H + X_LABEL_H)
        );
        let mut nine = fig.clone();
        nine.panels = (0..9).map(|i| (format!("p = {i}"), vec![1, 2])).collect();
        assert_eq!((nine.rows(), nine.cols()), (3, 3));
        nine.panels.truncate(8);
        assert_eq!((nine.rows(), nine.cols()), (2, 4));
        assert_eq!(nine.size().0, LEFT + RIGHT + 4 * PANEL_W);
        let two = Staleness {
            panels: fig.panels[..2].to_vec(),
            ..fig
        };
        assert_eq!((two.rows(), two.cols()), (1, 2));
        assert_eq!(two.size().0, MIN_WIDTH);
    }

    #[test]
    fn stats_are_exact() {
        assert_eq!(stats(&[]), None);
        assert_eq!(stats(&[0, 0]), None);
        let s = stats(&[1, 0, 3, 0, 0]).expect("updates");
        assert_eq!((s.updates, s.max), (4, 2));
        assert_eq!(s.mean, 1.5);
        // Counts near u64::MAX do not overflow.
        let s = stats(&[u64::MAX, u64::MAX]).expect("updates");
        assert_eq!(s.mean, 0.5);
    }

    #[test]
    fn ticks_stay_few_and_start_at_zero() {
        assert_eq!(ticks(0), [0.0]);
        assert_eq!(ticks(3), [0.0, 1.0, 2.0, 3.0]);
        assert_eq!(ticks(10), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        for max in [1, 6, 7, 13, 99, 1000, 123_456, u64::MAX] {
            let t = ticks(max);
            assert!(t.len() as u64 <= MAX_TICKS && t[0] == 0.0, "{max}: {t:?}");
        }
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_deterministic(sample);
    }

    #[test]
    fn degenerate_inputs_render() {
        let cases = [
            Staleness {
                caption: String::new(),
                panels: vec![],
            },
            Staleness {
                caption: String::new(),
                panels: vec![("p = 2".to_string(), vec![])],
            },
            Staleness {
                caption: String::new(),
                panels: vec![
                    ("p = 2".to_string(), vec![0, 0, 0]),
                    ("p = 4".to_string(), vec![7]),
                ],
            },
            Staleness {
                caption: String::new(),
                panels: vec![("long tail".to_string(), {
                    let mut h = vec![0; 5000];
                    h[0] = 10;
                    h[4999] = 1;
                    h
                })],
            },
        ];
        for fig in &cases {
            let (out, _) = render_checked(fig);
            assert!(!out.svg.contains("NaN"));
        }
        assert_has_texts(&render(&cases[0]).expect("renders").svg, &["no data"]);
        for i in [1, 2] {
            let t = texts(&render(&cases[i]).expect("renders").svg);
            assert!(t.iter().any(|s| s == "no updates"), "case {i}: {t:?}");
        }
    }
}
