//! The machine's topology as a layered picture: devices as boxes coloured by kind, links as lines
//! coloured by class and thickened with bandwidth, learner GPUs and server-shard cores outlined.
//!
//! The layout is computed here, without graphviz. Layers are breadth-first depths from the top of
//! the machine (the spine switches of a cluster, else the CPU sockets); leaves are spaced evenly
//! in depth-first order and every other box is centred over the boxes below it, then pushed
//! apart just enough not to overlap. A run of many sibling leaves of one kind (a socket's cores)
//! is drawn as one box, so a large host does not drown the picture.
//!
//! It only reads the topology, and must never let iteration order leak in: the same topology
//! and highlights give the same bytes.

use super::{FAMILY, Figure, PALETTE, color};
use crate::machine::topology::{ChannelId, NodeKind, Topology};
use petgraph::graph::NodeIndex;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A machine's topology, with the GPUs that run learners and the cores that serve shards.
pub struct TopologyFigure<'a> {
    pub topology: &'a Topology,
    pub learners: Vec<NodeIndex>,
    pub shards: Vec<NodeIndex>,
}

impl Figure for TopologyFigure<'_> {
    fn name(&self) -> String {
        "topology".into()
    }

    fn caption(&self) -> String {
        format!(
            "Topology of the machine {}: {} nodes, {} links. Boxes are devices coloured by kind \
             (a run of many sibling cores is one box), lines are links coloured by class and \
             thicker for more bandwidth; thick outlines mark learner GPUs and server-shard cores.",
            self.topology.name(),
            self.topology.node_count(),
            self.topology.link_count()
        )
    }

    fn size(&self) -> (u32, u32) {
        let layout = Layout::new(self);
        (layout.width as u32, layout.height as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        Layout::new(self).draw(self.topology, root)
    }
}

/// Font size of node labels and of the legend, in plotters' units (the PNG's em is size / 1.117,
/// the SVG's size / 1.24).
const LABEL_SIZE: f64 = 13.0;
const LEGEND_SIZE: f64 = 14.0;
const BOX_H: f64 = 34.0;
/// Vertical distance between the tops of two layers.
const LAYER_H: f64 = 88.0;
/// Least horizontal space between two boxes of a layer.
const GAP: f64 = 14.0;
const COMPONENT_GAP: f64 = 40.0;
const MIN_BOX_W: f64 = 56.0;
/// A label wider than this is broken in two at a `-`.
const WRAP_W: f64 = 50.0;
const MARGIN: f64 = 24.0;
/// Room for the title above the first layer.
const TOP: f64 = 76.0;
/// Room below the last layer for links drawn as arcs under it.
const ARC_ROOM: f64 = 36.0;
const LEGEND_ROW: f64 = 26.0;
const MIN_WIDTH: f64 = 900.0;
/// Beyond this the picture is squeezed, and labels that no longer fit are left out.
const MAX_WIDTH: f64 = 8000.0;
/// Beyond this many boxes, or layers, the figure only says the machine is too large to draw
/// (the bitmap alone would take gigabytes).
const MAX_ITEMS: usize = 4000;
const MAX_LAYERS: usize = 60;
/// A run of more sibling leaves than this is drawn as one box: cores, which come by the dozen
/// and are alike, and any other kind.
const RUN_OF_CORES: usize = 4;
const RUN_OF_OTHERS: usize = 8;
/// Highlighted members of a run drawn as their own boxes, beside the run, at most.
const MAX_SINGLES: usize = 4;
/// Kinds whose nodes are the top of the picture, most preferred first.
const TOP_KINDS: [NodeKind; 8] = [
    NodeKind::NetSwitch,
    NodeKind::CpuSocket,
    NodeKind::NvlinkSwitch,
    NodeKind::PcieRoot,
    NodeKind::PcieSwitch,
    NodeKind::Nic,
    NodeKind::CpuCore,
    NodeKind::Gpu,
];

/// One box: a node, or a run of sibling leaves of one kind drawn together.
struct Item {
    kind: NodeKind,
    /// Node indices, ascending; more than one for a run.
    members: Vec<usize>,
    lines: Vec<String>,
    learner: bool,
    shard: bool,
    width: f64,
    depth: usize,
    x: f64,
}

impl Item {
    fn look(&self) -> Look {
        Look {
            kind: self.kind,
            run: self.members.len() > 1,
            learner: self.learner,
            shard: self.shard,
        }
    }
}

/// Links with the same class name, bandwidth and latency share a colour and a legend entry.
struct LinkClass {
    label: String,
    stroke: u32,
    color: RGBColor,
}

enum Swatch {
    Kind(NodeKind),
    Learner,
    Shard,
    Link(usize),
}

struct LegendEntry {
    /// None for a row's heading.
    swatch: Option<Swatch>,
    label: String,
    x: f64,
    y: f64,
}

struct Layout {
    items: Vec<Item>,
    /// (item, item with a higher index, link class), each once.
    edges: Vec<(usize, usize, usize)>,
    classes: Vec<LinkClass>,
    /// Items of each depth, left to right.
    layers: Vec<Vec<usize>>,
    legend: Vec<LegendEntry>,
    width: f64,
    height: f64,
    /// Why the machine is not drawn, when it is too large.
    refused: Option<String>,
}

impl Layout {
    fn new(fig: &TopologyFigure) -> Layout {
        let t = fig.topology;
        let n = t.node_count();
        let (links, classes) = link_classes(t);
        let mut adj: Vec<Vec<(usize, usize)>> = vec![vec![]; n];
        for &(a, b, c) in &links {
            adj[a].push((b, c));
            adj[b].push((a, c));
        }
        let marked = |set: &[NodeIndex]| -> BTreeSet<usize> {
            set.iter().map(|v| v.index()).filter(|&i| i < n).collect()
        };
        let (learners, shards) = (marked(&fig.learners), marked(&fig.shards));
        let mut items = make_items(t, &adj, &learners, &shards);
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
        place(&mut items, &nbrs);
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
        let mut layout = Layout {
            items,
            edges,
            classes,
            layers,
            legend: vec![],
            width,
            height: 0.0,
            refused: None,
        };
        let legend_top =
            TOP + layout.layers.len().saturating_sub(1) as f64 * LAYER_H + BOX_H + ARC_ROOM + 12.0;
        let rows = layout.place_legend(legend_top);
        layout.height = (legend_top + rows as f64 * LEGEND_ROW + MARGIN).ceil();
        layout
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

    /// Lays the legend out in rows from `top`: node kinds and highlights, then link classes on
    /// a row of their own. Returns the number of rows.
    fn place_legend(&mut self, top: f64) -> usize {
        let mut groups: Vec<Vec<(Swatch, String)>> = vec![vec![], vec![]];
        for kind in NodeKind::ALL {
            if self.items.iter().any(|i| i.kind == kind) {
                groups[0].push((Swatch::Kind(kind), kind.name().to_string()));
            }
        }
        if self.items.iter().any(|i| i.learner) {
            groups[0].push((Swatch::Learner, "learner".into()));
        }
        if self.items.iter().any(|i| i.shard) {
            groups[0].push((Swatch::Shard, "server shard".into()));
        }
        for (c, class) in self.classes.iter().enumerate() {
            groups[1].push((Swatch::Link(c), class.label.clone()));
        }
        let mut rows = 0;
        for (g, entries) in groups.into_iter().enumerate() {
            if entries.is_empty() {
                continue;
            }
            let heading = ["Nodes", "Links"][g];
            let start = MARGIN + text_width(heading, LEGEND_SIZE) + 12.0;
            let mut x = start;
            rows += 1;
            self.legend.push(LegendEntry {
                swatch: None,
                label: heading.into(),
                x: MARGIN,
                y: top + (rows - 1) as f64 * LEGEND_ROW,
            });
            for (swatch, label) in entries {
                let w = 34.0 + text_width(&label, LEGEND_SIZE) + 22.0;
                if x > start && x + w > self.width - MARGIN {
                    x = start;
                    rows += 1;
                }
                self.legend.push(LegendEntry {
                    swatch: Some(swatch),
                    label,
                    x,
                    y: top + (rows - 1) as f64 * LEGEND_ROW,
                });
                x += w;
            }
        }
        rows
    }

    fn top(&self, i: usize) -> f64 {
        TOP + self.items[i].depth as f64 * LAYER_H
    }

    fn draw<DB: DrawingBackend>(
        &self,
        t: &Topology,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), String> {
        let text = |s: &str, x: f64, y: f64, size: f64, c: &RGBColor, h: HPos| {
            let style = (FAMILY, size)
                .into_font()
                .color(c)
                .pos(Pos::new(h, VPos::Center));
            // Plotters centres a line's baseline rather than its letters; two pixels down
            // centres lower-case and digits in both the PNG and the SVG to within a pixel.
            root.draw(&Text::new(s.to_string(), px(x, y + 2.0), style))
                .map_err(|e| e.to_string())
        };
        let grey = RGBColor(90, 90, 90);
        text(
            &format!("Topology of {}", t.name()),
            MARGIN,
            22.0,
            22.0,
            &BLACK,
            HPos::Left,
        )?;
        if let Some(why) = &self.refused {
            text(&t.summary(), MARGIN, 60.0, LEGEND_SIZE, &grey, HPos::Left)?;
            let msg = format!("Not drawn: {why}.");
            return text(&msg, MARGIN, 90.0, LEGEND_SIZE, &BLACK, HPos::Left);
        }
        let sub = if t.description().is_empty() {
            t.summary()
        } else {
            format!(
                "{} ({} nodes, {} links)",
                t.description(),
                t.node_count(),
                t.link_count()
            )
        };
        text(&sub, MARGIN, 48.0, LEGEND_SIZE, &grey, HPos::Left)?;
        let mut slot = vec![0; self.items.len()];
        for layer in &self.layers {
            for (k, &i) in layer.iter().enumerate() {
                slot[i] = k;
            }
        }
        for &(a, b, c) in &self.edges {
            let class = &self.classes[c];
            let style = class.color.stroke_width(class.stroke);
            let (ia, ib) = (&self.items[a], &self.items[b]);
            let points = if ia.depth != ib.depth {
                let (up, down) = if ia.depth < ib.depth { (a, b) } else { (b, a) };
                vec![
                    px(self.items[up].x, self.top(up) + BOX_H),
                    px(self.items[down].x, self.top(down)),
                ]
            } else {
                let (l, r) = if ia.x <= ib.x { (ia, ib) } else { (ib, ia) };
                let y = self.top(a);
                if slot[a].abs_diff(slot[b]) == 1 {
                    let mid = y + BOX_H / 2.0;
                    vec![px(l.x + l.width / 2.0, mid), px(r.x - r.width / 2.0, mid)]
                } else {
                    // Over the boxes in between: above the layer, or below it where neither
                    // end has anything below.
                    let below = !self.has_down(a) && !self.has_down(b);
                    let span = slot[a].abs_diff(slot[b]) as f64;
                    let rise = (8.0 * span - 2.0).min(ARC_ROOM - 6.0);
                    let (y0, dir) = if below { (y + BOX_H, 1.0) } else { (y, -1.0) };
                    (0..=24)
                        .map(|k| {
                            let s = k as f64 / 24.0;
                            let x = l.x + (r.x - l.x) * s;
                            px(x, y0 + dir * rise * 4.0 * s * (1.0 - s))
                        })
                        .collect()
                }
            };
            root.draw(&PathElement::new(points, style))
                .map_err(|e| e.to_string())?;
        }
        for item in &self.items {
            let y = TOP + item.depth as f64 * LAYER_H;
            node_box(root, item.look(), item.x, y, item.width, BOX_H)?;
            let fits = item
                .lines
                .iter()
                .all(|l| text_width(l, LABEL_SIZE) + 4.0 <= item.width);
            if fits {
                let n = item.lines.len() as f64;
                for (k, line) in item.lines.iter().enumerate() {
                    let ly = y + BOX_H / 2.0 + (k as f64 - (n - 1.0) / 2.0) * 13.0;
                    text(line, item.x, ly, LABEL_SIZE, &BLACK, HPos::Center)?;
                }
            }
        }
        for e in &self.legend {
            let mid = e.y + LEGEND_ROW / 2.0;
            let Some(swatch) = &e.swatch else {
                text(&e.label, e.x, mid, LEGEND_SIZE, &grey, HPos::Left)?;
                continue;
            };
            let (x0, y0) = (e.x + 2.0, mid - 8.0);
            let sample = |kind, learner, shard| {
                let look = Look {
                    kind,
                    run: false,
                    learner,
                    shard,
                };
                node_box(root, look, x0 + 14.0, y0, 26.0, 16.0)
            };
            match *swatch {
                Swatch::Kind(kind) => sample(kind, false, false)?,
                Swatch::Learner => sample(NodeKind::Gpu, true, false)?,
                Swatch::Shard => sample(NodeKind::CpuCore, false, true)?,
                Swatch::Link(c) => {
                    let class = &self.classes[c];
                    let line = vec![px(x0, mid), px(x0 + 28.0, mid)];
                    root.draw(&PathElement::new(
                        line,
                        class.color.stroke_width(class.stroke),
                    ))
                    .map_err(|e| e.to_string())?;
                }
            }
            text(&e.label, e.x + 40.0, mid, LEGEND_SIZE, &BLACK, HPos::Left)?;
        }
        Ok(())
    }

    fn has_down(&self, i: usize) -> bool {
        let d = self.items[i].depth;
        self.edges.iter().any(|&(a, b, _)| {
            (a == i && self.items[b].depth == d + 1) || (b == i && self.items[a].depth == d + 1)
        })
    }
}

fn px(x: f64, y: f64) -> (i32, i32) {
    (x.round() as i32, y.round() as i32)
}

/// Every link as (node, node, class), and the classes sorted by bandwidth, highest first.
fn link_classes(t: &Topology) -> (Vec<(usize, usize, usize)>, Vec<LinkClass>) {
    let mut raw = vec![];
    for e in 0..t.link_count() {
        let Ok(c) = u32::try_from(2 * e) else { break };
        let (link, a, b) = t.channel_ends(ChannelId(c));
        let name = link.class.clone().unwrap_or_else(|| "link".into());
        raw.push((
            a.index(),
            b.index(),
            (name, link.bandwidth_gb_per_s, link.latency_ns),
        ));
    }
    let mut keys: Vec<(String, f64, u64)> = raw.iter().map(|r| r.2.clone()).collect();
    keys.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| a.0.cmp(&b.0))
            .then(a.2.cmp(&b.2))
    });
    keys.dedup_by(|a, b| a.0 == b.0 && a.1.to_bits() == b.1.to_bits() && a.2 == b.2);
    let (lo, hi) = keys.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), k| {
        (lo.min(k.1), hi.max(k.1))
    });
    // Black first, and the palette's yellow last: it barely shows as a thin line on white.
    const ORDER: [usize; 8] = [7, 0, 1, 2, 3, 4, 5, 6];
    let classes = keys
        .iter()
        .enumerate()
        .map(|(i, (name, bw, lat))| {
            let rel = if hi > lo {
                (bw / lo).ln() / (hi / lo).ln()
            } else {
                0.0
            };
            LinkClass {
                label: format!("{name}: {} GB/s, {}", number(*bw), latency(*lat)),
                stroke: 2 + (3.0 * rel).round() as u32,
                color: color(ORDER[i % ORDER.len()]),
            }
        })
        .collect();
    let links = raw
        .into_iter()
        .map(|(a, b, k)| {
            let c = keys
                .iter()
                .position(|x| x.0 == k.0 && x.1.to_bits() == k.1.to_bits() && x.2 == k.2)
                .unwrap_or(0);
            (a, b, c)
        })
        .collect();
    (links, classes)
}

/// At most three decimals, for legends: 12, 38.4, 12.5.
fn number(v: f64) -> String {
    let r = (v * 1000.0).round() / 1000.0;
    if r == 0.0 {
        format!("{v:.1e}")
    } else {
        r.to_string()
    }
}

fn latency(ns: u64) -> String {
    if ns >= 1000 {
        format!("{} µs", number(ns as f64 / 1000.0))
    } else {
        format!("{ns} ns")
    }
}

/// The boxes: every node on its own, except runs of more than a few leaves of one kind hanging
/// off one node by one class of link, which become one box. Highlighted members of a run stay
/// on their own when there are only a few, so the figure still shows which ones they are.
fn make_items(
    t: &Topology,
    adj: &[Vec<(usize, usize)>],
    learners: &BTreeSet<usize>,
    shards: &BTreeSet<usize>,
) -> Vec<Item> {
    let kind = |v: usize| t.node(NodeIndex::new(v)).kind;
    let mut runs: BTreeMap<(usize, usize, usize), Vec<usize>> = BTreeMap::new();
    for (v, edges) in adj.iter().enumerate() {
        if let [(p, c)] = edges[..] {
            let k = NodeKind::ALL
                .iter()
                .position(|&k| k == kind(v))
                .unwrap_or(0);
            runs.entry((p, k, c)).or_default().push(v);
        }
    }
    let hl = |v: &usize| learners.contains(v) || shards.contains(v);
    let mut sets: Vec<Vec<usize>> = vec![];
    let mut grouped = vec![false; adj.len()];
    for members in runs.into_values() {
        let limit = if kind(members[0]) == NodeKind::CpuCore {
            RUN_OF_CORES
        } else {
            RUN_OF_OTHERS
        };
        if members.len() <= limit {
            continue;
        }
        let marked = members.iter().filter(|v| hl(v)).count();
        let run: Vec<usize> = if marked <= MAX_SINGLES {
            members.iter().copied().filter(|v| !hl(v)).collect()
        } else {
            members
        };
        if run.len() >= 2 {
            for &v in &run {
                grouped[v] = true;
            }
            sets.push(run);
        }
    }
    sets.extend((0..adj.len()).filter(|&v| !grouped[v]).map(|v| vec![v]));
    sets.sort();
    sets.into_iter()
        .map(|members| {
            let k = kind(members[0]);
            let ids: Vec<&str> = members
                .iter()
                .map(|&v| t.node(NodeIndex::new(v)).id.as_str())
                .collect();
            let lines = if members.len() == 1 {
                wrap(ids[0])
            } else {
                let mut lines = vec![format!("{} {}", members.len(), plural(k))];
                let (nl, ns) = (
                    members.iter().filter(|v| learners.contains(v)).count(),
                    members.iter().filter(|v| shards.contains(v)).count(),
                );
                if ns > 0 {
                    lines.push(format!("{ns} shards"));
                } else if nl > 0 {
                    lines.push(format!("{nl} learners"));
                } else if let Some(r) = id_range(&ids) {
                    lines.push(r);
                }
                lines
            };
            let width = lines
                .iter()
                .map(|l| text_width(l, LABEL_SIZE) + 12.0)
                .fold(MIN_BOX_W, f64::max);
            Item {
                kind: k,
                learner: members.iter().any(|v| learners.contains(v)),
                shard: members.iter().any(|v| shards.contains(v)),
                members,
                lines,
                width,
                depth: 0,
                x: 0.0,
            }
        })
        .collect()
}

fn plural(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::CpuSocket => "sockets",
        NodeKind::CpuCore => "cores",
        NodeKind::PcieRoot => "PCIe roots",
        NodeKind::PcieSwitch => "PCIe switches",
        NodeKind::Gpu => "GPUs",
        NodeKind::Nic => "NICs",
        NodeKind::NetSwitch => "switches",
        NodeKind::NvlinkSwitch => "NVLink switches",
    }
}

/// `chip0-core0–11` for ids that share a prefix and end in consecutive numbers.
fn id_range(ids: &[&str]) -> Option<String> {
    let parts: Vec<(&str, u64)> = ids
        .iter()
        .map(|id| {
            let digits = id.len() - id.trim_end_matches(|c: char| c.is_ascii_digit()).len();
            let (p, d) = id.split_at(id.len() - digits);
            d.parse().ok().map(|n| (p, n))
        })
        .collect::<Option<_>>()?;
    let (prefix, first) = parts[0];
    let consecutive = parts
        .iter()
        .enumerate()
        .all(|(i, &(p, n))| p == prefix && first.checked_add(i as u64) == Some(n));
    let (_, last) = parts[parts.len() - 1];
    consecutive.then(|| format!("{prefix}{first}–{last}"))
}

/// A label on one line, or broken after the `-` that best balances two lines when too wide.
fn wrap(id: &str) -> Vec<String> {
    if text_width(id, LABEL_SIZE) <= WRAP_W {
        return vec![id.to_string()];
    }
    let best = id
        .char_indices()
        .filter(|&(i, c)| c == '-' && i + 1 < id.len())
        .map(|(i, _)| {
            let (a, b) = id.split_at(i + 1);
            (
                text_width(a, LABEL_SIZE).max(text_width(b, LABEL_SIZE)),
                i + 1,
            )
        })
        .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    match best {
        Some((_, at)) => vec![id[..at].to_string(), id[at..].to_string()],
        None => vec![id.to_string()],
    }
}

/// Depths, then x positions: leaves in depth-first order, parents centred over their children.
fn place(items: &mut [Item], nbrs: &[Vec<usize>]) {
    let m = items.len();
    let mut component = vec![usize::MAX; m];
    let mut comps: Vec<Vec<usize>> = vec![];
    for s in 0..m {
        if component[s] != usize::MAX {
            continue;
        }
        let id = comps.len();
        component[s] = id;
        let mut members = vec![s];
        let mut queue = VecDeque::from([s]);
        while let Some(u) = queue.pop_front() {
            for &v in &nbrs[u] {
                if component[v] == usize::MAX {
                    component[v] = id;
                    members.push(v);
                    queue.push_back(v);
                }
            }
        }
        members.sort_unstable();
        comps.push(members);
    }
    let mut depth = vec![usize::MAX; m];
    let mut roots_of = vec![];
    for comp in &comps {
        let roots = roots(items, nbrs, comp);
        let mut queue: VecDeque<usize> = roots.iter().copied().collect();
        for &r in &roots {
            depth[r] = 0;
        }
        while let Some(u) = queue.pop_front() {
            for &v in &nbrs[u] {
                if depth[v] == usize::MAX {
                    depth[v] = depth[u] + 1;
                    queue.push_back(v);
                }
            }
        }
        roots_of.push(roots);
    }
    for (item, &d) in items.iter_mut().zip(&depth) {
        item.depth = d;
    }
    // Depth-first, going down before sideways before up, so that what hangs together in the
    // machine is visited together (a pod of a fat tree, a host under its NIC).
    let rank = |u: usize, v: usize| match depth[v].cmp(&depth[u]) {
        std::cmp::Ordering::Greater => 0,
        std::cmp::Ordering::Equal => 1,
        std::cmp::Ordering::Less => 2,
    };
    let down = |u: usize| nbrs[u].iter().any(|&v| depth[v] == depth[u] + 1);
    let mut seen = vec![false; m];
    let mut leaf_x = vec![0.0; m];
    let mut last: Option<(usize, f64)> = None;
    for roots in &roots_of {
        for &r in roots {
            if seen[r] {
                continue;
            }
            let mut stack: Vec<(Vec<usize>, usize)> = vec![];
            let mut arrive = Some(r);
            loop {
                if let Some(v) = arrive.take() {
                    seen[v] = true;
                    if !down(v) {
                        let x = match last {
                            None => 0.0,
                            Some((p, prev)) => {
                                let apart = if component[p] == component[v] {
                                    0.0
                                } else {
                                    COMPONENT_GAP
                                };
                                prev + (items[p].width + items[v].width) / 2.0 + GAP + apart
                            }
                        };
                        leaf_x[v] = x;
                        last = Some((v, x));
                    }
                    let mut next = nbrs[v].clone();
                    next.sort_by_key(|&w| (rank(v, w), w));
                    stack.push((next, 0));
                }
                let Some((next, k)) = stack.last_mut() else {
                    break;
                };
                match next.get(*k) {
                    Some(&w) => {
                        *k += 1;
                        if !seen[w] {
                            arrive = Some(w);
                        }
                    }
                    None => {
                        stack.pop();
                    }
                }
            }
        }
    }
    let max_depth = depth.iter().copied().max().unwrap_or(0);
    let mut x = vec![0.0; m];
    for d in (0..=max_depth).rev() {
        let mut layer: Vec<(f64, usize)> = (0..m)
            .filter(|&i| depth[i] == d)
            .map(|i| {
                let below: Vec<f64> = nbrs[i]
                    .iter()
                    .filter(|&&v| depth[v] == d + 1)
                    .map(|&v| x[v])
                    .collect();
                let want = if below.is_empty() {
                    leaf_x[i]
                } else {
                    let lo = below.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    (lo + hi) / 2.0
                };
                (want, i)
            })
            .collect();
        // Ties (the aggregation switches of a pod, over the same edge switches) go in
        // declaration order.
        layer.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let want: Vec<f64> = layer.iter().map(|l| l.0).collect();
        let gaps: Vec<f64> = layer
            .windows(2)
            .map(|w| (items[w[0].1].width + items[w[1].1].width) / 2.0 + GAP)
            .collect();
        for (&(_, i), p) in layer.iter().zip(spread(&want, &gaps)) {
            x[i] = p;
        }
    }
    for (item, &p) in items.iter_mut().zip(&x) {
        item.x = p;
    }
}

/// The top of one connected part: its spine switches if it has network switches, all its
/// sockets if it has those, else the nodes of the first kind present that are closest to
/// everything else.
fn roots(items: &[Item], nbrs: &[Vec<usize>], comp: &[usize]) -> Vec<usize> {
    let Some(kind) = TOP_KINDS
        .into_iter()
        .find(|&k| comp.iter().any(|&i| items[i].kind == k))
    else {
        return comp.iter().copied().take(1).collect();
    };
    let candidates: Vec<usize> = comp
        .iter()
        .copied()
        .filter(|&i| items[i].kind == kind)
        .collect();
    let work: usize = comp.iter().map(|&i| nbrs[i].len()).sum::<usize>() * candidates.len();
    if kind == NodeKind::CpuSocket || candidates.len() == 1 || work > 20_000_000 {
        return candidates;
    }
    let mut dist = vec![usize::MAX; items.len()];
    let ecc: Vec<usize> = candidates
        .iter()
        .map(|&c| {
            for &i in comp {
                dist[i] = usize::MAX;
            }
            dist[c] = 0;
            let mut far = 0;
            let mut queue = VecDeque::from([c]);
            while let Some(u) = queue.pop_front() {
                far = far.max(dist[u]);
                for &v in &nbrs[u] {
                    if dist[v] == usize::MAX {
                        dist[v] = dist[u] + 1;
                        queue.push_back(v);
                    }
                }
            }
            far
        })
        .collect();
    let best = ecc.iter().copied().min().unwrap_or(0);
    candidates
        .into_iter()
        .zip(ecc)
        .filter(|&(_, e)| e == best)
        .map(|(c, _)| c)
        .collect()
}

/// Positions as close as possible (least squares) to `want`, kept in order and at least
/// `gaps[i]` apart between `i` and `i + 1`: pool-adjacent-violators on the shifted targets.
fn spread(want: &[f64], gaps: &[f64]) -> Vec<f64> {
    let mut offset = Vec::with_capacity(want.len());
    let mut acc = 0.0;
    for i in 0..want.len() {
        if i > 0 {
            acc += gaps[i - 1];
        }
        offset.push(acc);
    }
    // Blocks of (sum, count) whose means are non-decreasing.
    let mut blocks: Vec<(f64, usize)> = vec![];
    for (w, o) in want.iter().zip(&offset) {
        blocks.push((w - o, 1));
        while blocks.len() >= 2 {
            let (s1, n1) = blocks[blocks.len() - 1];
            let (s0, n0) = blocks[blocks.len() - 2];
            if s0 / n0 as f64 <= s1 / n1 as f64 {
                break;
            }
            blocks.pop();
            blocks.pop();
            blocks.push((s0 + s1, n0 + n1));
        }
    }
    blocks
        .iter()
        .flat_map(|&(s, n)| std::iter::repeat_n(s / n as f64, n))
        .zip(&offset)
        .map(|(v, o)| v + o)
        .collect()
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

/// How a box is drawn.
#[derive(Clone, Copy)]
struct Look {
    kind: NodeKind,
    /// Several nodes drawn as one.
    run: bool,
    learner: bool,
    shard: bool,
}

/// A box centred on `x` with its top at `y`: filled with its kind's colour, a second box
/// peeking out behind it for a run, and a thick outline (double for a shard) when highlighted.
fn node_box<DB: DrawingBackend>(
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

/// Width in pixels of `s` drawn at plotters size `size` with the embedded Liberation Sans,
/// which has Arial's advance widths (per 1000 em, below). Plotters draws PNG text at an em of
/// size / 1.117 and SVG text at size / 1.24, so this bounds both. Kerning is ignored, and a
/// character not in the table counts as a whole em.
fn text_width(s: &str, size: f64) -> f64 {
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
    use crate::machine::topology::file::load;
    use crate::machine::topology::generators::Generator;
    use crate::machine::topology::{CoreSpec, GpuSpec, Link, Node, TopologyBuilder};
    use crate::report::figures::{Rendered, render};

    fn power8() -> Topology {
        load("builtin:power8-k80").unwrap()
    }

    fn generated(spec: &str) -> Topology {
        Generator::parse_spec(spec).unwrap().build().unwrap()
    }

    fn figure(t: &Topology) -> TopologyFigure<'_> {
        TopologyFigure {
            topology: t,
            learners: vec![],
            shards: vec![],
        }
    }

    /// Renders twice, checks both are the same bytes and the PNG has the stated size, and
    /// writes the files to `$TOPOLOGY_FIGURE_DIR` when set, for a person to look at.
    fn rendered(fig: &TopologyFigure, file: &str) -> Rendered {
        let r = render(fig).unwrap();
        let again = render(fig).unwrap();
        assert_eq!(r.svg, again.svg);
        assert_eq!(r.png, again.png);
        let decoder = png::Decoder::new(std::io::Cursor::new(&r.png));
        let reader = decoder.read_info().unwrap();
        assert_eq!(
            (reader.info().width, reader.info().height),
            (r.width, r.height)
        );
        assert_eq!(fig.size(), (r.width, r.height));
        if let Some(dir) = std::env::var_os("TOPOLOGY_FIGURE_DIR") {
            let dir = std::path::PathBuf::from(dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{file}.png")), &r.png).unwrap();
            std::fs::write(dir.join(format!("{file}.svg")), &r.svg).unwrap();
        }
        r
    }

    /// Whether the SVG draws `s` as one text element.
    fn has_text(svg: &str, s: &str) -> bool {
        svg.contains(&format!(">\n{s}\n</text>"))
    }

    /// Boxes of one layer must not overlap, or their labels would.
    fn assert_no_overlap(fig: &TopologyFigure) {
        let layout = Layout::new(fig);
        for layer in &layout.layers {
            for pair in layer.windows(2) {
                let (a, b) = (&layout.items[pair[0]], &layout.items[pair[1]]);
                assert!(
                    a.x + a.width / 2.0 <= b.x - b.width / 2.0 + 1e-6,
                    "{:?} overlaps {:?}",
                    a.lines,
                    b.lines
                );
            }
        }
    }

    #[test]
    fn power8_k80_shows_every_gpu_the_link_classes_and_the_highlights() {
        let t = power8();
        let fig = TopologyFigure {
            topology: &t,
            learners: t.gpus()[..8].to_vec(),
            shards: vec![
                t.find("chip0-core0").unwrap(),
                t.find("chip1-core3").unwrap(),
            ],
        };
        let r = rendered(&fig, "power8-k80");
        assert_eq!(r.name, "topology");
        assert!(r.caption.contains("power8-k80"), "{}", r.caption);
        for g in t.gpus() {
            let id = &t.node(g).id;
            assert!(has_text(&r.svg, id), "{id} missing");
        }
        for text in [
            "pcie-tree: 12 GB/s, 150 ns",
            "pcie-host: 12 GB/s, 2 µs",
            "smp-xbus: 38.4 GB/s, 100 ns",
            "learner",
            "server shard",
            "11 cores",
            "chip1-",
            "core3",
            "chip0-core1–11",
        ] {
            assert!(has_text(&r.svg, text), "{text} missing");
        }
        assert_no_overlap(&fig);
    }

    #[test]
    fn power8_k80_is_drawn_as_a_tree_under_the_sockets() {
        let t = power8();
        let fig = figure(&t);
        let layout = Layout::new(&fig);
        let item = |id: &str| {
            let n = t.find(id).unwrap().index();
            layout
                .items
                .iter()
                .find(|i| i.members.contains(&n))
                .unwrap()
        };
        assert_eq!(item("p8-chip0").depth, 0);
        assert_eq!(item("p8-chip1").depth, 0);
        assert_eq!(item("gpu0").depth, 6);
        // Each board switch sits centred over its two GPUs, each tree switch over its two
        // children, and the GPUs are in order left to right.
        for k in 0..8 {
            let (a, b) = (
                item(&format!("gpu{}", 2 * k)),
                item(&format!("gpu{}", 2 * k + 1)),
            );
            let sw = item(&format!("k80-{k}-switch"));
            assert!((sw.x - (a.x + b.x) / 2.0).abs() < 1e-6);
            assert!(a.x < b.x);
        }
        for k in 0..4 {
            let (a, b) = (
                item(&format!("k80-{}-switch", 2 * k)),
                item(&format!("k80-{}-switch", 2 * k + 1)),
            );
            let sw = item(&format!("tree-l2-{k}"));
            assert!((sw.x - (a.x + b.x) / 2.0).abs() < 1e-6);
        }
        // The 24 cores are two boxes of 12.
        assert_eq!(layout.items.len(), t.node_count() - 2 * 11);
        assert_no_overlap(&fig);
    }

    #[test]
    fn fat_tree_k4_puts_the_spine_on_top_and_keeps_pods_together() {
        let t = generated("fat-tree:k=4");
        let fig = TopologyFigure {
            topology: &t,
            learners: t.gpus(),
            shards: vec![t.find("node0-core0").unwrap()],
        };
        let r = rendered(&fig, "fat-tree-k4");
        assert!(has_text(&r.svg, "core-sw0"));
        assert!(has_text(&r.svg, "network: 12.5 GB/s, 100 ns"));
        assert!(r.width as f64 <= MAX_WIDTH);
        let layout = Layout::new(&figure(&t));
        let x = |id: &str| {
            let n = t.find(id).unwrap().index();
            let i = layout
                .items
                .iter()
                .find(|i| i.members.contains(&n))
                .unwrap();
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
        assert_no_overlap(&fig);
    }

    fn core(id: &str) -> Node {
        Node {
            id: id.into(),
            kind: NodeKind::CpuCore,
            class: None,
            gpu: None,
            core: Some(CoreSpec {
                memory_bandwidth_gb_per_s: 10.0,
            }),
        }
    }

    fn gpu(id: &str) -> Node {
        Node {
            id: id.into(),
            kind: NodeKind::Gpu,
            class: None,
            gpu: Some(GpuSpec {
                peak_tflops: 1.0,
                memory_gb: 1.0,
            }),
            core: None,
        }
    }

    fn link() -> Link {
        Link {
            bandwidth_gb_per_s: 10.0,
            latency_ns: 100,
            class: None,
        }
    }

    #[test]
    fn smallest_machine_a_loose_node_and_a_ring_draw() {
        // The builder wants a GPU and a core, so the smallest machine has two nodes.
        let mut b = TopologyBuilder::new("tiny", "");
        b.node("n0", core("c"));
        b.node("n1", gpu("g"));
        b.link("l0", "c", "g", link());
        let tiny = b.build().unwrap();
        let r = rendered(&figure(&tiny), "tiny");
        assert_eq!(r.width as f64, MIN_WIDTH);
        assert!(has_text(&r.svg, "g") && has_text(&r.svg, "link: 10 GB/s, 100 ns"));

        // A NIC linked to nothing is a part of its own.
        let mut b = TopologyBuilder::new("loose", "");
        b.node("n0", core("c"));
        b.node("n1", gpu("g"));
        let nic = Node {
            id: "nic".into(),
            kind: NodeKind::Nic,
            class: None,
            gpu: None,
            core: None,
        };
        b.node("n2", nic);
        b.link("l0", "c", "g", link());
        let loose = b.build().unwrap();
        assert!(has_text(&rendered(&figure(&loose), "loose").svg, "nic"));

        // Cycles: GPUs in an NVLink ring and in a full mesh.
        for spec in ["nvlink:host.gpus_per_node=8", "nvlink:mesh=true"] {
            let t = generated(spec);
            let fig = figure(&t);
            rendered(&fig, spec.split(':').next().unwrap());
            assert_no_overlap(&fig);
        }
    }

    #[test]
    fn a_large_cluster_is_squeezed_and_a_huge_one_is_refused_in_words() {
        let t = generated("fat-tree:k=8");
        let fig = figure(&t);
        let (w, _) = fig.size();
        assert_eq!(w as f64, MAX_WIDTH);
        assert_no_overlap(&fig);
        rendered(&fig, "fat-tree-k8");
        let t = generated("fat-tree:k=16");
        let r = render(&figure(&t)).unwrap();
        assert!(r.svg.contains("more than the 4000"), "{}", &r.svg[..400]);
        // A chain of 80 switches from the core to the GPU is too deep.
        let mut b = TopologyBuilder::new("chain", "");
        b.node("c", core("c"));
        b.node("g", gpu("g"));
        let mut prev = "c".to_string();
        for i in 0..80 {
            let id = format!("sw{i}");
            let sw = Node {
                id: id.clone(),
                kind: NodeKind::PcieSwitch,
                class: None,
                gpu: None,
                core: None,
            };
            b.node(&id, sw);
            b.link(&id, &prev, &id, link());
            prev = id;
        }
        b.link("last", &prev, "g", link());
        let chain = b.build().unwrap();
        let r = render(&figure(&chain)).unwrap();
        assert!(r.svg.contains("82 layers deep"), "{}", &r.svg[..400]);
    }

    #[test]
    fn spread_keeps_order_and_gaps_with_least_movement() {
        assert_eq!(
            spread(&[0.0, 0.0, 0.0], &[10.0, 10.0]),
            vec![-10.0, 0.0, 10.0]
        );
        assert_eq!(spread(&[0.0, 50.0], &[10.0]), vec![0.0, 50.0]);
        assert_eq!(
            spread(&[0.0, 4.0, 100.0], &[10.0, 10.0]),
            vec![-3.0, 7.0, 100.0]
        );
        assert!(spread(&[], &[]).is_empty());
    }

    #[test]
    fn text_width_matches_the_embedded_font() {
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
