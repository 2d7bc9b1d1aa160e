//! Where the boxes go: each one's layer (its breadth-first depth from the top of its connected
//! part) and its x, with leaves spaced evenly in depth-first order, every other box centred over
//! the boxes below it, and each layer pushed apart just enough not to overlap.
//!
//! It moves boxes and never changes what they hold or how wide they are; ties are broken by
//! index, never by iteration order, so the same boxes always land in the same places.

use super::Item;
use crate::machine::topology::NodeKind;
use std::collections::VecDeque;

/// Least horizontal space between two boxes of a layer.
const GAP: f64 = 14.0;
const COMPONENT_GAP: f64 = 40.0;
/// Kinds whose nodes are the top of the picture, most preferred first.
const TOP_KINDS: [NodeKind; 8] = [
    NodeKind::NetSwitch,
    NodeKind::CpuSocket,
    NodeKind::NvlinkSwitch,
    NodeKind::PcieRoot,
    NodeKind::PcieSwitch,
    NodeKind::Nic,
    NodeKind::CpuCore,
    NodeKind::Gpu,
];

/// Depths, then x positions: leaves in depth-first order, parents centred over their children.
pub(super) fn place(items: &mut [Item], nbrs: &[Vec<usize>]) {
    let m = items.len();
    let mut component = vec![usize::MAX; m];
    let mut comps: Vec<Vec<usize>> = vec![];
    for s in 0..m {
        if component[s] != usize::MAX {
            continue;
        }
        let id = comps.len();
        component[s] = id;
        let mut members = vec![s];
        let mut queue = VecDeque::from([s]);
        while let Some(u) = queue.pop_front() {
            for &v in &nbrs[u] {
                if component[v] == usize::MAX {
                    component[v] = id;
                    members.push(v);
                    queue.push_back(v);
                }
            }
        }
        members.sort_unstable();
        comps.push(members);
    }
    let mut depth = vec![usize::MAX; m];
    let mut roots_of = vec![];
    for comp in &comps {
        let roots = roots(items, nbrs, comp);
        let mut queue: VecDeque<usize> = roots.iter().copied().collect();
        for &r in &roots {
            depth[r] = 0;
        }
        while let Some(u) = queue.pop_front() {
            for &v in &nbrs[u] {
                if depth[v] == usize::MAX {
                    depth[v] = depth[u] + 1;
                    queue.push_back(v);
                }
            }
        }
        roots_of.push(roots);
    }
    for (item, &d) in items.iter_mut().zip(&depth) {
        item.depth = d;
    }
    // Depth-first, going down before sideways before up, so that what hangs together in the
    // machine is visited together (a pod of a fat tree, a host under its NIC).
    let rank = |u: usize, v: usize| match depth[v].cmp(&depth[u]) {
        std::cmp::Ordering::Greater => 0,
        std::cmp::Ordering::Equal => 1,
        std::cmp::Ordering::Less => 2,
    };
    let down = |u: usize| nbrs[u].iter().any(|&v| depth[v] == depth[u] + 1);
    let mut seen = vec![false; m];
    let mut leaf_x = vec![0.0; m];
    let mut last: Option<(usize, f64)> = None;
    for roots in &roots_of {
        for &r in roots {
            if seen[r] {
                continue;
            }
            let mut stack: Vec<(Vec<usize>, usize)> = vec![];
            let mut arrive = Some(r);
            loop {
                if let Some(v) = arrive.take() {
                    seen[v] = true;
                    if !down(v) {
                        let x = match last {
                            None => 0.0,
                            Some((p, prev)) => {
                                let apart = if component[p] == component[v] {
                                    0.0
                                } else {
                                    COMPONENT_GAP
                                };
                                prev + (items[p].width + items[v].width) / 2.0 + GAP + apart
                            }
                        };
                        leaf_x[v] = x;
                        last = Some((v, x));
                    }
                    let mut next = nbrs[v].clone();
                    next.sort_by_key(|&w| (rank(v, w), w));
                    stack.push((next, 0));
                }
                let Some((next, k)) = stack.last_mut() else {
                    break;
                };
                match next.get(*k) {
                    Some(&w) => {
                        *k += 1;
                        if !seen[w] {
                            arrive = Some(w);
                        }
                    }
                    None => {
                        stack.pop();
                    }
                }
            }
        }
    }
    let max_depth = depth.iter().copied().max().unwrap_or(0);
    let mut x = vec![0.0; m];
    for d in (0..=max_depth).rev() {
        let mut layer: Vec<(f64, usize)> = (0..m)
            .filter(|&i| depth[i] == d)
            .map(|i| {
                let below: Vec<f64> = nbrs[i]
                    .iter()
                    .filter(|&&v| depth[v] == d + 1)
                    .map(|&v| x[v])
                    .collect();
                let want = if below.is_empty() {
                    leaf_x[i]
                } else {
                    let lo = below.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    (lo + hi) / 2.0
                };
                (want, i)
            })
            .collect();
        // Ties (the aggregation switches of a pod, over the same edge switches) go in
        // declaration order.
        layer.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let want: Vec<f64> = layer.iter().map(|l| l.0).collect();
        let gaps: Vec<f64> = layer
            .windows(2)
            .map(|w| (items[w[0].1].width + items[w[1].1].width) / 2.0 + GAP)
            .collect();
        for (&(_, i), p) in layer.iter().zip(spread(&want, &gaps)) {
            x[i] = p;
        }
    }
    for (item, &p) in items.iter_mut().zip(&x) {
        item.x = p;
    }
}

/// The top of one connected part: its spine switches if it has network switches, all its
/// sockets if it has those, else the nodes of the first kind present that are closest to
/// everything else.
fn roots(items: &[Item], nbrs: &[Vec<usize>], comp: &[usize]) -> Vec<usize> {
    let Some(kind) = TOP_KINDS
        .into_iter()
        .find(|&k| comp.iter().any(|&i| items[i].kind == k))
    else {
        return comp.iter().copied().take(1).collect();
    };
    let candidates: Vec<usize> = comp
        .iter()
        .copied()
        .filter(|&i| items[i].kind == kind)
        .collect();
    let work: usize = comp.iter().map(|&i| nbrs[i].len()).sum::<usize>() * candidates.len();
    if kind == NodeKind::CpuSocket || candidates.len() == 1 || work > 20_000_000 {
        return candidates;
    }
    let mut dist = vec![usize::MAX; items.len()];
    let ecc: Vec<usize> = candidates
        .iter()
        .map(|&c| {
            for &i in comp {
                dist[i] = usize::MAX;
            }
            dist[c] = 0;
            let mut far = 0;
            let mut queue = VecDeque::from([c]);
            while let Some(u) = queue.pop_front() {
                far = far.max(dist[u]);
                for &v in &nbrs[u] {
                    if dist[v] == usize::MAX {
                        dist[v] = dist[u] + 1;
                        queue.push_back(v);
                    }
                }
            }
            far
        })
        .collect();
    let best = ecc.iter().copied().min().unwrap_or(0);
    candidates
        .into_iter()
        .zip(ecc)
        .filter(|&(_, e)| e == best)
        .map(|(c, _)| c)
        .collect()
}

/// Positions as close as possible (least squares) to `want`, kept in order and at least
/// `gaps[i]` apart between `i` and `i + 1`: pool-adjacent-violators on the shifted targets.
fn spread(want: &[f64], gaps: &[f64]) -> Vec<f64> {
    let mut offset = Vec::with_capacity(want.len());
    let mut acc = 0.0;
    for i in 0..want.len() {
        if i > 0 {
            acc += gaps[i - 1];
        }
        offset.push(acc);
    }
    // Blocks of (sum, count) whose means are non-decreasing.
    let mut blocks: Vec<(f64, usize)> = vec![];
    for (w, o) in want.iter().zip(&offset) {
        blocks.push((w - o, 1));
        while blocks.len() >= 2 {
            let (s1, n1) = blocks[blocks.len() - 1];
            let (s0, n0) = blocks[blocks.len() - 2];
            if s0 / n0 as f64 <= s1 / n1 as f64 {
                break;
            }
            blocks.pop();
            blocks.pop();
            blocks.push((s0 + s1, n0 + n1));
        }
    }
    blocks
        .iter()
        .flat_map(|&(s, n)| std::iter::repeat_n(s / n as f64, n))
        .zip(&offset)
        .map(|(v, o)| v + o)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_keeps_order_and_gaps_with_least_movement() {
        assert_eq!(
            spread(&[0.0, 0.0, 0.0], &[10.0, 10.0]),
            vec![-10.0, 0.0, 10.0]
        );
        assert_eq!(spread(&[0.0, 50.0], &[10.0]), vec![0.0, 50.0]);
        assert_eq!(
            spread(&[0.0, 4.0, 100.0], &[10.0, 10.0]),
            vec![-3.0, 7.0, 100.0]
        );
        assert!(spread(&[], &[]).is_empty());
    }
}
