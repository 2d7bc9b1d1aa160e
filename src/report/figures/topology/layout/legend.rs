//! Where the legend's entries go: a row of node kinds and highlights, then the link classes on
//! a row of their own, each row wrapped at the figure's width.
//!
//! It only lists what the picture shows, in a fixed order, and places it; it must never draw.

use super::{Item, LEGEND_ROW, LEGEND_SIZE, LinkClass, MARGIN, text_width};
use crate::machine::topology::NodeKind;

/// What an entry shows beside its label.
pub(crate) enum Swatch {
    Kind(NodeKind),
    Learner,
    Shard,
    /// A link class, by index.
    Link(usize),
}

pub(crate) struct LegendEntry {
    /// None for a row's heading.
    pub(crate) swatch: Option<Swatch>,
    pub(crate) label: String,
    pub(crate) x: f64,
    pub(crate) y: f64,
}

/// The entries for a figure `width` wide, in rows from `top`, and the number of rows.
pub(super) fn place(
    items: &[Item],
    classes: &[LinkClass],
    width: f64,
    top: f64,
) -> (Vec<LegendEntry>, usize) {
    let mut groups: Vec<Vec<(Swatch, String)>> = vec![vec![], vec![]];
    for kind in NodeKind::ALL {
        if items.iter().any(|i| i.kind == kind) {
            groups[0].push((Swatch::Kind(kind), kind.name().to_string()));
        }
    }
    if items.iter().any(|i| i.learner) {
        groups[0].push((Swatch::Learner, "learner".into()));
    }
    if items.iter().any(|i| i.shard) {
        groups[0].push((Swatch::Shard, "server shard".into()));
    }
    for (c, class) in classes.iter().enumerate() {
        groups[1].push((Swatch::Link(c), class.label.clone()));
    }
    let mut legend = vec![];
    let mut rows = 0;
    for (g, entries) in groups.into_iter().enumerate() {
        if entries.is_empty() {
            continue;
        }
        let heading = ["Nodes", "Links"][g];
        let start = MARGIN + text_width(heading, LEGEND_SIZE) + 12.0;
        let mut x = start;
        rows += 1;
        legend.push(LegendEntry {
            swatch: None,
            label: heading.into(),
            x: MARGIN,
            y: top + (rows - 1) as f64 * LEGEND_ROW,
        });
        for (swatch, label) in entries {
            let w = 34.0 + text_width(&label, LEGEND_SIZE) + 22.0;
            if x > start && x + w > width - MARGIN {
                x = start;
                rows += 1;
            }
            legend.push(LegendEntry {
                swatch: Some(swatch),
                label,
                x,
                y: top + (rows - 1) as f64 * LEGEND_ROW,
            });
            x += w;
        }
    }
    (legend, rows)
}
