//! A parameter-server shard: one host core owning a slice of the parameters. It handles one job
//! at a time, first come first served (updates are atomic, as in the seed paper), keeps its
//! slice's version (updates applied so far) and records every update's staleness.
//! It never schedules anything itself; the algorithm drives it.

use crate::stats::Histogram;
use crate::time::{SimDuration, SimTime};
use petgraph::graph::NodeIndex;
use std::collections::VecDeque;
use std::ops::Range;

/// Work waiting at a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    /// Send the current slice to a learner (takes no core time: the slice is read by DMA).
    Serve { learner: usize },
    /// Apply a learner's gradient to the slice.
    Apply { learner: usize },
}

#[derive(Clone, Debug)]
pub struct Shard {
    pub core: NodeIndex,
    pub range: Range<usize>,
    pub bytes: u64,
    /// Core time to apply one update to this slice.
    pub update_time: SimDuration,
    /// Updates applied so far.
    pub version: u64,
    queue: VecDeque<Job>,
    busy_since: Option<SimTime>,
    busy_ns: u64,
    /// Staleness of every applied update: version at apply minus version the learner read.
    pub staleness: Histogram,
}

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

    pub fn enqueue(&mut self, job: Job) {
        self.queue.push_back(job);
    }

    pub fn is_busy(&self) -> bool {
        self.busy_since.is_some()
    }

    /// The next job, if the core is free.
    pub fn next_job(&mut self) -> Option<Job> {
        if self.is_busy() {
            None
        } else {
            self.queue.pop_front()
        }
    }

    /// Starts applying an update read at `version_read`; records its staleness.
    pub fn begin_apply(&mut self, now: SimTime, version_read: u64) {
        self.staleness
            .record(self.version.saturating_sub(version_read));
        self.busy_since = Some(now);
    }

    /// Finishes the update in progress: the slice moves to the next version.
    pub fn end_apply(&mut self, now: SimTime) {
        if let Some(start) = self.busy_since.take() {
            self.busy_ns += (now - start).as_nanos();
        }
        self.version += 1;
    }

    /// Core time spent applying updates, including one in progress up to `now`.
    pub fn busy_ns(&self, now: SimTime) -> u64 {
        self.busy_ns + self.busy_since.map_or(0, |s| (now - s).as_nanos())
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }
}
