//! The real backend's learner thread for every algorithm whose learners talk to asynchronous
//! shards (`super::shard`): it runs the learner's role (`algorithm::role`), carrying out each
//! act for real and timing it with the monotonic clock: a pull asks every shard for its slice
//! and waits for them, a computation draws its mini-batches and hands them to the algorithm's
//! [`Work`], a push sends each target shard the work's message and waits for the shard to apply
//! it, a wait blocks until the slowest learner catches up. The role decides what comes next;
//! the work decides what the numbers are; this file decides neither.
//!
//! An iteration is claimed from the run's total by the first pull or computation after the
//! last one completed, so no learner starts work past the total. A learner that completes an
//! epoch snapshots the server for evaluation after the run. A halted run, a shard that stops
//! answering or a loss that is not finite ends the thread with what it measured.

use super::runtime::{LearnerEnd, Shared, end_epoch};
use super::shard::{FromShard, ToShard};
use super::timeline::classify;
use crate::algorithm::role::{Act, Happened};
use crate::numerics::Objective;
use crate::observe::Observer;
use crate::outcome::Activity;
use crate::training::real::RealSetup;
use crate::training::sampler::{Sampler, gradient_seed};
use crate::workload::model::BYTES_PER_PARAM;
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender, channel};

/// What an algorithm's learner does to numbers: the part of a learner the driver leaves to the
/// algorithm.
pub(super) trait Work {
    /// The shard over `range` sent `data` (the parameters' slice, or the centre's).
    fn pulled(&mut self, range: Range<usize>, data: &[f32]);
    /// Computes on the mini-batches `(indices, seed)` in order; returns their loss (summed).
    fn compute(&mut self, batches: &[(Vec<usize>, u64)]) -> f32;
    /// Writes into `buf` what goes to the shard over `range` (a gradient slice, an elastic
    /// difference).
    fn message(&mut self, range: Range<usize>, buf: &mut Vec<f32>);
}

/// A learner thread's links to the run: its index, the shards' queues and its reply channel.
pub(super) struct Learner<'a, O> {
    pub l: usize,
    pub setup: &'a RealSetup,
    pub ranges: &'a [Range<usize>],
    pub shared: &'a Shared<'a>,
    pub sampler: &'a Mutex<Sampler>,
    pub observer: &'a Mutex<O>,
    pub objective: &'a dyn Objective,
    pub to_shards: &'a [Sender<ToShard>],
    pub replies: &'a Receiver<FromShard>,
}

/// What a pull told the learner: the version of each shard's slice, and buffers to reuse.
#[derive(Default)]
struct Mail {
    read: Vec<u64>,
    spares: Vec<Vec<f32>>,
}

impl<O: Observer> Learner<'_, O> {
    fn reply(&self) -> Option<FromShard> {
        self.shared.receive(self.replies)
    }

    fn send(&self, k: usize, msg: ToShard) -> Option<()> {
        self.shared.send_to_shard(self.to_shards, k, msg)
    }

    /// Runs the learner's role until the run's iterations are all claimed.
    pub fn run(&self, mut work: impl Work) -> LearnerEnd {
        let sh = self.shared;
        let mut end = LearnerEnd::default();
        let mut mail = Mail {
            read: vec![0; self.ranges.len()],
            spares: vec![],
        };
        let claim = self.setup.algorithm.batches_per_round().max(1);
        let mut role = self.setup.algorithm.learner(self.l, self.ranges.len());
        let mut then = role.on(Happened::Start).then;
        let mut fresh = true;
        let mut mark = sh.now();
        loop {
            if fresh && matches!(then, Act::Pull | Act::Compute { .. }) {
                if sh.halted() || sh.claimed.fetch_add(claim, Ordering::Relaxed) >= sh.total {
                    break;
                }
                fresh = false;
            }
            let happened = match &then {
                Act::Pull => self.pull(&mut work, &mut mail, &mut end),
                Act::Compute { batches } => self.compute(&mut work, *batches, &mut end),
                Act::Push { targets } => {
                    self.push(&mut work, &mut mail, targets.clone(), mark, &mut end)
                }
                Act::WaitFor { iterations } => {
                    sh.wait_for(*iterations);
                    Some(Happened::Released)
                }
            };
            let Some(happened) = happened else { break };
            let now = sh.now();
            match then {
                Act::Pull => end.breakdown.add(Activity::Pull, now - mark),
                Act::Compute { .. } => end.breakdown.add(Activity::Compute, now - mark),
                Act::WaitFor { .. } => end.breakdown.add(Activity::Wait, now - mark),
                // Split by what the shards did meanwhile, in `push`.
                Act::Push { .. } => {}
            }
            mark = now;
            let step = role.on(happened);
            if step.completed > 0 {
                fresh = true;
                end.iterations += step.completed;
                let (epochs, done) = sh.complete(self.l, step.completed);
                for epoch in epochs {
                    // The snapshot is no activity of the learner's.
                    self.end_epoch(epoch, done);
                    mark = sh.now();
                }
            }
            then = step.then;
        }
        end
    }

    /// Asks every shard for its slice and hands each to the work.
    fn pull(
        &self,
        work: &mut impl Work,
        mail: &mut Mail,
        end: &mut LearnerEnd,
    ) -> Option<Happened> {
        for k in 0..self.ranges.len() {
            let buf = mail.spares.pop().unwrap_or_default();
            self.send(
                k,
                ToShard::Pull {
                    learner: self.l,
                    buf,
                },
            )?;
        }
        for _ in 0..self.ranges.len() {
            let Some(FromShard::Slice {
                shard,
                version,
                data,
            }) = self.reply()
            else {
                return None;
            };
            work.pulled(self.ranges[shard].clone(), &data);
            mail.read[shard] = version;
            end.bytes += BYTES_PER_PARAM * data.len() as u64;
            mail.spares.push(data);
        }
        Some(Happened::Pulled)
    }

    /// Draws the learner's next `batches` mini-batches and has the work compute on them; a
    /// loss that is not finite ends the run.
    fn compute(
        &self,
        work: &mut impl Work,
        batches: u64,
        end: &mut LearnerEnd,
    ) -> Option<Happened> {
        let (seed, l, m) = (self.setup.seed, self.l, self.setup.batch_size);
        let drawn: Vec<(Vec<usize>, u64)> = {
            let mut s = self.sampler.lock().ok()?;
            (0..batches)
                .map(|t| {
                    (
                        s.next_batch(l, m),
                        gradient_seed(seed, l, end.gradients + t),
                    )
                })
                .collect()
        };
        let loss = work.compute(&drawn);
        end.gradients += batches;
        if !loss.is_finite() {
            self.shared.diverged.store(true, Ordering::Relaxed);
            return None;
        }
        Some(Happened::Computed)
    }

    /// Sends the shards `targets` the work's messages, started at `began`, and waits for
    /// those shards to apply them; the time is push, server update or wait by what the shards
    /// did meanwhile.
    fn push(
        &self,
        work: &mut impl Work,
        mail: &mut Mail,
        targets: Range<usize>,
        began: u64,
        end: &mut LearnerEnd,
    ) -> Option<Happened> {
        let sh = self.shared;
        for k in targets.clone() {
            let mut data = mail.spares.pop().unwrap_or_default();
            work.message(self.ranges[k].clone(), &mut data);
            end.bytes += BYTES_PER_PARAM * data.len() as u64;
            let msg = ToShard::Push {
                learner: self.l,
                read_version: mail.read[k],
                data,
                arrived: sh.now(),
            };
            self.send(k, msg)?;
        }
        let mut spans = Vec::with_capacity(targets.len());
        for _ in targets {
            let Some(FromShard::Applied { mut span, spare }) = self.reply() else {
                return None;
            };
            span.received = sh.now();
            spans.push(span);
            mail.spares.push(spare);
        }
        let (push, server, wait) = classify(began, sh.now(), &spans);
        end.breakdown.add(Activity::Push, push);
        end.breakdown.add(Activity::ServerUpdate, server);
        end.breakdown.add(Activity::Wait, wait);
        Some(Happened::Pushed)
    }

    /// The learner that completes an epoch (with `done` iterations in all) snapshots the
    /// server's parameters for evaluation after the run, deals the data out again and reports
    /// the epoch.
    fn end_epoch(&self, epoch: u64, done: u64) {
        let sh = self.shared;
        let at = sh.now();
        let (tx, rx) = channel();
        let mut snapshot = vec![0.0f32; self.objective.num_params()];
        for k in 0..self.ranges.len() {
            if self
                .send(k, ToShard::Snapshot { reply: tx.clone() })
                .is_none()
            {
                return;
            }
        }
        drop(tx);
        for (k, data) in rx.iter() {
            snapshot[self.ranges[k].clone()].copy_from_slice(&data);
        }
        end_epoch(sh, self.sampler, self.observer, epoch, at, done, snapshot);
    }
}
