//! Where everything in the topology figure goes, computed here without graphviz. Layers are
//! breadth-first depths from the top of the machine (the spine switches of a cluster, else the
//! CPU sockets); leaves are spaced evenly in depth-first order and every other box is centred
//! over the boxes below it, then pushed apart just enough not to overlap. A run of many sibling
//! leaves of one kind (a socket's cores) is one box, so a large host does not drown the picture.
//!
//! It only reads the topology and turns it into numbers: it must never draw, and never let
//! iteration order leak in, so the same topology and highlights give the same layout.

mod boxes;
mod legend;
mod link_classes;
mod place;
mod text_width;

pub(crate) use boxes::Item;
pub(crate) use legend::{LegendEntry, Swatch};
pub(crate) use link_classes::LinkClass;
pub(crate) use text_width::text_width;

use super::TopologyFigure;
use petgraph::graph::NodeIndex;
use std::collections::BTreeSet;

/// Font size of node labels and of the legend, in plotters' units (the PNG's em is size / 1.117,
/// the SVG's size / 1.24).
pub(crate) const LABEL_SIZE: f64 = 13.0;
pub(crate) const LEGEND_SIZE: f64 = 14.0;
pub(crate) const BOX_H: f64 = 34.0;
/// Vertical distance between the tops of two layers.
pub(crate) const LAYER_H: f64 = 88.0;
pub(crate) const MARGIN: f64 = 24.0;
/// Room for the title above the first layer.
pub(crate) const TOP: f64 = 76.0;
/// Room below the last layer for links drawn as arcs under it.
pub(crate) const ARC_ROOM: f64 = 36.0;
pub(crate) const LEGEND_ROW: f64 = 26.0;
pub(crate) const MIN_WIDTH: f64 = 900.0;
/// Beyond this the picture is squeezed, and labels that no longer fit are left out.
pub(crate) const MAX_WIDTH: f64 = 8000.0;
/// Beyond this many boxes, or layers, the figure only says the machine is too large to draw
/// (the bitmap alone would take gigabytes).
const MAX_ITEMS: usize = 4000;
const MAX_LAYERS: usize = 60;

pub(crate) struct Layout {
    pub(crate) items: Vec<Item>,
    /// (item, item with a higher index, link class), each once.
    pub(crate) edges: Vec<(usize, usize, usize)>,
    pub(crate) classes: Vec<LinkClass>,
    /// Items of each depth, left to right.
    pub(crate) layers: Vec<Vec<usize>>,
    pub(crate) legend: Vec<LegendEntry>,
    pub(crate) width: f64,
    pub(crate) height: f64,
    /// Why the machine is not drawn, when it is too large.
    pub(crate) refused: Option<String>,
}

impl Layout {
    pub(crate) fn new(fig: &TopologyFigure) -> Layout {
        let t = fig.topology;
        let n = t.node_count();
        let (links, classes) = link_classes::link_classes(t);
        let mut adj: Vec<Vec<(usize, usize)>> = vec![vec![]; n];
        for &(a, b, c) in &links {
            adj[a].push((b, c));
            adj[b].push((a, c));
        }
        let marked = |set: &[NodeIndex]| -> BTreeSet<usize> {
            set.iter().map(|v| v.index()).filter(|&i| i < n).collect()
        };
        let (learners, shards) = (marked(&fig.learners), marked(&fig.shards));
        let mut items = boxes::make_items(t, &adj, &learners, &shards);
        let mut item_of = vec![0; n];
        for (i, item) in items.iter().enumerate() {
            for &m in &item.members {
                item_of[m] = i;
            }
        }
        let edges: Vec<(usize, usize, usize)> = links
            .iter()
            .map(|&(a, b, c)| {
                let (x, y) = (item_of[a], item_of[b]);
                (x.min(y), x.max(y), c)
            })
            .filter(|&(x, y, _)| x != y)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if items.len() > MAX_ITEMS {
            return Layout::refused(format!(
                "{} boxes after grouping, more than the {MAX_ITEMS} this figure draws",
                items.len()
            ));
        }
        let mut nbrs: Vec<Vec<usize>> = vec![vec![]; items.len()];
        for &(a, b, _) in &edges {
            nbrs[a].push(b);
            nbrs[b].push(a);
        }
        for v in &mut nbrs {
            v.sort_unstable();
            v.dedup();
        }
        place::place(&mut items, &nbrs);
        let deepest = items.iter().map(|i| i.depth).max().unwrap_or(0);
        if deepest >= MAX_LAYERS {
            return Layout::refused(format!(
                "{} layers deep, more than the {MAX_LAYERS} this figure draws",
                deepest + 1
            ));
        }
        let mut layers: Vec<Vec<usize>> = vec![];
        for (i, item) in items.iter().enumerate() {
            if layers.len() <= item.depth {
                layers.resize(item.depth + 1, vec![]);
            }
            layers[item.depth].push(i);
        }
        for layer in &mut layers {
            layer.sort_by(|&a, &b| items[a].x.total_cmp(&items[b].x).then(a.cmp(&b)));
        }
        let width = fit_width(&mut items);
        let legend_top =
            TOP + layers.len().saturating_sub(1) as f64 * LAYER_H + BOX_H + ARC_ROOM + 12.0;
        let (legend, rows) = legend::place(&items, &classes, width, legend_top);
        Layout {
            items,
            edges,
            classes,
            layers,
            legend,
            width,
            height: (legend_top + rows as f64 * LEGEND_ROW + MARGIN).ceil(),
            refused: None,
        }
    }

    fn refused(why: String) -> Layout {
        Layout {
            items: vec![],
            edges: vec![],
            classes: vec![],
            layers: vec![],
            legend: vec![],
            width: MIN_WIDTH,
            height: 140.0,
            refused: Some(why),
        }
    }

    /// The y of the top of item `i`'s box.
    pub(crate) fn top(&self, i: usize) -> f64 {
        TOP + self.items[i].depth as f64 * LAYER_H
    }

    /// Whether item `i` has a link to the layer below it.
    pub(crate) fn has_down(&self, i: usize) -> bool {
        let d = self.items[i].depth;
        self.edges.iter().any(|&(a, b, _)| {
            (a == i && self.items[b].depth == d + 1) || (b == i && self.items[a].depth == d + 1)
        })
    }
}

/// Moves the boxes to start at the margin, squeezes them if wider than `MAX_WIDTH`, centres
/// them if narrower than `MIN_WIDTH`, and returns the figure's width.
fn fit_width(items: &mut [Item]) -> f64 {
    let lo = items
        .iter()
        .map(|i| i.x - i.width / 2.0)
        .fold(f64::INFINITY, f64::min);
    let hi = items
        .iter()
        .map(|i| i.x + i.width / 2.0)
        .fold(f64::NEG_INFINITY, f64::max);
    let content = (hi - lo).max(0.0);
    let scale = if content + 2.0 * MARGIN > MAX_WIDTH {
        (MAX_WIDTH - 2.0 * MARGIN) / content
    } else {
        1.0
    };
    let width = (content * scale + 2.0 * MARGIN)
        .clamp(MIN_WIDTH, MAX_WIDTH)
        .ceil();
    let left = (width - content * scale) / 2.0;
    for item in items.iter_mut() {
        item.x = left + (item.x - lo) * scale;
        item.width = (item.width * scale).max(3.0);
    }
    width
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::topology::Topology;
    use crate::report::figures::topology::fixtures::{
        assert_no_overlap, figure, generated, power8,
    };

    /// The box that draws the node named `id`.
    fn box_of<'a>(layout: &'a Layout, t: &Topology, id: &str) -> &'a Item {
        let n = t.find(id).unwrap().index();
        layout
            .items
            .iter()
            .find(|i| i.members.contains(&n))
            .unwrap()
    }

    #[test]
    fn power8_k80_is_drawn_as_a_tree_under_the_sockets() {
        let t = power8();
        let fig = figure(&t);
        let layout = Layout::new(&fig);
        let item = |id: &str| box_of(&layout, &t, id);
        assert_eq!(item("p8-chip0").depth, 0);
        assert_eq!(item("p8-chip1").depth, 0);
        assert_eq!(item("gpu0").depth, 6);
        // Each board switch sits centred over its two GPUs, each tree switch over its two
        // children, and the GPUs are in order left to right.
        let gpu: fn(usize) -> String = |i| format!("gpu{i}");
        let board: fn(usize) -> String = |i| format!("k80-{i}-switch");
        let tree: fn(usize) -> String = |i| format!("tree-l2-{i}");
        let levels = [(gpu, board, 8), (board, tree, 4)];
        for (child, parent, count) in levels {
            for k in 0..count {
                let (a, b) = (item(&child(2 * k)), item(&child(2 * k + 1)));
                let sw = item(&parent(k));
                assert!((sw.x - (a.x + b.x) / 2.0).abs() < 1e-6, "{}", parent(k));
                assert!(a.x < b.x, "{} left of {}", child(2 * k), child(2 * k + 1));
            }
        }
        // The 24 cores are two boxes of 12.
        assert_eq!(layout.items.len(), t.node_count() - 2 * 11);
        assert_no_overlap(&fig);
    }

    #[test]
    fn fat_tree_k4_puts_the_spine_on_top_and_keeps_pods_together() {
        let t = generated("fat-tree:k=4");
        let layout = Layout::new(&figure(&t));
        let x = |id: &str| {
            let i = box_of(&layout, &t, id);
            (i.depth, i.x)
        };
        for c in 0..4 {
            assert_eq!(x(&format!("core-sw{c}")).0, 0);
        }
        // Pods left to right, each pod's switches between its own hosts.
        for pod in 0..4 {
            let (lo, hi) = (
                x(&format!("node{}-nic", 4 * pod)).1,
                x(&format!("node{}-nic", 4 * pod + 3)).1,
            );
            for sw in ["agg0", "agg1", "edge0", "edge1"] {
                let (d, p) = x(&format!("pod{pod}-{sw}"));
                assert!(d == 1 || d == 2);
                assert!(
                    lo <= p && p <= hi,
                    "pod{pod}-{sw} at {p} outside {lo}..{hi}"
                );
            }
        }
        assert_no_overlap(&figure(&t));
    }

    #[test]
    fn a_large_cluster_is_squeezed_to_the_widest_figure() {
        let t = generated("fat-tree:k=8");
        let fig = figure(&t);
        let layout = Layout::new(&fig);
        assert_eq!(layout.width, MAX_WIDTH);
        assert!(layout.refused.is_none());
        assert_no_overlap(&fig);
    }
}
