//! A GPU cluster with one parameter-server host: GPU nodes of a few GPUs behind a PCIe switch
//! and a NIC, leaf switches of a fixed number of ports, one spine switch joining the leaves, and
//! a server host of two sockets whose NIC hangs off the spine. Every pull and push crosses the
//! server's one NIC link, so that link is the cluster's narrow channel, as the host bridge is
//! the paper machine's.
//!
//! Node ids: `node{n}-gpu{g}`, `node{n}-pcie-switch`, `node{n}-nic`, `leaf{i}`, `spine`,
//! `ps-cpu{s}`, `ps-cpu{s}-core{c}`, `ps-pcie-root`, `ps-nic`. The GPU nodes' own CPUs are not
//! modelled: no role runs on them.

use super::{link, plain};
use crate::machine::topology::{CoreSpec, GpuSpec, Node, NodeKind, Topology, TopologyBuilder};
use serde::{Deserialize, Serialize};

/// The cluster's sizes and hardware constants. Defaults: GK210 GPUs (the paper's), PCIe Gen3
/// x16, 100 Gb/s EDR InfiniBand, a server host of 2 x 16 cores.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterParams {
    /// GPU nodes.
    pub nodes: usize,
    pub gpus_per_node: usize,
    /// GPU nodes per leaf switch.
    pub nodes_per_leaf: usize,
    /// GPU FP32 peak, TFLOP/s (GK210 at its base clock: 2.8).
    pub gpu_peak_tflops: f64,
    pub gpu_memory_gb: f64,
    /// GPU to node switch and node switch to NIC, GB/s per direction (Gen3 x16 effective: 12).
    pub pcie_gb_per_s: f64,
    pub pcie_latency_ns: f64,
    /// NIC and switch ports, GB/s per direction (100 Gb/s: 12.5).
    pub link_gb_per_s: f64,
    /// Per-hop latency of a NIC or switch port, ns (InfiniBand EDR switch: ~100 ns).
    pub switch_latency_ns: f64,
    pub server_sockets: usize,
    pub server_cores_per_socket: usize,
    /// One server core's memory bandwidth, GB/s.
    pub core_memory_bandwidth_gb_per_s: f64,
}

impl Default for ClusterParams {
    fn default() -> Self {
        Self {
            nodes: 4,
            gpus_per_node: 4,
            nodes_per_leaf: 16,
            gpu_peak_tflops: 2.8,
            gpu_memory_gb: 12.0,
            pcie_gb_per_s: 12.0,
            pcie_latency_ns: 150.0,
            link_gb_per_s: 12.5,
            switch_latency_ns: 100.0,
            server_sockets: 2,
            server_cores_per_socket: 16,
            core_memory_bandwidth_gb_per_s: 10.0,
        }
    }
}

/// Largest sizes accepted: far beyond any run that ends in reasonable time, small enough that
/// building the graph stays instant.
const MAX_GPUS: usize = 65_536;
const MAX_CORES: usize = 1_024;

fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

pub(super) fn cluster(c: &ClusterParams) -> Result<Topology, Vec<(String, String)>> {
    let mut problems = vec![];
    let mut count = |key: &str, value: usize, max: usize| {
        if value == 0 || value > max {
            problems.push((key.into(), format!("must be from 1 to {max}, got {value}")));
        }
    };
    count("nodes", c.nodes, MAX_GPUS);
    count("gpus_per_node", c.gpus_per_node, 64);
    count("nodes_per_leaf", c.nodes_per_leaf, 4_096);
    count("server_sockets", c.server_sockets, 16);
    count(
        "server_cores_per_socket",
        c.server_cores_per_socket,
        MAX_CORES,
    );
    if c.nodes.saturating_mul(c.gpus_per_node) > MAX_GPUS {
        problems.push((
            "nodes".into(),
            format!(
                "{} nodes of {} GPUs is {} GPUs; at most {MAX_GPUS}",
                c.nodes,
                c.gpus_per_node,
                c.nodes.saturating_mul(c.gpus_per_node)
            ),
        ));
    }
    for (key, value) in [
        ("gpu_peak_tflops", c.gpu_peak_tflops),
        ("gpu_memory_gb", c.gpu_memory_gb),
        ("pcie_gb_per_s", c.pcie_gb_per_s),
        ("link_gb_per_s", c.link_gb_per_s),
        (
            "core_memory_bandwidth_gb_per_s",
            c.core_memory_bandwidth_gb_per_s,
        ),
    ] {
        if !positive(value) {
            problems.push((
                key.into(),
                format!("must be a positive number, got {value}"),
            ));
        }
    }
    for (key, value) in [
        ("pcie_latency_ns", c.pcie_latency_ns),
        ("switch_latency_ns", c.switch_latency_ns),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            problems.push((
                key.into(),
                format!("must be a number of ns >= 0, got {value}"),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut b = TopologyBuilder::new(
        format!("cluster-{}x{}", c.nodes, c.gpus_per_node),
        format!(
            "{} GPU nodes of {} GPUs, {} per leaf switch under one spine; parameter-server host of {} x {} cores on the spine",
            c.nodes, c.gpus_per_node, c.nodes_per_leaf, c.server_sockets, c.server_cores_per_socket
        ),
    );
    let net = || link(c.link_gb_per_s, c.switch_latency_ns, "network");
    let pcie = || link(c.pcie_gb_per_s, c.pcie_latency_ns, "pcie");
    // The server host first, so that its cores are the machine's first (shards' default).
    for s in 0..c.server_sockets {
        let socket = format!("ps-cpu{s}");
        b.node("server", plain(socket.clone(), NodeKind::CpuSocket));
        for k in 0..c.server_cores_per_socket {
            let id = format!("{socket}-core{k}");
            let core = Some(CoreSpec {
                memory_bandwidth_gb_per_s: c.core_memory_bandwidth_gb_per_s,
            });
            b.node(
                "server",
                Node {
                    core,
                    ..plain(id.clone(), NodeKind::CpuCore)
                },
            );
            let bw = c.core_memory_bandwidth_gb_per_s;
            b.link("server", &socket, &id, link(bw, 20.0, "on-chip"));
        }
        if s > 0 {
            b.link("server", "ps-cpu0", &socket, link(38.4, 100.0, "smp"));
        }
    }
    b.node("server", plain("ps-pcie-root".into(), NodeKind::PcieRoot));
    b.link(
        "server",
        "ps-cpu0",
        "ps-pcie-root",
        link(4.0 * c.pcie_gb_per_s, 20.0, "on-chip"),
    );
    b.node("server", plain("ps-nic".into(), NodeKind::Nic));
    b.link("server", "ps-pcie-root", "ps-nic", pcie());
    b.node("spine", plain("spine".into(), NodeKind::NetSwitch));
    b.link("spine", "ps-nic", "spine", net());
    for n in 0..c.nodes {
        let leaf = format!("leaf{}", n / c.nodes_per_leaf);
        if n % c.nodes_per_leaf == 0 {
            b.node("leaf", plain(leaf.clone(), NodeKind::NetSwitch));
            b.link("leaf", &leaf, "spine", net());
        }
        let key = format!("node{n}");
        let switch = format!("node{n}-pcie-switch");
        b.node(&key, plain(switch.clone(), NodeKind::PcieSwitch));
        for g in 0..c.gpus_per_node {
            let id = format!("node{n}-gpu{g}");
            let gpu = Some(GpuSpec {
                peak_tflops: c.gpu_peak_tflops,
                memory_gb: c.gpu_memory_gb,
            });
            b.node(
                &key,
                Node {
                    gpu,
                    ..plain(id.clone(), NodeKind::Gpu)
                },
            );
            b.link(&key, &switch, &id, pcie());
        }
        let nic = format!("node{n}-nic");
        b.node(&key, plain(nic.clone(), NodeKind::Nic));
        b.link(&key, &switch, &nic, pcie());
        b.link(&key, &nic, &leaf, net());
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::super::Generator;
    use crate::machine::topology::NodeKind;

    #[test]
    fn cluster_of_256_nodes_has_1024_gpus_and_routes_through_the_server_nic() {
        let t = Generator::parse_spec("cluster:nodes=256")
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(t.gpus().len(), 1024);
        assert_eq!(t.cores().len(), 32);
        // 16 leaves and the spine.
        assert_eq!(t.nodes_of(NodeKind::NetSwitch).len(), 17);
        let gpu = t.find("node255-gpu3").unwrap();
        let core = t.find("ps-cpu1-core15").unwrap();
        // gpu -> pcie switch -> nic -> leaf -> spine -> ps-nic -> root -> cpu0 -> cpu1 -> core.
        let route = t.route(gpu, core).unwrap();
        assert_eq!(route.channels.len(), 9);
        // 150 + 150 + 100 + 100 + 100 + 150 + 20 + 100 + 20 ns.
        assert_eq!(route.latency.as_nanos(), 890);
    }

    #[test]
    fn cluster_sizes_out_of_range_are_named() {
        let err = Generator::parse_spec("cluster:nodes=0,gpus_per_node=65,link_gb_per_s=-1")
            .unwrap()
            .build()
            .unwrap_err();
        let keys: Vec<&str> = err.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["nodes", "gpus_per_node", "link_gb_per_s"]);
    }
}
