//! A shared-memory host's cores shared among its threads, the way a time-sharing OS scheduler
//! shares them: a thread with work to do (a job) runs on a free core, or waits in one run queue,
//! first come first served; a running job that has used its time slice while others wait goes
//! to the back of the queue. A thread blocked on a message holds no job and takes no core.
//!
//! Running jobs also slow each other down (shared caches and memory bandwidth, the hypervisor's
//! sibling threads): with `k` of `n` cores busy each runs at `1 / (1 + (c - 1)(k - 1)/(n - 1))`
//! of its lone speed, where `c` is the slowdown measured with every core busy (1: none).
//!
//! Work is measured in nanoseconds of one lone core. Alone, a job of `w` ns takes exactly
//! `ceil(w)` ns; `n` equal jobs shorter than the slice on one core end at `w, 2w, ..., nw`. A
//! slice much shorter than the jobs approaches processor sharing. Like the network, it tells
//! its owner when it next needs attention ([`Cores::next_event_time`]) and never schedules
//! events or draws random numbers.

use crate::time::{SimDuration, SimTime};
use std::collections::VecDeque;

/// Identifies a job for its whole life; ids are handed out in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

#[derive(Clone, Debug)]
struct Job {
    id: JobId,
    /// Work left at `Cores::since`, ns of one lone core.
    remaining: f64,
    /// When its current slice ends, while it runs.
    slice_end: Option<SimTime>,
}

/// Work left below this counts as done: it absorbs the rounding of completion times to whole
/// nanoseconds.
const DONE: f64 = 1e-6;

/// How a host's cores are shared.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sharing {
    pub cores: usize,
    /// The scheduler's time slice (at least 1 ns).
    pub slice: SimDuration,
    /// How many times longer a job takes with every core busy than alone (at least 1).
    pub slowdown: f64,
}

/// The cores of one host and the jobs running and waiting on them.
#[derive(Clone, Debug)]
pub struct Cores {
    sharing: Sharing,
    /// Running jobs, in increasing id order.
    running: Vec<Job>,
    /// Jobs waiting for a core, first in line first.
    ready: VecDeque<Job>,
    next_id: u64,
    /// When the running jobs' `remaining` was last brought up to date.
    since: SimTime,
    /// Work done so far, ns of one lone core.
    busy: f64,
}

impl Cores {
    pub fn new(sharing: Sharing) -> Self {
        Self {
            sharing: Sharing {
                cores: sharing.cores.max(1),
                slice: sharing.slice.max(SimDuration::from_nanos(1)),
                slowdown: if sharing.slowdown.is_finite() {
                    sharing.slowdown.max(1.0)
                } else {
                    1.0
                },
            },
            running: vec![],
            ready: VecDeque::new(),
            next_id: 0,
            since: SimTime::ZERO,
            busy: 0.0,
        }
    }

    /// Cores that run every job at full speed, one slice as long as any job: first come, first
    /// served on each core.
    pub fn ideal(cores: usize) -> Self {
        Self::new(Sharing {
            cores,
            slice: SimDuration::from_nanos(u64::MAX / 4),
            slowdown: 1.0,
        })
    }

    /// The speed of each running job now, as a fraction of a lone core.
    pub fn speed(&self) -> f64 {
        let n = self.sharing.cores;
        let k = self.running.len().max(1);
        if n <= 1 {
            return 1.0;
        }
        1.0 / (1.0 + (self.sharing.slowdown - 1.0) * (k - 1) as f64 / (n - 1) as f64)
    }

    /// Jobs running or waiting now.
    pub fn jobs(&self) -> usize {
        self.running.len() + self.ready.len()
    }

    /// Core time spent on jobs so far, in ns of one lone core (up to the last call).
    pub fn busy_ns(&self) -> f64 {
        self.busy
    }

    fn catch_up(&mut self, now: SimTime) {
        if now <= self.since {
            return;
        }
        let done = self.speed() * (now - self.since).as_nanos() as f64;
        for j in &mut self.running {
            let step = done.min(j.remaining);
            j.remaining -= step;
            self.busy += step;
        }
        self.since = now;
    }

    /// Starts a job of `work` (one lone core's time) at `now`, which must not be before the last
    /// call: on a free core at once, else at the back of the run queue. The owner learns of its
    /// end from [`Cores::advance`].
    pub fn start(&mut self, now: SimTime, work: SimDuration) -> JobId {
        self.catch_up(now);
        let id = JobId(self.next_id);
        self.next_id += 1;
        let job = Job {
            id,
            remaining: work.as_nanos() as f64,
            slice_end: None,
        };
        if self.running.len() < self.sharing.cores {
            self.run(now, job);
        } else {
            self.ready.push_back(job);
        }
        id
    }

    fn run(&mut self, now: SimTime, mut job: Job) {
        job.slice_end = Some(now + self.sharing.slice);
        let at = self.running.partition_point(|j| j.id < job.id);
        self.running.insert(at, job);
    }

    /// When the next running job ends, or uses up its slice while others wait.
    pub fn next_event_time(&self) -> Option<SimTime> {
        let speed = self.speed();
        let waiting = !self.ready.is_empty();
        self.running
            .iter()
            .flat_map(|j| {
                let end = if j.remaining <= DONE {
                    self.since
                } else {
                    self.since + SimDuration::from_nanos((j.remaining / speed).ceil() as u64)
                };
                [Some(end), j.slice_end.filter(|_| waiting)]
            })
            .flatten()
            .min()
    }

    /// Brings every job up to `now`, appends the ones completed by then to `done` (in id
    /// order), moves jobs whose slice is used up behind the waiting ones, and fills the free
    /// cores from the run queue.
    pub fn advance(&mut self, now: SimTime, done: &mut Vec<JobId>) {
        self.catch_up(now);
        self.running.retain(|j| {
            let finished = j.remaining <= DONE;
            if finished {
                done.push(j.id);
            }
            !finished
        });
        let slice = self.sharing.slice;
        let mut expired = vec![];
        let mut i = 0;
        while i < self.running.len() {
            if self.running[i].slice_end.is_some_and(|e| e <= now) {
                if self.ready.len() > expired.len() {
                    let mut j = self.running.remove(i);
                    j.slice_end = None;
                    expired.push(j);
                    continue;
                }
                self.running[i].slice_end = Some(now + slice);
            }
            i += 1;
        }
        self.ready.extend(expired);
        while self.running.len() < self.sharing.cores {
            let Some(job) = self.ready.pop_front() else {
                break;
            };
            self.run(now, job);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cores(n: usize, slice: u64, slowdown: f64) -> Cores {
        Cores::new(Sharing {
            cores: n,
            slice: SimDuration::from_nanos(slice),
            slowdown,
        })
    }

    /// Runs jobs started at the given times to completion; returns each job's end, in ns.
    fn finish_times(mut c: Cores, jobs: &[(u64, u64)]) -> Vec<u64> {
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        order.sort_by_key(|&i| jobs[i].0);
        let mut ends = vec![0; jobs.len()];
        let mut ids = vec![None; jobs.len()];
        let mut next = 0;
        let mut done = vec![];
        loop {
            let start = order.get(next).map(|&i| jobs[i].0);
            let end = c.next_event_time().map(SimTime::as_nanos);
            let now = match (start, end) {
                (Some(s), Some(e)) => s.min(e),
                (Some(s), None) => s,
                (None, Some(e)) => e,
                (None, None) => break,
            };
            c.advance(SimTime::from_nanos(now), &mut done);
            for id in done.drain(..) {
                let i = ids.iter().position(|&x| x == Some(id)).unwrap();
                ends[i] = now;
            }
            while order.get(next).is_some_and(|&i| jobs[i].0 == now) {
                let i = order[next];
                ids[i] =
                    Some(c.start(SimTime::from_nanos(now), SimDuration::from_nanos(jobs[i].1)));
                next += 1;
            }
        }
        ends
    }

    /// [`finish_times`] on `n` cores with the given slice (ns) and slowdown.
    fn ends(n: usize, slice: u64, slowdown: f64, jobs: &[(u64, u64)]) -> Vec<u64> {
        finish_times(cores(n, slice, slowdown), jobs)
    }

    #[test]
    fn fewer_jobs_than_cores_run_at_full_speed() {
        assert_eq!(
            finish_times(Cores::ideal(2), &[(0, 100), (10, 50)]),
            [100, 60]
        );
    }

    #[test]
    fn jobs_shorter_than_the_slice_are_served_in_order() {
        // Four jobs of 100 on one core: one after another.
        assert_eq!(ends(1, 1_000, 1.0, &[(0, 100); 4]), [100, 200, 300, 400]);
        // Three on two cores: two at once, the third when a core frees.
        assert_eq!(ends(2, 1_000, 1.0, &[(0, 300); 3]), [300, 300, 600]);
    }

    #[test]
    fn a_used_up_slice_lets_the_waiting_job_in() {
        // One core, slice 100: job a (250) runs 0-100, b (100) 100-200, a 200-350.
        assert_eq!(ends(1, 100, 1.0, &[(0, 250), (0, 100)]), [350, 200]);
        // Alone, a job keeps its core past its slice.
        assert_eq!(ends(1, 100, 1.0, &[(0, 250)]), [250]);
    }

    #[test]
    fn busy_cores_slow_each_other_as_measured() {
        // Two cores, slowdown 1.5 with both busy: two jobs of 300 take 450; one alone 300.
        assert_eq!(ends(2, 1_000, 1.5, &[(0, 300), (0, 300)]), [450, 450]);
        assert_eq!(ends(2, 1_000, 1.5, &[(0, 300)]), [300]);
    }

    proptest! {
        /// No job beats running alone, and the cores never idle while a job waits: everything
        /// is done by the latest start plus all the work (at the slowed speed) spread over the
        /// cores, plus a nanosecond of rounding per event.
        #[test]
        fn jobs_take_at_least_their_work_and_cores_never_idle_while_one_waits(
            n in 1usize..4,
            slice in 1u64..500,
            slowdown in 1.0f64..2.0,
            jobs in proptest::collection::vec((0u64..1_000, 0u64..1_000), 1..12),
        ) {
            let ends = finish_times(cores(n, slice, slowdown), &jobs);
            for (&(s, w), &e) in jobs.iter().zip(&ends) {
                prop_assert!(e >= s + w, "job ({s}, {w}) ended at {e}");
            }
            let total: u64 = jobs.iter().map(|j| j.1).sum();
            let latest_start = jobs.iter().map(|j| j.0).max().unwrap();
            let events = 4 * jobs.len() as u64 + total / slice.max(1) * 2;
            let bound = latest_start as f64 + total as f64 * slowdown + events as f64;
            prop_assert!((*ends.iter().max().unwrap() as f64) <= bound);
        }
    }
}
