//! A learner: one GPU looping pull -> compute -> push, and the account of where its time goes.
//!
//! At every instant a learner is doing exactly one [`Activity`], so its five totals add up to the
//! time it ran. While it waits on several shards at once the activity is chosen by priority:
//! data or messages on the wire count as communication (pull or push), else a shard applying its
//! update counts as server update, else its gradient is waiting in shard queues behind other
//! learners' updates (wait).
//! The learner never schedules anything itself; the algorithm drives it.

use crate::outcome::{Activity, Breakdown};
use crate::time::SimTime;
use petgraph::graph::NodeIndex;

/// Which part of the loop a learner is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Pulling,
    Computing,
    Pushing,
    /// Held back until other learners catch up (stale synchronous parallel).
    Waiting,
}

/// A learner's state.
#[derive(Clone, Debug)]
pub struct Learner {
    pub gpu: NodeIndex,
    pub phase: Phase,
    /// Messages of the current phase on the wire (requests, parameter slices, gradients, acks).
    pub in_transfer: u32,
    /// Gradients of this learner waiting in shard queues.
    pub queued: u32,
    /// Shards applying this learner's gradient right now.
    pub applying: u32,
    /// Shards that have not yet completed the current phase for this learner.
    pub pending: u32,
    /// Version of each shard's slice this learner's parameters came from.
    pub versions_read: Vec<u64>,
    /// Completed pull-compute-push iterations.
    pub iterations: u64,
    /// Gradients computed and pushed but dropped by a synchronous round (backup workers).
    pub dropped: u64,
    /// A shard dropped the push in progress.
    pub push_dropped: bool,
    activity: Activity,
    since: SimTime,
    breakdown: Breakdown,
}

/// A finished stretch of one activity, for observers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub activity: Activity,
    pub start: SimTime,
    pub end: SimTime,
}

impl Learner {
    pub fn new(gpu: NodeIndex, shards: usize) -> Self {
        Self {
            gpu,
            phase: Phase::Pulling,
            in_transfer: 0,
            queued: 0,
            applying: 0,
            pending: 0,
            versions_read: vec![0; shards],
            iterations: 0,
            dropped: 0,
            push_dropped: false,
            activity: Activity::Pull,
            since: SimTime::ZERO,
            breakdown: Breakdown::default(),
        }
    }

    /// The activity implied by the phase and the counters.
    pub fn activity(&self) -> Activity {
        match self.phase {
            Phase::Computing => Activity::Compute,
            Phase::Waiting => Activity::Wait,
            // Only a ring all-reduce's all-gather waits while pulling: for its predecessor.
            Phase::Pulling if self.in_transfer == 0 && self.queued > 0 => Activity::Wait,
            Phase::Pulling => Activity::Pull,
            Phase::Pushing if self.in_transfer > 0 => Activity::Push,
            Phase::Pushing if self.applying > 0 => Activity::ServerUpdate,
            Phase::Pushing if self.queued > 0 => Activity::Wait,
            Phase::Pushing => Activity::Push,
        }
    }

    /// Re-derives the activity after the phase or a counter changed; if it differs from the
    /// current one, closes the current stretch at `now` and returns it (empty stretches are
    /// dropped).
    pub fn update(&mut self, now: SimTime) -> Option<Segment> {
        let next = self.activity();
        if next == self.activity {
            return None;
        }
        let closed = self.close(now);
        self.activity = next;
        closed
    }

    /// Closes the current stretch at `now` (the end of the run) and returns it.
    pub fn close(&mut self, now: SimTime) -> Option<Segment> {
        let start = self.since;
        self.since = now;
        let ns = (now - start).as_nanos();
        self.breakdown.add(self.activity, ns);
        (ns > 0).then_some(Segment {
            activity: self.activity,
            start,
            end: now,
        })
    }

    pub fn breakdown(&self) -> &Breakdown {
        &self.breakdown
    }
}
