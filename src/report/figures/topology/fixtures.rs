//! What the topology figure's tests share: the machines they draw, the nodes they build small
//! machines from, and the check that no two boxes of a layer overlap. Test-only; it must never
//! be needed to draw a figure.

use super::TopologyFigure;
use super::layout::Layout;
use crate::machine::topology::file::load;
use crate::machine::topology::generators::Generator;
use crate::machine::topology::{Link, Node, NodeKind, Topology};

pub(crate) fn power8() -> Topology {
    load("builtin:power8-k80").unwrap()
}

pub(crate) fn generated(spec: &str) -> Topology {
    Generator::parse_spec(spec).unwrap().build().unwrap()
}

/// `t` with nothing highlighted.
pub(crate) fn figure(t: &Topology) -> TopologyFigure<'_> {
    TopologyFigure {
        topology: t,
        learners: vec![],
        shards: vec![],
    }
}

pub(crate) use crate::machine::topology::fixtures::{core, gpu};

/// A node of a kind that needs no spec: a switch, a socket, a NIC.
pub(crate) fn plain(id: &str, kind: NodeKind) -> Node {
    Node {
        id: id.into(),
        kind,
        class: None,
        gpu: None,
        core: None,
    }
}

pub(crate) fn link() -> Link {
    Link {
        bandwidth_gb_per_s: 10.0,
        latency_ns: 100,
        class: None,
    }
}

/// Boxes of one layer must not overlap, or their labels would.
pub(crate) fn assert_no_overlap(fig: &TopologyFigure) {
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
