//! What the figures' tests share: reading back the text of a rendered SVG and the pixels of a
//! rendered PNG, and the checks every figure must pass. Test-only; it must never be needed to
//! draw a figure.

use super::{Figure, Rendered, render};
use plotters::style::RGBColor;

/// The text of every `<text>` element, in drawing order.
pub(crate) fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let start = t.find('>')? + 1;
            let end = t.find("</text>")?;
            Some(t[start..end].trim().to_string())
        })
        .collect()
}

/// Width, height and RGB bytes of a PNG.
pub(crate) fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    assert!(png_bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]));
    let decoder = png::Decoder::new(png_bytes);
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("png frame");
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// How many pixels of `rgb` are exactly `c`.
pub(crate) fn count_color(rgb: &[u8], c: RGBColor) -> usize {
    rgb.chunks_exact(3)
        .filter(|px| *px == [c.0, c.1, c.2])
        .count()
}

pub(crate) fn has_color(rgb: &[u8], c: RGBColor) -> bool {
    rgb.chunks_exact(3).any(|px| px == [c.0, c.1, c.2])
}

/// Renders `fig`, checks that the PNG decodes at the figure's size, and returns the rendering
/// with the PNG's RGB bytes.
pub(crate) fn render_checked(fig: &impl Figure) -> (Rendered, Vec<u8>) {
    let out = render(fig).expect("renders");
    let (w, h, rgb) = decode(&out.png);
    assert_eq!((w, h), fig.size());
    assert_eq!((out.width, out.height), (w, h));
    (out, rgb)
}

/// Two figures made alike render to the same bytes.
pub(crate) fn assert_deterministic<F: Figure>(make: impl Fn() -> F) {
    let a = render(&make()).expect("renders");
    let b = render(&make()).expect("renders");
    assert_eq!(a.svg, b.svg);
    assert_eq!(a.png, b.png);
}

/// Each of `want` is the whole text of some `<text>` element of `svg`.
pub(crate) fn assert_has_texts(svg: &str, want: &[&str]) {
    let t = texts(svg);
    for w in want {
        assert!(t.iter().any(|s| s == w), "missing {w:?} in {t:?}");
    }
}
