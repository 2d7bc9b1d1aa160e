//! A real shard's failures (`faults.shard_failures`): at its failure time the shard thread
//! stops serving and sleeps out its time down, while what the learners send it waits in its
//! queue; then its slice (and its update rule's momentum) is its last checkpoint's, taken
//! every `faults.checkpoint_every_s` of the run (absent: the start), and the updates it applied
//! since are lost. The same schedule as the simulator's (`sim::downpour::outage`).

use crate::faults::ShardFaults;
use crate::outcome::ShardFaultRecord;

/// One shard's failures still to come, its checkpoint and what it lost.
pub(in crate::real) struct Outage {
    shard: usize,
    /// (fails at, back at), ns since the run's start, in time order.
    pending: Vec<(u64, u64)>,
    every_ns: Option<u64>,
    period: u64,
    /// The slice and the rule's state at the last checkpoint.
    saved: Option<(Vec<f32>, Vec<f32>)>,
    /// Gradients applied since the checkpoint.
    since: u64,
    pub records: Vec<ShardFaultRecord>,
}

fn ns(s: f64) -> u64 {
    (s * 1e9).ceil() as u64
}

impl Outage {
    /// Shard `k`'s failures in `faults`.
    pub fn of(faults: &ShardFaults, k: usize) -> Self {
        Outage {
            shard: k,
            pending: (faults.failures.iter())
                .filter(|f| f.shard == k)
                .map(|f| (ns(f.at_s), ns(f.at_s) + ns(f.down_for_s)))
                .collect(),
            every_ns: faults.checkpoint_every_s.map(|c| ns(c).max(1)),
            period: 0,
            saved: None,
            since: 0,
            records: vec![],
        }
    }

    /// When the next failure happens, ns since the run's start.
    pub fn next(&self) -> Option<u64> {
        self.pending.first().map(|&(at, _)| at)
    }

    /// The shard is about to apply `n` gradients at `now`: a checkpoint due is taken first,
    /// and they count as applied since it.
    pub fn applying(&mut self, now: u64, n: u64, slice: &[f32], state: &[f32]) {
        if self.pending.is_empty() && self.records.is_empty() {
            return;
        }
        self.checkpoint_due(now, slice, state);
        self.since += n;
    }

    /// Takes the checkpoint of the period `now` falls in, if not taken yet (the slice as it
    /// was at the period's start: no update has come since); the first is the start's.
    fn checkpoint_due(&mut self, now: u64, slice: &[f32], state: &[f32]) {
        let period = self.every_ns.map_or(0, |e| now / e);
        if self.saved.is_none() || period > self.period {
            self.period = period;
            self.since = 0;
            self.saved = Some((slice.to_vec(), state.to_vec()));
        }
    }

    /// A push that arrived at `arrived` waited for the shard if it came while it was down.
    pub fn held(&mut self, arrived: u64) {
        if let Some(r) = self.records.last_mut() {
            let (from, to) = (ns(r.failed_at_s), r.back_at_s.map_or(u64::MAX, ns));
            r.held_messages += u64::from((from..to).contains(&arrived));
        }
    }

    /// The failure due at `now` happens: sleeps out the time down, then puts the checkpoint
    /// back into `slice` and `state`; `clock` tells the time it is back.
    pub fn fail(
        &mut self,
        now: u64,
        slice: &mut [f32],
        state: &mut [f32],
        clock: impl Fn() -> u64,
    ) {
        let (_, back) = self.pending.remove(0);
        self.checkpoint_due(now, slice, state);
        std::thread::sleep(std::time::Duration::from_nanos(back.saturating_sub(now)));
        if let Some((s, v)) = &self.saved {
            slice.copy_from_slice(s);
            if state.len() == v.len() {
                state.copy_from_slice(v);
            }
        }
        self.records.push(ShardFaultRecord {
            shard: self.shard,
            failed_at_s: now as f64 / 1e9,
            back_at_s: Some(clock() as f64 / 1e9),
            lost_updates: std::mem::take(&mut self.since),
            held_messages: 0,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::ShardFailure;

    /// A shard that reaches its failure late (busy applying when it was due) is back at the
    /// scheduled `at_s + down_for_s`, the simulator's schedule and a real learner's, not
    /// `down_for_s` after it noticed.
    #[test]
    fn a_shard_that_fails_late_is_back_at_its_scheduled_time() {
        let faults = ShardFaults {
            failures: vec![ShardFailure {
                shard: 0,
                at_s: 0.001,
                down_for_s: 0.05,
            }],
            checkpoint_every_s: None,
        };
        let mut o = Outage::of(&faults, 0);
        let start = std::time::Instant::now();
        let clock = || start.elapsed().as_nanos() as u64 + 40_000_000;
        let (mut slice, mut state) = (vec![1.0f32; 4], vec![]);
        o.fail(clock(), &mut slice, &mut state, clock);
        let [r] = &o.records[..] else {
            panic!("{:?}", o.records)
        };
        assert!(r.failed_at_s >= 0.04, "{r:?}");
        let back = r.back_at_s.unwrap();
        assert!(back >= 0.051, "{r:?}");
        // Not a whole 0.05 s after it failed, 0.09 or later (29 ms allowed for a late wake-up).
        assert!(back < 0.08, "{r:?}");
    }
}
