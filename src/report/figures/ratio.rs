//! The seed paper's figure "The ratio of convergence rate guarantees obtained for various values
//! of alpha and p": for each p, the optimal bound (1) with p learners over the optimal bound with
//! one, `theory::bound::guarantee_ratio`, against alpha on a log10 axis. The seed's theorem speaks
//! only for alpha <= p: a dot on each line marks alpha = p, past which the ratio falls towards 1
//! (linear speedup). It must never draw a point the theory returns as not finite, and never
//! compute the theory itself.

use super::common::{fmt_tick, legend_entry, no_data_over, styled_mesh};
use super::{Figure, color};
use crate::theory::bound::guarantee_ratio;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Guarantee ratio against alpha, one line per p.
#[derive(Clone, Debug, PartialEq)]
pub struct GuaranteeRatio {
    pub p: Vec<u32>,
    pub alpha: Vec<f64>,
}

impl Default for GuaranteeRatio {
    /// p = 2, 4, 8, 16 over 61 alphas spaced evenly in log from 0.1 to 1000 (15 a decade, so
    /// every power of ten is on the grid).
    fn default() -> Self {
        Self {
            p: vec![2, 4, 8, 16],
            alpha: (0..=60)
                .map(|i| 10f64.powf(-1.0 + f64::from(i) / 15.0))
                .collect(),
        }
    }
}

const WIDTH: u32 = 960;
const HEIGHT: u32 = 620;
const LEGEND_W: i32 = 130;
const LEGEND_ROW: i32 = 28;
const MARGIN: u32 = 16;
const X_LABEL: &str = "alpha = sqrt(K sigma^2 / (M L D_f))";
const Y_LABEL: &str = "guarantee ratio (p learners / 1 learner)";

/// Powers of ten inside `[lo, hi]`, with 2 and 5 times them when that leaves fewer than four.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let decades = (lo.log10().floor() as i32)..=(hi.log10().ceil() as i32);
    let within = |m: &[f64]| -> Vec<f64> {
        decades
            .clone()
            .flat_map(|e| m.iter().map(move |k| k * 10f64.powi(e)))
            .filter(|v| (lo..=hi).contains(v))
            .collect()
    };
    let ticks = within(&[1.0]);
    if ticks.len() >= 4 {
        ticks
    } else {
        within(&[1.0, 2.0, 5.0])
    }
}

impl GuaranteeRatio {
    /// The points of the line for `p`: finite ratios at positive alphas, in the order given.
    fn line(&self, p: u32) -> Vec<(f64, f64)> {
        self.alpha
            .iter()
            .filter(|a| a.is_finite() && **a > 0.0)
            .map(|&a| (a, guarantee_ratio(a, p)))
            .filter(|(_, r)| r.is_finite())
            .collect()
    }

    fn lines(&self) -> Vec<(u32, Vec<(f64, f64)>)> {
        self.p.iter().map(|&p| (p, self.line(p))).collect()
    }

    /// Log x range around the drawn alphas, and linear y from 0 over the drawn ratios.
    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let pts: Vec<(f64, f64)> = self.lines().into_iter().flat_map(|(_, l)| l).collect();
        let (x_lo, x_hi) = pts.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
            (lo.min(p.0), hi.max(p.0))
        });
        let x = if x_lo > x_hi {
            (0.1, 10.0)
        } else if x_lo == x_hi {
            (x_lo / 1.5, x_hi * 1.5)
        } else {
            let pad = (x_hi / x_lo).powf(0.02);
            (x_lo / pad, x_hi * pad)
        };
        let y_hi = pts.iter().map(|p| p.1).fold(0.0f64, f64::max);
        let y_lo = pts.iter().map(|p| p.1).fold(0.0f64, f64::min);
        let y = (y_lo * 1.08, if y_hi > 0.0 { y_hi * 1.08 } else { 1.0 });
        (x, y)
    }

    fn draw_legend<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        for (row, &p) in self.p.iter().enumerate() {
            let x = 8;
            let y = MARGIN as i32 + 8 + row as i32 * LEGEND_ROW + LEGEND_ROW / 2;
            // No marker: the lines have none, only a dot at alpha = p.
            legend_entry(area, (x, y), color(row), None, &format!("p = {p}"))?;
        }
        Ok(())
    }
}

impl Figure for GuaranteeRatio {
    fn titles(&self) -> (String, String) {
        (
            "guarantee-ratio".to_string(),
            "The ratio of convergence rate guarantees obtained for various values of alpha and p: \
             the optimal bound with p learners over the optimal bound with one. The seed's theorem \
             covers alpha <= p (dots mark alpha = p); a ratio of 1 is linear speedup."
                .to_string(),
        )
    }

    fn size(&self) -> (u32, u32) {
        (WIDTH, HEIGHT)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (w, _) = root.dim_in_pixel();
        // The legend has its own strip: the lines fill the upper left and the lower right.
        let (plot, legend) = root.split_horizontally(w as i32 - LEGEND_W);
        self.draw_legend(&legend)?;
        let ((x0, x1), (y0, y1)) = self.ranges();
        let mut chart = ChartBuilder::on(&plot)
            .margin(MARGIN)
            .margin_right(24)
            .x_label_area_size(64)
            .y_label_area_size(84)
            .build_cartesian_2d(
                (x0..x1).log_scale().with_key_points(log_ticks(x0, x1)),
                y0..y1,
            )
            .map_err(|e| e.to_string())?;
        // Alpha ticks ("0.1", "2", "1000") are positive on a log axis, so the one case where
        // `fmt_tick` differs from trimming zeros alone, "-0", never arises.
        let tick = |v: &f64| fmt_tick(*v);
        styled_mesh(&mut chart)
            .y_labels(8)
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .x_desc(X_LABEL)
            .y_desc(Y_LABEL)
            .draw()
            .map_err(|e| e.to_string())?;
        let lines = self.lines();
        for (i, (p, pts)) in lines.iter().enumerate() {
            let c = color(i);
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
                .map_err(|e| e.to_string())?;
            let edge = (f64::from(*p), guarantee_ratio(f64::from(*p), *p));
            if edge.1.is_finite() && edge.0 >= x0 && edge.0 <= x1 {
                chart
                    .draw_series(std::iter::once(Circle::new(edge, 5, c.filled())))
                    .map_err(|e| e.to_string())?;
            }
            if let [p] = pts[..] {
                chart
                    .draw_series(std::iter::once(Circle::new(p, 4, c.filled())))
                    .map_err(|e| e.to_string())?;
            }
        }
        if lines.iter().all(|(_, l)| l.is_empty()) {
            no_data_over(root, &chart)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::figures::render;
    use crate::report::figures::testing::{
        assert_deterministic, assert_has_texts, has_color, render_checked,
    };

    #[test]
    fn default_grid_spans_the_seed_figure() {
        let fig = GuaranteeRatio::default();
        assert_eq!(fig.p, [2, 4, 8, 16]);
        assert_eq!(fig.alpha.len(), 61);
        assert!((fig.alpha[0] - 0.1).abs() < 1e-15);
        assert!((fig.alpha[60] - 1000.0).abs() < 1e-9);
        assert!((fig.alpha[15] - 1.0).abs() < 1e-15);
        assert!(fig.alpha.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn lines_span_the_grid_and_fall_towards_one() {
        let fig = GuaranteeRatio::default();
        for (p, line) in fig.lines() {
            assert_eq!(line.len(), fig.alpha.len(), "p = {p}");
            // Staleness only costs: every ratio is at least 1, and largest at the smallest alpha.
            assert!(line.iter().all(|&(_, r)| r >= 1.0 - 1e-12), "p = {p}");
            assert!(line[0].1 >= line[line.len() - 1].1, "p = {p}");
            // Far past alpha = p the speedup is linear again.
            assert!(line[line.len() - 1].1 < 1.1, "p = {p}: {:?}", line.last());
        }
    }

    #[test]
    fn renders_labels_legend_and_log_ticks() {
        let (out, rgb) = render_checked(&GuaranteeRatio::default());
        assert_has_texts(
            &out.svg,
            &[
                X_LABEL, Y_LABEL, "p = 2", "p = 16", "0.1", "1", "10", "1000",
            ],
        );
        for i in 0..4 {
            assert!(has_color(&rgb, color(i)), "line {i}");
        }
    }

    #[test]
    fn log_ticks_fall_back_to_one_two_five() {
        assert_eq!(log_ticks(0.09, 1100.0), [0.1, 1.0, 10.0, 100.0, 1000.0]);
        assert_eq!(log_ticks(0.9, 1100.0), [1.0, 10.0, 100.0, 1000.0]);
        assert_eq!(log_ticks(1.5, 9.0), [2.0, 5.0]);
        assert_eq!(log_ticks(0.9, 11.0), [1.0, 2.0, 5.0, 10.0]);
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_deterministic(GuaranteeRatio::default);
    }

    #[test]
    fn degenerate_inputs_render() {
        let cases = [
            GuaranteeRatio {
                p: vec![],
                alpha: vec![],
            },
            GuaranteeRatio {
                p: vec![4],
                alpha: vec![],
            },
            GuaranteeRatio {
                p: vec![4],
                alpha: vec![2.0],
            },
            GuaranteeRatio {
                p: vec![0, 1, 4],
                alpha: vec![f64::NAN, -1.0, 0.0, f64::INFINITY, 1.0, 1.0, 100.0],
            },
        ];
        for fig in &cases {
            let (out, _) = render_checked(fig);
            assert!(!out.svg.contains("NaN"));
        }
        assert_has_texts(&render(&cases[1]).expect("renders").svg, &["no data"]);
        // Only the finite, positive alphas are kept: 1, 1 and 100.
        let lines = cases[3].lines();
        assert_eq!(lines[1].1.len(), 3);
        assert_eq!(lines[2].1.len(), 3);
    }
}
