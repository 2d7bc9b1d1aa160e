//! What the testbed builds from a topology: one network namespace per host, where a host is
//! what stays connected when the one net-switch is taken away, and one switch port per link
//! between a host and the switch, at that link's bandwidth.

use crate::machine::topology::{NodeKind, Topology};
use petgraph::graph::NodeIndex;
use std::collections::BTreeMap;

/// One host of the testbed.
#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    /// Its name: the id of its NIC's node without a `-nic` suffix (e.g. `learner0`).
    pub name: String,
    /// The topology's nodes in it, in declaration order.
    pub nodes: Vec<String>,
    /// Its switch port's rate, bits per second, each way.
    pub port_bits_per_s: u64,
    /// The port's latency in the topology, ns (tc cannot add it; the testbed measures its own).
    pub port_latency_ns: u64,
    /// Whether a learner can run on it (it holds a gpu-kind node).
    pub learners: bool,
}

/// The hosts, in the order of their first nodes in the topology.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub topology: String,
    pub switch: String,
    pub hosts: Vec<Host>,
}

/// Most hosts a testbed builds (namespaces and addresses are cheap, but each host's traffic is
/// real and shares this machine's cores).
pub const MAX_HOSTS: usize = 64;

impl Plan {
    /// The plan for `t`, or what makes it unfit for a testbed.
    pub fn of(t: &Topology) -> Result<Self, String> {
        let switches = t.nodes_of(NodeKind::NetSwitch);
        let [switch] = switches[..] else {
            return Err(format!(
                "a testbed is hosts on one switch: the topology needs exactly one net-switch node, \
                 and has {}",
                switches.len()
            ));
        };
        let n = t.node_count();
        let mut next: Vec<Vec<(NodeIndex, usize)>> = vec![vec![]; n];
        for c in (0..t.channel_count()).step_by(2) {
            let (_, a, b) = t.channel_ends(crate::machine::topology::ChannelId(c as u32));
            next[a.index()].push((b, c / 2));
            next[b.index()].push((a, c / 2));
        }
        // Hosts: components of the graph without the switch.
        let mut host_of = vec![usize::MAX; n];
        let mut members: Vec<Vec<NodeIndex>> = vec![];
        for start in 0..n {
            if start == switch.index() || host_of[start] != usize::MAX {
                continue;
            }
            let h = members.len();
            let mut stack = vec![NodeIndex::new(start)];
            host_of[start] = h;
            let mut these = vec![];
            while let Some(v) = stack.pop() {
                these.push(v);
                for &(w, _) in &next[v.index()] {
                    if w != switch && host_of[w.index()] == usize::MAX {
                        host_of[w.index()] = h;
                        stack.push(w);
                    }
                }
            }
            these.sort();
            members.push(these);
        }
        let mut ports: BTreeMap<usize, Vec<(NodeIndex, usize)>> = BTreeMap::new();
        for &(w, e) in &next[switch.index()] {
            ports.entry(host_of[w.index()]).or_default().push((w, e));
        }
        let mut hosts = vec![];
        for (h, nodes) in members.iter().enumerate() {
            let first = &t.node(nodes[0]).id;
            let port = match ports.get(&h).map(Vec::as_slice) {
                Some([one]) => *one,
                None | Some([]) => {
                    return Err(format!(
                        "node `{first}` is on no host with a link to the switch `{}`",
                        t.node(switch).id
                    ));
                }
                Some(many) => {
                    return Err(format!(
                        "the host of `{}` has {} links to the switch; a testbed host has one port",
                        t.node(many[0].0).id,
                        many.len()
                    ));
                }
            };
            let (nic, edge) = port;
            let (link, _, _) = t.channel_ends(crate::machine::topology::ChannelId(2 * edge as u32));
            let id = &t.node(nic).id;
            let bits = link.bandwidth_gb_per_s * 8e9;
            if !(1e5..=1e11).contains(&bits) {
                return Err(format!(
                    "the link between `{id}` and the switch runs at {} GB/s; tc shapes a testbed \
                     port between 0.0000125 GB/s (100 kbit/s) and 12.5 GB/s (100 Gbit/s)",
                    link.bandwidth_gb_per_s
                ));
            }
            hosts.push(Host {
                name: id.strip_suffix("-nic").unwrap_or(id).to_string(),
                nodes: nodes.iter().map(|&v| t.node(v).id.clone()).collect(),
                port_bits_per_s: bits.round() as u64,
                port_latency_ns: link.latency_ns,
                learners: nodes.iter().any(|&v| t.node(v).kind == NodeKind::Gpu),
            });
        }
        if hosts.len() < 2 {
            return Err(format!(
                "a testbed needs at least two hosts on the switch; this topology has {}",
                hosts.len()
            ));
        }
        if hosts.len() > MAX_HOSTS {
            return Err(format!(
                "a testbed builds at most {MAX_HOSTS} hosts; this topology has {}",
                hosts.len()
            ));
        }
        Ok(Plan {
            topology: t.name().to_string(),
            switch: t.node(switch).id.clone(),
            hosts,
        })
    }

    /// The host holding node `id`.
    pub fn host_of(&self, id: &str) -> Option<usize> {
        self.hosts
            .iter()
            .position(|h| h.nodes.iter().any(|n| n == id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::topology::file;

    #[test]
    fn the_shipped_testbed_is_four_learner_hosts_and_a_server_at_100_mbit() {
        let t = file::load("topologies/testbed.toml").unwrap();
        let p = Plan::of(&t).unwrap();
        let names: Vec<&str> = p.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            ["learner0", "learner1", "learner2", "learner3", "server"]
        );
        assert!(p.hosts.iter().all(|h| h.port_bits_per_s == 100_000_000));
        assert_eq!(
            p.hosts.iter().map(|h| h.learners).collect::<Vec<_>>(),
            [true, true, true, true, false]
        );
        assert_eq!(p.host_of("server-core1"), Some(4));
        assert_eq!(p.host_of("learner2-cpu"), Some(2));
        assert_eq!(p.switch, "switch");
    }

    #[test]
    fn a_machine_without_one_switch_is_no_testbed() {
        let t = file::load("builtin:power8-k80").unwrap();
        let e = Plan::of(&t).unwrap_err();
        assert!(e.contains("exactly one net-switch node, and has 0"), "{e}");
    }
}
