//! Flow-level network: each transfer is a flow along its routed channels; concurrent flows share
//! each channel max-min fairly (progressive filling, [`maxmin`]), updated whenever a flow starts
//! or ends.
//!
//! A flow first spends its route's latency in flight without using bandwidth, then competes for
//! bandwidth until its bytes are through: alone on an idle path it takes exactly
//! `latency + ceil(bytes / bottleneck bandwidth)` ns. The network tells its owner when it next
//! needs attention ([`Network::next_event_time`]); the owner calls [`Network::advance`] then.
//! It never schedules events itself and never draws random numbers.
//!
//! # Incremental sharing
//!
//! Flows are kept in groups of one rate (`network/group.rs`). While every group is held by a
//! channel that carries only that group's flows, and no channel offers any flow crossing it less
//! than the flow's rate (capacity / flows on the channel at least the rate), the allocation is
//! the max-min one and each group's rate is its bottleneck's capacity / flows. Such an
//! allocation is *kept*: a flow that starts joins the group of the tightest channel on its path
//! (or opens one there, absorbing the groups that lie wholly on it), a flow that ends raises
//! only its own group's rate, and each needs checks only on its own path (and its
//! group's slack, the tightest other channel its group crosses). Anything else (a flow that
//! would cross another group's bottleneck, a channel shared by flows of different rates) falls
//! back to progressive filling over every flow, which also says whether the result can be kept
//! again. On a parameter server's shared port or a learner's own link, the usual regimes, every
//! start and end costs O(path x log flows) instead of O(flows x filling rounds).
//!
//! # Weighted flows
//!
//! A flow started with [`Network::start_weighted`] shares in proportion to its weight
//! (weighted max-min: every flow's rate grows with its weight until a channel saturates). While
//! any flow of a weight other than 1 transfers, nothing is kept: every change refills, and each
//! flow is a group of its own, since flows frozen at one channel no longer share one rate.

mod group;
pub mod maxmin;
mod tracking;

pub use maxmin::MaxMin;

use crate::machine::topology::{ChannelId, Route};
use crate::time::SimTime;
use group::{Group, Key, NONE};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use tracking::Cross;

/// How concurrent flows divide channel capacity. Must be deterministic.
pub trait SharingPolicy {
    /// Writes each flow's rate (bytes per ns) given the channel capacities and the flows' paths.
    fn share(&mut self, capacities: &[f64], paths: &[&[u32]], rates: &mut [f64]);
}

/// Identifies a flow for its whole life; ids are handed out in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowId(pub u64);

/// Relative slack allowed when a kept allocation is checked against a channel's equal share
/// (rates that tie up to rounding are still a max-min allocation).
const TIE: f64 = 1e-12;

/// A flow in its latency phase.
const LATENT: u32 = u32::MAX;
/// A flow that activated at this instant and awaits a full filling.
const UNGROUPED: u32 = u32::MAX - 1;

#[derive(Clone, Debug)]
struct Flow {
    id: FlowId,
    channels: Vec<u32>,
    bytes: u64,
    /// Its group while it transfers, else [`LATENT`] or [`UNGROUPED`].
    group: u32,
    /// The group's service at which it is through (bytes left while ungrouped).
    tag: f64,
    /// Its weight in sharing (1: plain max-min).
    weight: f64,
}

/// The flows in progress on a machine's channels.
pub struct Network {
    capacities: Vec<f64>,
    fill: MaxMin,
    flows: Vec<Option<Flow>>,
    free_slots: Vec<u32>,
    live: usize,
    /// Flows in their latency phase by (activation, id).
    latent: BinaryHeap<Reverse<(SimTime, FlowId, u32)>>,
    groups: Vec<Group>,
    free_groups: Vec<u32>,
    /// Each live group's next completion, (time, group, epoch); stale epochs are skipped.
    due: BinaryHeap<Reverse<(SimTime, u32, u32)>>,
    /// Transferring flows crossing each channel.
    on: Vec<u32>,
    /// While kept: the group each channel is the bottleneck of, and the groups crossing each
    /// channel with how many of their members cross it.
    bottleneck_of: Vec<u32>,
    crossing: Vec<Vec<Cross>>,
    /// Whether the allocation is kept incrementally (else every change refills).
    kept: bool,
    /// Whether something this instant could not be kept and needs a full filling.
    dirty: bool,
    refills: u64,
    next_id: u64,
    last: SimTime,
    bytes_delivered: u64,
    bytes_started: u64,
    finished: Vec<FlowId>,
    /// [`Network::next_event_time`], kept up to date so that asking costs nothing.
    next: Option<SimTime>,
}

impl Network {
    /// A max-min fair network over channels of the given capacities (bytes per ns = GB/s).
    pub fn new(capacities: Vec<f64>) -> Self {
        let n = capacities.len();
        Self {
            capacities,
            fill: MaxMin::default(),
            flows: vec![],
            free_slots: vec![],
            live: 0,
            latent: BinaryHeap::new(),
            groups: vec![],
            free_groups: vec![],
            due: BinaryHeap::new(),
            on: vec![0; n],
            bottleneck_of: vec![NONE; n],
            crossing: vec![vec![]; n],
            kept: true,
            dirty: false,
            refills: 0,
            next_id: 0,
            last: SimTime::ZERO,
            bytes_delivered: 0,
            bytes_started: 0,
            finished: vec![],
            next: None,
        }
    }

    /// Starts a transfer of `bytes` along `route` at `now` (which must not be before the last
    /// call). Returns its id; the owner learns of its end from [`Network::advance`].
    pub fn start_flow(&mut self, now: SimTime, route: &Route, bytes: u64) -> FlowId {
        self.start_weighted(now, route, bytes, 1.0)
    }

    /// [`Network::start_flow`] for a flow that shares in proportion to `weight` (positive
    /// and finite; anything else counts as 1): where flows of unequal weights meet, the
    /// sharing is weighted max-min ([`MaxMin::fill`]) and every change refills.
    pub fn start_weighted(
        &mut self,
        now: SimTime,
        route: &Route,
        bytes: u64,
        weight: f64,
    ) -> FlowId {
        let weight = if weight.is_finite() && weight > 0.0 {
            weight
        } else {
            1.0
        };
        self.last = self.last.max(now);
        let id = FlowId(self.next_id);
        let active_at = now + route.latency;
        let flow = Flow {
            id,
            channels: route.channels.iter().map(|c: &ChannelId| c.0).collect(),
            bytes,
            group: LATENT,
            tag: bytes as f64,
            weight,
        };
        let slot = match self.free_slots.pop() {
            Some(s) => {
                self.flows[s as usize] = Some(flow);
                s
            }
            None => {
                self.flows.push(Some(flow));
                (self.flows.len() - 1) as u32
            }
        };
        self.live += 1;
        self.next_id += 1;
        self.bytes_started += bytes;
        self.latent.push(Reverse((active_at, id, slot)));
        // A flow in its latency phase uses no bandwidth, so shares change only when it
        // activates; a zero-byte or empty-path flow just finishes after its latency.
        self.next = Some(self.next.map_or(active_at, |t| t.min(active_at)));
        id
    }

    /// The next time something changes inside the network: a flow activates or completes.
    pub fn next_event_time(&self) -> Option<SimTime> {
        self.next
    }

    /// [`Network::next_event_time`] from the pending activations and the groups' completions.
    fn first_event(&mut self) -> Option<SimTime> {
        while let Some(&Reverse((_, g, epoch))) = self.due.peek() {
            let group = &self.groups[g as usize];
            if group.live && group.epoch == epoch {
                break;
            }
            self.due.pop();
        }
        let activation = self.latent.peek().map(|r| r.0.0);
        let completion = self.due.peek().map(|r| r.0.0);
        match (activation, completion) {
            (Some(a), Some(c)) => Some(a.min(c)),
            (a, c) => a.or(c),
        }
    }

    /// Moves the network to `now`, appending the flows that completed at or before `now` to
    /// `done` in (completion time, id) order, and updating shares if the set of flows using
    /// bandwidth changed.
    pub fn advance(&mut self, now: SimTime, done: &mut Vec<FlowId>) {
        // Process changes in time order: each activation or completion may change the others'
        // rates, so step through them one instant at a time.
        while let Some(t) = self.next {
            if t > now {
                break;
            }
            self.last = t;
            self.finished.clear();
            while let Some(&Reverse((at, g, epoch))) = self.due.peek() {
                if at > t {
                    break;
                }
                self.due.pop();
                let group = &self.groups[g as usize];
                if group.live && group.epoch == epoch {
                    self.complete_due(g, t);
                }
            }
            while let Some(&Reverse((at, _, slot))) = self.latent.peek() {
                if at > t {
                    break;
                }
                self.latent.pop();
                self.activate(slot, t);
            }
            if self.dirty {
                self.refill(t);
            }
            self.finished.sort_unstable();
            done.extend_from_slice(&self.finished);
            self.next = self.first_event();
        }
        self.last = self.last.max(now);
    }

    /// Whether changes can be applied incrementally at this instant.
    fn keeping(&self) -> bool {
        self.kept && !self.dirty
    }

    /// Schedules group `g`'s next completion.
    fn schedule(&mut self, g: u32) {
        let group = &self.groups[g as usize];
        if let Some((t, _, _)) = group.next_due() {
            self.due.push(Reverse((t, g, group.epoch)));
        }
    }

    /// Removes the members of group `g` due by `t`, then raises the group's rate if that keeps
    /// the allocation max-min (else leaves it to the refill at the end of the instant).
    fn complete_due(&mut self, g: u32, t: SimTime) {
        let gi = g as usize;
        while let Some((at, _, slot)) = self.groups[gi].next_due() {
            if at > t {
                break;
            }
            self.groups[gi].pop();
            self.remove(slot);
        }
        if self.groups[gi].is_empty() {
            // Kept, the group's bottleneck carried only it: nobody else's share changes.
            let b = self.groups[gi].bottleneck;
            if !self.keeping() {
                self.dirty = true;
            } else if b != NONE {
                self.bottleneck_of[b as usize] = NONE;
            }
            self.groups[gi].close();
            self.free_groups.push(g);
            return;
        }
        if !self.keeping() {
            self.dirty = true;
            return;
        }
        let b = self.groups[gi].bottleneck as usize;
        let rate = self.capacities[b] / self.on[b] as f64;
        if self.slack_min(g) >= rate * (1.0 - TIE) {
            self.groups[gi].set_rate(rate, t);
            self.schedule(g);
        } else {
            self.dirty = true;
        }
    }

    /// Takes a completed transferring flow out of the channels and the slab.
    fn remove(&mut self, slot: u32) {
        let Some(flow) = self.flows[slot as usize].take() else {
            return;
        };
        let keeping = self.keeping();
        for &c in &flow.channels {
            self.on[c as usize] -= 1;
            if keeping {
                self.uncross(c, flow.group);
            }
        }
        self.retire(slot, flow);
    }

    /// Counts a completed flow and frees its slot.
    fn retire(&mut self, slot: u32, flow: Flow) {
        self.live -= 1;
        self.free_slots.push(slot);
        self.bytes_delivered += flow.bytes;
        self.finished.push(flow.id);
    }

    /// A flow's latency phase ends at `t`: it starts to use bandwidth.
    fn activate(&mut self, slot: u32, t: SimTime) {
        let Some(flow) = self.flows[slot as usize].as_mut() else {
            return;
        };
        if flow.bytes == 0 || flow.channels.is_empty() {
            if let Some(flow) = self.flows[slot as usize].take() {
                self.retire(slot, flow);
            }
            return;
        }
        let path = std::mem::take(&mut flow.channels);
        for &c in &path {
            self.on[c as usize] += 1;
        }
        // A weighted flow's rate is no channel's equal share: it always refills.
        let unweighted = flow.weight == 1.0;
        let joined = self.keeping() && unweighted && self.try_join(slot, &path, t);
        if let Some(flow) = self.flows[slot as usize].as_mut() {
            flow.channels = path;
            if !joined {
                flow.group = UNGROUPED;
                self.dirty = true;
            }
        }
    }

    /// Puts a flow that just activated (already counted on its channels) into the group of the
    /// tightest channel on its path, if the allocation stays max-min that way.
    fn try_join(&mut self, slot: u32, path: &[u32], t: SimTime) -> bool {
        let share = |c: u32| self.capacities[c as usize] / self.on[c as usize] as f64;
        let is_bottleneck = |c: u32| c != NONE && self.bottleneck_of[c as usize] != NONE;
        let mut b = NONE;
        let mut best = f64::INFINITY;
        for &c in path {
            let s = share(c);
            if s < best || (s == best && is_bottleneck(c) && !is_bottleneck(b)) {
                b = c;
                best = s;
            }
        }
        // The new flow may cross no other group's bottleneck (that group's share would drop
        // below the others' on it), and on a channel no group yet holds it must be alone.
        if path.iter().any(|&c| c != b && is_bottleneck(c)) {
            return false;
        }
        // A channel no group holds becomes one when every group crossing it lies wholly on
        // it and gets no less than the new equal share there: those groups merge into it.
        let g = self.bottleneck_of[b as usize];
        let mut merged: Vec<u32> = vec![];
        if g == NONE {
            for x in &self.crossing[b as usize] {
                let h = &self.groups[x.group as usize];
                if x.count as usize != h.len() || h.rate < best * (1.0 - TIE) {
                    return false;
                }
                merged.push(x.group);
            }
        }
        for &c in path {
            let s = share(c);
            if self.crossing[c as usize].iter().any(|x| {
                x.group != g
                    && !merged.contains(&x.group)
                    && s < self.groups[x.group as usize].rate * (1.0 - TIE)
            }) {
                return false;
            }
        }
        let g = if g == NONE {
            let g = self.open_group(b, best, t);
            self.bottleneck_of[b as usize] = g;
            for h in merged {
                self.absorb(h, g, t);
            }
            g
        } else {
            self.groups[g as usize].set_rate(best, t);
            g
        };
        let Some(flow) = self.flows[slot as usize].as_mut() else {
            return false;
        };
        flow.group = g;
        flow.tag = self.groups[g as usize].join(flow.id, slot, flow.bytes as f64, t);
        for &c in path {
            self.cross(c, g);
            let s = Key(self.capacities[c as usize] / self.on[c as usize] as f64);
            for i in 0..self.crossing[c as usize].len() {
                let h = self.crossing[c as usize][i].group;
                self.groups[h as usize].slack.push(Reverse((s, c)));
                self.compact_slack(h);
            }
        }
        self.schedule(g);
        true
    }

    /// Moves every member of group `h` into group `g` at `t`, with the bytes it has left.
    fn absorb(&mut self, h: u32, g: u32, t: SimTime) {
        let b = self.groups[h as usize].bottleneck;
        if b != NONE && self.bottleneck_of[b as usize] == h {
            self.bottleneck_of[b as usize] = NONE;
        }
        for (id, slot, tag) in self.groups[h as usize].take_members() {
            let left = self.groups[h as usize].left(tag, t);
            let Some(flow) = self.flows[slot as usize].as_mut() else {
                continue;
            };
            let path = std::mem::take(&mut flow.channels);
            for &c in &path {
                self.uncross(c, h);
                self.cross(c, g);
            }
            if let Some(flow) = self.flows[slot as usize].as_mut() {
                flow.channels = path;
                flow.group = g;
                flow.tag = self.groups[g as usize].join(id, slot, left, t);
            }
        }
        self.groups[h as usize].close();
        self.free_groups.push(h);
        self.reset_slack(g);
    }

    fn open_group(&mut self, bottleneck: u32, rate: f64, t: SimTime) -> u32 {
        let g = self.free_groups.pop().unwrap_or_else(|| {
            self.groups.push(Group::default());
            (self.groups.len() - 1) as u32
        });
        self.groups[g as usize].open(bottleneck, rate, t);
        g
    }
}

impl Network {
    /// Progressive filling over every transferring flow at `t`; regroups the flows by the
    /// channel they froze at and says whether the result can be kept incrementally.
    fn refill(&mut self, t: SimTime) {
        self.refills += 1;
        self.dirty = false;
        // (id, slot, bytes left, old group) of every transferring flow, in id order as the
        // flows started: the filling's rounding then never depends on where a flow sits.
        let mut active: Vec<(FlowId, u32, f64, u32)> = self
            .flows
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let f = f.as_ref()?;
                match f.group {
                    LATENT => None,
                    UNGROUPED => Some((f.id, i as u32, f.tag, NONE)),
                    g => Some((f.id, i as u32, self.groups[g as usize].left(f.tag, t), g)),
                }
            })
            .collect();
        active.sort_unstable_by_key(|a| a.0);
        let n = active.len();
        let paths: Vec<&[u32]> = active
            .iter()
            .map(|a| {
                self.flows[a.1 as usize]
                    .as_ref()
                    .map_or(&[][..], |f| &f.channels)
            })
            .collect();
        let weights: Vec<f64> = active
            .iter()
            .map(|a| self.flows[a.1 as usize].as_ref().map_or(1.0, |f| f.weight))
            .collect();
        let weighted = weights.iter().any(|&w| w != 1.0);
        let mut rates = vec![0.0; n];
        let mut frozen_at = vec![NONE; n];
        self.fill.fill(
            &self.capacities,
            &paths,
            weighted.then_some(&weights[..]),
            &mut rates,
            Some(&mut frozen_at),
        );
        let channels = self.capacities.len();
        // Per channel a flow froze at: how many did, and the one old group they all came from.
        let mut count = vec![0u32; channels];
        let mut from = vec![NONE; channels];
        let mut mixed = vec![false; channels];
        // Per old group: the one channel all its members froze at.
        let mut went = vec![NONE; self.groups.len()];
        let mut split = vec![false; self.groups.len()];
        let mut max_rate = vec![0.0f64; channels];
        for i in 0..n {
            let k = frozen_at[i] as usize;
            let old = active[i].3;
            count[k] += 1;
            if count[k] == 1 {
                from[k] = old;
            } else if from[k] != old {
                mixed[k] = true;
            }
            if old != NONE {
                let g = old as usize;
                if went[g] == NONE {
                    went[g] = k as u32;
                } else if went[g] != k as u32 {
                    split[g] = true;
                }
            }
            for &c in paths[i] {
                max_rate[c as usize] = max_rate[c as usize].max(rates[i]);
            }
        }
        drop(paths);
        // An old group that is exactly one new group at its old rate keeps its clock, so its
        // members' completions do not move.
        let mut group_at = vec![NONE; channels];
        let mut reused = vec![false; self.groups.len()];
        let mut continued = vec![false; channels];
        for i in 0..n {
            let k = frozen_at[i] as usize;
            let g = from[k];
            if weighted || group_at[k] != NONE || mixed[k] || g == NONE || split[g as usize] {
                continue;
            }
            if self.groups[g as usize].rate == rates[i] {
                group_at[k] = g;
                continued[k] = true;
                reused[g as usize] = true;
                self.groups[g as usize].bottleneck = k as u32;
            }
        }
        for (g, group) in self.groups.iter_mut().enumerate() {
            if group.live && !reused[g] {
                group.close();
                self.free_groups.push(g as u32);
            }
        }
        for i in 0..n {
            let k = frozen_at[i] as usize;
            let (_, slot, left, _) = active[i];
            if weighted {
                // Weighted flows frozen at one channel differ in rate: a group each.
                let g = self.open_group(k as u32, rates[i], t);
                if let Some(f) = self.flows[slot as usize].as_mut() {
                    f.group = g;
                    f.tag = self.groups[g as usize].join(f.id, slot, left, t);
                }
                continue;
            }
            if group_at[k] == NONE {
                group_at[k] = self.open_group(k as u32, rates[i], t);
            } else if continued[k] {
                continue;
            }
            let g = group_at[k];
            if let Some(f) = self.flows[slot as usize].as_mut() {
                f.group = g;
                f.tag = self.groups[g as usize].join(f.id, slot, left, t);
            }
        }
        // Kept when every channel a group froze at carries only that group, and no channel
        // offers less than the largest rate crossing it.
        let frozen_whole = (0..n).all(|i| {
            let k = frozen_at[i] as usize;
            self.on[k] == count[k]
        });
        let fair = (0..channels).all(|c| {
            self.on[c] == 0 || self.capacities[c] / self.on[c] as f64 >= max_rate[c] * (1.0 - TIE)
        });
        self.kept = !weighted && frozen_whole && fair;
        self.rebuild_tracking();
        for g in 0..self.groups.len() {
            if self.groups[g].live {
                let group = &mut self.groups[g];
                group.epoch = group.epoch.wrapping_add(1);
                self.schedule(g as u32);
            }
        }
    }

    /// Flows in progress (in latency or transferring).
    pub fn flow_count(&self) -> usize {
        self.live
    }

    /// Full progressive fillings so far (the rest of the changes were kept incrementally).
    pub fn refills(&self) -> u64 {
        self.refills
    }

    fn flow(&self, id: FlowId) -> Option<&Flow> {
        self.flows.iter().flatten().find(|f| f.id == id)
    }

    /// A transferring flow's rate, bytes per ns (0 for one in its latency phase).
    fn rate_of(&self, f: &Flow) -> f64 {
        match f.group {
            LATENT | UNGROUPED => 0.0,
            g => self.groups[g as usize].rate,
        }
    }

    /// Current rate of a flow, bytes per ns (0 while in its latency phase).
    pub fn rate(&self, id: FlowId) -> Option<f64> {
        self.flow(id).map(|f| self.rate_of(f))
    }

    /// Sum of the rates of the flows crossing each channel, bytes per ns.
    pub fn channel_loads(&self) -> Vec<f64> {
        let mut load = vec![0.0; self.capacities.len()];
        for f in self.flows.iter().flatten() {
            let rate = self.rate_of(f);
            for &c in &f.channels {
                load[c as usize] += rate;
            }
        }
        load
    }

    pub fn capacities(&self) -> &[f64] {
        &self.capacities
    }

    /// (bytes of flows started, bytes of flows completed).
    pub fn byte_totals(&self) -> (u64, u64) {
        (self.bytes_started, self.bytes_delivered)
    }

    /// Bytes not yet delivered of flows in progress (fractional while transferring).
    pub fn bytes_in_flight(&self) -> f64 {
        self.flows
            .iter()
            .flatten()
            .map(|f| match f.group {
                LATENT | UNGROUPED => f.tag,
                g => self.groups[g as usize].left(f.tag, self.last),
            })
            .sum()
    }
}
