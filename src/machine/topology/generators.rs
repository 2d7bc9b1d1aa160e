//! Built-in topology generators for machines too regular to write out by hand: a k-ary fat-tree
//! cluster of GPU nodes, a two-level cluster with one parameter-server host (`cluster`), and a
//! single host whose GPUs are joined by NVLink-style links in a ring or a full mesh. Each generator only calls [`TopologyBuilder`], so its output passes the same
//! checks as a file.
//!
//! Default constants are typical published figures for the hardware class, stated at each field;
//! they are defaults to override, not measurements.

mod cluster;

pub use cluster::ClusterParams;

use super::{CoreSpec, GpuSpec, Link, Node, NodeKind, Topology, TopologyBuilder};
use serde::{Deserialize, Serialize};

/// Parameters of a node in a generated machine.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HostParams {
    pub gpus_per_node: usize,
    pub cores_per_node: usize,
    /// GPU FP32 peak, TFLOP/s (V100 SXM2: 15.7).
    pub gpu_peak_tflops: f64,
    pub gpu_memory_gb: f64,
    /// Per-core memory bandwidth, GB/s.
    pub core_memory_bandwidth_gb_per_s: f64,
    /// Host to GPU PCIe bandwidth per direction, GB/s (Gen3 x16 effective: 12).
    pub pcie_gb_per_s: f64,
    pub pcie_latency_ns: f64,
}

impl Default for HostParams {
    fn default() -> Self {
        Self {
            gpus_per_node: 4,
            cores_per_node: 16,
            gpu_peak_tflops: 15.7,
            gpu_memory_gb: 16.0,
            core_memory_bandwidth_gb_per_s: 10.0,
            pcie_gb_per_s: 12.0,
            pcie_latency_ns: 1000.0,
        }
    }
}

/// A topology generator and its parameters, as written in a scenario's `[machine.generator]`
/// or on the command line as `NAME:key=value,...`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Generator {
    /// A k-ary fat tree (k even): k pods of k/2 edge and k/2 aggregation switches, (k/2)^2 core
    /// switches, k/2 GPU nodes per edge switch, k^3/4 nodes in all (or `nodes`, if fewer).
    FatTree {
        k: usize,
        nodes: Option<usize>,
        /// NIC and switch port bandwidth per direction, GB/s (100 Gb/s EDR InfiniBand: 12.5).
        #[serde(default = "default_net_gb_per_s")]
        link_gb_per_s: f64,
        /// Per-hop switch latency, ns (InfiniBand EDR switch: ~100 ns).
        #[serde(default = "default_switch_latency_ns")]
        switch_latency_ns: f64,
        #[serde(default)]
        host: HostParams,
    },
    /// GPU nodes under leaf switches and one spine, with a parameter-server host on the spine
    /// (see [`ClusterParams`]).
    Cluster(ClusterParams),
    /// One host whose GPUs are linked by NVLink in a ring (`mesh = false`) or all-to-all.
    Nvlink {
        #[serde(default)]
        mesh: bool,
        /// Per-direction bandwidth of one NVLink bundle between two GPUs, GB/s (NVLink 2.0
        /// brick: 25 GB/s).
        #[serde(default = "default_nvlink_gb_per_s")]
        nvlink_gb_per_s: f64,
        #[serde(default = "default_nvlink_latency_ns")]
        nvlink_latency_ns: f64,
        #[serde(default)]
        host: HostParams,
    },
}

fn default_net_gb_per_s() -> f64 {
    12.5
}
fn default_switch_latency_ns() -> f64 {
    100.0
}
fn default_nvlink_gb_per_s() -> f64 {
    25.0
}
fn default_nvlink_latency_ns() -> f64 {
    500.0
}

impl Generator {
    /// The generators' names, as written before the `:` of a spec.
    pub const KINDS: [&'static str; 3] = ["fat-tree", "cluster", "nvlink"];

    /// Parses `fat-tree:k=4,nodes=8`, `cluster:nodes=256` or `nvlink:mesh=true` (host
    /// parameters as `host.gpus_per_node=8`).
    pub fn parse_spec(spec: &str) -> Result<Self, String> {
        let (kind, params) = spec.split_once(':').unwrap_or((spec, ""));
        let mut table = toml::Table::new();
        table.insert("kind".into(), toml::Value::String(kind.trim().into()));
        for kv in params.split(',').filter(|s| !s.trim().is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("`{kv}`: expected key=value"))?;
            let value = match toml::from_str::<toml::Table>(&format!("v = {}", v.trim())) {
                Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(v.into())),
                Err(_) => toml::Value::String(v.trim().into()),
            };
            let mut target = &mut table;
            let parts: Vec<&str> = k.trim().split('.').collect();
            for p in &parts[..parts.len() - 1] {
                let entry = target
                    .entry(p.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                target = entry
                    .as_table_mut()
                    .ok_or_else(|| format!("`{k}`: `{p}` is not a table"))?;
            }
            target.insert(parts[parts.len() - 1].to_string(), value);
        }
        Generator::deserialize(toml::Value::Table(table)).map_err(|e| e.message().to_string())
    }

    /// Builds the topology, or lists what is wrong with the parameters (keys relative to the
    /// generator table).
    pub fn build(&self) -> Result<Topology, Vec<(String, String)>> {
        match self {
            Generator::FatTree {
                k,
                nodes,
                link_gb_per_s,
                switch_latency_ns,
                host,
            } => fat_tree(*k, *nodes, *link_gb_per_s, *switch_latency_ns, host),
            Generator::Cluster(params) => cluster::cluster(params),
            Generator::Nvlink {
                mesh,
                nvlink_gb_per_s,
                nvlink_latency_ns,
                host,
            } => nvlink(*mesh, *nvlink_gb_per_s, *nvlink_latency_ns, host),
        }
    }
}

fn link(bw: f64, latency_ns: f64, class: &str) -> Link {
    Link {
        bandwidth_gb_per_s: bw,
        latency_ns: latency_ns.max(0.0).round() as u64,
        class: Some(class.into()),
    }
}

fn plain(id: String, kind: NodeKind) -> Node {
    Node {
        id,
        kind,
        class: None,
        gpu: None,
        core: None,
    }
}

/// Adds one GPU node (socket, cores, PCIe root and switch, GPUs) and returns the id of the node
/// its NIC should attach to (the PCIe switch).
fn host_node(b: &mut TopologyBuilder, prefix: &str, h: &HostParams) -> String {
    let socket = format!("{prefix}cpu");
    b.node(prefix, plain(socket.clone(), NodeKind::CpuSocket));
    for c in 0..h.cores_per_node {
        let id = format!("{prefix}core{c}");
        let core = Some(CoreSpec {
            memory_bandwidth_gb_per_s: h.core_memory_bandwidth_gb_per_s,
        });
        let node = plain(id.clone(), NodeKind::CpuCore);
        b.node(prefix, Node { core, ..node });
        b.link(
            prefix,
            &socket,
            &id,
            link(h.core_memory_bandwidth_gb_per_s, 20.0, "on-chip"),
        );
    }
    let root = format!("{prefix}pcie-root");
    let switch = format!("{prefix}pcie-switch");
    b.node(prefix, plain(root.clone(), NodeKind::PcieRoot));
    b.node(prefix, plain(switch.clone(), NodeKind::PcieSwitch));
    b.link(
        prefix,
        &socket,
        &root,
        link(4.0 * h.pcie_gb_per_s, 20.0, "on-chip"),
    );
    b.link(
        prefix,
        &root,
        &switch,
        link(h.pcie_gb_per_s, h.pcie_latency_ns, "pcie"),
    );
    for g in 0..h.gpus_per_node {
        let id = format!("{prefix}gpu{g}");
        let gpu = Some(GpuSpec {
            peak_tflops: h.gpu_peak_tflops,
            memory_gb: h.gpu_memory_gb,
        });
        let node = plain(id.clone(), NodeKind::Gpu);
        b.node(prefix, Node { gpu, ..node });
        b.link(prefix, &switch, &id, link(h.pcie_gb_per_s, 150.0, "pcie"));
    }
    switch
}

fn check_host(h: &HostParams, problems: &mut Vec<(String, String)>) {
    if h.gpus_per_node == 0 {
        problems.push(("host.gpus_per_node".into(), "must be at least 1".into()));
    }
    if h.cores_per_node == 0 {
        problems.push(("host.cores_per_node".into(), "must be at least 1".into()));
    }
}

fn fat_tree(
    k: usize,
    nodes: Option<usize>,
    bw: f64,
    switch_latency_ns: f64,
    host: &HostParams,
) -> Result<Topology, Vec<(String, String)>> {
    let mut problems = vec![];
    if k < 2 || !k.is_multiple_of(2) || k > 64 {
        problems.push((
            "k".into(),
            format!("must be an even number from 2 to 64, got {k}"),
        ));
    }
    check_host(host, &mut problems);
    let capacity = k * k * k / 4;
    let n_nodes = nodes.unwrap_or(capacity);
    if n_nodes == 0 || n_nodes > capacity {
        problems.push((
            "nodes".into(),
            format!("must be from 1 to k^3/4 = {capacity}, got {n_nodes}"),
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let half = k / 2;
    let mut b = TopologyBuilder::new(
        format!("fat-tree-k{k}"),
        format!(
            "{k}-ary fat tree of {n_nodes} GPU nodes, {} GPUs each",
            host.gpus_per_node
        ),
    );
    let net = |lat| link(bw, lat, "network");
    // A switch `name` (of kind `key`) with a link up to each of `ups`.
    let switch = |b: &mut TopologyBuilder, key: &str, name: &str, ups: Vec<String>| {
        b.node(key, plain(name.to_string(), NodeKind::NetSwitch));
        for up in ups {
            b.link(key, name, &up, net(switch_latency_ns));
        }
    };
    for c in 0..half * half {
        switch(&mut b, "core", &format!("core-sw{c}"), vec![]);
    }
    let mut placed = 0;
    for pod in 0..k {
        for a in 0..half {
            let cores = (0..half).map(|c| format!("core-sw{}", a * half + c));
            switch(&mut b, "agg", &format!("pod{pod}-agg{a}"), cores.collect());
        }
        for e in 0..half {
            let edge = format!("pod{pod}-edge{e}");
            let aggs = (0..half).map(|a| format!("pod{pod}-agg{a}"));
            switch(&mut b, "edge", &edge, aggs.collect());
            for _ in 0..half {
                if placed == n_nodes {
                    break;
                }
                let prefix = format!("node{placed}-");
                let attach = host_node(&mut b, &prefix, host);
                let nic = format!("{prefix}nic");
                b.node(&prefix, plain(nic.clone(), NodeKind::Nic));
                b.link(
                    &prefix,
                    &attach,
                    &nic,
                    link(host.pcie_gb_per_s, 150.0, "pcie"),
                );
                b.link(&prefix, &nic, &edge, net(switch_latency_ns));
                placed += 1;
            }
        }
    }
    b.build()
}

fn nvlink(
    mesh: bool,
    bw: f64,
    latency_ns: f64,
    host: &HostParams,
) -> Result<Topology, Vec<(String, String)>> {
    let mut problems = vec![];
    check_host(host, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    let g = host.gpus_per_node;
    let shape = if mesh { "mesh" } else { "ring" };
    let mut b = TopologyBuilder::new(
        format!("nvlink-{shape}-{g}"),
        format!("one host, {g} GPUs joined by NVLink in a {shape}"),
    );
    host_node(&mut b, "", host);
    let gpu = |i: usize| format!("gpu{i}");
    if mesh {
        for i in 0..g {
            for j in i + 1..g {
                b.link("nvlink", &gpu(i), &gpu(j), link(bw, latency_ns, "nvlink"));
            }
        }
    } else if g > 1 {
        for i in 0..g {
            let j = (i + 1) % g;
            if g == 2 && i == 1 {
                break;
            }
            b.link("nvlink", &gpu(i), &gpu(j), link(bw, latency_ns, "nvlink"));
        }
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fat_tree_k4_has_16_nodes_and_full_bisection_routes() {
        let t = Generator::parse_spec("fat-tree:k=4,host.gpus_per_node=2")
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(t.gpus().len(), 32);
        assert_eq!(t.nodes_of(NodeKind::Nic).len(), 16);
        // 4 core + 4 pods x (2 agg + 2 edge) switches.
        assert_eq!(t.nodes_of(NodeKind::NetSwitch).len(), 20);
        let a = t.find("node0-gpu0").unwrap();
        let z = t.find("node15-core0").unwrap();
        // gpu -> switch -> nic -> edge -> agg -> core -> agg -> edge -> nic -> switch -> root
        // -> socket -> core: 12 hops across pods.
        assert_eq!(t.route(a, z).unwrap().channels.len(), 12);
    }

    #[test]
    fn nvlink_ring_and_mesh_link_counts() {
        let ring = Generator::parse_spec("nvlink:host.gpus_per_node=8").unwrap();
        let mesh = Generator::parse_spec("nvlink:mesh=true,host.gpus_per_node=8").unwrap();
        let (r, m) = (ring.build().unwrap(), mesh.build().unwrap());
        let base = 16 + 2 + 8; // cores, socket-root + root-switch, switch-gpus
        assert_eq!(r.link_count(), base + 8);
        assert_eq!(m.link_count(), base + 28);
        // GPU to GPU goes over NVLink, not PCIe.
        let route = m
            .route(m.find("gpu0").unwrap(), m.find("gpu5").unwrap())
            .unwrap();
        assert_eq!(route.channels.len(), 1);
    }

    #[test]
    fn bad_parameters_are_reported() {
        let err = Generator::parse_spec("fat-tree:k=3")
            .unwrap()
            .build()
            .unwrap_err();
        assert_eq!(err[0].0, "k");
        assert!(Generator::parse_spec("fat-tree:q=3").is_err());
        assert!(Generator::parse_spec("torus").is_err());
    }
}
