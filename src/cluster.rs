//! The roles the algorithm gives the machine's devices: learners on GPUs and parameter-server
//! shards on host cores, and where each one sits. The roles keep their own state and account for
//! their own time; the protocol that moves messages between them lives in `algorithm`.

pub mod learner;
pub mod shard;

use crate::machine::topology::{NodeKind, Route, Topology};
use petgraph::graph::NodeIndex;
use std::ops::Range;

/// Which GPU each learner runs on and which core each shard runs on, and each shard's slice of
/// the parameters. On a shared-memory host learners and shards are threads that share all the
/// cores; each is listed on the core it is nominally placed on, learners round-robin.
#[derive(Clone, Debug)]
pub struct Placement {
    /// Each learner's GPU, or its core on a shared-memory host.
    pub learner_gpus: Vec<NodeIndex>,
    pub shard_cores: Vec<NodeIndex>,
    /// Parameter index range owned by each shard: contiguous, sizes differing by at most one.
    pub shard_ranges: Vec<Range<usize>>,
}

/// Routes from the shards to the learners and back, each indexed `l * shards + s`.
pub type ServerRoutes = (Vec<Route>, Vec<Route>);

/// Each learner's GPU and the next one's round the ring (a lone learner: itself).
pub fn ring_pairs(gpus: &[NodeIndex]) -> Vec<(NodeIndex, NodeIndex)> {
    let p = gpus.len();
    (0..p).map(|l| (gpus[l], gpus[(l + 1) % p])).collect()
}

impl Placement {
    /// Every (learner GPU, shard core) pair, learner by learner and each shard in turn: pair
    /// `l * shards + s`.
    pub fn learner_shard_pairs(&self) -> Vec<(NodeIndex, NodeIndex)> {
        (self.learner_gpus.iter())
            .flat_map(|&gpu| self.shard_cores.iter().map(move |&core| (gpu, core)))
            .collect()
    }

    /// Whether `topology` routes the traffic of a run with this placement: between every
    /// learner and every shard both ways, or round the learners' ring (`ring`). A
    /// shared-memory host needs no routes.
    pub fn check_routes(
        &self,
        topology: &Topology,
        ring: bool,
    ) -> Result<(), Vec<(String, String)>> {
        if topology.host().is_some() {
            return Ok(());
        }
        if ring {
            let ring = ring_pairs(&self.learner_gpus);
            return topology.routes(ring, "the ring all-reduce").map(drop);
        }
        self.server_routes(topology).map(drop)
    }

    /// The routes from every shard to every learner and back, each indexed `l * shards + s`
    /// (see [`Placement::learner_shard_pairs`]), or a problem for each pair without one.
    pub fn server_routes(
        &self,
        topology: &Topology,
    ) -> Result<ServerRoutes, Vec<(String, String)>> {
        let pairs = self.learner_shard_pairs();
        let down = topology.routes(pairs.iter().map(|&(g, c)| (c, g)), "a shard's replies");
        let up = topology.routes(pairs.iter().copied(), "a learner's pushes");
        match (down, up) {
            (Ok(down), Ok(up)) => Ok((down, up)),
            (down, up) => Err(down.err().into_iter().chain(up.err()).flatten().collect()),
        }
    }

    /// Learners on the named GPUs (default: the first `learners` GPUs in declaration order);
    /// shards on the named cores (default: spread round-robin over sockets, first free core of
    /// each). Problems come back as (key, message).
    pub fn new(
        topology: &Topology,
        learners: usize,
        shards: usize,
        params: usize,
        learner_gpus: Option<&[String]>,
        shard_cores: Option<&[String]>,
    ) -> Result<Self, Vec<(String, String)>> {
        let mut problems = vec![];
        let gpus = topology.gpus();
        let cores = topology.cores();
        let host = topology.host().is_some();
        let learner_gpus = match learner_gpus {
            Some(_) if host => {
                problems.push((
                    "cluster.learner_gpus".into(),
                    format!(
                        "machine `{}` is a shared-memory host: its learners are threads on its cores, not placed on GPUs; remove this key",
                        topology.name()
                    ),
                ));
                vec![]
            }
            Some(ids) => pick(
                topology,
                ids,
                NodeKind::Gpu,
                "cluster.learner_gpus",
                learners,
                &mut problems,
            ),
            // Threads: learner l starts on core l mod cores; processor sharing moves them.
            None if host => cores.iter().copied().cycle().take(learners).collect(),
            None => {
                if learners > gpus.len() {
                    problems.push((
                        "cluster.learners".into(),
                        format!(
                            "{learners} learners but machine `{}` has only {} GPUs; allowed: 1 to {}",
                            topology.name(),
                            gpus.len(),
                            gpus.len()
                        ),
                    ));
                }
                gpus.iter().copied().take(learners).collect()
            }
        };
        let shard_cores = match shard_cores {
            Some(ids) => pick(
                topology,
                ids,
                NodeKind::CpuCore,
                "cluster.shard_cores",
                shards,
                &mut problems,
            ),
            None if host => spread(topology, &cores)
                .into_iter()
                .cycle()
                .take(shards)
                .collect(),
            None => {
                if shards > cores.len() {
                    problems.push((
                        "cluster.shards".into(),
                        format!(
                            "{shards} shards but machine `{}` has only {} host cores; allowed: 1 to {}",
                            topology.name(),
                            cores.len(),
                            cores.len()
                        ),
                    ));
                }
                spread(topology, &cores).into_iter().take(shards).collect()
            }
        };
        if shards > params {
            problems.push((
                "cluster.shards".into(),
                format!("{shards} shards for a model of {params} parameters; at most one shard per parameter"),
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            learner_gpus,
            shard_cores,
            shard_ranges: split_even(params, shards),
        })
    }
}

/// Splits `n` items into `parts` contiguous ranges whose sizes differ by at most one.
pub fn split_even(n: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.max(1);
    let (base, extra) = (n / parts, n % parts);
    let mut start = 0;
    (0..parts)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let r = start..start + len;
            start += len;
            r
        })
        .collect()
}

/// Cores ordered round-robin across sockets: socket 0's first core, socket 1's first, socket 0's
/// second, ... so shards spread their memory traffic over every socket.
fn spread(topology: &Topology, cores: &[NodeIndex]) -> Vec<NodeIndex> {
    let mut sockets: Vec<Option<NodeIndex>> = vec![];
    let mut per_socket: Vec<Vec<NodeIndex>> = vec![];
    for &c in cores {
        let s = topology.socket_of(c);
        match sockets.iter().position(|&x| x == s) {
            Some(i) => per_socket[i].push(c),
            None => {
                sockets.push(s);
                per_socket.push(vec![c]);
            }
        }
    }
    let longest = per_socket.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| per_socket.iter().filter_map(move |v| v.get(i).copied()))
        .collect()
}

fn pick(
    topology: &Topology,
    ids: &[String],
    kind: NodeKind,
    key: &str,
    want: usize,
    problems: &mut Vec<(String, String)>,
) -> Vec<NodeIndex> {
    if ids.len() != want {
        problems.push((
            key.into(),
            format!(
                "lists {} nodes but {want} are needed (one per {})",
                ids.len(),
                if kind == NodeKind::Gpu {
                    "learner"
                } else {
                    "shard"
                }
            ),
        ));
    }
    let mut out = vec![];
    for (i, id) in ids.iter().enumerate() {
        match topology.find(id) {
            Some(n) if topology.node(n).kind == kind => {
                if out.contains(&n) {
                    problems.push((format!("{key}[{i}]"), format!("`{id}` is listed twice")));
                }
                out.push(n);
            }
            Some(n) => problems.push((
                format!("{key}[{i}]"),
                format!(
                    "`{id}` is a {}, not a {}",
                    topology.node(n).kind.name(),
                    kind.name()
                ),
            )),
            None => problems.push((
                format!("{key}[{i}]"),
                format!("no node `{id}` in machine `{}`", topology.name()),
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_split() {
        assert_eq!(split_even(10, 3), vec![0..4, 4..7, 7..10]);
        assert_eq!(split_even(4, 4), vec![0..1, 1..2, 2..3, 3..4]);
    }

    #[test]
    fn default_shards_alternate_sockets() {
        let t = crate::machine::topology::file::load("builtin:power8-k80").unwrap();
        let p = Placement::new(&t, 16, 4, 1000, None, None).unwrap();
        let ids: Vec<&str> = p
            .shard_cores
            .iter()
            .map(|&c| t.node(c).id.as_str())
            .collect();
        assert_eq!(
            ids,
            vec!["chip0-core0", "chip1-core0", "chip0-core1", "chip1-core1"]
        );
        let err = Placement::new(&t, 17, 4, 1000, None, None).unwrap_err();
        assert_eq!(err[0].0, "cluster.learners");
        assert!(err[0].1.contains("only 16 GPUs"));
    }
}
