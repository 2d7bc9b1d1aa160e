//! A parameter-server shard: one host core owning a slice of the parameters. It applies one
//! update at a time, first come first served, and queues the rest; updates are atomic (as in the
//! seed paper): a pull served during an update gets the last fully applied version, at once and
//! without core time (the slice is read by DMA). Lock-free updates (Hogwild) are the exception:
//! they start as they arrive, several at once, and a read sees them partly written. It keeps the slice's version (updates applied so
//! far) and records every update's staleness. It never schedules anything itself; the algorithm
//! drives it.

use crate::stats::Histogram;
use crate::time::{SimDuration, SimTime};
use petgraph::graph::NodeIndex;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::ops::Range;

/// An update's staleness: the updates applied to its slice since its learner read the slice
/// (`version` now minus `version_read`). The one definition every backend records.
pub fn staleness(version: u64, version_read: u64) -> u64 {
    version.saturating_sub(version_read)
}

/// A slice's version (updates, or synchronous steps, applied so far) and the staleness of
/// every update applied to it, kept the same way by the simulator's shards and the real
/// backend's shard threads.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ledger {
    pub version: u64,
    /// Staleness of every applied update: version at apply minus version the learner read.
    pub staleness: Histogram,
}

impl Ledger {
    /// An update computed from `version_read` is in the slice: records its staleness, moves
    /// the slice to the next version, and returns the staleness.
    pub fn commit(&mut self, version_read: u64) -> u64 {
        let s = staleness(self.version, version_read);
        self.staleness.record(s);
        self.version += 1;
        s
    }

    /// A synchronous round's one step is in the slice: each of its `updates` gradients was
    /// computed from the version before it, so their staleness is 0.
    pub fn commit_round(&mut self, updates: usize) {
        for _ in 0..updates {
            self.staleness.record(0);
        }
        self.version += 1;
    }
}

#[derive(Clone, Debug)]
pub struct Shard {
    pub core: NodeIndex,
    pub range: Range<usize>,
    pub bytes: u64,
    /// Core time to apply one update to this slice.
    pub update_time: SimDuration,
    /// Version and staleness of the slice.
    pub ledger: Ledger,
    /// Learners whose gradients wait to be applied, in arrival order.
    queue: VecDeque<usize>,
    /// Updates in progress: (learner, start, version the learner read). One at most, except
    /// for lock-free updates.
    applying: Vec<(usize, SimTime, u64)>,
    busy_ns: u64,
}

// Staleness is recorded when an update completes, so the histogram counts exactly the applied
// updates: one still in progress when a run ends is in neither.

impl Shard {
    pub fn new(core: NodeIndex, range: Range<usize>, bytes: u64, update_time: SimDuration) -> Self {
        Self {
            core,
            range,
            bytes,
            update_time,
            ledger: Ledger::default(),
            queue: VecDeque::new(),
            applying: vec![],
            busy_ns: 0,
        }
    }

    pub fn enqueue_update(&mut self, learner: usize) {
        self.queue.push_back(learner);
    }

    pub fn is_busy(&self) -> bool {
        !self.applying.is_empty()
    }

    /// The learner whose update is next, if the core is free.
    pub fn next_update(&mut self) -> Option<usize> {
        if self.is_busy() {
            None
        } else {
            self.queue.pop_front()
        }
    }

    /// Starts applying `learner`'s update, computed from the slice at `version_read`.
    pub fn begin_apply(&mut self, now: SimTime, learner: usize, version_read: u64) {
        self.applying.push((learner, now, version_read));
    }

    /// Ends `learner`'s update in progress and returns the version it read; the slice moves
    /// on only at [`Shard::commit`].
    pub fn end_apply(&mut self, now: SimTime, learner: usize) -> Option<u64> {
        let i = self.applying.iter().position(|a| a.0 == learner)?;
        let (_, start, read) = self.applying.remove(i);
        self.busy_ns += (now - start).as_nanos();
        Some(read)
    }

    /// An update computed from `version_read` is in the slice (see [`Ledger::commit`]).
    pub fn commit(&mut self, version_read: u64) -> u64 {
        self.ledger.commit(version_read)
    }

    /// A synchronous round's one step is in the slice (see [`Ledger::commit_round`]).
    pub fn commit_round(&mut self, updates: usize) {
        self.ledger.commit_round(updates)
    }

    /// The updates in progress as (learner, fraction of the slice written so far), in the
    /// order they started.
    pub fn in_flight(&self, now: SimTime) -> Vec<(usize, f64)> {
        let total = self.update_time.as_nanos().max(1) as f64;
        self.applying
            .iter()
            .map(|&(l, start, _)| (l, (now - start).as_nanos() as f64 / total))
            .collect()
    }

    /// Core time spent applying updates, including those in progress up to `now`.
    pub fn busy_ns(&self, now: SimTime) -> u64 {
        self.busy_ns
            + self
                .applying
                .iter()
                .map(|&(_, s, _)| (now - s).as_nanos())
                .sum::<u64>()
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }
}
