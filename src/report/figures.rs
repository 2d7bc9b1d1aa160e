//! The report's figures, drawn with plotters into SVG and PNG from the same drawing code.
//! Text is laid out with a font compiled into the binary (Liberation Sans, SIL OFL 1.1), so
//! PNGs render the same on a machine without system fonts. Figures take plain numbers, never
//! files: gathering the numbers from a sweep's results is `report::sweep`'s job.
//!
//! Every figure is deterministic: the same numbers give the same SVG and PNG bytes.

pub mod breakdown;
pub mod convergence;
pub mod ratio;
pub mod speedup;
pub mod staleness;
pub mod time_to_accuracy;
pub mod topology;

mod common;
#[cfg(test)]
pub(crate) mod testing;

use plotters::coord::Shift;
use plotters::prelude::*;
use std::sync::Once;

/// Liberation Sans Regular, registered with plotters as every family the figures ask for.
const FONT: &[u8] = include_bytes!("../../assets/fonts/LiberationSans-Regular.ttf");

/// The family name figures use for all text.
pub const FAMILY: &str = "sans-serif";

/// Failure to draw a figure. Fatal for the figure; the data it was given is left untouched.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    #[error("cannot draw figure {name}: {message}")]
    Draw { name: String, message: String },
    #[error("cannot encode figure {name} as PNG: {message}")]
    Png { name: String, message: String },
}

/// A figure rendered both ways.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// File stem, e.g. `breakdown`; the files are `<name>.svg` and `<name>.png`.
    pub name: String,
    /// One-line caption for the report page.
    pub caption: String,
    pub width: u32,
    pub height: u32,
    pub svg: String,
    pub png: Vec<u8>,
}

/// Something that can draw itself on any plotters backend.
pub trait Figure {
    /// Its file name (without extension) and its caption.
    fn titles(&self) -> (String, String);
    /// Size in pixels (SVG user units and PNG pixels alike).
    fn size(&self) -> (u32, u32);
    /// Draws onto `root`, which is already filled white.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

fn ensure_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        for family in [FAMILY, "serif", "monospace"] {
            // The bytes are a valid TrueType font checked in with the source; a failure here
            // would show on every figure, so it is reported by the drawing that follows.
            let _ = plotters::style::register_font(family, FontStyle::Normal, FONT);
            let _ = plotters::style::register_font(family, FontStyle::Bold, FONT);
        }
    });
}

/// Draws `fig` as SVG and as PNG.
pub fn render(fig: &impl Figure) -> Result<Rendered, FigureError> {
    ensure_font();
    let (w, h) = fig.size();
    let (name, caption) = fig.titles();
    let draw_err = |message: String| FigureError::Draw {
        name: name.clone(),
        message,
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(e.to_string()))?;
        fig.draw(&root).map_err(draw_err)?;
        root.present().map_err(|e| draw_err(e.to_string()))?;
    }
    let mut pixels = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(e.to_string()))?;
        fig.draw(&root).map_err(draw_err)?;
        root.present().map_err(|e| draw_err(e.to_string()))?;
    }
    let png = encode_png(&pixels, w, h).map_err(|message| FigureError::Png {
        name: name.clone(),
        message,
    })?;
    Ok(Rendered {
        name,
        caption,
        width: w,
        height: h,
        svg,
        png,
    })
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(rgb).map_err(|e| e.to_string())?;
        writer.finish().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// The palette lines and bars are drawn from: Okabe and Ito's eight (2008), chosen to stay
/// apart for colour-blind readers, then four darker hues that stay apart from them, so that
/// every algorithm kind of a sweep over all of them has a colour of its own.
pub const PALETTE: [RGBColor; 12] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
    RGBColor(117, 79, 158),
    RGBColor(140, 86, 40),
    RGBColor(120, 120, 120),
    RGBColor(100, 130, 20),
];

pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A line with an optional band: `(x, y, low, high)`; the band is drawn where low < high.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64, f64, f64)>,
}

impl Line {
    /// A line without a band.
    pub fn plain(label: impl Into<String>, xy: impl IntoIterator<Item = (f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points: xy.into_iter().map(|(x, y)| (x, y, y, y)).collect(),
        }
    }
}

/// One small chart of a figure made of several, e.g. "p = 4".
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    pub title: String,
    pub lines: Vec<Line>,
}

#[cfg(test)]
mod palette_tests {
    use super::*;

    #[test]
    fn every_algorithm_kind_of_a_sweep_over_all_of_them_gets_a_colour_of_its_own() {
        let kinds = crate::algorithm::AlgorithmKind::ALL.len();
        let colours: Vec<RGBColor> = (0..kinds).map(color).collect();
        for (i, a) in colours.iter().enumerate() {
            for b in &colours[..i] {
                // Apart by more than a shade in some channel.
                let apart = [(a.0, b.0), (a.1, b.1), (a.2, b.2)]
                    .iter()
                    .any(|&(x, y)| x.abs_diff(y) > 40);
                assert!(apart, "{a:?} and {b:?}");
            }
        }
    }
}
