//! What every simulator model shares about carrying its messages: the one wake-up event it
//! keeps scheduled for the next change of its fabric (a flow activating or completing, a host
//! thread's task ending), and the links' side of a fabric, messages riding on network flows.
//! Written once for every algorithm's model; it decides nothing about any protocol.

use crate::engine::SimRng;
use crate::machine::network::{FlowId, Network};
use crate::machine::topology::Route;
use crate::time::SimTime;
use rand_distr::{Distribution, LogNormal};
use std::collections::HashMap;

/// The wake-up a model keeps scheduled for its fabric: at most one, at the earliest change.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wake {
    at: Option<SimTime>,
}

impl Wake {
    /// The fabric next changes at `next` (None: nothing pending): the time to schedule a
    /// wake-up at, unless one at or before it is already scheduled. A time already past (a
    /// slice that ran out unnoticed) is due now.
    pub fn schedule(&mut self, next: Option<SimTime>, now: SimTime) -> Option<SimTime> {
        let t = next.map(|t| t.max(now))?;
        if self.at.is_none_or(|w| t < w) {
            self.at = Some(t);
            Some(t)
        } else {
            None
        }
    }

    /// A wake-up event is handled at `now`; if it is the one scheduled, none is.
    pub fn fired(&mut self, now: SimTime) {
        if self.at == Some(now) {
            self.at = None;
        }
    }
}

/// Messages of type `M` carried as flows on the network, sharing its links.
pub struct Wires<M> {
    pub network: Network,
    flows: HashMap<FlowId, M>,
    pub wake: Wake,
    done: Vec<FlowId>,
    /// Each message's weight in the sharing, where flows do not share exactly
    /// (`machine.flow_share_cv`).
    weights: Option<LogNormal<f64>>,
}

impl<M> Wires<M> {
    /// Wires over `network` whose messages share it with weights of coefficient of variation
    /// `share_cv` (0: exact max-min, and no draws from the run's RNG).
    pub fn new(network: Network, share_cv: f64) -> Self {
        // Log-normal with mean 1: sigma^2 = ln(1 + cv^2), mu = -sigma^2 / 2.
        let weights = (share_cv > 0.0).then(|| {
            let var = (1.0 + share_cv * share_cv).ln();
            LogNormal::new(-var / 2.0, var.sqrt())
        });
        Self {
            network,
            flows: HashMap::new(),
            wake: Wake::default(),
            done: vec![],
            weights: weights.and_then(Result::ok),
        }
    }

    /// Starts `bytes` of message `msg` on `route` at `now`, its weight drawn from `rng`
    /// where the sharing is not exact.
    pub fn start(&mut self, now: SimTime, route: &Route, bytes: u64, msg: M, rng: &mut SimRng) {
        let id = match &self.weights {
            Some(w) => self
                .network
                .start_weighted(now, route, bytes, w.sample(rng)),
            None => self.network.start_flow(now, route, bytes),
        };
        self.flows.insert(id, msg);
    }

    /// A wake-up fired at `now`: moves the network on and appends to `arrived` the messages
    /// whose flows completed, in the order they completed.
    pub fn advance(&mut self, now: SimTime, arrived: &mut Vec<M>) {
        self.wake.fired(now);
        self.network.advance(now, &mut self.done);
        let flows = &mut self.flows;
        arrived.extend(self.done.drain(..).filter_map(|id| flows.remove(&id)));
    }

    /// When to schedule the next wake-up, if one is needed (see [`Wake::schedule`]).
    pub fn next_wake(&mut self, now: SimTime) -> Option<SimTime> {
        self.wake.schedule(self.network.next_event_time(), now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_wake_at_the_earliest_change_and_none_after_it_fires() {
        let (t, now) = (SimTime::from_nanos, SimTime::from_nanos(10));
        let mut w = Wake::default();
        assert_eq!(w.schedule(None, now), None);
        assert_eq!(w.schedule(Some(t(50)), now), Some(t(50)));
        assert_eq!(w.schedule(Some(t(60)), now), None, "a later change waits");
        assert_eq!(
            w.schedule(Some(t(40)), now),
            Some(t(40)),
            "an earlier one is scheduled"
        );
        assert_eq!(
            w.schedule(Some(t(5)), now),
            Some(now),
            "a past change is due now"
        );
        w.fired(t(99));
        assert_eq!(
            w.schedule(Some(t(20)), now),
            None,
            "a stray event clears nothing"
        );
        w.fired(now);
        assert_eq!(w.schedule(Some(t(20)), now), Some(t(20)));
    }
}
