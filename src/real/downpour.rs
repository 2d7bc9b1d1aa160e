//! Downpour for real on this host (and its variants, and the partitioned model, whose learners
//! push one block per step): every learner is an OS thread looping pull -> compute ->
//! push -> wait for acknowledgements, every parameter-server shard a thread that owns its slice
//! of the parameters and serves one message at a time in arrival order. Pulls and pushes copy
//! the slices into new buffers sent over channels, as a network would; the shards apply the
//! update rule the simulator's shards use (`training::update`; for DC-ASGD each shard also keeps
//! the slice as each learner last read it), and record the staleness of each update the same way
//! (the shard's version at apply minus the version the learner read).
//!
//! Times are measured with the monotonic clock. Evaluation of the parameters at epoch ends is
//! done after training, on snapshots taken at the epoch ends, so it costs the run no time.
//!
//! A panicking learner or shard, a diverged loss, or the stop flag (Ctrl-C) ends the run
//! cleanly with what was measured so far; no thread ever waits for a message that cannot come.

use super::runtime::{
    Job, LearnerEnd, RealRun, ServerEnd, Shared, Start, end_epoch, finish, serve,
};
use super::shard::{Apply, FromShard, ToShard, shard_loop};
use super::timeline::classify;
use crate::algorithm::Rule;
use crate::algorithm::role::{Act, Happened};
use crate::data::{Dataset, Split};
use crate::numerics::{Objective, Scratch};
use crate::observe::Observer;
use crate::outcome::{Activity, Breakdown};
use crate::stats::Histogram;
use crate::training::real::RealSetup;
use crate::training::sampler::{Sampler, gradient_seed};
use crate::training::update;
use crate::workload::model::BYTES_PER_PARAM;
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender, channel};

/// Runs Downpour with `setup.learners` learner threads and one thread per shard range until
/// `epochs * iterations_per_epoch` iterations are done (or the run is stopped).
pub fn run<O: Observer + Send>(job: &Job, observer: O) -> (RealRun, O) {
    let (setup, objective, dataset) = (job.setup, job.objective, job.dataset);
    let (p, init, shared, sampler, observer) = Start::new(job, observer).parts();
    let ranges = &setup.shard_ranges;
    let (learners, shards) = serve(
        &shared,
        p,
        &init,
        ranges,
        |k, slice, rx, replies| {
            let rule = RuleApply::new(setup, slice.len());
            Ok(shard_loop(k, slice, rx, replies, &shared, rule))
        },
        |l, to_shards, replies| {
            let ctx = LearnerCtx {
                l,
                setup,
                ranges,
                shared: &shared,
                sampler: &sampler,
                observer: &observer,
                objective: &**objective,
                dataset,
                to_shards,
                replies,
            };
            ctx.run()
        },
    );
    let end_ns = shared.now();
    let mut parameters = init;
    let server = ServerEnd::of_shards(ranges, &shards, &mut parameters);
    // Every iteration pulls and pushes the whole vector once.
    let per_iteration = BYTES_PER_PARAM * parameters.len() as u64 * 2;
    let learners: Vec<LearnerEnd> = learners
        .into_iter()
        .map(|(breakdown, iterations)| LearnerEnd {
            breakdown,
            iterations,
            gradients: iterations,
            bytes: per_iteration * iterations,
            staleness: Histogram::default(),
        })
        .collect();
    finish(
        setup, objective, dataset, shared, observer, end_ns, parameters, &learners, server,
    )
}

/// A Downpour shard's update: the algorithm's rule with the shard's momentum and, for delay
/// compensation, the slice as each learner last read it.
struct RuleApply<'a> {
    setup: &'a RealSetup,
    rule: Rule,
    velocity: Vec<f32>,
    backups: Vec<Vec<f32>>,
}

impl<'a> RuleApply<'a> {
    fn new(setup: &'a RealSetup, len: usize) -> Self {
        let rule = setup.algorithm.rule();
        RuleApply {
            setup,
            rule,
            velocity: if setup.momentum != 0.0 {
                vec![0.0; len]
            } else {
                vec![]
            },
            // Delay compensation needs the slice as each learner last read it.
            backups: if rule.needs_backup() {
                vec![vec![]; setup.learners]
            } else {
                vec![]
            },
        }
    }
}

impl Apply for RuleApply<'_> {
    fn pulled(&mut self, learner: usize, slice: &[f32]) {
        if let Some(b) = self.backups.get_mut(learner) {
            b.clear();
            b.extend_from_slice(slice);
        }
    }

    fn apply(&mut self, learner: usize, slice: &mut [f32], grad: &[f32], staleness: u64) {
        update::apply_rule(
            self.rule,
            slice,
            &mut self.velocity,
            grad,
            self.backups.get(learner).map_or(&[][..], Vec::as_slice),
            staleness,
            self.setup.learning_rate,
            self.setup.momentum,
            self.setup.weight_decay,
        );
    }
}

/// A learner thread's own buffers and measurements.
struct Own {
    params: Vec<f32>,
    grad: Vec<f32>,
    /// The version of each shard's slice in `params`.
    read: Vec<u64>,
    /// Message buffers to reuse.
    spares: Vec<Vec<f32>>,
    scratch: Scratch,
    breakdown: Breakdown,
    /// Gradients computed.
    computed: u64,
}

struct LearnerCtx<'a, O> {
    l: usize,
    setup: &'a RealSetup,
    ranges: &'a [Range<usize>],
    shared: &'a Shared<'a>,
    sampler: &'a Mutex<Sampler>,
    observer: &'a Mutex<O>,
    objective: &'a dyn Objective,
    dataset: &'a Dataset,
    to_shards: &'a [Sender<ToShard>],
    replies: &'a Receiver<FromShard>,
}

impl<O: Observer> LearnerCtx<'_, O> {
    fn reply(&self) -> Option<FromShard> {
        self.shared.receive(self.replies)
    }

    fn send(&self, k: usize, msg: ToShard) -> Option<()> {
        self.shared.send_to_shard(self.to_shards, k, msg)
    }

    /// Runs the learner's role until the run's iterations are all claimed: each of its
    /// acts carried out for real, timed, and the role told what happened.
    fn run(&self) -> (Breakdown, u64) {
        let sh = self.shared;
        let n = self.objective.num_params();
        let mut me = Own {
            params: vec![0.0f32; n],
            grad: vec![0.0f32; n],
            read: vec![0u64; self.ranges.len()],
            spares: vec![],
            scratch: Scratch::default(),
            breakdown: Breakdown::default(),
            computed: 0,
        };
        let mut role = self.setup.algorithm.learner(self.l, self.ranges.len());
        let mut then = role.on(Happened::Start).then;
        // An iteration is claimed by the first pull or computation after the last one ended.
        let mut fresh = true;
        let mut mark = sh.now();
        loop {
            if fresh && matches!(then, Act::Pull | Act::Compute { .. }) {
                if sh.halted() || sh.claimed.fetch_add(1, Ordering::Relaxed) >= sh.total {
                    break;
                }
                fresh = false;
            }
            let happened = match &then {
                Act::Pull => self.pull(&mut me).map(|()| Happened::Pulled),
                Act::Compute { .. } => self.compute(&mut me).map(|()| Happened::Computed),
                Act::Push { targets } => self.push(&mut me, targets.clone(), mark),
                Act::WaitFor { iterations } => {
                    sh.wait_for(*iterations);
                    Some(Happened::Released)
                }
            };
            let Some(happened) = happened else { break };
            let now = sh.now();
            match then {
                Act::Pull => me.breakdown.add(Activity::Pull, now - mark),
                Act::Compute { .. } => me.breakdown.add(Activity::Compute, now - mark),
                Act::WaitFor { .. } => me.breakdown.add(Activity::Wait, now - mark),
                // Split by what the shards did meanwhile, in `push`.
                Act::Push { .. } => {}
            }
            mark = now;
            let step = role.on(happened);
            if step.completed > 0 {
                fresh = true;
                for epoch in sh.complete(self.l, step.completed) {
                    // The snapshot is no activity of the learner's.
                    self.end_epoch(epoch);
                    mark = sh.now();
                }
            }
            then = step.then;
        }
        (me.breakdown, me.computed)
    }

    /// Pulls every slice into the learner's parameters.
    fn pull(&self, me: &mut Own) -> Option<()> {
        for k in 0..self.ranges.len() {
            let pull = ToShard::Pull {
                learner: self.l,
                buf: me.spares.pop().unwrap_or_default(),
            };
            self.send(k, pull)?;
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
            me.params[self.ranges[shard].clone()].copy_from_slice(&data);
            me.read[shard] = version;
            me.spares.push(data);
        }
        Some(())
    }

    /// Computes the gradient of the learner's next mini-batch; a loss that is not finite
    /// ends the run.
    fn compute(&self, me: &mut Own) -> Option<()> {
        let sh = self.shared;
        let indices = self
            .sampler
            .lock()
            .ok()?
            .next_batch(self.l, self.setup.batch_size);
        let batch = self.dataset.gather(Split::Train, &indices);
        let seed = gradient_seed(self.setup.seed, self.l, me.computed);
        let loss =
            self.objective
                .loss_grad(&me.params, &batch, seed, &mut me.grad, &mut me.scratch);
        me.computed += 1;
        if !loss.is_finite() {
            sh.diverged.store(true, Ordering::Relaxed);
            return None;
        }
        Some(())
    }

    /// Pushes the gradient's slices to the shards `targets`, started at `began`, and waits
    /// for those shards to apply them; the time is push, server update or wait by what the
    /// shards did meanwhile.
    fn push(&self, me: &mut Own, targets: Range<usize>, began: u64) -> Option<Happened> {
        let sh = self.shared;
        for k in targets.clone() {
            let r = &self.ranges[k];
            let mut buf = me.spares.pop().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(&me.grad[r.clone()]);
            let msg = ToShard::Push {
                learner: self.l,
                read_version: me.read[k],
                data: buf,
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
            me.spares.push(spare);
        }
        let (push, server, wait) = classify(began, sh.now(), &spans);
        me.breakdown.add(Activity::Push, push);
        me.breakdown.add(Activity::ServerUpdate, server);
        me.breakdown.add(Activity::Wait, wait);
        Some(Happened::Pushed)
    }

    /// The learner that completes an epoch snapshots the server's parameters for evaluation
    /// after the run, deals the data out again and reports the epoch.
    fn end_epoch(&self, epoch: u64) {
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
        end_epoch(
            sh,
            self.sampler,
            self.observer,
            epoch,
            at,
            epoch * sh.per_epoch,
            snapshot,
        );
    }
}
