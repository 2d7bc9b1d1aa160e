//! A machine as a graph: nodes (CPU sockets and cores, PCIe root complexes and switches, GPUs,
//! NICs, network switches) joined by full-duplex links with a bandwidth per direction and a
//! latency. Routes between nodes are shortest paths by latency, computed with petgraph and
//! always the same for the same graph.
//!
//! A topology is built only through [`TopologyBuilder`], which checks it, so every `Topology`
//! is connected where it matters: each GPU can reach a host core. Readers of files and the
//! generators both end in the builder.

mod builder;
pub mod file;
pub mod generators;

pub use builder::TopologyBuilder;

use crate::time::SimDuration;
use petgraph::graph::{EdgeIndex, NodeIndex, UnGraph};
use petgraph::visit::EdgeRef;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// What a node is. Closed set: the machine model knows each kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeKind {
    CpuSocket,
    CpuCore,
    PcieRoot,
    PcieSwitch,
    Gpu,
    Nic,
    NetSwitch,
    NvlinkSwitch,
}

impl NodeKind {
    pub const ALL: [NodeKind; 8] = [
        NodeKind::CpuSocket,
        NodeKind::CpuCore,
        NodeKind::PcieRoot,
        NodeKind::PcieSwitch,
        NodeKind::Gpu,
        NodeKind::Nic,
        NodeKind::NetSwitch,
        NodeKind::NvlinkSwitch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NodeKind::CpuSocket => "cpu-socket",
            NodeKind::CpuCore => "cpu-core",
            NodeKind::PcieRoot => "pcie-root",
            NodeKind::PcieSwitch => "pcie-switch",
            NodeKind::Gpu => "gpu",
            NodeKind::Nic => "nic",
            NodeKind::NetSwitch => "net-switch",
            NodeKind::NvlinkSwitch => "nvlink-switch",
        }
    }
}

/// A GPU's compute capability.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GpuSpec {
    /// Peak FP32 throughput, TFLOP/s.
    pub peak_tflops: f64,
    /// Device memory, GB.
    pub memory_gb: f64,
}

/// A host core's ability to apply parameter updates.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CoreSpec {
    /// Memory bandwidth one core can draw on, GB/s (1 GB = 1e9 bytes).
    pub memory_bandwidth_gb_per_s: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Node {
    pub id: String,
    pub kind: NodeKind,
    /// Class name from the topology file (e.g. "gk210"), for display.
    pub class: Option<String>,
    pub gpu: Option<GpuSpec>,
    pub core: Option<CoreSpec>,
}

/// A full-duplex link: the bandwidth holds in each direction separately.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Link {
    /// Bandwidth per direction, GB/s (1 GB = 1e9 bytes).
    pub bandwidth_gb_per_s: f64,
    pub latency_ns: u64,
    /// Class name from the topology file (e.g. "pcie-gen3-x16"), for display.
    pub class: Option<String>,
}

/// One direction of one link: the unit the network shares. Channel `2e` carries edge `e` from
/// its first node to its second, channel `2e + 1` the other way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelId(pub u32);

/// The channels a transfer crosses, in order, and the sum of their latencies.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub channels: Vec<ChannelId>,
    pub latency: SimDuration,
}

/// A shared-memory host on which learners and shards are threads rather than devices: the
/// machine of the real backend. Its threads share the topology's cpu-core nodes as a time-sharing
/// scheduler does, pass messages through memory, and copy the data they carry themselves.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostSpec {
    /// One thread's memory copy rate at the sizes of the messages, GB/s.
    pub copy_gb_per_s: f64,
    /// One-way latency of a message between two threads: the send and the receiver's wake-up.
    pub message_latency_ns: u64,
    /// The part of that latency that is core time (the sender's wake-up call, the receiver's
    /// spinning and waking), spent by the receiving thread.
    pub message_cpu_ns: u64,
    /// The scheduler's time slice: how long a thread runs before one waiting for a core gets it.
    pub time_slice_ns: u64,
    /// How many times longer a gradient takes with every core computing one than alone.
    pub busy_slowdown: f64,
    /// Measured mini-batch gradient times on one thread.
    pub gradients: Vec<MeasuredGradient>,
}

/// The time one thread takes for one mini-batch gradient of a model (sampling and gathering the
/// batch included), as measured on the host.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MeasuredGradient {
    pub model: String,
    /// The model's parameter count, which pins its input shape and number of classes.
    pub params: u64,
    pub batch_size: u64,
    pub seconds: f64,
}

impl HostSpec {
    /// The measured gradient time for a model of `params` parameters at `batch_size`.
    pub fn gradient_seconds(&self, model: &str, params: u64, batch_size: u64) -> Option<f64> {
        self.gradients
            .iter()
            .find(|g| g.model == model && g.params == params && g.batch_size == batch_size)
            .map(|g| g.seconds)
    }
}

/// Problems found while building a topology, each with the key path it concerns.
pub type TopologyProblems = Vec<(String, String)>;

/// A checked machine graph.
#[derive(Clone, Debug)]
pub struct Topology {
    name: String,
    description: String,
    graph: UnGraph<Node, Link>,
    by_id: HashMap<String, NodeIndex>,
    host: Option<HostSpec>,
}

impl Topology {
    /// The shared-memory host this machine is, if it is one (learners and shards are threads).
    pub fn host(&self) -> Option<&HostSpec> {
        self.host.as_ref()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn node(&self, n: NodeIndex) -> &Node {
        &self.graph[n]
    }

    pub fn find(&self, id: &str) -> Option<NodeIndex> {
        self.by_id.get(id).copied()
    }

    pub fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    pub fn link_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// Nodes of one kind, in declaration order.
    pub fn nodes_of(&self, kind: NodeKind) -> Vec<NodeIndex> {
        self.graph
            .node_indices()
            .filter(|&n| self.graph[n].kind == kind)
            .collect()
    }

    pub fn gpus(&self) -> Vec<NodeIndex> {
        self.nodes_of(NodeKind::Gpu)
    }

    pub fn cores(&self) -> Vec<NodeIndex> {
        self.nodes_of(NodeKind::CpuCore)
    }

    /// The socket a core hangs off, if it is linked to one.
    pub fn socket_of(&self, core: NodeIndex) -> Option<NodeIndex> {
        self.graph
            .neighbors(core)
            .filter(|&n| self.graph[n].kind == NodeKind::CpuSocket)
            .min()
    }

    /// Number of channels (two per link).
    pub fn channel_count(&self) -> usize {
        2 * self.graph.edge_count()
    }

    /// Capacity of each channel in bytes per nanosecond (= GB/s), indexed by `ChannelId`.
    pub fn channel_capacities(&self) -> Vec<f64> {
        self.graph
            .edge_indices()
            .flat_map(|e| {
                let bw = self.graph[e].bandwidth_gb_per_s;
                [bw, bw]
            })
            .collect()
    }

    /// The link and direction a channel belongs to: (link, from, to).
    pub fn channel_ends(&self, c: ChannelId) -> (&Link, NodeIndex, NodeIndex) {
        let e = EdgeIndex::new(c.0 as usize / 2);
        let (a, b) = self
            .graph
            .edge_endpoints(e)
            .unwrap_or((NodeIndex::new(0), NodeIndex::new(0)));
        let link = &self.graph[e];
        if c.0.is_multiple_of(2) {
            (link, a, b)
        } else {
            (link, b, a)
        }
    }

    /// The links only `node`'s traffic to any of `others` crosses: on its route to the first
    /// of them, each link without which `node` reaches none of `others`. Each as its two ends,
    /// `node`'s side first, nearest to `node` first.
    pub fn own_links(&self, node: NodeIndex, others: &[NodeIndex]) -> Vec<(NodeIndex, NodeIndex)> {
        let Some(route) = others.first().and_then(|&o| self.route(node, o)) else {
            return vec![];
        };
        let reaches_none_without = |cut: EdgeIndex| {
            let mut seen = vec![false; self.graph.node_count()];
            let mut todo = vec![node];
            seen[node.index()] = true;
            while let Some(n) = todo.pop() {
                for e in self.graph.edges(n).filter(|e| e.id() != cut) {
                    let m = e.target();
                    if !seen[m.index()] {
                        seen[m.index()] = true;
                        todo.push(m);
                    }
                }
            }
            others.iter().all(|o| !seen[o.index()])
        };
        (route.channels.iter())
            .filter(|c| reaches_none_without(EdgeIndex::new(c.0 as usize / 2)))
            .map(|&c| {
                let (_, from, to) = self.channel_ends(c);
                (from, to)
            })
            .collect()
    }

    /// Divides the bandwidth of the link between `a` and `b` by `factor`; false where there
    /// is no such link.
    pub fn slow_link(&mut self, a: NodeIndex, b: NodeIndex, factor: f64) -> bool {
        match self.graph.find_edge(a, b) {
            Some(e) => {
                self.graph[e].bandwidth_gb_per_s /= factor;
                true
            }
            None => false,
        }
    }

    /// The route for each `(from, to)` pair, in order; or, under `machine.topology`, a problem
    /// for each pair it cannot route, saying what the route was `for_what`. Pairs that share an
    /// end share one shortest-path search from it.
    pub fn routes(
        &self,
        pairs: impl IntoIterator<Item = (NodeIndex, NodeIndex)>,
        for_what: &str,
    ) -> Result<Vec<Route>, Vec<(String, String)>> {
        let mut routes = vec![];
        let mut problems = vec![];
        let mut searched: HashMap<NodeIndex, Vec<u64>> = HashMap::new();
        for (a, b) in pairs {
            let root = a.min(b);
            let costs = searched
                .entry(root)
                .or_insert_with(|| self.costs_from(root));
            match self.route_with(a, b, costs) {
                Some(r) => routes.push(r),
                None => {
                    let (a, b) = (self.node(a), self.node(b));
                    let (ka, kb) = (a.kind.name(), b.kind.name());
                    let message = format!(
                        "no route from {ka} `{}` to {kb} `{}` for {for_what}",
                        a.id, b.id
                    );
                    problems.push(("machine.topology".to_string(), message));
                }
            }
        }
        if problems.is_empty() {
            Ok(routes)
        } else {
            Err(problems)
        }
    }

    /// The route from `src` to `dst` with the fewest hops (least latency among those), or None
    /// if unreachable. Fewest hops first, as switched fabrics route: a direct NVLink beats a
    /// two-hop PCIe detour even when its latency is higher. Among equal routes the one through
    /// the lowest-numbered nodes, counted from the end with the higher node number, so a route
    /// and its reverse cross the same links.
    pub fn route(&self, src: NodeIndex, dst: NodeIndex) -> Option<Route> {
        self.route_with(src, dst, &self.costs_from(src.min(dst)))
    }

    /// A hop's cost: a hop outweighs any latency, and latency breaks ties between equal hop
    /// counts.
    fn hop_cost(link: &Link) -> u64 {
        (1u64 << 40).saturating_add(link.latency_ns)
    }

    /// The cost of the best route from `root` to every node (`u64::MAX` where unreachable).
    fn costs_from(&self, root: NodeIndex) -> Vec<u64> {
        let found =
            petgraph::algo::dijkstra(&self.graph, root, None, |e| Self::hop_cost(e.weight()));
        let mut costs = vec![u64::MAX; self.graph.node_count()];
        for (n, c) in found {
            costs[n.index()] = c;
        }
        costs
    }

    /// The route from `src` to `dst`, given the best costs from the lower-numbered of the two:
    /// walk from the other end towards it, each step to the lowest-numbered neighbour on a best
    /// route (and over the lowest-latency, then lowest-index, of parallel links).
    fn route_with(&self, src: NodeIndex, dst: NodeIndex, costs: &[u64]) -> Option<Route> {
        let (root, far) = (src.min(dst), src.max(dst));
        if costs[far.index()] == u64::MAX {
            return None;
        }
        // Hops (from, to, link) walking from `far` to the root.
        let mut hops = vec![];
        let mut at = far;
        while at != root {
            let here = costs[at.index()];
            let step = self
                .graph
                .edges(at)
                .filter(|e| {
                    let c = costs[e.target().index()];
                    c != u64::MAX && c.saturating_add(Self::hop_cost(e.weight())) == here
                })
                .min_by_key(|e| (e.target(), e.weight().latency_ns, e.id()))?;
            hops.push((at, step.target(), step.id()));
            at = step.target();
        }
        // A route from the root runs the other way.
        if far != src {
            hops.reverse();
            for hop in &mut hops {
                std::mem::swap(&mut hop.0, &mut hop.1);
            }
        }
        let mut channels = Vec::with_capacity(hops.len());
        let mut latency = 0u64;
        for (from, _, e) in hops {
            let (a, _) = self.graph.edge_endpoints(e)?;
            channels.push(ChannelId(2 * e.index() as u32 + u32::from(a != from)));
            latency += self.graph[e].latency_ns;
        }
        Some(Route {
            channels,
            latency: SimDuration::from_nanos(latency),
        })
    }

    /// Graphviz DOT: one node per device, shaped by kind, one edge per link labelled with its
    /// bandwidth and latency.
    pub fn to_dot(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "graph \"{}\" {{", escape(&self.name));
        let _ = writeln!(out, "  graph [rankdir=TB, fontname=\"Helvetica\"];");
        let _ = writeln!(out, "  node [fontname=\"Helvetica\", fontsize=10];");
        let _ = writeln!(out, "  edge [fontname=\"Helvetica\", fontsize=8];");
        for n in self.graph.node_indices() {
            let node = &self.graph[n];
            let (shape, color) = match node.kind {
                NodeKind::CpuSocket => ("box3d", "lightblue"),
                NodeKind::CpuCore => ("circle", "lightcyan"),
                NodeKind::PcieRoot => ("house", "khaki"),
                NodeKind::PcieSwitch => ("diamond", "lightyellow"),
                NodeKind::Gpu => ("box", "palegreen"),
                NodeKind::Nic => ("cds", "mistyrose"),
                NodeKind::NetSwitch => ("octagon", "pink"),
                NodeKind::NvlinkSwitch => ("hexagon", "plum"),
            };
            let mut label = format!("{}\\n{}", escape(&node.id), node.kind.name());
            if let Some(g) = &node.gpu {
                let _ = write!(label, "\\n{} TFLOP/s", g.peak_tflops);
            }
            let _ = writeln!(
                out,
                "  \"{}\" [label=\"{}\", shape={}, style=filled, fillcolor={}];",
                escape(&node.id),
                label,
                shape,
                color
            );
        }
        for e in self.graph.edge_references() {
            let l = e.weight();
            let _ = writeln!(
                out,
                "  \"{}\" -- \"{}\" [label=\"{} GB/s\\n{} ns\"];",
                escape(&self.graph[e.source()].id),
                escape(&self.graph[e.target()].id),
                l.bandwidth_gb_per_s,
                l.latency_ns
            );
        }
        out.push_str("}\n");
        out
    }

    /// A one-paragraph human summary.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{}: {} nodes, {} links",
            self.name,
            self.node_count(),
            self.link_count()
        );
        for kind in NodeKind::ALL {
            let n = self.nodes_of(kind).len();
            if n > 0 {
                let _ = write!(out, ", {n} {}", kind.name());
            }
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Nodes for tests to build small machines from (here and in the figures' tests).
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{CoreSpec, GpuSpec, Node, NodeKind};

    /// A GPU of 1 TFLOP/s and 1 GB.
    pub(crate) fn gpu(id: &str) -> Node {
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

    /// A core with 10 GB/s of memory bandwidth.
    pub(crate) fn core(id: &str) -> Node {
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
}

#[cfg(test)]
mod tests {
    use super::fixtures::{core, gpu};
    use super::*;

    fn link(bw: f64, lat: u64) -> Link {
        Link {
            bandwidth_gb_per_s: bw,
            latency_ns: lat,
            class: None,
        }
    }

    #[test]
    fn route_directions_and_latency() {
        let mut b = TopologyBuilder::new("t", "");
        b.node("n0", core("c"));
        b.node("n1", gpu("g"));
        b.node(
            "n2",
            Node {
                id: "s".into(),
                kind: NodeKind::PcieSwitch,
                class: None,
                gpu: None,
                core: None,
            },
        );
        b.link("l0", "c", "s", link(10.0, 100));
        b.link("l1", "s", "g", link(5.0, 50));
        let t = b.build().unwrap();
        let (c, g) = (t.find("c").unwrap(), t.find("g").unwrap());
        let up = t.route(g, c).unwrap();
        let down = t.route(c, g).unwrap();
        assert_eq!(down.channels, vec![ChannelId(0), ChannelId(2)]);
        assert_eq!(up.channels, vec![ChannelId(3), ChannelId(1)]);
        assert_eq!(up.latency.as_nanos(), 150);
        assert_eq!(t.channel_capacities(), vec![10.0, 10.0, 5.0, 5.0]);
    }

    #[test]
    fn disconnected_gpu_is_reported() {
        let mut b = TopologyBuilder::new("t", "");
        b.node("n0", core("c"));
        b.node("n1", gpu("g"));
        let err = b.build().unwrap_err();
        assert!(err[0].1.contains("gpu `g` is not connected"), "{err:?}");
    }

    #[test]
    fn negative_bandwidth_and_unknown_node_are_reported() {
        let mut b = TopologyBuilder::new("t", "");
        b.node("n0", core("c"));
        b.node("n1", gpu("g"));
        b.link("links[0]", "c", "g", link(-1.0, 0));
        b.link("links[1]", "c", "nope", link(1.0, 0));
        let err = b.build().unwrap_err();
        assert_eq!(err.len(), 2, "{err:?}");
        assert_eq!(err[0].0, "links[0].bandwidth_gb_per_s");
        assert!(err[1].1.contains("unknown node `nope`"));
    }

    /// The nodes a route visits, from its start, or None if its channels do not chain.
    fn walk(t: &Topology, src: NodeIndex, route: &Route) -> Option<Vec<NodeIndex>> {
        let mut at = vec![src];
        for &c in &route.channels {
            let (_, from, to) = t.channel_ends(c);
            (from == *at.last()?).then_some(())?;
            at.push(to);
        }
        Some(at)
    }

    #[test]
    fn routes_are_shortest_chained_and_the_same_both_ways() {
        for spec in [
            "fat-tree:k=4",
            "nvlink:mesh=true",
            "cluster:nodes=20,nodes_per_leaf=4",
        ] {
            let t = generators::Generator::parse_spec(spec)
                .unwrap()
                .build()
                .unwrap();
            let nodes: Vec<NodeIndex> = t.graph.node_indices().step_by(7).collect();
            let pairs: Vec<(NodeIndex, NodeIndex)> = nodes
                .iter()
                .flat_map(|&a| nodes.iter().map(move |&b| (a, b)))
                .collect();
            let routes = t.routes(pairs.iter().copied(), "a test").unwrap();
            for (&(a, b), r) in pairs.iter().zip(&routes) {
                assert_eq!(t.route(a, b).as_ref(), Some(r), "{spec}: one pair alone");
                let visited = walk(&t, a, r).expect("channels chain");
                assert_eq!(
                    *visited.last().unwrap(),
                    b,
                    "{spec}: ends at its destination"
                );
                // As short (hops, then latency) as petgraph's own search finds.
                let (best, _) = petgraph::algo::astar(
                    &t.graph,
                    a,
                    |n| n == b,
                    |e| Topology::hop_cost(e.weight()),
                    |_| 0,
                )
                .unwrap();
                let hops = r.channels.len() as u64;
                assert_eq!((hops << 40) + r.latency.as_nanos(), best, "{spec}");
                // The way back crosses the same links in the other direction.
                let back = t.route(b, a).unwrap();
                let mut there: Vec<u32> = r.channels.iter().map(|c| c.0 ^ 1).collect();
                there.reverse();
                assert_eq!(back.channels.iter().map(|c| c.0).collect::<Vec<_>>(), there);
            }
        }
    }
}
