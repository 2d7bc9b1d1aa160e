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

use super::control::Control;
use super::outage::Outage;
use super::runtime::{LearnerEnd, Shared, slow_down};
use super::shard::{Answer, FromShard, ToShard};

use crate::algorithm::role::{Act, Happened};
use crate::outcome::Activity;
use crate::training::real::RealSetup;
use crate::training::sampler::gradient_seed;
use crate::workload::model::BYTES_PER_PARAM;
use std::ops::Range;
use std::sync::mpsc::{Receiver, Sender, channel};

/// What an algorithm's learner does to numbers: the part of a learner the driver leaves to the
/// algorithm.
pub(super) trait Work {
    /// Where a pull of `range` goes (the parameters' slice, or the centre's): the reach fills
    /// it.
    fn destination(&mut self, range: Range<usize>) -> &mut [f32];
    /// Computes on the mini-batches `(indices, seed)` in order; returns their loss (summed).
    fn compute(&mut self, batches: &[(Vec<usize>, u64)]) -> f32;
    /// Writes into `buf` what goes to the shard over `range` (a gradient slice, an elastic
    /// difference).
    fn message(&mut self, range: Range<usize>, buf: &mut Vec<f32>);
    /// The whole gradient just computed, for a reach that applies it in place (Hogwild's).
    fn gradient(&self) -> &[f32];

    /// Takes a slice pulled from a shard into `range`, counting the bytes it moved: what every
    /// reach by messages (threads or sockets) does with one.
    fn take_slice(&mut self, range: Range<usize>, data: &[f32], end: &mut LearnerEnd) {
        self.destination(range).copy_from_slice(data);
        end.bytes += BYTES_PER_PARAM * data.len() as u64;
    }

    /// Writes the push for `range` into `buf`, counting the bytes it will move.
    fn push_message(&mut self, range: Range<usize>, buf: &mut Vec<f32>, end: &mut LearnerEnd) {
        self.message(range, buf);
        end.bytes += BYTES_PER_PARAM * buf.len() as u64;
    }
}

/// Synchronous SGD's versions (see [`Reach::versions`]) from the versions of the slices last
/// pulled, shard by shard.
pub(super) fn read_versions(read: &[u64]) -> (u64, u64) {
    let oldest = read.iter().copied().min().unwrap_or(0);
    (read.first().copied().unwrap_or(0), oldest)
}

/// How a learner reaches the server: by messages to shard threads ([`Shards`]), or by reading
/// and writing a shared vector itself (Hogwild's).
pub(super) trait Reach {
    /// Reads the server into the work; None if the run must end.
    fn pull(&mut self, work: &mut impl Work, end: &mut LearnerEnd) -> Option<()>;
    /// Has the server apply the work's push to `targets`, begun at `began` (ns since the
    /// run's start), and waits until every target has answered, adding the time to the
    /// breakdown by what the server did meanwhile; what the shards did with it, or None if the
    /// run must end.
    fn push(
        &mut self,
        work: &mut impl Work,
        targets: Range<usize>,
        began: u64,
        end: &mut LearnerEnd,
    ) -> Option<Answer>;
    /// Synchronous SGD's rounds the learner is in: the version of the deciding shard's slice
    /// last pulled (`algorithm::ssgd::decides`), and the oldest of all the slices'.
    fn versions(&self) -> (u64, u64) {
        (0, 0)
    }
    /// The server's parameters now, for evaluation after the run, taken here or left for
    /// the shards to keep until the run's end; None if the server did not answer.
    fn snapshot(&mut self, epoch: u64) -> Option<Taken>;
}

/// An epoch end's parameters as a reach takes them.
pub(super) enum Taken {
    /// Copied here.
    Here(Vec<f32>),
    /// Kept by every shard, which hands them in with its slice when the run ends.
    AtShards,
}

/// A learner's links to the run.
pub(super) struct Learner<'a, C> {
    pub l: usize,
    pub setup: &'a RealSetup,
    pub control: &'a C,
}

impl<C: Control> Learner<'_, C> {
    /// Runs the learner's role, with `shards` shards reached through `reach`, until the run's
    /// iterations are all claimed.
    pub fn run(&self, mut work: impl Work, mut reach: impl Reach, shards: usize) -> LearnerEnd {
        let sh = self.control;
        let mut end = LearnerEnd::default();
        let mut role = self.setup.algorithm.learner(self.l, shards);
        let mut then = role.on(Happened::Start).then;
        let mut fresh = true;
        let mut mark = sh.now();
        let mut outage = Outage::of(self.setup, self.l);
        loop {
            // A failure takes effect between acts: a gradient computed and not pushed is
            // lost; a learner that comes back starts again with a pull.
            if let Some(o) = outage.filter(|o| sh.now() >= o.at_ns) {
                outage = None;
                let lost = u64::from(matches!(then, Act::Push { .. }));
                if !o.happen(self.l, sh, &mut end, lost, !fresh) {
                    break;
                }
                // Its claim went back to the others: it claims again.
                fresh = true;
                then = role.on(Happened::Start).then;
                mark = sh.now();
            }
            if fresh && matches!(then, Act::Pull | Act::Compute) {
                if !sh.claim() {
                    break;
                }
                fresh = false;
            }
            let happened = match &then {
                Act::Pull => reach.pull(&mut work, &mut end).map(|()| Happened::Pulled),
                Act::Compute => self.compute(&mut work, &mut end),
                Act::Push { targets } => reach
                    .push(&mut work, targets.clone(), mark, &mut end)
                    .map(Answer::happened),
                Act::WaitFor { iterations } => {
                    sh.wait_for(*iterations);
                    Some(Happened::Released)
                }
            };
            let Some(happened) = happened else { break };
            let now = sh.now();
            match then {
                Act::Pull => end.did(Activity::Pull, mark, now),
                Act::Compute => end.did(Activity::Compute, mark, now),
                Act::WaitFor { .. } => end.did(Activity::Wait, mark, now),
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
                    self.end_epoch(&mut reach, epoch, done);
                    mark = sh.now();
                }
            }
            then = step.then;
        }
        end
    }

    /// Draws the learner's next mini-batch and has the work compute on it; a loss that is not
    /// finite ends the run.
    fn compute(&self, work: &mut impl Work, end: &mut LearnerEnd) -> Option<Happened> {
        let (seed, l, m) = (self.setup.seed, self.l, self.setup.batch_size);
        let batch = self.control.next_batch(l, m)?;
        let began = self.control.now();
        let loss = work.compute(&[(batch, gradient_seed(seed, l, end.gradients))]);
        let worked = self.control.now().saturating_sub(began);
        let slowdown = self.setup.slowdown_at(l, began as f64 * 1e-9);
        slow_down(slowdown, worked, || self.control.halted());
        end.gradients += 1;
        if !loss.is_finite() {
            self.control.diverge();
            return None;
        }
        Some(Happened::Computed)
    }

    /// The learner that completes an epoch (with `done` iterations in all) snapshots the
    /// server's parameters for evaluation after the run, deals the data out again and reports
    /// the epoch.
    fn end_epoch(&self, reach: &mut impl Reach, epoch: u64, done: u64) {
        let at = self.control.now();
        match reach.snapshot(epoch) {
            Some(Taken::Here(params)) => self.control.end_epoch(epoch, at, done, Some(params)),
            Some(Taken::AtShards) => self.control.end_epoch(epoch, at, done, None),
            None => {}
        }
    }
}

/// A learner's reach by messages to the shard threads' queues, with its reply channel.
pub(super) struct Shards<'a> {
    pub l: usize,
    pub ranges: &'a [Range<usize>],
    pub shared: &'a Shared<'a>,
    pub to_shards: &'a [Sender<ToShard>],
    pub replies: &'a Receiver<FromShard>,
    /// Parameters of the whole model.
    pub params: usize,
    /// The version of each shard's slice last pulled.
    pub read: Vec<u64>,
    /// Message buffers to reuse.
    pub spares: Vec<Vec<f32>>,
}

impl<'a> Shards<'a> {
    pub fn new(
        l: usize,
        ranges: &'a [Range<usize>],
        shared: &'a Shared<'a>,
        to_shards: &'a [Sender<ToShard>],
        replies: &'a Receiver<FromShard>,
        params: usize,
    ) -> Self {
        Shards {
            l,
            ranges,
            shared,
            to_shards,
            replies,
            params,
            read: vec![0; ranges.len()],
            spares: vec![],
        }
    }

    fn reply(&self) -> Option<FromShard> {
        self.shared.receive(self.replies)
    }

    fn send(&self, k: usize, msg: ToShard) -> Option<()> {
        self.shared.send_to_shard(self.to_shards, k, msg)
    }
}

impl Reach for Shards<'_> {
    /// Asks every shard for its slice and puts each where the work wants it.
    fn pull(&mut self, work: &mut impl Work, end: &mut LearnerEnd) -> Option<()> {
        for k in 0..self.ranges.len() {
            let buf = self.spares.pop().unwrap_or_default();
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
            work.take_slice(self.ranges[shard].clone(), &data, end);
            self.read[shard] = version;
            self.spares.push(data);
        }
        Some(())
    }

    /// Sends the shards `targets` the work's messages and waits for those shards to apply
    /// them; the time is push, server update or wait by what the shards did meanwhile.
    fn push(
        &mut self,
        work: &mut impl Work,
        targets: Range<usize>,
        began: u64,
        end: &mut LearnerEnd,
    ) -> Option<Answer> {
        let sh = self.shared;
        for k in targets.clone() {
            let mut data = self.spares.pop().unwrap_or_default();
            work.push_message(self.ranges[k].clone(), &mut data, end);
            let msg = ToShard::Push {
                learner: self.l,
                read_version: self.read[k],
                data,
                arrived: sh.now(),
            };
            self.send(k, msg)?;
        }
        let mut spans = Vec::with_capacity(targets.len());
        let mut answers = Vec::with_capacity(targets.len());
        for _ in targets {
            let Some(FromShard::Applied {
                mut span,
                answer,
                spare,
            }) = self.reply()
            else {
                return None;
            };
            span.received = sh.now();
            spans.push(span);
            answers.push(answer);
            self.spares.push(spare);
        }
        end.charge_push(began, sh.now(), &spans);
        Some(Answer::merge(answers))
    }

    fn versions(&self) -> (u64, u64) {
        read_versions(&self.read)
    }

    /// Every shard's slice as it is now; None if a shard did not answer.
    fn snapshot(&mut self, _epoch: u64) -> Option<Taken> {
        let (tx, rx) = channel();
        let mut snapshot = vec![0.0f32; self.params];
        for k in 0..self.ranges.len() {
            self.send(k, ToShard::Snapshot { reply: tx.clone() })?;
        }
        drop(tx);
        let mut got = 0;
        for (k, data) in rx.iter() {
            snapshot[self.ranges[k].clone()].copy_from_slice(&data);
            got += 1;
        }
        // A shard that stopped answering leaves no snapshot to evaluate.
        (got == self.ranges.len()).then_some(Taken::Here(snapshot))
    }
}
