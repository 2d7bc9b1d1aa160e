//! A parameter-server shard: one host core owning a slice of the parameters. It applies one
//! update at a time, first come first served, and queues the rest; updates are atomic (as in the
//! seed paper): a pull served during an update gets the last fully applied version, at once and
//! without core time (the slice is read by DMA). It keeps the slice's version (updates applied so
//! far) and records every update's staleness. It never schedules anything itself; the algorithm
//! drives it.

use crate::stats::Histogram;
use crate::time::{SimDuration, SimTime};
use petgraph::graph::NodeIndex;
use std::collections::VecDeque;
use std::ops::Range;

#[derive(Clone, Debug)]
pub struct Shard {
    pub core: NodeIndex,
    pub range: Range<usize>,
    pub bytes: u64,
    /// Core time to apply one update to this slice.
    pub update_time: SimDuration,
    /// Updates applied so far.
    pub version: u64,
    /// Learners whose gradients wait to be applied, in arrival order.
    queue: VecDeque<usize>,
    /// Start of the update in progress and the version its learner read.
    busy_since: Option<(SimTime, u64)>,
    busy_ns: u64,
    /// Staleness of every applied update: version at apply minus version the learner read.
    pub staleness: Histogram,
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
            version: 0,
            queue: VecDeque::new(),
            busy_since: None,
            busy_ns: 0,
            staleness: Histogram::default(),
        }
    }

    pub fn enqueue_update(&mut self, learner: usize) {
        self.queue.push_back(learner);
    }

    pub fn is_busy(&self) -> bool {
        self.busy_since.is_some()
    }

    /// The learner whose update is next, if the core is free.
    pub fn next_update(&mut self) -> Option<usize> {
        if self.is_busy() {
            None
        } else {
            self.queue.pop_front()
        }
    }

    /// Starts applying an update computed from the slice at `version_read`.
    pub fn begin_apply(&mut self, now: SimTime, version_read: u64) {
        self.busy_since = Some((now, version_read));
    }

    /// Finishes the update in progress: records its staleness (updates applied since its
    /// learner read the slice), moves the slice to the next version, and returns the staleness.
    pub fn end_apply(&mut self, now: SimTime) -> Option<u64> {
        let (start, read) = self.busy_since.take()?;
        self.busy_ns += (now - start).as_nanos();
        let staleness = self.version.saturating_sub(read);
        self.staleness.record(staleness);
        self.version += 1;
        Some(staleness)
    }

    /// Core time spent applying updates, including one in progress up to `now`.
    pub fn busy_ns(&self, now: SimTime) -> u64 {
        self.busy_ns + self.busy_since.map_or(0, |(s, _)| (now - s).as_nanos())
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }
}
