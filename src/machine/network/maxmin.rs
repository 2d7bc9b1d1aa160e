//! Max-min fair bandwidth sharing by progressive filling (Bertsekas & Gallager; the sharing model
//! of SimGrid's flow-level network, LV08).
//!
//! All unfrozen flows grow at the same rate until some channel saturates; the flows crossing it
//! freeze at that rate; repeat. The result: no channel is over capacity, and no flow can get more
//! without taking from a flow that has no more than it. This module only computes shares; it
//! never advances time.

use super::SharingPolicy;

/// Progressive filling over the channels the flows cross, with reusable scratch space so that a
/// recomputation allocates nothing once the network has warmed up.
#[derive(Clone, Debug, Default)]
pub struct MaxMin {
    /// Dense slot of each channel in use, or `UNUSED`.
    slot_of: Vec<u32>,
    /// Channel of each slot.
    channels: Vec<u32>,
    remaining: Vec<f64>,
    unfrozen_on: Vec<u32>,
    /// Weight of the unfrozen flows on each slot (their count where flows are unweighted).
    weight_on: Vec<f64>,
    /// Flows crossing each slot, in compressed rows: `flows[row_start[s]..row_start[s + 1]]`.
    row_start: Vec<u32>,
    flows: Vec<u32>,
    /// Next free place in each slot's row while the rows are filled.
    cursor: Vec<u32>,
    frozen: Vec<bool>,
}

const UNUSED: u32 = u32::MAX;

impl SharingPolicy for MaxMin {
    fn share(&mut self, capacities: &[f64], paths: &[&[u32]], rates: &mut [f64]) {
        self.fill(capacities, paths, None, rates, None);
    }
}

/// Computes max-min fair rates. `paths[f]` lists the channels flow `f` crosses (indices into
/// `capacities`, in bytes per ns); rates are written to `rates[f]`. A flow with an empty path is
/// unconstrained and gets `f64::INFINITY`.
pub fn max_min_rates(capacities: &[f64], paths: &[&[u32]], rates: &mut [f64]) {
    MaxMin::default().fill(capacities, paths, None, rates, None);
}

impl MaxMin {
    /// Progressive filling; with `bottlenecks`, also writes the channel each flow froze at
    /// (`u32::MAX` for an empty path): the flows frozen at one channel share one rate.
    ///
    /// With `weights`, the filling is weighted: every unfrozen flow's rate grows in
    /// proportion to its weight, so the flows frozen at one channel share one rate per unit
    /// of weight (weighted max-min, as SimGrid's CM02 weights flows). Weights must be
    /// positive and finite.
    pub fn fill(
        &mut self,
        capacities: &[f64],
        paths: &[&[u32]],
        weights: Option<&[f64]>,
        rates: &mut [f64],
        mut bottlenecks: Option<&mut [u32]>,
    ) {
        let weight = |f: usize| weights.map_or(1.0, |w| w[f]);
        let n = paths.len();
        debug_assert_eq!(rates.len(), n);
        if self.slot_of.len() < capacities.len() {
            self.slot_of.resize(capacities.len(), UNUSED);
        }
        // Index the channels some flow crosses densely, in order of first use.
        self.channels.clear();
        for p in paths {
            for &c in p.iter() {
                if self.slot_of[c as usize] == UNUSED {
                    self.slot_of[c as usize] = self.channels.len() as u32;
                    self.channels.push(c);
                }
            }
        }
        let slots = self.channels.len();
        self.remaining.clear();
        self.remaining
            .extend(self.channels.iter().map(|&c| capacities[c as usize]));
        self.unfrozen_on.clear();
        self.unfrozen_on.resize(slots, 0);
        self.weight_on.clear();
        self.weight_on.resize(slots, 0.0);
        self.frozen.clear();
        self.frozen.resize(n, false);
        for (f, p) in paths.iter().enumerate() {
            if p.is_empty() {
                rates[f] = f64::INFINITY;
                self.frozen[f] = true;
                if let Some(b) = bottlenecks.as_deref_mut() {
                    b[f] = u32::MAX;
                }
            }
            for &c in p.iter() {
                let s = self.slot_of[c as usize] as usize;
                self.unfrozen_on[s] += 1;
                self.weight_on[s] += weight(f);
            }
        }
        // Compressed rows of the flows on each slot.
        self.row_start.clear();
        self.row_start.push(0);
        for s in 0..slots {
            let next = self.row_start[s] + self.unfrozen_on[s];
            self.row_start.push(next);
        }
        self.flows.clear();
        self.flows.resize(self.row_start[slots] as usize, 0);
        self.cursor.clear();
        self.cursor.extend_from_slice(&self.row_start[..slots]);
        for (f, p) in paths.iter().enumerate() {
            for &c in p.iter() {
                let s = self.slot_of[c as usize] as usize;
                self.flows[self.cursor[s] as usize] = f as u32;
                self.cursor[s] += 1;
            }
        }
        let mut left = self.frozen.iter().filter(|&&x| !x).count();
        while left > 0 {
            // The bottleneck: the channel offering the smallest equal share to its unfrozen
            // flows. Ties go to the first slot, so the result never depends on iteration luck.
            let mut best: Option<(f64, usize)> = None;
            for s in 0..slots {
                if self.unfrozen_on[s] == 0 {
                    continue;
                }
                let share = match weights {
                    None => self.remaining[s].max(0.0) / self.unfrozen_on[s] as f64,
                    Some(_) => self.remaining[s].max(0.0) / self.weight_on[s],
                };
                if best.is_none_or(|(b, _)| share < b) {
                    best = Some((share, s));
                }
            }
            let Some((share, s)) = best else { break };
            for i in self.row_start[s]..self.row_start[s + 1] {
                let f = self.flows[i as usize] as usize;
                if self.frozen[f] {
                    continue;
                }
                self.frozen[f] = true;
                left -= 1;
                let (w, rate) = match weights {
                    None => (1.0, share),
                    Some(ws) => (ws[f], share * ws[f]),
                };
                rates[f] = rate;
                if let Some(b) = bottlenecks.as_deref_mut() {
                    b[f] = self.channels[s];
                }
                for &c in paths[f].iter() {
                    let t = self.slot_of[c as usize] as usize;
                    self.remaining[t] -= rate;
                    self.unfrozen_on[t] -= 1;
                    self.weight_on[t] -= w;
                }
            }
        }
        for &c in &self.channels {
            self.slot_of[c as usize] = UNUSED;
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

    fn weighted(caps: &[f64], paths: &[&[u32]], w: &[f64]) -> Vec<f64> {
        let mut r = vec![0.0; paths.len()];
        MaxMin::default().fill(caps, paths, Some(w), &mut r, None);
        r
    }

    #[test]
    fn weighted_flows_share_a_link_in_proportion_to_their_weights() {
        assert_eq!(weighted(&[8.0], &[&[0], &[0]], &[1.0, 3.0]), vec![2.0, 6.0]);
    }

    #[test]
    fn weighted_filling_gives_what_one_bottleneck_leaves_to_the_rest() {
        // Flow 0 (weight 2) is held to 1 by channel 1; flows 1 and 2 (weights 1 and 2) share
        // the 10 - 1 = 9 left on channel 0 as 3 and 6.
        let r = weighted(&[10.0, 1.0], &[&[0, 1], &[0], &[0]], &[2.0, 1.0, 2.0]);
        assert_eq!(r, vec![1.0, 3.0, 6.0]);
    }

    #[test]
    fn unit_weights_are_the_unweighted_filling() {
        let paths: [&[u32]; 3] = [&[0, 1], &[0], &[1]];
        assert_eq!(
            weighted(&[1.0, 2.0], &paths, &[1.0; 3]),
            rates(&[1.0, 2.0], &paths)
        );
    }

    #[test]
    fn empty_path_is_unconstrained() {
        assert_eq!(rates(&[1.0], &[&[], &[0]]), vec![f64::INFINITY, 1.0]);
    }
}
