//! The threads of a shared-memory host: each runs its tasks one at a time, first come first
//! served, and every running task is a job on the host's shared [`Cores`]. A thread with nothing
//! to do is blocked and takes no share of the cores. What a task means is the owner's business:
//! this only decides when each one starts and ends.

use super::cpu::{Cores, JobId, Sharing};
use crate::time::{SimDuration, SimTime};
use std::collections::VecDeque;

/// Threads over shared cores, each with a queue of tasks of type `T`.
#[derive(Clone, Debug)]
pub struct Threads<T> {
    cores: Cores,
    queues: Vec<VecDeque<(T, SimDuration)>>,
    running: Vec<Option<(JobId, T)>>,
    scratch: Vec<JobId>,
}

impl<T: Copy> Threads<T> {
    /// `threads` threads sharing cores as `sharing` says.
    pub fn new(threads: usize, sharing: Sharing) -> Self {
        Self {
            cores: Cores::new(sharing),
            queues: vec![VecDeque::new(); threads],
            running: vec![None; threads],
            scratch: vec![],
        }
    }

    /// Queues a task of `work` (one core's time) on `thread` at `now`. Returns true when it
    /// starts at once: the thread was idle with nothing queued.
    pub fn push(&mut self, now: SimTime, thread: usize, task: T, work: SimDuration) -> bool {
        if self.running[thread].is_none() && self.queues[thread].is_empty() {
            let id = self.cores.start(now, work);
            self.running[thread] = Some((id, task));
            true
        } else {
            self.queues[thread].push_back((task, work));
            false
        }
    }

    /// Starts the thread's next queued task if it is idle, and returns that task.
    pub fn start_next(&mut self, now: SimTime, thread: usize) -> Option<T> {
        if self.running[thread].is_some() {
            return None;
        }
        let (task, work) = self.queues[thread].pop_front()?;
        let id = self.cores.start(now, work);
        self.running[thread] = Some((id, task));
        Some(task)
    }

    /// When the next running task ends at the current shares.
    pub fn next_event_time(&self) -> Option<SimTime> {
        self.cores.next_event_time()
    }

    /// Ends the tasks done by `now` and appends `(thread, task)` for each, in the order their
    /// jobs started. Their threads stay idle until [`Threads::start_next`]: the owner first
    /// reacts to the end, then starts what comes next.
    pub fn advance(&mut self, now: SimTime, finished: &mut Vec<(usize, T)>) {
        let mut done = std::mem::take(&mut self.scratch);
        self.cores.advance(now, &mut done);
        for id in done.drain(..) {
            if let Some(t) = self
                .running
                .iter()
                .position(|r| r.is_some_and(|(j, _)| j == id))
                && let Some((_, task)) = self.running[t].take()
            {
                finished.push((t, task));
            }
        }
        self.scratch = done;
    }

    /// Core time spent on tasks so far, seconds.
    pub fn busy_s(&self) -> f64 {
        self.cores.busy_ns() * 1e-9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_runs_its_tasks_in_order_and_shares_the_core() {
        // One core; thread 0 has tasks a (100) then b (100), thread 1 has c (100).
        let mut th = Threads::new(
            2,
            Sharing {
                cores: 1,
                slice: SimDuration::from_nanos(1_000),
                slowdown: 1.0,
            },
        );
        let t0 = SimTime::ZERO;
        assert!(th.push(t0, 0, 'a', SimDuration::from_nanos(100)));
        assert!(!th.push(t0, 0, 'b', SimDuration::from_nanos(100)));
        assert!(th.push(t0, 1, 'c', SimDuration::from_nanos(100)));
        let mut ends = vec![];
        let mut fin = vec![];
        while let Some(t) = th.next_event_time() {
            th.advance(t, &mut fin);
            for (thread, task) in fin.drain(..) {
                ends.push((task, t.as_nanos()));
                th.start_next(t, thread);
            }
        }
        // a runs first; c was queued before b, so it comes next.
        assert_eq!(ends, vec![('a', 100), ('c', 200), ('b', 300)]);
    }
}
