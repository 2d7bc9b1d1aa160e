//! Time to accuracy: for each setting (e.g. each algorithm), a horizontal bar of the simulated
//! seconds it took to first reach a target test accuracy, with the value written just past the
//! bar's end. Panels (e.g. one per number of learners p) sit side by side on one shared x scale,
//! so a bar compares across panels as well as within one; rows keep the order given, the same
//! in every panel, and the settings' names are written once, left of the first panel. It draws
//! the seconds it is given and must never reorder, rank or fill them in: a setting that never
//! reached the target, or whose time is negative or not finite, gets no bar and the words "not
//! reached", never a bar of zero or of the whole axis.

use super::common::{
    FixedTicks, LABEL, TICK, centred, fmt_tick, left_aligned, no_data, no_data_over, style,
    styled_mesh, text_width,
};
use super::{Figure, color};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Time to reach a target test accuracy, one horizontal bar per setting, one panel per p.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeToAccuracy {
    pub caption: String,
    /// The target, as a fraction (0.25 = 25 %).
    pub target: f64,
    /// Panels side by side, e.g. ("p = 4", rows); each row a setting's label and its time to the
    /// target in seconds, None when it never reached it.
    pub panels: Vec<(String, Vec<Row>)>,
    /// How the seconds were taken: "simulated" or "measured".
    pub clock: &'static str,
}

/// A setting's label and its seconds to the target, `None` when it never reached it.
pub type Row = (String, Option<f64>);

/// Panel titles, a plotters text size like `common::TICK`.
const TITLE: f64 = 24.0;
const PANEL_W: u32 = 500;
const MIN_WIDTH: u32 = 600;
const MAX_WIDTH: u32 = 1600;
const MIN_HEIGHT: u32 = 360;
/// Height of one row (one setting), in pixels.
const ROW_H: u32 = 44;
/// The thickest a bar is drawn, in pixels, however tall its row is stretched.
const BAR_H: f64 = 26.0;
const TOP: u32 = 8;
const TITLE_H: u32 = 36;
/// Gap between a panel's title strip and its plotting area.
const CHART_TOP: u32 = 4;
const X_TICKS_H: u32 = 34;
const X_TITLE_H: u32 = 40;
/// Room left of a panel's plotting area for its axis line.
const AXIS_W: u32 = 6;
/// Room right of a panel's plotting area, so the last tick label stays whole.
const RIGHT: u32 = 28;
/// Padding on each side of the row labels.
const LABEL_PAD: u32 = 12;
/// The widest the row labels' strip gets, so long names cannot squeeze the panels away.
const MAX_LABEL_W: u32 = 420;
/// Room past the longest bar for its value.
const HEADROOM: f64 = 1.2;
/// Gap between a bar's end (or the axis) and the text written there, in pixels.
const TEXT_GAP: i32 = 6;
/// "not reached" is grey: it is the absence of a value, not another kind of it.
const NOT_REACHED: RGBColor = RGBColor(110, 110, 110);

/// A time that can be drawn honestly as a bar, or `None`.
fn reached(t: Option<f64>) -> Option<f64> {
    t.filter(|v| v.is_finite() && *v >= 0.0)
}

/// Three significant digits, no exponent, then " s": "1.23 s", "12.3 s", "1234 s", "0 s".
fn fmt_secs(v: f64) -> String {
    if v <= 0.0 {
        return "0 s".to_string();
    }
    let decimals = (2 - v.log10().floor() as i32).clamp(0, 6) as usize;
    format!("{v:.decimals$} s")
}

impl TimeToAccuracy {
    /// Rows per panel: the most any panel has.
    fn rows(&self) -> usize {
        self.panels.iter().map(|(_, r)| r.len()).max().unwrap_or(0)
    }

    /// The label of each row position, from the first panel that has that row.
    fn row_labels(&self) -> Vec<&str> {
        (0..self.rows())
            .map(|i| {
                self.panels
                    .iter()
                    .find_map(|(_, rows)| rows.get(i))
                    .map_or("", |(l, _)| l.as_str())
            })
            .collect()
    }

    fn label_w(&self) -> u32 {
        let longest = self
            .row_labels()
            .iter()
            .map(|l| text_width(l, TICK))
            .max()
            .unwrap_or(0);
        (longest + 2 * LABEL_PAD).min(MAX_LABEL_W)
    }

    fn x_top(&self) -> f64 {
        let max = self
            .panels
            .iter()
            .flat_map(|(_, rows)| rows.iter().filter_map(|(_, t)| reached(*t)))
            .fold(0.0, f64::max);
        if max > 0.0 { max * HEADROOM } else { 1.0 }
    }

    fn x_title(&self) -> String {
        if self.target.is_finite() {
            format!(
                "{} seconds to reach {:.1} % test accuracy",
                self.clock,
                self.target * 100.0
            )
        } else {
            format!("{} seconds to reach the target test accuracy", self.clock)
        }
    }

    /// Draws one panel; returns the pixel x range of its plotting area, and the pixel y of each
    /// row's centre, both in `area`'s backend coordinates.
    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        (title, rows): &(String, Vec<Row>),
        n: usize,
        x_top: f64,
    ) -> Result<((i32, i32), Vec<i32>), String> {
        let (title_area, body) = area.split_vertically(TITLE_H);
        // Row `i` is centred on `n - 1 - i`, so the first row is at the top.
        let y_axis = FixedTicks {
            range: -0.5..(n as f64 - 0.5),
            ticks: Vec::new(),
        };
        let mut chart = ChartBuilder::on(&body)
            .margin_top(CHART_TOP)
            .margin_right(RIGHT)
            .x_label_area_size(X_TICKS_H)
            .y_label_area_size(AXIS_W)
            .build_cartesian_2d(0.0..x_top, y_axis)
            .map_err(|e| e.to_string())?;
        let x_tick = |v: &f64| fmt_tick(*v);
        let no_label = |_: &f64| String::new();
        styled_mesh(&mut chart)
            .disable_y_mesh()
            .x_labels(6)
            .x_label_formatter(&x_tick)
            .y_label_formatter(&no_label)
            .draw()
            .map_err(|e| e.to_string())?;

        let (xr, yr) = chart.plotting_area().get_pixel_range();
        let (tx, _) = title_area.get_base_pixel();
        title_area
            .draw_text(
                title,
                &centred(TITLE),
                ((xr.start + xr.end) / 2 - tx, TITLE_H as i32 / 2),
            )
            .map_err(|e| e.to_string())?;
        let centres = (0..n)
            .map(|i| chart.backend_coord(&(0.0, (n - 1 - i) as f64)).1)
            .collect();
        if rows.is_empty() {
            no_data_over(&body, &chart)?;
            return Ok(((xr.start, xr.end), centres));
        }

        let row_px = f64::from((yr.end - yr.start).max(1)) / n as f64;
        let half = (BAR_H / 2.0 / row_px).min(0.3);
        for (i, (_, t)) in rows.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            let text = match reached(*t) {
                Some(t) => {
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(0.0, y - half), (t, y + half)],
                            color(i).filled(),
                        )))
                        .map_err(|e| e.to_string())?;
                    EmptyElement::at((t, y))
                        + Text::new(fmt_secs(t), (TEXT_GAP, 0), left_aligned(TICK))
                }
                None => {
                    EmptyElement::at((0.0, y))
                        + Text::new(
                            "not reached".to_string(),
                            (TEXT_GAP, 0),
                            left_aligned(TICK).color(&NOT_REACHED),
                        )
                }
            };
            chart
                .draw_series(std::iter::once(text))
                .map_err(|e| e.to_string())?;
        }
        Ok(((xr.start, xr.end), centres))
    }
}

impl Figure for TimeToAccuracy {
    fn titles(&self) -> (String, String) {
        ("time-to-accuracy".into(), self.caption.clone())
    }

    fn size(&self) -> (u32, u32) {
        let panels = self.panels.len().max(1) as u32;
        let w = (self.label_w() + panels * PANEL_W).clamp(MIN_WIDTH, MAX_WIDTH);
        let rows = self.rows().max(1) as u32;
        let h = TOP + TITLE_H + CHART_TOP + rows * ROW_H + X_TICKS_H + X_TITLE_H;
        (w, h.max(MIN_HEIGHT))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (w, h) = root.dim_in_pixel();
        let n = self.rows();
        if n == 0 {
            return no_data(root, (w as i32 / 2, h as i32 / 2));
        }
        let body = root.margin(TOP, 0, 0, 0);
        let (_, body_h) = body.dim_in_pixel();
        let (body, x_title) = body.split_vertically(body_h.saturating_sub(X_TITLE_H));
        let label_w = self.label_w();
        let (labels, plots) = body.split_horizontally(label_w);
        let areas = plots.split_evenly((1, self.panels.len()));
        let x_top = self.x_top();
        let mut x_span = (i32::MAX, i32::MIN);
        let mut centres = Vec::new();
        for (i, (panel, area)) in self.panels.iter().zip(&areas).enumerate() {
            let ((left, right), ys) = self.draw_panel(area, panel, n, x_top)?;
            x_span = (x_span.0.min(left), x_span.1.max(right));
            if i == 0 {
                centres = ys;
            }
        }

        let (lx, ly) = labels.get_base_pixel();
        let right_aligned = style(TICK).pos(Pos::new(HPos::Right, VPos::Center));
        for (label, y) in self.row_labels().iter().zip(&centres) {
            labels
                .draw_text(
                    label,
                    &right_aligned,
                    ((label_w - LABEL_PAD) as i32 - lx, y - ly),
                )
                .map_err(|e| e.to_string())?;
        }
        let (tx, _) = x_title.get_base_pixel();
        x_title
            .draw_text(
                &self.x_title(),
                &centred(LABEL),
                ((x_span.0 + x_span.1) / 2 - tx, X_TITLE_H as i32 / 2),
            )
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::figures::render;
    use crate::report::figures::testing::{
        assert_deterministic, assert_has_texts, has_color, render_checked, texts,
    };

    fn sample() -> TimeToAccuracy {
        let panel = |p: u32, scale: f64| {
            (
                format!("p = {p}"),
                vec![
                    ("hogwild".to_string(), Some(1.234 * scale)),
                    ("ssgd".to_string(), Some(4.936 * scale)),
                    ("easgd (elastic averaging)".to_string(), None),
                    ("downpour".to_string(), Some(12.5 * scale)),
                ],
            )
        };
        TimeToAccuracy {
            caption: "Simulated time to 25 % test accuracy".to_string(),
            target: 0.25,
            panels: vec![panel(4, 1.0), panel(16, 2.0)],
            clock: "simulated",
        }
    }

    /// `(x, width)` of every filled rectangle in `c` in `svg`, in drawing order.
    fn rects(svg: &str, c: RGBColor) -> Vec<(f64, f64)> {
        let fill = format!("fill=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2);
        let attr = |tag: &str, name: &str| -> f64 {
            let start = tag.find(&format!(" {name}=\"")).expect(name) + name.len() + 3;
            let end = start + tag[start..].find('"').expect("closing quote");
            tag[start..end].parse().expect("number")
        };
        svg.split("<rect")
            .skip(1)
            .map(|t| &t[..t.find("/>").expect("self-closing rect")])
            .filter(|t| t.contains(&fill))
            .map(|t| (attr(t, "x"), attr(t, "width")))
            .collect()
    }

    #[test]
    fn renders_labels_titles_values_and_not_reached() {
        let (out, rgb) = render_checked(&sample());
        assert_has_texts(
            &out.svg,
            &[
                "hogwild",
                "ssgd",
                "easgd (elastic averaging)",
                "downpour",
                "p = 4",
                "p = 16",
                "1.23 s",
                "4.94 s",
                "12.5 s",
                "2.47 s",
                "25.0 s",
                "not reached",
                "simulated seconds to reach 25.0 % test accuracy",
            ],
        );
        let t = texts(&out.svg);
        // Row labels are written once, left of the first panel only.
        assert_eq!(t.iter().filter(|s| *s == "hogwild").count(), 1, "{t:?}");
        assert_eq!(t.iter().filter(|s| *s == "not reached").count(), 2);
        for i in [0, 1, 3] {
            assert!(has_color(&rgb, color(i)), "row {i} not drawn");
        }
        assert!(
            !has_color(&rgb, color(2)),
            "a row that never reached has a bar"
        );
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_deterministic(sample);
    }

    #[test]
    fn bars_start_at_zero_and_are_proportional_on_one_shared_scale() {
        let out = render(&sample()).expect("renders");
        // Row 0: 1.234 s at p = 4, 2.468 s at p = 16; row 3: 12.5 s and 25 s.
        let short = rects(&out.svg, color(0));
        let long = rects(&out.svg, color(3));
        assert_eq!((short.len(), long.len()), (2, 2), "{short:?} {long:?}");
        let ratio = |a: f64, b: f64| a / b;
        // Within a panel, and across panels (the scale is shared), up to a pixel of rounding.
        let within = ratio(long[0].1, short[0].1);
        assert!((within - 12.5 / 1.234).abs() < 0.15 * within, "{within}");
        let across = ratio(short[1].1, short[0].1);
        assert!((across - 2.0).abs() < 0.1, "{across}");
        assert!((long[1].1 / long[0].1 - 2.0).abs() < 0.01);
        // Both bars of a panel start at the same x, the axis.
        assert_eq!(short[0].0, long[0].0);
        assert_eq!(short[1].0, long[1].0);
        // The longest bar leaves room for its value: the axis runs to 1.2 times it.
        let second_panel_start = short[1].0;
        assert!(long[1].0 + long[1].1 < f64::from(sample().size().0) - 20.0);
        assert!(second_panel_start > long[0].0 + long[0].1);
    }

    #[test]
    fn bad_times_are_not_reached_never_bars() {
        let fig = TimeToAccuracy {
            caption: String::new(),
            target: 0.5,
            panels: vec![(
                "p = 2".to_string(),
                vec![
                    ("nan".to_string(), Some(f64::NAN)),
                    ("inf".to_string(), Some(f64::INFINITY)),
                    ("negative".to_string(), Some(-3.0)),
                    ("zero".to_string(), Some(0.0)),
                    ("fine".to_string(), Some(2.0)),
                ],
            )],
            clock: "measured",
        };
        let (out, rgb) = render_checked(&fig);
        let t = texts(&out.svg);
        assert_eq!(t.iter().filter(|s| *s == "not reached").count(), 3, "{t:?}");
        assert_has_texts(
            &out.svg,
            &[
                "0 s",
                "2.00 s",
                "measured seconds to reach 50.0 % test accuracy",
            ],
        );
        for i in 0..3 {
            assert!(rects(&out.svg, color(i)).is_empty(), "row {i} has a bar");
            assert!(!has_color(&rgb, color(i)), "row {i} has a bar");
        }
        assert!(!out.svg.contains("NaN") && !out.svg.contains("inf s"));
    }

    #[test]
    fn empty_inputs_draw_no_data() {
        let none = TimeToAccuracy {
            caption: String::new(),
            target: 0.25,
            panels: vec![],
            clock: "simulated",
        };
        let no_rows = TimeToAccuracy {
            panels: vec![("p = 4".to_string(), vec![]), ("p = 8".to_string(), vec![])],
            ..none.clone()
        };
        for fig in [&none, &no_rows] {
            let (out, _) = render_checked(fig);
            assert_has_texts(&out.svg, &["no data"]);
            assert_eq!(fig.size().1, MIN_HEIGHT);
        }
        // One empty panel beside a full one: the empty one says so, the other draws.
        let mut mixed = sample();
        mixed.panels[1].1.clear();
        let (out, _) = render_checked(&mixed);
        assert_has_texts(&out.svg, &["no data", "p = 16", "1.23 s"]);
    }

    #[test]
    fn size_follows_panels_rows_and_labels() {
        let fig = sample();
        let (w, h) = fig.size();
        assert_eq!(w, fig.label_w() + 2 * PANEL_W);
        assert!(fig.label_w() >= text_width("easgd (elastic averaging)", TICK));
        assert!(h >= MIN_HEIGHT);
        let tall = |rows: usize| {
            let mut fig = sample();
            for p in &mut fig.panels {
                p.1 = (0..rows).map(|i| (format!("s{i}"), Some(1.0))).collect();
            }
            fig
        };
        // Past the minimum height, each row adds its own height.
        assert!(tall(20).size().1 > MIN_HEIGHT);
        assert_eq!(tall(21).size().1, tall(20).size().1 + ROW_H);
        render_checked(&tall(20));
        let mut wide = sample();
        wide.panels = (0..6).map(|i| (format!("p = {i}"), vec![])).collect();
        wide.panels[0].1 = vec![("a".into(), Some(1.0))];
        assert_eq!(wide.size().0, MAX_WIDTH);
        render_checked(&wide);
    }

    #[test]
    fn values_have_three_significant_digits() {
        assert_eq!(fmt_secs(1.234), "1.23 s");
        assert_eq!(fmt_secs(12.34), "12.3 s");
        assert_eq!(fmt_secs(0.01234), "0.0123 s");
        assert_eq!(fmt_secs(1234.4), "1234 s");
        assert_eq!(fmt_secs(0.0), "0 s");
    }
}
