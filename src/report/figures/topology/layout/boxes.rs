//! The figure's boxes (`Item`s): one per node, except that a run of many sibling leaves of one
//! kind is one box, with its labels broken to fit and its width taken from them.
//!
//! It decides what each box holds and says, never where it goes: depth and x are left at zero
//! for the placement to fill in.

use super::{LABEL_SIZE, text_width};
use crate::machine::topology::{NodeKind, Topology};
use petgraph::graph::NodeIndex;
use std::collections::{BTreeMap, BTreeSet};

const MIN_BOX_W: f64 = 56.0;
/// A label wider than this is broken in two at a `-`.
const WRAP_W: f64 = 50.0;
/// A run of more sibling leaves than this is drawn as one box: cores, which come by the dozen
/// and are alike, and any other kind.
const RUN_OF_CORES: usize = 4;
const RUN_OF_OTHERS: usize = 8;
/// Highlighted members of a run drawn as their own boxes, beside the run, at most.
const MAX_SINGLES: usize = 4;

/// One box: a node, or a run of sibling leaves of one kind drawn together.
pub(crate) struct Item {
    pub(crate) kind: NodeKind,
    /// Node indices, ascending; more than one for a run.
    pub(crate) members: Vec<usize>,
    pub(crate) lines: Vec<String>,
    pub(crate) learner: bool,
    pub(crate) shard: bool,
    pub(crate) width: f64,
    pub(crate) depth: usize,
    /// The box's centre.
    pub(crate) x: f64,
}

/// The boxes: every node on its own, except runs of more than a few leaves of one kind hanging
/// off one node by one class of link, which become one box. Highlighted members of a run stay
/// on their own when there are only a few, so the figure still shows which ones they are.
pub(super) fn make_items(
    t: &Topology,
    adj: &[Vec<(usize, usize)>],
    learners: &BTreeSet<usize>,
    shards: &BTreeSet<usize>,
) -> Vec<Item> {
    let kind = |v: usize| t.node(NodeIndex::new(v)).kind;
    let mut runs: BTreeMap<(usize, usize, usize), Vec<usize>> = BTreeMap::new();
    for (v, edges) in adj.iter().enumerate() {
        if let [(p, c)] = edges[..] {
            let k = NodeKind::ALL
                .iter()
                .position(|&k| k == kind(v))
                .unwrap_or(0);
            runs.entry((p, k, c)).or_default().push(v);
        }
    }
    let hl = |v: &usize| learners.contains(v) || shards.contains(v);
    let mut sets: Vec<Vec<usize>> = vec![];
    let mut grouped = vec![false; adj.len()];
    for members in runs.into_values() {
        let limit = if kind(members[0]) == NodeKind::CpuCore {
            RUN_OF_CORES
        } else {
            RUN_OF_OTHERS
        };
        if members.len() <= limit {
            continue;
        }
        let marked = members.iter().filter(|v| hl(v)).count();
        let run: Vec<usize> = if marked <= MAX_SINGLES {
            members.iter().copied().filter(|v| !hl(v)).collect()
        } else {
            members
        };
        if run.len() >= 2 {
            for &v in &run {
                grouped[v] = true;
            }
            sets.push(run);
        }
    }
    sets.extend((0..adj.len()).filter(|&v| !grouped[v]).map(|v| vec![v]));
    sets.sort();
    sets.into_iter()
        .map(|members| {
            let k = kind(members[0]);
            let ids: Vec<&str> = members
                .iter()
                .map(|&v| t.node(NodeIndex::new(v)).id.as_str())
                .collect();
            let lines = if members.len() == 1 {
                wrap(ids[0])
            } else {
                let mut lines = vec![format!("{} {}", members.len(), plural(k))];
                let (nl, ns) = (
                    members.iter().filter(|v| learners.contains(v)).count(),
                    members.iter().filter(|v| shards.contains(v)).count(),
                );
                if ns > 0 {
                    lines.push(format!("{ns} shards"));
                } else if nl > 0 {
                    lines.push(format!("{nl} learners"));
                } else if let Some(r) = id_range(&ids) {
                    lines.push(r);
                }
                lines
            };
            let width = lines
                .iter()
                .map(|l| text_width(l, LABEL_SIZE) + 12.0)
                .fold(MIN_BOX_W, f64::max);
            Item {
                kind: k,
                learner: members.iter().any(|v| learners.contains(v)),
                shard: members.iter().any(|v| shards.contains(v)),
                members,
                lines,
                width,
                depth: 0,
                x: 0.0,
            }
        })
        .collect()
}

fn plural(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::CpuSocket => "sockets",
        NodeKind::CpuCore => "cores",
        NodeKind::PcieRoot => "PCIe roots",
        NodeKind::PcieSwitch => "PCIe switches",
        NodeKind::Gpu => "GPUs",
        NodeKind::Nic => "NICs",
        NodeKind::NetSwitch => "switches",
        NodeKind::NvlinkSwitch => "NVLink switches",
    }
}

/// `chip0-core0–11` for ids that share a prefix and end in consecutive numbers.
fn id_range(ids: &[&str]) -> Option<String> {
    let parts: Vec<(&str, u64)> = ids
        .iter()
        .map(|id| {
            let digits = id.len() - id.trim_end_matches(|c: char| c.is_ascii_digit()).len();
            let (p, d) = id.split_at(id.len() - digits);
            d.parse().ok().map(|n| (p, n))
        })
        .collect::<Option<_>>()?;
    let (prefix, first) = parts[0];
    let consecutive = parts
        .iter()
        .enumerate()
        .all(|(i, &(p, n))| p == prefix && first.checked_add(i as u64) == Some(n));
    let (_, last) = parts[parts.len() - 1];
    consecutive.then(|| format!("{prefix}{first}–{last}"))
}

/// A label on one line, or broken after the `-` that best balances two lines when too wide.
fn wrap(id: &str) -> Vec<String> {
    if text_width(id, LABEL_SIZE) <= WRAP_W {
        return vec![id.to_string()];
    }
    let best = id
        .char_indices()
        .filter(|&(i, c)| c == '-' && i + 1 < id.len())
        .map(|(i, _)| {
            let (a, b) = id.split_at(i + 1);
            (
                text_width(a, LABEL_SIZE).max(text_width(b, LABEL_SIZE)),
                i + 1,
            )
        })
        .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    match best {
        Some((_, at)) => vec![id[..at].to_string(), id[at..].to_string()],
        None => vec![id.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_range_needs_one_prefix_and_consecutive_numbers() {
        assert_eq!(
            id_range(&["chip0-core1", "chip0-core2", "chip0-core3"]).as_deref(),
            Some("chip0-core1–3")
        );
        assert_eq!(id_range(&["core1", "core3"]), None);
        assert_eq!(id_range(&["a1", "b2"]), None);
        assert_eq!(id_range(&["core1", "core"]), None);
    }

    #[test]
    fn wrap_breaks_a_long_id_at_its_most_balanced_dash() {
        assert_eq!(wrap("gpu12"), ["gpu12"]);
        assert_eq!(wrap("node15-pcie-switch"), ["node15-", "pcie-switch"]);
        assert_eq!(wrap("chip1-core3"), ["chip1-", "core3"]);
        assert_eq!(wrap("averyveryverylongid"), ["averyveryverylongid"]);
    }
}
