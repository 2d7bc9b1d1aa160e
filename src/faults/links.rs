//! Slow links: `faults.link_slowdown` on the last `slow_links` learners' own links (those only
//! their traffic crosses), or `faults.link_slowdowns` naming links by their two ends. A slow
//! link carries data `factor` times slower: its bandwidth is divided by the factor in the
//! topology itself (its latency, a matter of distance and hops, stays), so the simulator's
//! network shares the slowed link as any other and a testbed shapes its port at the slowed
//! rate.

use super::{FaultsSection, MAX_SLOWDOWN};
use crate::machine::topology::Topology;
use petgraph::graph::NodeIndex;
use serde::{Deserialize, Serialize};

/// One entry of `link_slowdowns`: `{ between = ["gpu3", "plx1"], factor = 4.0 }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkKeys {
    pub between: Vec<String>,
    pub factor: f64,
}

/// The slow links asked for, checked against the number of learners (not yet the machine).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkFaults {
    /// Each learner's factor for its own links (1: none).
    pub learners: Vec<f64>,
    /// Links named by their ends, with their factors.
    pub named: Vec<([String; 2], f64)>,
}

/// A link slowed in the topology, for the summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlowLink {
    /// Its two ends' ids.
    pub between: [String; 2],
    pub factor: f64,
    /// The learner whose own link it is, if it was slowed as one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learner: Option<usize>,
}

fn factor_problem(key: String, f: f64) -> Option<(String, String)> {
    (!(f.is_finite() && (1.0..=MAX_SLOWDOWN).contains(&f))).then(|| {
        (
            key,
            format!(
                "must be a factor from 1 to {MAX_SLOWDOWN} (how many times slower the link \
                 carries data: its bandwidth is divided by it), got {f}"
            ),
        )
    })
}

impl FaultsSection {
    /// The slow links of a run of `p` learners, or every problem as (key, message).
    pub fn links(&self, p: usize) -> Result<LinkFaults, Vec<(String, String)>> {
        let mut problems = vec![];
        let mut out = LinkFaults {
            learners: vec![1.0; p],
            named: vec![],
        };
        match (self.link_slowdown, self.slow_links) {
            (None, Some(k)) => problems.push((
                "faults.link_slowdown".to_string(),
                format!("is needed to say how slow the {k} slow learners' links are"),
            )),
            (Some(f), k) => {
                let k = k.unwrap_or(1);
                problems.extend(factor_problem("faults.link_slowdown".into(), f));
                if k > p {
                    problems.push((
                        "faults.slow_links".to_string(),
                        format!("is {k}, but the run has {p} learners"),
                    ));
                } else {
                    for x in &mut out.learners[p - k..] {
                        *x = f;
                    }
                }
            }
            (None, None) => {}
        }
        for (i, link) in self.link_slowdowns.iter().flatten().enumerate() {
            let key = |k: &str| format!("faults.link_slowdowns[{i}].{k}");
            problems.extend(factor_problem(key("factor"), link.factor));
            match &link.between[..] {
                [a, b] if a != b => out.named.push(([a.clone(), b.clone()], link.factor)),
                _ => problems.push((
                    key("between"),
                    format!(
                        "must name the link's two ends, two different node ids such as \
                         [\"gpu3\", \"plx1\"], got {:?}",
                        link.between
                    ),
                )),
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }
}

/// Slows `faults`' links in `topology`, where learner `l` computes on `learners[l]` and the
/// shards live on `shards`; the links slowed, or every problem as (key, message).
pub fn slow_links(
    faults: &LinkFaults,
    topology: &mut Topology,
    learners: &[NodeIndex],
    shards: &[NodeIndex],
) -> Result<Vec<SlowLink>, Vec<(String, String)>> {
    let mut problems = vec![];
    let mut slowed = vec![];
    let any = faults.learners.iter().any(|&f| f != 1.0) || !faults.named.is_empty();
    if any && topology.host().is_some() {
        return Err(vec![(
            "faults.link_slowdown".into(),
            format!(
                "`{}` is a shared-memory host: its learners and shards share memory, not links; \
                 slow links need a machine of devices and links",
                topology.name()
            ),
        )]);
    }
    for (l, &f) in faults.learners.iter().enumerate() {
        if f == 1.0 {
            continue;
        }
        let Some(&node) = learners.get(l) else {
            continue;
        };
        let others: Vec<NodeIndex> = (learners.iter().chain(shards))
            .copied()
            .filter(|&n| n != node)
            .collect();
        let own = topology.own_links(node, &others);
        if own.is_empty() {
            problems.push((
                "faults.link_slowdown".into(),
                format!(
                    "learner {l}'s device `{}` has no link of its own: every link from it also \
                     carries other learners' or the shards' traffic; name the link to slow with \
                     faults.link_slowdowns",
                    topology.node(node).id
                ),
            ));
        }
        for (a, b) in own {
            topology.slow_link(a, b, f);
            slowed.push(SlowLink {
                between: [topology.node(a).id.clone(), topology.node(b).id.clone()],
                factor: f,
                learner: Some(l),
            });
        }
    }
    for (i, (ends, f)) in faults.named.iter().enumerate() {
        let key = format!("faults.link_slowdowns[{i}].between");
        let found: Vec<Option<NodeIndex>> = ends.iter().map(|id| topology.find(id)).collect();
        match found[..] {
            [Some(a), Some(b)] => {
                if topology.slow_link(a, b, *f) {
                    slowed.push(SlowLink {
                        between: ends.clone(),
                        factor: *f,
                        learner: None,
                    });
                } else {
                    problems.push((
                        key,
                        format!(
                            "`{}` and `{}` are not linked in `{}`",
                            ends[0],
                            ends[1],
                            topology.name()
                        ),
                    ));
                }
            }
            _ => {
                for (id, _) in ends.iter().zip(&found).filter(|(_, n)| n.is_none()) {
                    problems.push((
                        key.clone(),
                        format!("`{}` has no node `{id}`", topology.name()),
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(slowed)
    } else {
        Err(problems)
    }
}
