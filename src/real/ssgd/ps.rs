//! `ssgd-ps`: the learners loop pull every shard slice -> compute -> push every gradient slice
//! -> wait for every shard's ack. A shard thread keeps the round's gradients per learner; with
//! the p-th it takes one step by their mean summed in learner order (`mean_in_order`, then
//! `update::apply`, exactly the simulator's `apply_round`), moves to its next version, records
//! staleness 0 for each of the p gradients and acknowledges them all. A learner's time after its
//! gradient is classified by [`classify`] with the instant each shard took its gradient in as
//! the arrival: until then (and while the ack is on its way back) push, from then to the step
//! wait (the barrier), the step itself server update.

use super::{Common, LearnerEnd, bytes_of, start};
use crate::numerics::Scratch;
use crate::observe::Observer;
use crate::outcome::Activity;
use crate::real::runtime::{Job, RealRun, ServerEnd, finish, serve};
use crate::real::shard::{Apply, FromShard, Push, ToShard, shard_loop};
use crate::real::timeline::classify;
use crate::training::real::RealSetup;
use crate::training::update;
use std::ops::Range;
use std::sync::mpsc::{Receiver, Sender, channel};

/// Runs synchronous SGD through a sharded parameter server: `setup.learners` learner threads
/// and one thread per shard range, until `epochs * iterations_per_epoch` iterations are done
/// (whole rounds) or the run is stopped.
pub fn run_ps<O: Observer + Send>(job: &Job, observer: O) -> (RealRun, O) {
    let (setup, objective, dataset) = (job.setup, job.objective, job.dataset);
    let (run, plan, gate) = start(job, observer);
    let (p, init, shared, sampler, observer) = run.parts();
    let ranges = &setup.shard_ranges;
    let (learners, shards) = serve(
        &shared,
        p,
        &init,
        ranges,
        |k, slice, rx, replies| {
            let rule = MeanStep::new(setup, replies.len(), slice.len());
            shard_loop(k, slice, rx, replies, &shared, rule)
        },
        |l, to_shards, replies| {
            let ctx = PsLearner {
                c: Common {
                    l,
                    setup,
                    plan,
                    shared: &shared,
                    gate: &gate,
                    sampler: &sampler,
                    observer: &observer,
                    objective: &**objective,
                    dataset,
                },
                ranges,
                to_shards,
                replies,
            };
            ctx.run()
        },
    );
    let end_ns = shared.now();

    let mut parameters = init;
    let server = ServerEnd::of_shards(ranges, &shards, &mut parameters);
    let learners: Vec<_> = learners.into_iter().map(LearnerEnd::into_end).collect();
    finish(
        setup, objective, dataset, shared, observer, end_ns, parameters, &learners, server,
    )
}

/// A synchronous shard's round: one step by the mean of the p gradients, summed in learner
/// order (`mean_in_order`, then `update::apply`, exactly the simulator's `apply_round`).
struct MeanStep<'a> {
    setup: &'a RealSetup,
    learners: usize,
    velocity: Vec<f32>,
    mean: Vec<f32>,
}

impl<'a> MeanStep<'a> {
    fn new(setup: &'a RealSetup, learners: usize, len: usize) -> Self {
        MeanStep {
            setup,
            learners,
            velocity: if setup.momentum != 0.0 {
                vec![0.0; len]
            } else {
                vec![]
            },
            mean: Vec::with_capacity(len),
        }
    }
}

impl Apply for MeanStep<'_> {
    /// Never called: every push waits for its round.
    fn apply(&mut self, _learner: usize, _slice: &mut [f32], _data: &[f32], _staleness: u64) {}

    fn round(&self) -> usize {
        self.learners
    }

    fn step(&mut self, slice: &mut [f32], round: &[Option<Push>]) {
        let grads = round
            .iter()
            .filter_map(|g| g.as_ref().map(|g| g.data.as_slice()));
        update::mean_in_order(&mut self.mean, grads);
        update::apply(
            slice,
            &mut self.velocity,
            &self.mean,
            self.setup.learning_rate,
            self.setup.momentum,
            self.setup.weight_decay,
        );
    }
}

struct PsLearner<'a, O> {
    c: Common<'a, O>,
    ranges: &'a [Range<usize>],
    to_shards: &'a [Sender<ToShard>],
    replies: &'a Receiver<FromShard>,
}

impl<O: Observer> PsLearner<'_, O> {
    fn reply(&self) -> Option<FromShard> {
        self.c.shared.receive(self.replies)
    }

    fn send(&self, k: usize, msg: ToShard) -> Option<()> {
        self.c.shared.send_to_shard(self.to_shards, k, msg)
    }

    fn run(&self) -> LearnerEnd {
        let sh = self.c.shared;
        let n = self.c.objective.num_params();
        let mut params = vec![0.0f32; n];
        let mut grad = vec![0.0f32; n];
        let mut spares: Vec<Vec<f32>> = vec![];
        let mut scratch = Scratch::default();
        let mut end = LearnerEnd::default();
        for round in 0..self.c.plan.rounds() {
            if sh.halted() {
                break;
            }
            // Pull every slice.
            let t0 = sh.now();
            for k in 0..self.ranges.len() {
                let pull = ToShard::Pull {
                    learner: self.c.l,
                    buf: spares.pop().unwrap_or_default(),
                };
                if self.send(k, pull).is_none() {
                    return end;
                }
            }
            for _ in 0..self.ranges.len() {
                match self.reply() {
                    Some(FromShard::Slice { shard, data, .. }) => {
                        let r = self.ranges[shard].clone();
                        if data.len() != r.len() {
                            sh.fail(format!("shard {shard} sent a slice of the wrong size"));
                            return end;
                        }
                        params[r].copy_from_slice(&data);
                        end.bytes += bytes_of(data.len());
                        spares.push(data);
                    }
                    _ => return end,
                }
            }
            end.breakdown.add(Activity::Pull, sh.now() - t0);

            if !self
                .c
                .gradient(round, &params, &mut grad, &mut scratch, &mut end)
            {
                return end;
            }

            // Push every gradient slice, then wait for every shard's step.
            let t2 = sh.now();
            for (k, r) in self.ranges.iter().enumerate() {
                let mut buf = spares.pop().unwrap_or_default();
                buf.clear();
                buf.extend_from_slice(&grad[r.clone()]);
                end.bytes += bytes_of(buf.len());
                // Every gradient of a round was computed from the round's one version.
                let msg = ToShard::Push {
                    learner: self.c.l,
                    read_version: 0,
                    data: buf,
                    arrived: sh.now(),
                };
                if self.send(k, msg).is_none() {
                    return end;
                }
            }
            let mut spans = Vec::with_capacity(self.ranges.len());
            for _ in 0..self.ranges.len() {
                match self.reply() {
                    Some(FromShard::Applied { mut span, spare }) => {
                        span.received = sh.now();
                        spans.push(span);
                        spares.push(spare);
                    }
                    _ => return end,
                }
            }
            let t3 = sh.now();
            let (push, server, wait) = classify(t2, t3, &spans);
            end.breakdown.add(Activity::Push, push);
            end.breakdown.add(Activity::ServerUpdate, server);
            end.breakdown.add(Activity::Wait, wait);

            self.c.round_done(round, &mut end, || self.snapshot(n));
        }
        end
    }

    /// The server's parameters now, read from every shard.
    fn snapshot(&self, n: usize) -> Option<Vec<f32>> {
        let (tx, rx) = channel();
        let mut snapshot = vec![0.0f32; n];
        for k in 0..self.ranges.len() {
            self.send(k, ToShard::Snapshot { reply: tx.clone() })?;
        }
        drop(tx);
        let mut got = 0;
        for (k, data) in rx.iter() {
            let r = self.ranges.get(k)?.clone();
            if data.len() != r.len() {
                return None;
            }
            snapshot[r].copy_from_slice(&data);
            got += 1;
        }
        (got == self.ranges.len()).then_some(snapshot)
    }
}
