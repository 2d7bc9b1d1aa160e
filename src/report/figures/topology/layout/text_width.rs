//! The width of a line of text, from a table of the embedded font's advance widths, so the
//! layout can size boxes and wrap the legend without a drawing backend.
//!
//! It must never come out narrower than plotters draws the text, or labels would spill out of
//! their boxes; a little wide is fine.

/// Width in pixels of `s` drawn at plotters size `size` with the embedded Liberation Sans,
/// which has Arial's advance widths (per 1000 em, below). Plotters draws PNG text at an em of
/// size / 1.117 and SVG text at size / 1.24, so this bounds both. Kerning is ignored, and a
/// character not in the table counts as a whole em.
pub(crate) fn text_width(s: &str, size: f64) -> f64 {
    #[rustfmt::skip]
    const ADVANCE: [u16; 95] = [
        278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
        556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
        1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
        667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
        333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
        556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
    ];
    let units: u32 = s
        .chars()
        .map(|c| {
            (c as usize)
                .checked_sub(32)
                .and_then(|i| ADVANCE.get(i))
                .map_or(
                    match c {
                        '–' | 'µ' => 556,
                        _ => 1000,
                    },
                    |&a| u32::from(a),
                )
        })
        .sum();
    units as f64 * size / 1117.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::figures::topology::fixtures::{figure, power8};
    use crate::report::figures::topology::layout::LABEL_SIZE;
    use crate::report::figures::{FAMILY, render};
    use plotters::style::IntoFont;

    #[test]
    fn text_width_matches_the_embedded_font() {
        // Drawing a figure registers the embedded font with plotters.
        let t = power8();
        render(&figure(&t)).unwrap();
        for s in [
            "gpu12",
            "node15-pcie-switch",
            "chip0-core1–11",
            "pcie-host: 12 GB/s, 2 µs",
        ] {
            let (w, _) = (FAMILY, LABEL_SIZE).into_font().box_size(s).unwrap();
            // Plotters truncates to whole pixels and kerns a few pairs ("11"), which only
            // narrows the text: the estimate may be a little wide, never narrow.
            let (mine, w) = (text_width(s, LABEL_SIZE), w as f64);
            assert!(mine + 0.5 >= w && mine <= w + 2.0, "{s}: {mine} vs {w}");
        }
    }
}
