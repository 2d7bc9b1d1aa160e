//! [`TopologyBuilder`]: the one way to a [`Topology`], checking every node and link as it is
//! added and collecting the problems so that a file's are reported all at once.

use super::*;

/// Builds a topology and checks it. Problems are collected, not returned at the first one, so a
/// user sees everything wrong with a file at once.
pub struct TopologyBuilder {
    /// The machine so far; handed out only if no problem was found.
    topology: Topology,
    /// Where each node was declared, by node index, for messages.
    node_keys: Vec<String>,
    /// Nodes declared but not built because of a problem already reported.
    skipped: HashSet<String>,
    problems: TopologyProblems,
}

impl TopologyBuilder {
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            topology: Topology {
                name: name.into(),
                description: description.into(),
                graph: UnGraph::default(),
                by_id: HashMap::new(),
                host: None,
            },
            node_keys: vec![],
            skipped: HashSet::new(),
            problems: vec![],
        }
    }

    /// Records that node `id` was declared but could not be built (a problem was reported for
    /// it), so links to it are not reported again as links to an unknown node.
    pub fn skipped(&mut self, id: &str) {
        self.skipped.insert(id.to_string());
    }

    pub fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push((key.into(), message.into()));
    }

    /// Adds a node; `key` names where it was declared, for messages.
    pub fn node(&mut self, key: &str, node: Node) -> Option<NodeIndex> {
        if node.id.is_empty() {
            self.problem(format!("{key}.id"), "a node id must not be empty");
            return None;
        }
        if self.topology.by_id.contains_key(&node.id) {
            self.problem(
                format!("{key}.id"),
                format!("duplicate node id `{}`; ids must be unique", node.id),
            );
            return None;
        }
        match node.kind {
            NodeKind::Gpu => match &node.gpu {
                Some(g) if g.peak_tflops.is_finite() && g.peak_tflops > 0.0 => {}
                Some(g) => self.problem(
                    format!("{key}.peak_tflops"),
                    format!(
                        "must be a positive number of TFLOP/s, got {}",
                        g.peak_tflops
                    ),
                ),
                None => self.problem(
                    format!("{key}.peak_tflops"),
                    "a gpu needs peak_tflops (its FP32 peak, TFLOP/s)",
                ),
            },
            NodeKind::CpuCore => match &node.core {
                Some(c)
                    if c.memory_bandwidth_gb_per_s.is_finite()
                        && c.memory_bandwidth_gb_per_s > 0.0 => {}
                Some(c) => self.problem(
                    format!("{key}.memory_bandwidth_gb_per_s"),
                    format!(
                        "must be a positive number of GB/s, got {}",
                        c.memory_bandwidth_gb_per_s
                    ),
                ),
                None => self.problem(
                    format!("{key}.memory_bandwidth_gb_per_s"),
                    "a cpu-core needs memory_bandwidth_gb_per_s (GB/s it can stream)",
                ),
            },
            _ => {}
        }
        let id = node.id.clone();
        let n = self.topology.graph.add_node(node);
        self.topology.by_id.insert(id, n);
        self.node_keys.push(key.to_string());
        Some(n)
    }

    /// Adds a link between two declared nodes.
    pub fn link(&mut self, key: &str, a: &str, b: &str, link: Link) {
        let mut ok = true;
        if !(link.bandwidth_gb_per_s.is_finite() && link.bandwidth_gb_per_s > 0.0) {
            self.problem(
                format!("{key}.bandwidth_gb_per_s"),
                format!(
                    "bandwidth must be a positive number of GB/s, got {}",
                    link.bandwidth_gb_per_s
                ),
            );
            ok = false;
        }
        let ends: Vec<Option<NodeIndex>> = [a, b]
            .iter()
            .map(|id| {
                let found = self.topology.by_id.get(*id).copied();
                if found.is_none() && !self.skipped.contains(*id) {
                    self.problems.push((
                        format!("{key}.between"),
                        format!("unknown node `{id}`; declare it under `nodes` first"),
                    ));
                }
                found
            })
            .collect();
        if let (Some(x), Some(y)) = (ends[0], ends[1]) {
            if x == y {
                self.problem(
                    format!("{key}.between"),
                    format!("a link must join two different nodes, got `{a}` twice"),
                );
            } else if self.topology.graph.find_edge_undirected(x, y).is_some() {
                self.problem(
                    format!("{key}.between"),
                    format!(
                        "a second link between `{a}` and `{b}`; give one link per pair of nodes \
                         (its bandwidth is per direction)"
                    ),
                );
            } else if ok {
                self.topology.graph.add_edge(x, y, link);
            }
        }
    }

    /// Makes the machine a shared-memory host: learners become threads and need no GPU.
    pub fn host(&mut self, spec: HostSpec) {
        self.topology.host = Some(spec);
    }

    /// Whether nodes `a` and `b` are declared and already linked.
    pub fn linked(&self, a: &str, b: &str) -> bool {
        let by_id = &self.topology.by_id;
        match (by_id.get(a), by_id.get(b)) {
            (Some(&x), Some(&y)) => self.topology.graph.find_edge_undirected(x, y).is_some(),
            _ => false,
        }
    }

    pub fn has(&self, id: &str) -> bool {
        self.topology.by_id.contains_key(id)
    }

    /// Checks the whole graph and returns it, or every problem found.
    pub fn build(mut self) -> Result<Topology, TopologyProblems> {
        let graph = &self.topology.graph;
        let of_kind = |kind| -> Vec<NodeIndex> {
            graph
                .node_indices()
                .filter(|&n| graph[n].kind == kind)
                .collect()
        };
        let (cores, gpus) = (of_kind(NodeKind::CpuCore), of_kind(NodeKind::Gpu));
        if self.problems.is_empty() {
            if gpus.is_empty() && self.topology.host.is_none() {
                self.problem(
                    "nodes",
                    "the machine has no node of kind `gpu` (and no [host] table to run learners as threads)",
                );
            }
            if cores.is_empty() {
                self.problem(
                    "nodes",
                    "the machine has no node of kind `cpu-core` to run parameter-server shards",
                );
            }
            let components = petgraph::algo::kosaraju_scc(&self.topology.graph);
            let mut component = vec![0usize; self.topology.graph.node_count()];
            for (i, c) in components.iter().enumerate() {
                for n in c {
                    component[n.index()] = i;
                }
            }
            for &g in &gpus {
                if !cores
                    .iter()
                    .any(|&c| component[c.index()] == component[g.index()])
                {
                    let id = self.topology.graph[g].id.clone();
                    let key = self.node_keys[g.index()].clone();
                    self.problem(
                        key,
                        format!("gpu `{id}` is not connected to the host: no path of links from it to any cpu-core"),
                    );
                }
            }
            let graph = &self.topology.graph;
            // On links a core without one can hold a shard no learner reaches (a shared-memory
            // host's threads need no links).
            let alone: Vec<NodeIndex> = (cores.iter().copied())
                .filter(|&n| graph.neighbors_undirected(n).next().is_none())
                .filter(|_| graph.node_count() > 1 && self.topology.host.is_none())
                .collect();
            for n in alone {
                let id = self.topology.graph[n].id.clone();
                let key = self.node_keys[n.index()].clone();
                self.problem(
                    key,
                    format!(
                        "cpu-core `{id}` has no link: a shard placed on it could reach no learner"
                    ),
                );
            }
        }
        if self.problems.is_empty() {
            Ok(self.topology)
        } else {
            Err(self.problems)
        }
    }
}
