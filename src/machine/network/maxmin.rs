//! Max-min fair bandwidth sharing by progressive filling (Bertsekas & Gallager; the sharing model
//! of SimGrid's flow-level network, LV08).
//!
//! All unfrozen flows grow at the same rate until some channel saturates; the flows crossing it
//! freeze at that rate; repeat. The result: no channel is over capacity, and no flow can get more
//! without taking from a flow that has no more than it. This module only computes shares; it
//! never advances time.

use super::SharingPolicy;

/// Progressive filling over the channels the flows cross.
#[derive(Clone, Copy, Debug, Default)]
pub struct MaxMin;

impl SharingPolicy for MaxMin {
    fn share(&self, capacities: &[f64], paths: &[&[u32]], rates: &mut [f64]) {
        max_min_rates(capacities, paths, rates);
    }
}

/// Computes max-min fair rates. `paths[f]` lists the channels flow `f` crosses (indices into
/// `capacities`, in bytes per ns); rates are written to `rates[f]`. A flow with an empty path is
/// unconstrained and gets `f64::INFINITY`.
pub fn max_min_rates(capacities: &[f64], paths: &[&[u32]], rates: &mut [f64]) {
    let n = paths.len();
    debug_assert_eq!(rates.len(), n);
    // Only channels that some flow crosses matter; index them densely.
    let mut local: Vec<u32> = paths.iter().flat_map(|p| p.iter().copied()).collect();
    local.sort_unstable();
    local.dedup();
    let slot = |c: u32| local.binary_search(&c).unwrap_or(0);
    let mut remaining: Vec<f64> = local.iter().map(|&c| capacities[c as usize]).collect();
    let mut unfrozen_on: Vec<u32> = vec![0; local.len()];
    let mut flows_on: Vec<Vec<u32>> = vec![vec![]; local.len()];
    let mut frozen = vec![false; n];
    for (f, p) in paths.iter().enumerate() {
        if p.is_empty() {
            rates[f] = f64::INFINITY;
            frozen[f] = true;
            continue;
        }
        for &c in p.iter() {
            let s = slot(c);
            unfrozen_on[s] += 1;
            flows_on[s].push(f as u32);
        }
    }
    let mut left = frozen.iter().filter(|&&x| !x).count();
    while left > 0 {
        // The bottleneck: the channel offering the smallest equal share to its unfrozen flows.
        // Ties go to the lowest channel index, so the result never depends on iteration luck.
        let mut best: Option<(f64, usize)> = None;
        for s in 0..local.len() {
            if unfrozen_on[s] == 0 {
                continue;
            }
            let share = remaining[s].max(0.0) / unfrozen_on[s] as f64;
            if best.is_none_or(|(b, _)| share < b) {
                best = Some((share, s));
            }
        }
        let Some((share, s)) = best else { break };
        for &f in &flows_on[s] {
            let f = f as usize;
            if frozen[f] {
                continue;
            }
            frozen[f] = true;
            left -= 1;
            rates[f] = share;
            for &c in paths[f].iter() {
                let t = slot(c);
                remaining[t] -= share;
                unfrozen_on[t] -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(caps: &[f64], paths: &[&[u32]]) -> Vec<f64> {
        let mut r = vec![0.0; paths.len()];
        max_min_rates(caps, paths, &mut r);
        r
    }

    #[test]
    fn two_flows_on_one_link_get_half_each() {
        assert_eq!(rates(&[10.0], &[&[0], &[0]]), vec![5.0, 5.0]);
    }

    #[test]
    fn flow_limited_elsewhere_leaves_the_rest_to_the_other() {
        // Flow 0 crosses the shared channel 0 and a slow channel 1 (2 GB/s); flow 1 only the
        // shared one. Flow 0 is held to 2 by channel 1, so flow 1 gets 10 - 2 = 8.
        assert_eq!(rates(&[10.0, 2.0], &[&[0, 1], &[0]]), vec![2.0, 8.0]);
    }

    #[test]
    fn classic_three_link_line() {
        // Links A (cap 1) and B (cap 2) in a line; flow 0 crosses both, flow 1 only A, flow 2
        // only B. A is the bottleneck: flows 0 and 1 get 0.5; flow 2 gets 2 - 0.5 = 1.5.
        assert_eq!(
            rates(&[1.0, 2.0], &[&[0, 1], &[0], &[1]]),
            vec![0.5, 0.5, 1.5]
        );
    }

    #[test]
    fn empty_path_is_unconstrained() {
        assert_eq!(rates(&[1.0], &[&[], &[0]]), vec![f64::INFINITY, 1.0]);
    }
}
