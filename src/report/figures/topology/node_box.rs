//! How one box of the topology figure is drawn: filled with its kind's colour, a second box
//! peeking out behind it for a run of nodes, a thick outline for a learner and a double one for
//! a server shard. The legend's samples are drawn by the same code, so they always match.
//!
//! It draws where it is told and never decides where a box goes or how wide it is.

use super::px;
use crate::machine::topology::NodeKind;
use crate::report::figures::PALETTE;
use plotters::coord::Shift;
use plotters::prelude::*;

/// How a box is drawn.
#[derive(Clone, Copy)]
pub(crate) struct Look {
    pub(crate) kind: NodeKind,
    /// Several nodes drawn as one.
    pub(crate) run: bool,
    pub(crate) learner: bool,
    pub(crate) shard: bool,
}

/// A box centred on `x` with its top at `y`: filled with its kind's colour, a second box
/// peeking out behind it for a run, and a thick outline (double for a shard) when highlighted.
pub(crate) fn node_box<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    look: Look,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
) -> Result<(), String> {
    let base = kind_color(look.kind);
    let fill = blend(base, WHITE, 0.72);
    let edge = blend(base, BLACK, 0.3);
    let shape = |dx: f64, dy: f64, grow: f64| {
        rounded(
            x - w / 2.0 + dx - grow,
            y + dy - grow,
            x + w / 2.0 + dx + grow,
            y + h + dy + grow,
            5.0_f64.min(w / 4.0),
        )
    };
    let mut layers = vec![];
    if look.run {
        layers.push(shape(4.0, -4.0, 0.0));
    }
    layers.push(shape(0.0, 0.0, 0.0));
    for pts in layers {
        root.draw(&Polygon::new(pts.clone(), fill.filled()))
            .map_err(|e| e.to_string())?;
        root.draw(&PathElement::new(pts, edge.stroke_width(1)))
            .map_err(|e| e.to_string())?;
    }
    if look.learner || look.shard {
        root.draw(&PathElement::new(
            shape(0.0, 0.0, 1.0),
            BLACK.stroke_width(3),
        ))
        .map_err(|e| e.to_string())?;
    }
    if look.shard {
        root.draw(&PathElement::new(
            shape(0.0, 0.0, 5.0),
            BLACK.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A closed rectangle outline with corners rounded by radius `r`.
fn rounded(x0: f64, y0: f64, x1: f64, y1: f64, r: f64) -> Vec<(i32, i32)> {
    let corners = [
        (x1 - r, y0 + r, -90.0),
        (x1 - r, y1 - r, 0.0),
        (x0 + r, y1 - r, 90.0),
        (x0 + r, y0 + r, 180.0),
    ];
    let mut pts = vec![];
    for (cx, cy, start) in corners {
        for k in 0..=3 {
            let a = (start + 30.0 * k as f64).to_radians();
            pts.push(px(cx + r * a.cos(), cy + r * a.sin()));
        }
    }
    pts.dedup();
    if let Some(&first) = pts.first() {
        pts.push(first);
    }
    pts
}

fn kind_color(kind: NodeKind) -> RGBColor {
    let i = match kind {
        NodeKind::CpuSocket => 0,
        NodeKind::NetSwitch => 1,
        NodeKind::Gpu => 2,
        NodeKind::Nic => 3,
        NodeKind::PcieRoot => 4,
        NodeKind::CpuCore => 5,
        NodeKind::PcieSwitch => 6,
        NodeKind::NvlinkSwitch => 7,
    };
    PALETTE[i]
}

/// `c` moved towards `to` by `t` in [0, 1].
fn blend(c: RGBColor, to: RGBColor, t: f64) -> RGBColor {
    let f = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * t).round() as u8;
    RGBColor(f(c.0, to.0), f(c.1, to.1), f(c.2, to.2))
}
