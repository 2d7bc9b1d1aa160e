//! The machine's topology as a layered picture: devices as boxes coloured by kind, links as lines
//! coloured by class and thickened with bandwidth, learner GPUs and server-shard cores outlined.
//!
//! Where every box, link and legend entry goes is [`layout`]'s work; this file draws what the
//! layout placed, in a fixed order: title, links, boxes with their labels, legend. It must never
//! move or resize anything, and never let iteration order leak in: the same topology and
//! highlights give the same bytes.

#[cfg(test)]
mod fixtures;
mod layout;
mod node_box;

use super::{FAMILY, Figure};
use crate::machine::topology::{NodeKind, Topology};
use layout::{
    ARC_ROOM, BOX_H, Item, LABEL_SIZE, LAYER_H, LEGEND_ROW, LEGEND_SIZE, Layout, MARGIN, Swatch,
    TOP, text_width,
};
use node_box::{Look, node_box};
use petgraph::graph::NodeIndex;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// A machine's topology, with the GPUs that run learners and the cores that serve shards.
pub struct TopologyFigure<'a> {
    pub topology: &'a Topology,
    pub learners: Vec<NodeIndex>,
    pub shards: Vec<NodeIndex>,
}

impl Figure for TopologyFigure<'_> {
    fn titles(&self) -> (String, String) {
        (
            "topology".into(),
            format!(
                "Topology of the machine {}: {} nodes, {} links. Boxes are devices coloured by kind \
                 (a run of many sibling cores is one box), lines are links coloured by class and \
                 thicker for more bandwidth; thick outlines mark learner GPUs and server-shard cores.",
                self.topology.name(),
                self.topology.node_count(),
                self.topology.link_count()
            ),
        )
    }

    fn size(&self) -> (u32, u32) {
        let layout = Layout::new(self);
        (layout.width as u32, layout.height as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        draw(&Layout::new(self), self.topology, root)
    }
}

const GREY: RGBColor = RGBColor(90, 90, 90);

fn draw<DB: DrawingBackend>(
    layout: &Layout,
    t: &Topology,
    root: &DrawingArea<DB, Shift>,
) -> Result<(), String> {
    let title = format!("Topology of {}", t.name());
    text(root, &title, MARGIN, 22.0, 22.0, &BLACK, HPos::Left)?;
    if let Some(why) = &layout.refused {
        text(
            root,
            &t.summary(),
            MARGIN,
            60.0,
            LEGEND_SIZE,
            &GREY,
            HPos::Left,
        )?;
        let msg = format!("Not drawn: {why}.");
        return text(root, &msg, MARGIN, 90.0, LEGEND_SIZE, &BLACK, HPos::Left);
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
    text(root, &sub, MARGIN, 48.0, LEGEND_SIZE, &GREY, HPos::Left)?;
    let mut slot = vec![0; layout.items.len()];
    for layer in &layout.layers {
        for (k, &i) in layer.iter().enumerate() {
            slot[i] = k;
        }
    }
    for &(a, b, c) in &layout.edges {
        let class = &layout.classes[c];
        let style = class.color.stroke_width(class.stroke);
        let points = link_path(layout, a, b, &slot);
        root.draw(&PathElement::new(points, style))
            .map_err(|e| e.to_string())?;
    }
    for item in &layout.items {
        let y = TOP + item.depth as f64 * LAYER_H;
        node_box(root, look(item), item.x, y, item.width, BOX_H)?;
        let fits = item
            .lines
            .iter()
            .all(|l| text_width(l, LABEL_SIZE) + 4.0 <= item.width);
        if fits {
            let n = item.lines.len() as f64;
            for (k, line) in item.lines.iter().enumerate() {
                let ly = y + BOX_H / 2.0 + (k as f64 - (n - 1.0) / 2.0) * 13.0;
                text(root, line, item.x, ly, LABEL_SIZE, &BLACK, HPos::Center)?;
            }
        }
    }
    draw_legend(layout, root)
}

/// Each entry's sample (a small box, or a stretch of link) and its label; a row's heading in
/// grey.
fn draw_legend<DB: DrawingBackend>(
    layout: &Layout,
    root: &DrawingArea<DB, Shift>,
) -> Result<(), String> {
    for e in &layout.legend {
        let mid = e.y + LEGEND_ROW / 2.0;
        let Some(swatch) = &e.swatch else {
            text(root, &e.label, e.x, mid, LEGEND_SIZE, &GREY, HPos::Left)?;
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
                let class = &layout.classes[c];
                let line = vec![px(x0, mid), px(x0 + 28.0, mid)];
                root.draw(&PathElement::new(
                    line,
                    class.color.stroke_width(class.stroke),
                ))
                .map_err(|e| e.to_string())?;
            }
        }
        text(
            root,
            &e.label,
            e.x + 40.0,
            mid,
            LEGEND_SIZE,
            &BLACK,
            HPos::Left,
        )?;
    }
    Ok(())
}

fn look(item: &Item) -> Look {
    Look {
        kind: item.kind,
        run: item.members.len() > 1,
        learner: item.learner,
        shard: item.shard,
    }
}

/// `s` at plotters size `size`, its left edge, centre or right edge at `x` (by `h`), centred
/// on `y`.
fn text<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &str,
    x: f64,
    y: f64,
    size: f64,
    c: &RGBColor,
    h: HPos,
) -> Result<(), String> {
    let style = (FAMILY, size)
        .into_font()
        .color(c)
        .pos(Pos::new(h, VPos::Center));
    // Plotters centres a line's baseline rather than its letters; two pixels down centres
    // lower-case and digits in both the PNG and the SVG to within a pixel.
    root.draw(&Text::new(s.to_string(), px(x, y + 2.0), style))
        .map_err(|e| e.to_string())
}

/// The line of a link: straight between layers and between neighbours in a layer, else an
/// arc over the boxes in between. `slot` is each item's place in its layer, left to right.
fn link_path(layout: &Layout, a: usize, b: usize, slot: &[usize]) -> Vec<(i32, i32)> {
    let (ia, ib) = (&layout.items[a], &layout.items[b]);
    if ia.depth != ib.depth {
        let (up, down) = if ia.depth < ib.depth { (a, b) } else { (b, a) };
        return vec![
            px(layout.items[up].x, layout.top(up) + BOX_H),
            px(layout.items[down].x, layout.top(down)),
        ];
    }
    let (l, r) = if ia.x <= ib.x { (ia, ib) } else { (ib, ia) };
    let y = layout.top(a);
    if slot[a].abs_diff(slot[b]) == 1 {
        let mid = y + BOX_H / 2.0;
        return vec![px(l.x + l.width / 2.0, mid), px(r.x - r.width / 2.0, mid)];
    }
    // Over the boxes in between: above the layer, or below it where neither end has anything
    // below.
    let below = !layout.has_down(a) && !layout.has_down(b);
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

/// A point rounded to the nearest pixel.
fn px(x: f64, y: f64) -> (i32, i32) {
    (x.round() as i32, y.round() as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::topology::{Link, TopologyBuilder};
    use crate::report::figures::{Rendered, render};
    use fixtures::{assert_no_overlap, core, figure, generated, gpu, link, plain, power8};
    use layout::{MAX_WIDTH, MIN_WIDTH};

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
    fn fat_tree_k4_shows_the_spine_and_the_network_class() {
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
        assert_no_overlap(&fig);
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
        b.node("n2", plain("nic", NodeKind::Nic));
        b.link("l0", "c", "g", link());
        let loose = b.build().unwrap();
        assert!(has_text(&rendered(&figure(&loose), "loose").svg, "nic"));

        // Cycles: GPUs in an NVLink ring and in a full mesh.
        for spec in ["nvlink:host.gpus_per_node=8", "nvlink:mesh=true"] {
            let t = generated(spec);
            let fig = figure(&t);
            rendered(&fig, &spec.replace([':', '.', '='], "-"));
            assert_no_overlap(&fig);
        }
    }

    #[test]
    fn a_large_cluster_is_drawn_and_a_huge_one_is_refused_in_words() {
        let t = generated("fat-tree:k=8");
        let r = rendered(&figure(&t), "fat-tree-k8");
        assert_eq!(r.width as f64, MAX_WIDTH);
        let t = generated("fat-tree:k=16");
        let r = render(&figure(&t)).unwrap();
        assert!(r.svg.contains("more than the 4000"), "{}", &r.svg[..400]);
        // A chain of 150 switches from the core to the GPU is too deep, even from its middle.
        let mut b = TopologyBuilder::new("chain", "");
        b.node("c", core("c"));
        b.node("g", gpu("g"));
        let mut prev = "c".to_string();
        for i in 0..150 {
            let id = format!("sw{i}");
            b.node(&id, plain(&id, NodeKind::PcieSwitch));
            b.link(&id, &prev, &id, link());
            prev = id;
        }
        b.link("last", &prev, "g", link());
        let chain = b.build().unwrap();
        let r = render(&figure(&chain)).unwrap();
        assert!(
            r.svg.contains("layers deep, more than the 60"),
            "{}",
            &r.svg[..400]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Any machine the builder accepts draws, and says the size it has: trees with runs of
        /// leaves, extra links making cycles, loose nodes, odd highlights.
        #[test]
        fn any_accepted_topology_draws(
            nodes in proptest::collection::vec((0usize..8, 0usize..1000, 0u8..10), 0..60),
            extra in proptest::collection::vec((0usize..62, 0usize..62, 1u32..40), 0..30),
            marks in proptest::collection::vec(0usize..70, 0..8),
        ) {
            let mut b = TopologyBuilder::new("random", "");
            b.node("c", core("n0"));
            b.node("g", gpu("n1"));
            b.link("l", "n0", "n1", link());
            let class = |bw: u32| Link {
                bandwidth_gb_per_s: f64::from(bw),
                latency_ns: 10,
                class: Some(format!("c{}", bw % 3)),
            };
            let mut attached = vec![0, 1];
            for (i, &(k, parent, coin)) in nodes.iter().enumerate() {
                let kind = NodeKind::ALL[k];
                let id = format!("n{}", i + 2);
                let node = match kind {
                    NodeKind::Gpu => gpu(&id),
                    NodeKind::CpuCore => core(&id),
                    _ => plain(&id, kind),
                };
                b.node(&id, node);
                // Hang it off a node that reaches the core, except now and then a node that
                // need not be connected: a GPU or a core must be, or the builder refuses the
                // machine.
                if matches!(kind, NodeKind::Gpu | NodeKind::CpuCore) || coin > 0 {
                    let p = format!("n{}", attached[parent % attached.len()]);
                    b.link("l", &p, &id, class(1 + u32::from(coin)));
                    attached.push(i + 2);
                }
            }
            let n = nodes.len() + 2;
            for &(a, z, bw) in &extra {
                // One link per pair of nodes: the builder refuses a second.
                let (a, z) = (format!("n{}", a % n), format!("n{}", z % n));
                if a != z && !b.linked(&a, &z) {
                    b.link("x", &a, &z, class(bw));
                }
            }
            let t = b.build().unwrap();
            let fig = TopologyFigure {
                topology: &t,
                learners: marks.iter().map(|&m| NodeIndex::new(m)).collect(),
                shards: marks.iter().map(|&m| NodeIndex::new(m / 2)).collect(),
            };
            let r = render(&fig).unwrap();
            proptest::prop_assert_eq!(fig.size(), (r.width, r.height));
            let layout = Layout::new(&fig);
            let drawn: usize = layout.items.iter().map(|i| i.members.len()).sum();
            proptest::prop_assert_eq!(drawn, t.node_count());
            assert_no_overlap(&fig);
        }
    }
}
