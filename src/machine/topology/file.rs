//! The topology file format (TOML). Constants are stated once, in named classes, each with a
//! comment naming its source; nodes and links refer to a class and may override any attribute.
//!
//! ```toml
//! name = "example"
//! [node_class.gk210]
//! kind = "gpu"
//! peak_tflops = 2.8          # source
//! [link_class.pcie-gen3-x16]
//! bandwidth_gb_per_s = 12.0  # source
//! latency_ns = 150
//! nodes = [ { id = "gpu0", class = "gk210" } ]
//! links = [ { between = ["gpu0", "sw0"], class = "pcie-gen3-x16" } ]
//! ```
//!
//! Reading is two-phase: serde structs that reject unknown keys, then [`TopologyBuilder`]'s
//! checks, every problem reported with its key path and line.

use super::{
    CoreSpec, GpuSpec, HostSpec, Link, MeasuredGradient, Node, NodeKind, Topology, TopologyBuilder,
};
use crate::input::{InputError, Source};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Topologies shipped inside the binary, usable as `builtin:NAME` anywhere.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "power8-k80",
        include_str!("../../../topologies/power8-k80.toml"),
    ),
    ("testbed", include_str!("../../../topologies/testbed.toml")),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub node_class: BTreeMap<String, NodeAttrs>,
    #[serde(default)]
    pub link_class: BTreeMap<String, LinkAttrs>,
    pub nodes: Vec<NodeEntry>,
    #[serde(default)]
    pub links: Vec<LinkEntry>,
    /// Present when the machine is one shared-memory host whose learners and shards are threads
    /// (as `asgd-sim calibrate` writes it).
    pub host: Option<HostEntry>,
}

/// The `[host]` table: what a thread of this host costs, as measured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    /// One thread's memory copy rate at the message sizes, GB/s.
    pub copy_gb_per_s: f64,
    /// One-way message latency between two threads, ns.
    pub message_latency_ns: f64,
    /// Core time of a message, part of its latency, ns.
    #[serde(default)]
    pub message_cpu_ns: f64,
    /// The scheduler's time slice, ns.
    pub time_slice_ns: f64,
    /// Slowdown of a gradient with every core busy (1: none).
    #[serde(default = "one")]
    pub busy_slowdown: f64,
    /// Measured one-thread mini-batch gradient times.
    #[serde(default)]
    pub gradients: Vec<GradientEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradientEntry {
    pub model: String,
    pub params: u64,
    pub batch_size: u64,
    pub seconds: f64,
}

fn one() -> f64 {
    1.0
}

impl HostEntry {
    /// The checked spec, or (key, message) problems.
    fn spec(&self) -> Result<HostSpec, Vec<(String, String)>> {
        let mut problems = vec![];
        if !(self.copy_gb_per_s.is_finite() && self.copy_gb_per_s > 0.0) {
            problems.push((
                "host.copy_gb_per_s".into(),
                format!(
                    "must be a positive number of GB/s, got {}",
                    self.copy_gb_per_s
                ),
            ));
        }
        if !(self.message_latency_ns.is_finite() && self.message_latency_ns >= 0.0) {
            problems.push((
                "host.message_latency_ns".into(),
                format!(
                    "must be a non-negative number of ns, got {}",
                    self.message_latency_ns
                ),
            ));
        }
        if !(self.message_cpu_ns.is_finite()
            && self.message_cpu_ns >= 0.0
            && self.message_cpu_ns <= self.message_latency_ns)
        {
            problems.push((
                "host.message_cpu_ns".into(),
                format!(
                    "must be a number of ns from 0 to message_latency_ns ({}), got {}",
                    self.message_latency_ns, self.message_cpu_ns
                ),
            ));
        }
        if !(self.time_slice_ns.is_finite() && self.time_slice_ns >= 1.0) {
            problems.push((
                "host.time_slice_ns".into(),
                format!(
                    "must be a number of ns of at least 1, got {}",
                    self.time_slice_ns
                ),
            ));
        }
        if !(self.busy_slowdown.is_finite() && self.busy_slowdown >= 1.0) {
            problems.push((
                "host.busy_slowdown".into(),
                format!(
                    "must be a factor of at least 1 (1: busy cores do not slow each other), got {}",
                    self.busy_slowdown
                ),
            ));
        }
        for (i, g) in self.gradients.iter().enumerate() {
            if !(g.seconds.is_finite() && g.seconds > 0.0) {
                problems.push((
                    format!("host.gradients[{i}].seconds"),
                    format!("must be a positive number of seconds, got {}", g.seconds),
                ));
            }
            if g.batch_size == 0 {
                problems.push((
                    format!("host.gradients[{i}].batch_size"),
                    "must be at least 1".into(),
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(HostSpec {
            copy_gb_per_s: self.copy_gb_per_s,
            message_latency_ns: self.message_latency_ns.round() as u64,
            message_cpu_ns: self.message_cpu_ns.round() as u64,
            time_slice_ns: self.time_slice_ns.round() as u64,
            busy_slowdown: self.busy_slowdown,
            gradients: self
                .gradients
                .iter()
                .map(|g| MeasuredGradient {
                    model: g.model.clone(),
                    params: g.params,
                    batch_size: g.batch_size,
                    seconds: g.seconds,
                })
                .collect(),
        })
    }
}

/// Attributes of a node, all optional so that a class and a node can each give some.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeAttrs {
    pub kind: Option<NodeKind>,
    /// GPU FP32 peak, TFLOP/s.
    pub peak_tflops: Option<f64>,
    /// GPU memory, GB.
    pub memory_gb: Option<f64>,
    /// Host core memory bandwidth, GB/s.
    pub memory_bandwidth_gb_per_s: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    pub id: String,
    pub class: Option<String>,
    pub kind: Option<NodeKind>,
    pub peak_tflops: Option<f64>,
    pub memory_gb: Option<f64>,
    pub memory_bandwidth_gb_per_s: Option<f64>,
}

impl NodeEntry {
    fn attrs(&self) -> NodeAttrs {
        NodeAttrs {
            kind: self.kind,
            peak_tflops: self.peak_tflops,
            memory_gb: self.memory_gb,
            memory_bandwidth_gb_per_s: self.memory_bandwidth_gb_per_s,
        }
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkAttrs {
    /// Bandwidth per direction, GB/s.
    pub bandwidth_gb_per_s: Option<f64>,
    /// One-way latency, ns.
    pub latency_ns: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkEntry {
    pub between: [String; 2],
    pub class: Option<String>,
    pub bandwidth_gb_per_s: Option<f64>,
    pub latency_ns: Option<f64>,
}

/// Reads a topology from `builtin:NAME` or a file path.
pub fn load(spec: &str) -> Result<Topology, InputError> {
    let mut source = match spec.strip_prefix("builtin:") {
        Some(name) => {
            let text = crate::input::builtin_text(BUILTIN, "topology", name)?;
            Source::from_text(Path::new(spec), text)?
        }
        None => Source::read(Path::new(spec))?,
    };
    let file: TopologyFile = source.deserialize(&[])?;
    file.build().map_err(|problems| source.invalid(problems))
}

impl TopologyFile {
    /// Resolves classes and builds the checked topology.
    pub fn build(&self) -> Result<Topology, Vec<(String, String)>> {
        let mut b = TopologyBuilder::new(&self.name, &self.description);
        if let Some(h) = &self.host {
            match h.spec() {
                Ok(spec) => b.host(spec),
                Err(ps) => {
                    for (k, m) in ps {
                        b.problem(k, m);
                    }
                }
            }
        }
        for (i, entry) in self.nodes.iter().enumerate() {
            let key = format!("nodes[{i}]");
            let (c, classes) = (entry.class.as_deref(), &self.node_class);
            let Some(class) = class_of(&mut b, ("node", &key), c, classes) else {
                b.skipped(&entry.id);
                continue;
            };
            let a = &entry.attrs();
            let Some(kind) = a.kind.or(class.kind) else {
                b.problem(
                    format!("{key}.kind"),
                    format!(
                        "node `{}` has no kind; give `kind` or a `class` that has one ({})",
                        entry.id,
                        kinds()
                    ),
                );
                b.skipped(&entry.id);
                continue;
            };
            let peak = a.peak_tflops.or(class.peak_tflops);
            let mem_bw = a
                .memory_bandwidth_gb_per_s
                .or(class.memory_bandwidth_gb_per_s);
            let node = Node {
                id: entry.id.clone(),
                kind,
                class: entry.class.clone(),
                gpu: (kind == NodeKind::Gpu)
                    .then_some(())
                    .and(peak)
                    .map(|p| GpuSpec {
                        peak_tflops: p,
                        memory_gb: a.memory_gb.or(class.memory_gb).unwrap_or(0.0),
                    }),
                core: (kind == NodeKind::CpuCore)
                    .then_some(())
                    .and(mem_bw)
                    .map(|m| CoreSpec {
                        memory_bandwidth_gb_per_s: m,
                    }),
            };
            b.node(&key, node);
        }
        for (i, entry) in self.links.iter().enumerate() {
            let key = format!("links[{i}]");
            let (c, classes) = (entry.class.as_deref(), &self.link_class);
            let Some(class) = class_of(&mut b, ("link", &key), c, classes) else {
                continue;
            };
            let Some(bw) = entry.bandwidth_gb_per_s.or(class.bandwidth_gb_per_s) else {
                b.problem(
                    format!("{key}.bandwidth_gb_per_s"),
                    "a link needs bandwidth_gb_per_s (GB/s per direction), directly or from its class",
                );
                continue;
            };
            let latency = entry.latency_ns.or(class.latency_ns).unwrap_or(0.0);
            if !(latency.is_finite() && latency >= 0.0) {
                b.problem(
                    format!("{key}.latency_ns"),
                    format!("latency must be a non-negative number of ns, got {latency}"),
                );
                continue;
            }
            b.link(
                &key,
                &entry.between[0],
                &entry.between[1],
                Link {
                    bandwidth_gb_per_s: bw,
                    latency_ns: latency.round() as u64,
                    class: entry.class.clone(),
                },
            );
        }
        b.build().map_err(|problems| self.blame_classes(problems))
    }

    /// `problems` with each one about a value a node or link took from its class said once, at
    /// the class's own key (`node_class.gk210.peak_tflops`), naming the entries that use it.
    fn blame_classes(&self, problems: Vec<(String, String)>) -> Vec<(String, String)> {
        let mut out: Vec<(String, String, Vec<String>)> = vec![];
        for (key, message) in problems {
            let (key, user) = match self.class_key(&key) {
                Some(class_key) => (class_key, Some(key)),
                None => (key, None),
            };
            let user = user.map(|k| k.split('.').next().unwrap_or(&k).to_string());
            match out.iter_mut().find(|(k, m, _)| *k == key && *m == message) {
                Some((_, _, users)) => users.extend(user),
                None => out.push((key, message, user.into_iter().collect())),
            }
        }
        out.into_iter()
            .map(|(key, message, users)| match users.as_slice() {
                [] => (key, message),
                [one] => (key, format!("{message} (used by {one})")),
                [first, .., last] => (
                    key,
                    format!(
                        "{message} (used by {} entries, the first {first}, the last {last})",
                        users.len()
                    ),
                ),
            })
            .collect()
    }

    /// The class key to blame for a problem at `key` (`nodes[i].ATTR` or `links[i].ATTR`) when
    /// the entry does not give ATTR itself but names a class that gives it, or a class that
    /// does not when the entry needs it.
    fn class_key(&self, key: &str) -> Option<String> {
        let (entry, attr) = key.split_once('.')?;
        let index = |prefix: &str| -> Option<usize> {
            entry.strip_prefix(prefix)?.strip_suffix(']')?.parse().ok()
        };
        if let Some(i) = index("nodes[") {
            let e = self.nodes.get(i)?;
            let class = e.class.as_deref()?;
            let own = match attr {
                "peak_tflops" => e.peak_tflops.is_some(),
                "memory_bandwidth_gb_per_s" => e.memory_bandwidth_gb_per_s.is_some(),
                "kind" => e.kind.is_some(),
                _ => return None,
            };
            return (!own).then(|| format!("node_class.{class}.{attr}"));
        }
        let e = self.links.get(index("links[")?)?;
        let class = e.class.as_deref()?;
        let own = match attr {
            "bandwidth_gb_per_s" => e.bandwidth_gb_per_s.is_some(),
            "latency_ns" => e.latency_ns.is_some(),
            _ => return None,
        };
        (!own).then(|| format!("link_class.{class}.{attr}"))
    }
}

/// The attributes of class `class` (none: the defaults) for the `what` (node or link) at
/// `key`; None, with a problem, if no such class is declared in `classes`.
fn class_of<A: Clone + Default>(
    b: &mut TopologyBuilder,
    (what, key): (&str, &str),
    class: Option<&str>,
    classes: &BTreeMap<String, A>,
) -> Option<A> {
    let Some(c) = class else {
        return Some(A::default());
    };
    let found = classes.get(c).cloned();
    if found.is_none() {
        let message = format!("unknown {what} class `{c}`; declared: {}", names(classes));
        b.problem(format!("{key}.class"), message);
    }
    found
}

fn names<V>(m: &BTreeMap<String, V>) -> String {
    if m.is_empty() {
        "none".into()
    } else {
        m.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn kinds() -> String {
    NodeKind::ALL
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_power8_k80_has_the_paper_machine() {
        let t = load("builtin:power8-k80").unwrap();
        assert_eq!(t.gpus().len(), 16);
        assert_eq!(t.cores().len(), 24);
        assert_eq!(t.nodes_of(NodeKind::CpuSocket).len(), 2);
        // Two GPUs per board switch, boards joined by a binary tree of switches: 8 board
        // switches plus 4 + 2 + 1 tree switches.
        assert_eq!(t.nodes_of(NodeKind::PcieSwitch).len(), 15);
        for g in t.gpus() {
            for c in t.cores() {
                assert!(t.route(g, c).is_some());
            }
        }
    }

    #[test]
    fn unknown_class_is_reported_with_line() {
        let text = "name = \"x\"\nnodes = [\n  { id = \"a\", class = \"nope\" },\n]\n";
        let mut s = Source::from_text(Path::new("t.toml"), text.into()).unwrap();
        let f: TopologyFile = s.deserialize(&[]).unwrap();
        let err = s.invalid(f.build().unwrap_err()).to_string();
        assert!(err.starts_with("t.toml:3:"), "{err}");
        assert!(err.contains("unknown node class `nope`"), "{err}");
    }
}
