//! The seed paper's figure "The ratio of convergence rate guarantees obtained for various values
//! of alpha and p": for each p, the optimal bound (1) with p learners over the optimal bound with
//! one, `theory::bound::guarantee_ratio`, against alpha on a log10 axis. The seed's theorem speaks
//! only for alpha <= p, so each line stops there; it must never draw a point outside that domain
//! or one the theory returns as not finite, and never compute the theory itself.

use super::{FAMILY, Figure, color};
use crate::theory::bound::guarantee_ratio;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

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

// Text sizes are plotters sizes; the SVG font size is size / 1.24, so 18 gives 14.5 px.
const TICK: f64 = 18.0;
const LABEL: f64 = 20.0;
const WIDTH: u32 = 960;
const HEIGHT: u32 = 620;
const LEGEND_W: i32 = 130;
const LEGEND_ROW: i32 = 28;
const SAMPLE_W: i32 = 36;
const SAMPLE_GAP: i32 = 8;
const MARGIN: u32 = 16;
const X_LABEL: &str = "alpha = sqrt(K sigma^2 / (M L D_f))";
const Y_LABEL: &str = "guarantee ratio (p learners / 1 learner)";

fn style(size: f64) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size).into_font()).color(&BLACK)
}

/// An alpha tick: "0.1", "2", "1000".
fn fmt_alpha(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

fn fmt_tick(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

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
    /// The points of the line for `p`: finite ratios at alphas in the theorem's domain
    /// `0 < alpha <= p`, in the order given.
    fn line(&self, p: u32) -> Vec<(f64, f64)> {
        self.alpha
            .iter()
            .filter(|a| a.is_finite() && **a > 0.0 && **a <= f64::from(p))
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
            area.draw(&PathElement::new(
                vec![(x, y), (x + SAMPLE_W, y)],
                color(row).stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
            area.draw_text(
                &format!("p = {p}"),
                &style(TICK).pos(Pos::new(HPos::Left, VPos::Center)),
                (x + SAMPLE_W + SAMPLE_GAP, y),
            )
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

impl Figure for GuaranteeRatio {
    fn name(&self) -> String {
        "guarantee-ratio".to_string()
    }

    fn caption(&self) -> String {
        "The ratio of convergence rate guarantees obtained for various values of alpha and p \
         (optimal bound with p learners over the optimal bound with one, for alpha <= p)"
            .to_string()
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
        let x_tick = |v: &f64| fmt_alpha(*v);
        let y_tick = |v: &f64| fmt_tick(*v);
        chart
            .configure_mesh()
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(WHITE)
            .y_labels(8)
            .x_label_formatter(&x_tick)
            .y_label_formatter(&y_tick)
            .label_style(style(TICK))
            .axis_desc_style(style(LABEL))
            .x_desc(X_LABEL)
            .y_desc(Y_LABEL)
            .draw()
            .map_err(|e| e.to_string())?;
        let lines = self.lines();
        for (i, (_, pts)) in lines.iter().enumerate() {
            let c = color(i);
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
                .map_err(|e| e.to_string())?;
            if let [p] = pts[..] {
                chart
                    .draw_series(std::iter::once(Circle::new(p, 4, c.filled())))
                    .map_err(|e| e.to_string())?;
            }
        }
        if lines.iter().all(|(_, l)| l.is_empty()) {
            let (xr, yr) = chart.plotting_area().get_pixel_range();
            root.draw_text(
                "no data",
                &style(LABEL).pos(Pos::new(HPos::Center, VPos::Center)),
                ((xr.start + xr.end) / 2, (yr.start + yr.end) / 2),
            )
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::figures::render;

    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let start = t.find('>')? + 1;
                let end = t.find("</text>")?;
                Some(t[start..end].trim().to_string())
            })
            .collect()
    }

    fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        assert!(png_bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]));
        let decoder = png::Decoder::new(png_bytes);
        let mut reader = decoder.read_info().expect("png header");
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("png frame");
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

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
    fn lines_stop_at_alpha_equal_p() {
        let fig = GuaranteeRatio::default();
        for (p, line) in fig.lines() {
            let last = line.last().expect("points").0;
            assert!(last <= f64::from(p) && last > f64::from(p) / 10f64.powf(1.0 / 15.0));
            // Staleness only costs: every ratio is at least 1, and largest at the smallest alpha.
            assert!(line.iter().all(|&(_, r)| r >= 1.0), "p = {p}");
            assert!(line[0].1 >= line[line.len() - 1].1, "p = {p}");
        }
    }

    #[test]
    fn renders_labels_legend_and_log_ticks() {
        let fig = GuaranteeRatio::default();
        let out = render(&fig).expect("renders");
        let t = texts(&out.svg);
        for want in [X_LABEL, Y_LABEL, "p = 2", "p = 16", "0.1", "0.5", "1", "10"] {
            assert!(t.iter().any(|s| s == want), "missing {want:?} in {t:?}");
        }
        // The axis ends at the largest alpha drawn (16), so 100 is not a tick.
        assert!(!t.iter().any(|s| s == "100"));
        let (w, h, rgb) = decode(&out.png);
        assert_eq!((w, h), fig.size());
        for i in 0..4 {
            let c = color(i);
            assert!(
                rgb.chunks_exact(3).any(|px| px == [c.0, c.1, c.2]),
                "line {i}"
            );
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
        let a = render(&GuaranteeRatio::default()).expect("renders");
        let b = render(&GuaranteeRatio::default()).expect("renders");
        assert_eq!(a.svg, b.svg);
        assert_eq!(a.png, b.png);
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
            let out = render(fig).expect("renders");
            let (w, h, _) = decode(&out.png);
            assert_eq!((w, h), fig.size());
            assert!(!out.svg.contains("NaN"));
        }
        assert!(texts(&render(&cases[1]).expect("renders").svg).contains(&"no data".to_string()));
        // p = 0 has no alpha in its domain; p = 1 and p = 4 keep only the repeated alpha 1.
        let lines = cases[3].lines();
        assert!(lines[0].1.is_empty());
        assert_eq!(lines[1].1.len(), 2);
        assert_eq!(lines[2].1.len(), 2);
    }
}
