//! Flow-level network: each transfer is a flow along its routed channels; concurrent flows share
//! each channel according to a [`SharingPolicy`] (max-min fairness by default), recomputed
//! whenever a flow starts or ends.
//!
//! A flow first spends its route's latency in flight without using bandwidth, then competes for
//! bandwidth until its bytes are through: alone on an idle path it takes exactly
//! `latency + ceil(bytes / bottleneck bandwidth)` ns. The network tells its owner when it next
//! needs attention ([`Network::next_event_time`]); the owner calls [`Network::advance`] then.
//! It never schedules events itself and never draws random numbers.

pub mod maxmin;

pub use maxmin::MaxMin;

use crate::machine::topology::{ChannelId, Route};
use crate::time::{SimDuration, SimTime};

/// How concurrent flows divide channel capacity. Open for other models (e.g. with TCP window
/// bounds); must be deterministic.
pub trait SharingPolicy {
    /// Writes each flow's rate (bytes per ns) given the channel capacities and the flows' paths.
    fn share(&mut self, capacities: &[f64], paths: &[&[u32]], rates: &mut [f64]);
}

/// Identifies a flow for its whole life; ids are handed out in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowId(pub u64);

#[derive(Clone, Debug)]
struct Flow {
    id: FlowId,
    channels: Vec<u32>,
    bytes: u64,
    /// Bytes not yet through at `since`, the last time the rate changed. Kept only at rate
    /// changes (never drained step by step), so a completion time never depends on how often
    /// the owner looks at the network in between.
    remaining: f64,
    since: SimTime,
    /// When the latency phase ends and the flow starts to use bandwidth.
    active_at: SimTime,
    rate: f64,
    /// Whether `rate` has been set since the flow activated.
    rated: bool,
    /// When the flow completes at its current rate.
    finish_at: SimTime,
}

impl Flow {
    /// Whether the flow has completed by `t`: past its latency and either carrying nothing or
    /// through its bytes at its current rate.
    /// Bytes not yet through at `t` (not before `since`), never below zero and never zero
    /// before the scheduled finish.
    fn remaining_at(&self, t: SimTime) -> f64 {
        if !self.rated || self.rate.is_infinite() {
            return if self.rated { 0.0 } else { self.remaining };
        }
        let dt = (t - self.since).as_nanos() as f64;
        let floor = if t < self.finish_at {
            f64::MIN_POSITIVE
        } else {
            0.0
        };
        (self.remaining - self.rate * dt).max(floor)
    }

    fn done_by(&self, t: SimTime) -> bool {
        self.active_at <= t
            && (self.bytes == 0 || self.channels.is_empty() || (self.rated && self.finish_at <= t))
    }
}

/// The flows in progress on a machine's channels.
pub struct Network<P: SharingPolicy = MaxMin> {
    capacities: Vec<f64>,
    policy: P,
    /// Flows in progress, in increasing id order (new flows are pushed at the end).
    flows: Vec<Flow>,
    next_id: u64,
    last: SimTime,
    /// Bytes delivered by completed flows; with `bytes_started` for conservation checks.
    bytes_delivered: u64,
    bytes_started: u64,
    scratch_rates: Vec<f64>,
    /// Indices into `flows` of the flows past their latency phase.
    scratch_active: Vec<usize>,
    /// [`Network::next_event_time`], kept up to date so that asking costs nothing.
    next: Option<SimTime>,
}

impl Network<MaxMin> {
    /// A max-min fair network over channels of the given capacities (bytes per ns = GB/s).
    pub fn new(capacities: Vec<f64>) -> Self {
        Self::with_policy(capacities, MaxMin::default())
    }
}

impl<P: SharingPolicy> Network<P> {
    pub fn with_policy(capacities: Vec<f64>, policy: P) -> Self {
        Self {
            capacities,
            policy,
            flows: Vec::new(),
            next_id: 0,
            last: SimTime::ZERO,
            bytes_delivered: 0,
            bytes_started: 0,
            scratch_rates: vec![],
            scratch_active: vec![],
            next: None,
        }
    }

    /// Starts a transfer of `bytes` along `route` at `now` (which must not be before the last
    /// call). Returns its id; the owner learns of its end from [`Network::advance`].
    pub fn start_flow(&mut self, now: SimTime, route: &Route, bytes: u64) -> FlowId {
        self.last = self.last.max(now);
        let id = FlowId(self.next_id);
        self.next_id += 1;
        let active_at = now + route.latency;
        let flow = Flow {
            id,
            channels: route.channels.iter().map(|c: &ChannelId| c.0).collect(),
            bytes,
            remaining: bytes as f64,
            since: active_at,
            active_at,
            rate: 0.0,
            rated: false,
            finish_at: active_at,
        };
        self.bytes_started += bytes;
        self.flows.push(flow);
        self.next = Some(self.next.map_or(active_at, |t| t.min(active_at)));
        // A flow in its latency phase uses no bandwidth, so shares change only when it
        // activates; a zero-byte or empty-path flow just finishes after its latency.
        id
    }

    /// The next time something changes inside the network: a flow activates or completes.
    pub fn next_event_time(&self) -> Option<SimTime> {
        self.next
    }

    /// [`Network::next_event_time`] from the flows themselves.
    fn first_event(&self) -> Option<SimTime> {
        self.flows
            .iter()
            .map(|f| {
                if f.active_at > self.last || !f.rated {
                    f.active_at
                } else {
                    f.finish_at
                }
            })
            .min()
    }

    /// Moves the network to `now`, appending the flows that completed at or before `now` to
    /// `done` in (completion time, id) order, and recomputing shares if the set of flows using
    /// bandwidth changed.
    pub fn advance(&mut self, now: SimTime, done: &mut Vec<FlowId>) {
        // Process changes in time order: each activation or completion may change the others'
        // rates, so step through them one instant at a time.
        while let Some(t) = self.next_event_time() {
            if t > now {
                break;
            }
            self.last = t;
            let delivered = &mut self.bytes_delivered;
            self.flows.retain(|f| {
                let finished = f.done_by(t);
                if finished {
                    *delivered += f.bytes;
                    done.push(f.id);
                }
                !finished
            });
            self.reshare(t);
            self.next = self.first_event();
        }
        self.last = self.last.max(now);
    }

    /// Recomputes the shares of the flows past their latency phase.
    fn reshare(&mut self, now: SimTime) {
        let mut active = std::mem::take(&mut self.scratch_active);
        active.clear();
        active.extend((0..self.flows.len()).filter(|&i| self.flows[i].active_at <= now));
        let paths: Vec<&[u32]> = active
            .iter()
            .map(|&i| self.flows[i].channels.as_slice())
            .collect();
        self.scratch_rates.clear();
        self.scratch_rates.resize(active.len(), 0.0);
        self.policy
            .share(&self.capacities, &paths, &mut self.scratch_rates);
        drop(paths);
        for (&i, &rate) in active.iter().zip(&self.scratch_rates) {
            let f = &mut self.flows[i];
            // A flow whose rate did not change keeps its finish time, so an undisturbed
            // transfer ends exactly at latency + ceil(bytes / rate).
            if !f.rated || rate != f.rate {
                f.remaining = f.remaining_at(now);
                f.since = now;
                f.rated = true;
                f.rate = rate;
                f.finish_at = if rate.is_infinite() {
                    now
                } else {
                    now + SimDuration::from_nanos_ceil(f.remaining / rate)
                };
            }
        }
        self.scratch_active = active;
    }

    /// Flows in progress (in latency or transferring).
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// Current rate of a flow, bytes per ns (0 while in its latency phase).
    pub fn rate(&self, id: FlowId) -> Option<f64> {
        self.flows
            .binary_search_by_key(&id, |f| f.id)
            .ok()
            .map(|i| self.flows[i].rate)
    }

    /// Sum of the rates of the flows crossing each channel, bytes per ns.
    pub fn channel_loads(&self) -> Vec<f64> {
        let mut load = vec![0.0; self.capacities.len()];
        for f in &self.flows {
            if f.rate.is_finite() {
                for &c in &f.channels {
                    load[c as usize] += f.rate;
                }
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
        self.flows.iter().map(|f| f.remaining_at(self.last)).sum()
    }
}
