//! Synchronous SGD for real on this host, both ways the simulator models it, with the same
//! thread, channel, snapshot and shutdown machinery as [`super::downpour`].
//!
//! Both run in whole rounds: every learner computes one mini-batch per round, so a round adds p
//! iterations, and the learners agree on `ceil(epochs * iterations_per_epoch / p)` rounds. The
//! simulator ends its run at the ack that reaches the target, but by then the last round's step
//! has been taken with every learner's gradient, so the parameters agree; the iterations past
//! the target are computed but not counted (learner l's in round r counts if `r p + l` is below
//! the target). The epoch ends falling in round r are handled by learner 0 once its round r is
//! done: it snapshots the parameters, deals the data out again and reports the epoch; no
//! learner draws its round r + 1 batch before that (an epoch gate), so the batches do not
//! depend on the threads' timing. (The simulator's learners draw their next batch as their
//! own round ends, the all-reduce's at once, the parameter server's after their pull, so there
//! a learner that ends round r before the epoch's last iteration can still draw from the old
//! partition; over more than one epoch the two backends can therefore train on slightly
//! different batches: bit-for-bit agreement is guaranteed over one epoch only.)
//!
//! `ssgd-ps`: the learners loop pull every shard slice -> compute -> push every gradient slice
//! -> wait for every shard's ack. A shard thread keeps the round's gradients per learner; with
//! the p-th it takes one step by their mean summed in learner order (`mean_in_order`, then
//! `update::apply`, exactly the simulator's `apply_round`), moves to its next version, records
//! staleness 0 for each of the p gradients and acknowledges them all. A learner's time after its
//! gradient is classified by [`classify`] with the instant each shard took its gradient in as
//! the arrival: until then (and while the ack is on its way back) push, from then to the step
//! wait (the barrier), the step itself server update.
//!
//! `ssgd-allreduce`: no shard threads; learner l sends to (l + 1) mod p over a channel and the
//! vector is cut into p chunks (`setup.shard_ranges`). Each learner keeps its own parameters
//! (identical after every round) and the velocity of the one chunk it updates. Reduce-scatter,
//! p - 1 steps: at step k learner l copies chunk (l - k) mod p of its running sum (at step 0 its
//! own gradient) into a message to its successor; the receiver adds its own slice to what
//! arrived, so chunk c is summed in `ring_order(c, p)`. Then learner l takes the step on chunk
//! (l + 1) mod p by `to_mean` and `update::apply`, bit for bit the simulator's `mean_in_order`
//! and `apply`. All-gather, p - 1 steps: the updated chunks travel the ring the same way, each
//! receiver copying what arrives into its parameters. Staleness: p zeros per chunk update, as
//! the simulator records them. A learner's time: compute; push for making and sending its
//! reduce-scatter messages and while a message it waits for is on its way (sent, not yet
//! received); pull the same for the all-gather and for copying chunks in; server update for the
//! additions and the step; wait while it is blocked before its predecessor has sent (the
//! barrier), and at the epoch gate. Each message carries its send instant, which splits a
//! blocked receive into wait (before it) and transfer (after it) — an approximation: the
//! channel has no separate in-flight state.
//!
//! `Outcome.bytes_moved` counts the bytes copied into messages (slices, gradients, chunks);
//! epoch-end snapshots are not counted.

use super::downpour::{POLL, RealRun, Shared, Snapshot, evaluate_snapshots, panic_text};
use super::timeline::{ShardSpan, classify};
use crate::data::{Dataset, Split};
use crate::numerics::{Objective, Scratch};
use crate::observe::Observer;
use crate::outcome::Outcome;
use crate::outcome::{Activity, Breakdown};
use crate::stats::Histogram;
use crate::time::SimTime;
use crate::training::real::RealSetup;
use crate::training::sampler::{Sampler, gradient_seed};
use crate::training::update;
use crate::workload::model::BYTES_PER_PARAM;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// The run in rounds.
#[derive(Clone, Copy, Debug)]
struct Plan {
    p: u64,
    total: u64,
    per_epoch: u64,
    epochs: u64,
}

impl Plan {
    fn rounds(&self) -> u64 {
        self.total.div_ceil(self.p)
    }

    /// Epochs ended once `rounds` rounds are done.
    fn epochs_after(&self, rounds: u64) -> u64 {
        ((rounds * self.p).min(self.total) / self.per_epoch).min(self.epochs)
    }

    /// Whether learner l's mini-batch of `round` counts towards the target.
    fn counts(&self, round: u64, l: usize) -> bool {
        round * self.p + (l as u64) < self.total
    }
}

/// The epochs whose end has been handled; learners wait on it before drawing a new batch.
struct EpochGate {
    done: Mutex<u64>,
    cv: Condvar,
}

impl EpochGate {
    fn new() -> Self {
        Self {
            done: Mutex::new(0),
            cv: Condvar::new(),
        }
    }

    fn open(&self, epochs: u64) {
        if let Ok(mut d) = self.done.lock() {
            *d = (*d).max(epochs);
        }
        self.cv.notify_all();
    }

    /// Waits until `epochs` epoch ends are handled; false if the run halted first.
    fn wait(&self, epochs: u64, shared: &Shared) -> bool {
        let Ok(mut d) = self.done.lock() else {
            return false;
        };
        while *d < epochs {
            if shared.halted() {
                return false;
            }
            match self.cv.wait_timeout(d, POLL) {
                Ok((g, _)) => d = g,
                Err(_) => return false,
            }
        }
        true
    }
}

/// What a learner thread hands back.
#[derive(Default)]
struct LearnerEnd {
    breakdown: Breakdown,
    /// Mini-batches that count towards the target.
    iterations: u64,
    /// Gradients computed.
    gradients: u64,
    /// Bytes this learner copied into messages (a shard's slice copies count for the learner
    /// that pulled).
    bytes: u64,
    /// Whole rounds done.
    rounds: u64,
    /// All-reduce: the learner's parameters at the end; empty for the parameter server.
    params: Vec<f32>,
    /// All-reduce: the zero staleness of its chunk updates.
    staleness: Histogram,
}

/// What both kinds of learner share.
struct Common<'a, O> {
    l: usize,
    setup: &'a RealSetup,
    plan: Plan,
    shared: &'a Shared<'a>,
    gate: &'a EpochGate,
    sampler: &'a Mutex<Sampler>,
    observer: &'a Mutex<O>,
    objective: &'a dyn Objective,
    dataset: &'a Dataset,
}

impl<O: Observer> Common<'_, O> {
    /// Waits at the epoch gate before the batch of `round`, then computes this learner's
    /// gradient on `params` into `grad`. False if the run halted or the loss is not finite.
    fn gradient(
        &self,
        round: u64,
        params: &[f32],
        grad: &mut [f32],
        scratch: &mut Scratch,
        end: &mut LearnerEnd,
    ) -> bool {
        let sh = self.shared;
        let t0 = sh.now();
        if !self.gate.wait(self.plan.epochs_after(round), sh) {
            return false;
        }
        let t1 = sh.now();
        end.breakdown.add(Activity::Wait, t1 - t0);
        let indices = match self.sampler.lock() {
            Ok(mut s) => s.next_batch(self.l, self.setup.batch_size),
            Err(_) => return false,
        };
        let batch = self.dataset.gather(Split::Train, &indices);
        let seed = gradient_seed(self.setup.seed, self.l, end.gradients);
        let loss = self
            .objective
            .loss_grad(params, &batch, seed, grad, scratch);
        end.gradients += 1;
        end.breakdown.add(Activity::Compute, sh.now() - t1);
        if !loss.is_finite() {
            sh.diverged.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Round `round` is done for this learner: counts its mini-batch and, on learner 0,
    /// handles the epoch ends that fall in the round (`snapshot` gives the parameters).
    fn round_done(
        &self,
        round: u64,
        end: &mut LearnerEnd,
        snapshot: impl Fn() -> Option<Vec<f32>>,
    ) {
        let sh = self.shared;
        end.rounds += 1;
        if self.plan.counts(round, self.l) {
            end.iterations += 1;
            sh.completed.fetch_add(1, Ordering::Relaxed);
        }
        if self.l != 0 {
            return;
        }
        let (before, after) = (
            self.plan.epochs_after(round),
            self.plan.epochs_after(round + 1),
        );
        for epoch in before + 1..=after {
            let at = sh.now();
            let Some(params) = snapshot() else {
                return;
            };
            if let Ok(mut e) = sh.snapshots.lock() {
                e.push(Snapshot {
                    epoch,
                    at_ns: at,
                    iterations: epoch * sh.per_epoch,
                    params,
                });
            }
            if let Ok(mut s) = self.sampler.lock() {
                s.repartition();
            }
            if let Ok(mut o) = self.observer.lock() {
                o.epoch_end(epoch, SimTime::from_nanos(at));
            }
        }
        self.gate.open(after);
    }
}

/// Everything a run sets up before its threads start.
struct Start<'a, O> {
    p: usize,
    plan: Plan,
    init: Vec<f32>,
    shared: Shared<'a>,
    gate: EpochGate,
    sampler: Mutex<Sampler>,
    observer: Mutex<O>,
}

fn start<'a, O>(
    setup: &RealSetup,
    objective: &Arc<dyn Objective>,
    dataset: &Arc<Dataset>,
    iterations_per_epoch: u64,
    epochs: u64,
    observer: O,
    stop: &'a AtomicBool,
) -> Start<'a, O> {
    let p = setup.learners.max(1);
    let init = objective.init_params(setup.seed);
    let plan = Plan {
        p: p as u64,
        total: iterations_per_epoch * epochs,
        per_epoch: iterations_per_epoch.max(1),
        epochs,
    };
    Start {
        p,
        plan,
        shared: Shared {
            start: Instant::now(),
            total: plan.total,
            per_epoch: plan.per_epoch,
            claimed: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            stop,
            diverged: AtomicBool::new(false),
            fault: Mutex::new(None),
            snapshots: Mutex::new(vec![Snapshot {
                epoch: 0,
                at_ns: 0,
                iterations: 0,
                params: init.clone(),
            }]),
        },
        init,
        gate: EpochGate::new(),
        sampler: Mutex::new(Sampler::for_run(dataset.len(Split::Train), p, setup.seed)),
        observer: Mutex::new(observer),
    }
}

/// What the server side measured (empty for the all-reduce).
struct ServerEnd {
    staleness: Histogram,
    busy: Vec<u64>,
    updates: Vec<u64>,
}

/// Evaluates the snapshots and assembles the run's outcome.
#[allow(clippy::too_many_arguments)]
fn finish<O>(
    setup: &RealSetup,
    objective: &Arc<dyn Objective>,
    dataset: &Arc<Dataset>,
    shared: Shared,
    observer: Mutex<O>,
    end_ns: u64,
    parameters: Vec<f32>,
    learners: &[LearnerEnd],
    server: ServerEnd,
) -> (RealRun, O) {
    let stop = shared.stop;
    let completed = shared.completed.load(Ordering::Relaxed);
    let mut snapshots = shared.snapshots.into_inner().unwrap_or_default();
    // A run that stopped between epochs is evaluated where it stopped.
    if !completed.is_multiple_of(shared.per_epoch) {
        snapshots.push(Snapshot {
            epoch: completed / shared.per_epoch,
            at_ns: end_ns,
            iterations: completed,
            params: parameters.clone(),
        });
    }
    let epoch_ends = snapshots
        .iter()
        .filter(|s| s.epoch > 0 && s.iterations == s.epoch * shared.per_epoch)
        .map(|s| SimTime::from_nanos(s.at_ns))
        .collect();
    let diverged = shared.diverged.load(Ordering::Relaxed);
    let stopped = shared.fault.into_inner().ok().flatten().or_else(|| {
        stop.load(Ordering::Relaxed).then(|| {
            format!(
                "interrupted after {completed} of {} iterations",
                shared.total
            )
        })
    });
    let curve = evaluate_snapshots(setup, objective, dataset, snapshots);
    let mut staleness = server.staleness;
    for e in learners {
        staleness.merge(&e.staleness);
    }
    let outcome = Outcome {
        end: SimTime::from_nanos(end_ns),
        epoch_ends,
        breakdowns: learners.iter().map(|e| e.breakdown).collect(),
        learner_iterations: learners.iter().map(|e| e.iterations).collect(),
        staleness,
        shard_busy_ns: server.busy,
        shard_updates: server.updates,
        bytes_moved: learners.iter().map(|e| e.bytes).sum(),
        diverged: diverged || curve.iter().any(|c| !c.train_loss.is_finite()),
    };
    let observer = observer.into_inner().unwrap_or_else(|p| p.into_inner());
    (
        RealRun {
            outcome,
            curve,
            parameters,
            gradients: learners.iter().map(|e| e.gradients).sum(),
            stopped,
        },
        observer,
    )
}

fn bytes_of(values: usize) -> u64 {
    values as u64 * BYTES_PER_PARAM
}

// ---------------------------------------------------------------------------------------------
// Through the parameter server.

enum ToShard {
    Pull {
        learner: usize,
        /// A buffer of the learner's to copy the slice into.
        buf: Vec<f32>,
    },
    Push {
        learner: usize,
        grad: Vec<f32>,
    },
    Snapshot {
        reply: Sender<(usize, Vec<f32>)>,
    },
}

enum FromShard {
    Slice {
        shard: usize,
        data: Vec<f32>,
    },
    Applied {
        span: ShardSpan,
        /// The gradient buffer, handed back for the next push.
        spare: Vec<f32>,
    },
}

/// What a shard thread hands back when it stops.
struct ShardEnd {
    slice: Vec<f32>,
    staleness: Histogram,
    busy_ns: u64,
    /// Steps taken (the shard's version).
    steps: u64,
}

/// Runs synchronous SGD through a sharded parameter server: `setup.learners` learner threads
/// and one thread per shard range, until `epochs * iterations_per_epoch` iterations are done
/// (whole rounds) or the run is stopped.
pub fn run_ps<O: Observer + Send>(
    setup: &RealSetup,
    objective: Arc<dyn Objective>,
    dataset: Arc<Dataset>,
    iterations_per_epoch: u64,
    epochs: u64,
    observer: O,
    stop: &AtomicBool,
) -> (RealRun, O) {
    let Start {
        p,
        plan,
        init,
        shared,
        gate,
        sampler,
        observer,
    } = start(
        setup,
        &objective,
        &dataset,
        iterations_per_epoch,
        epochs,
        observer,
        stop,
    );
    let ranges = &setup.shard_ranges;
    let (learner_tx, learner_rx): (Vec<_>, Vec<_>) = (0..p).map(|_| channel()).unzip();
    let (shard_tx, shard_rx): (Vec<_>, Vec<_>) = ranges.iter().map(|_| channel()).unzip();

    let (learners, shards) = std::thread::scope(|s| {
        let shards: Vec<_> = shard_rx
            .into_iter()
            .enumerate()
            .map(|(k, rx)| {
                let slice = init[ranges[k].clone()].to_vec();
                let replies = learner_tx.clone();
                let shared = &shared;
                s.spawn(move || {
                    catch_unwind(AssertUnwindSafe(|| {
                        shard_loop(k, slice, setup, rx, &replies, shared)
                    }))
                    .map_err(|e| format!("shard {k} panicked: {}", panic_text(e)))
                    .and_then(|r| r)
                    .inspect_err(|why| shared.fail(why.clone()))
                })
            })
            .collect();
        drop(learner_tx);
        let learners: Vec<_> = learner_rx
            .into_iter()
            .enumerate()
            .map(|(l, rx)| {
                let (shared, gate, sampler, observer) = (&shared, &gate, &sampler, &observer);
                let shard_tx = shard_tx.clone();
                let (objective, dataset) = (Arc::clone(&objective), Arc::clone(&dataset));
                s.spawn(move || {
                    catch_unwind(AssertUnwindSafe(|| {
                        let ctx = PsLearner {
                            c: Common {
                                l,
                                setup,
                                plan,
                                shared,
                                gate,
                                sampler,
                                observer,
                                objective: &*objective,
                                dataset: &dataset,
                            },
                            ranges,
                            to_shards: &shard_tx,
                            replies: &rx,
                        };
                        ctx.run()
                    }))
                    .unwrap_or_else(|e| {
                        shared.fail(format!("learner {l} panicked: {}", panic_text(e)));
                        LearnerEnd::default()
                    })
                })
            })
            .collect();
        let learners: Vec<LearnerEnd> = learners
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect();
        // Every learner is done: closing the shards' queues lets them stop.
        drop(shard_tx);
        let shards: Vec<Result<ShardEnd, String>> = shards
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("shard thread lost".into())))
            .collect();
        (learners, shards)
    });
    let end_ns = shared.now();

    let mut parameters = init;
    let mut server = ServerEnd {
        staleness: Histogram::default(),
        busy: vec![],
        updates: vec![],
    };
    for (k, sh) in shards.iter().enumerate() {
        match sh {
            Ok(e) => {
                parameters[ranges[k].clone()].copy_from_slice(&e.slice);
                server.staleness.merge(&e.staleness);
                server.busy.push(e.busy_ns);
                server.updates.push(e.steps);
            }
            Err(_) => {
                server.busy.push(0);
                server.updates.push(0);
            }
        }
    }
    finish(
        setup, &objective, &dataset, shared, observer, end_ns, parameters, &learners, server,
    )
}

fn shard_loop(
    k: usize,
    mut slice: Vec<f32>,
    setup: &RealSetup,
    rx: Receiver<ToShard>,
    replies: &[Sender<FromShard>],
    shared: &Shared,
) -> Result<ShardEnd, String> {
    let p = replies.len();
    let mut velocity = if setup.momentum != 0.0 {
        vec![0.0; slice.len()]
    } else {
        vec![]
    };
    // This round's gradients by learner, with the instant each was taken in.
    let mut round: Vec<Option<(Vec<f32>, u64)>> = (0..p).map(|_| None).collect();
    let mut arrived = 0;
    let mut mean = Vec::with_capacity(slice.len());
    let mut end = ShardEnd {
        slice: vec![],
        staleness: Histogram::default(),
        busy_ns: 0,
        steps: 0,
    };
    // The queue closes when every learner is done; a learner that stopped early has dropped
    // its reply channel, so failed replies are not errors.
    while let Ok(msg) = rx.recv() {
        match msg {
            ToShard::Pull { learner, mut buf } => {
                buf.clear();
                buf.extend_from_slice(&slice);
                if let Some(r) = replies.get(learner) {
                    let _ = r.send(FromShard::Slice {
                        shard: k,
                        data: buf,
                    });
                }
            }
            ToShard::Push { learner, grad } => {
                let taken = shared.now();
                if grad.len() != slice.len() {
                    return Err(format!(
                        "shard {k}: learner {learner} pushed {} values for a slice of {}",
                        grad.len(),
                        slice.len()
                    ));
                }
                match round.get_mut(learner) {
                    Some(slot @ None) => *slot = Some((grad, taken)),
                    Some(Some(_)) => {
                        return Err(format!(
                            "shard {k}: learner {learner} pushed twice in round {}",
                            end.steps
                        ));
                    }
                    None => return Err(format!("shard {k}: no learner {learner}")),
                }
                arrived += 1;
                if arrived < p {
                    continue;
                }
                // Every gradient of the round is in: one step by their mean, in learner order.
                let started = shared.now();
                update::mean_in_order(
                    &mut mean,
                    round
                        .iter()
                        .filter_map(|g| g.as_ref().map(|(g, _)| g.as_slice())),
                );
                update::apply(
                    &mut slice,
                    &mut velocity,
                    &mean,
                    setup.learning_rate,
                    setup.momentum,
                    setup.weight_decay,
                );
                let finished = shared.now();
                end.busy_ns += finished - started;
                end.steps += 1;
                for _ in 0..p {
                    end.staleness.record(0);
                }
                arrived = 0;
                for (l, slot) in round.iter_mut().enumerate() {
                    if let Some((grad, taken)) = slot.take() {
                        let _ = replies[l].send(FromShard::Applied {
                            span: ShardSpan {
                                arrived: taken,
                                started,
                                finished,
                                // Set by the learner when it takes the reply.
                                received: finished,
                            },
                            spare: grad,
                        });
                    }
                }
            }
            ToShard::Snapshot { reply } => {
                let _ = reply.send((k, slice.clone()));
            }
        }
    }
    end.slice = slice;
    Ok(end)
}

struct PsLearner<'a, O> {
    c: Common<'a, O>,
    ranges: &'a [Range<usize>],
    to_shards: &'a [Sender<ToShard>],
    replies: &'a Receiver<FromShard>,
}

impl<O: Observer> PsLearner<'_, O> {
    /// Waits for the next reply, giving up when the run halts.
    fn reply(&self) -> Option<FromShard> {
        loop {
            match self.replies.recv_timeout(POLL) {
                Ok(m) => return Some(m),
                Err(RecvTimeoutError::Timeout) if !self.c.shared.halted() => {}
                Err(_) => return None,
            }
        }
    }

    fn send(&self, k: usize, msg: ToShard) -> Option<()> {
        self.to_shards[k].send(msg).ok().or_else(|| {
            self.c.shared.fail(format!("shard {k} stopped answering"));
            None
        })
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
                    Some(FromShard::Slice { shard, data }) => {
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
                let msg = ToShard::Push {
                    learner: self.c.l,
                    grad: buf,
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

// ---------------------------------------------------------------------------------------------
// By ring all-reduce.

/// A chunk on its way to the successor.
struct Message {
    round: u64,
    /// 0..p-1: reduce-scatter; p-1..2(p-1): all-gather.
    step: usize,
    data: Vec<f32>,
    /// When it was handed to the channel, ns since the run's start.
    sent: u64,
}

/// Runs synchronous SGD by ring all-reduce: `setup.learners` learner threads in a ring, one
/// chunk of the vector per learner, until `epochs * iterations_per_epoch` iterations are done
/// (whole rounds) or the run is stopped.
pub fn run_allreduce<O: Observer + Send>(
    setup: &RealSetup,
    objective: Arc<dyn Objective>,
    dataset: Arc<Dataset>,
    iterations_per_epoch: u64,
    epochs: u64,
    observer: O,
    stop: &AtomicBool,
) -> (RealRun, O) {
    let Start {
        p,
        plan,
        init,
        shared,
        gate,
        sampler,
        observer,
    } = start(
        setup,
        &objective,
        &dataset,
        iterations_per_epoch,
        epochs,
        observer,
        stop,
    );
    // One chunk per learner; the simulator cuts it the same way.
    let chunks = if setup.shard_ranges.len() == p {
        setup.shard_ranges.clone()
    } else {
        crate::cluster::split_even(init.len(), p)
    };
    let chunks = &chunks;
    // Channel l carries the messages into learner l.
    let (tx, rx): (Vec<Sender<Message>>, Vec<_>) = (0..p).map(|_| channel()).unzip();

    let learners: Vec<LearnerEnd> = std::thread::scope(|s| {
        let handles: Vec<_> = rx
            .into_iter()
            .enumerate()
            .map(|(l, prev)| {
                let next = tx[(l + 1) % p].clone();
                let (shared, gate, sampler, observer) = (&shared, &gate, &sampler, &observer);
                let (objective, dataset) = (Arc::clone(&objective), Arc::clone(&dataset));
                let params = init.clone();
                s.spawn(move || {
                    catch_unwind(AssertUnwindSafe(|| {
                        let ctx = RingLearner {
                            c: Common {
                                l,
                                setup,
                                plan,
                                shared,
                                gate,
                                sampler,
                                observer,
                                objective: &*objective,
                                dataset: &dataset,
                            },
                            p,
                            chunks,
                            next: &next,
                            prev: &prev,
                        };
                        ctx.run(params)
                    }))
                    .unwrap_or_else(|e| {
                        shared.fail(format!("learner {l} panicked: {}", panic_text(e)));
                        LearnerEnd::default()
                    })
                })
            })
            .collect();
        drop(tx);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let end_ns = shared.now();
    // Every learner that finished the most rounds holds the same vector; the first of them.
    let most = learners.iter().map(|e| e.rounds).max().unwrap_or(0);
    let parameters = learners
        .iter()
        .find(|e| e.rounds == most && e.params.len() == init.len())
        .map_or(init, |e| e.params.clone());
    finish(
        setup,
        &objective,
        &dataset,
        shared,
        observer,
        end_ns,
        parameters,
        &learners,
        ServerEnd {
            staleness: Histogram::default(),
            busy: vec![],
            updates: vec![],
        },
    )
}

struct RingLearner<'a, O> {
    c: Common<'a, O>,
    p: usize,
    chunks: &'a [Range<usize>],
    next: &'a Sender<Message>,
    prev: &'a Receiver<Message>,
}

impl<O: Observer> RingLearner<'_, O> {
    /// Copies `data` into a message (in a spare buffer) and sends it to the successor; the
    /// time goes to `activity`. False if the successor is gone.
    fn send(
        &self,
        round: u64,
        step: usize,
        data: &[f32],
        spares: &mut Vec<Vec<f32>>,
        end: &mut LearnerEnd,
        activity: Activity,
    ) -> bool {
        let sh = self.c.shared;
        let t = sh.now();
        let mut buf = spares.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        end.bytes += bytes_of(buf.len());
        let sent = sh.now();
        let msg = Message {
            round,
            step,
            data: buf,
            sent,
        };
        if self.next.send(msg).is_err() {
            if !sh.halted() {
                sh.fail(format!(
                    "learner {} stopped answering",
                    (self.c.l + 1) % self.p
                ));
            }
            return false;
        }
        end.breakdown.add(activity, sh.now() - t);
        true
    }

    /// Waits for the predecessor's message of `(round, step)`, `want` values long: the time
    /// before it was sent is wait, after it `activity`. None if the run halted.
    fn receive(
        &self,
        round: u64,
        step: usize,
        want: usize,
        end: &mut LearnerEnd,
        activity: Activity,
    ) -> Option<Vec<f32>> {
        let sh = self.c.shared;
        let t = sh.now();
        let msg = loop {
            match self.prev.recv_timeout(POLL) {
                Ok(m) => break m,
                Err(RecvTimeoutError::Timeout) if !sh.halted() => {}
                Err(_) => return None,
            }
        };
        let got = sh.now();
        let sent = msg.sent.clamp(t, got);
        end.breakdown.add(Activity::Wait, sent - t);
        end.breakdown.add(activity, got - sent);
        if msg.round != round || msg.step != step || msg.data.len() != want {
            sh.fail(format!(
                "learner {}: expected round {round} step {step} ({want} values), got round {} \
                 step {} ({} values)",
                self.c.l,
                msg.round,
                msg.step,
                msg.data.len()
            ));
            return None;
        }
        Some(msg.data)
    }

    fn run(&self, mut params: Vec<f32>) -> LearnerEnd {
        let sh = self.c.shared;
        let (l, p) = (self.c.l, self.p);
        let setup = self.c.setup;
        let n = params.len();
        // The chunk this learner updates, and its optimiser state.
        let own = self.chunks[(l + 1) % p].clone();
        let mut velocity = if setup.momentum != 0.0 {
            vec![0.0f32; own.len()]
        } else {
            vec![]
        };
        let mut grad = vec![0.0f32; n];
        let mut acc: Vec<f32> = vec![];
        let mut spares: Vec<Vec<f32>> = vec![];
        let mut scratch = Scratch::default();
        let mut end = LearnerEnd::default();
        'rounds: for round in 0..self.c.plan.rounds() {
            if sh.halted() {
                break;
            }
            if !self
                .c
                .gradient(round, &params, &mut grad, &mut scratch, &mut end)
            {
                break;
            }

            // Reduce-scatter: chunk c is summed along the ring from learner c.
            for k in 0..p - 1 {
                let c = (l + p - k) % p;
                let data = if k == 0 {
                    &grad[self.chunks[c].clone()]
                } else {
                    &acc[..]
                };
                if !self.send(round, k, data, &mut spares, &mut end, Activity::Push) {
                    break 'rounds;
                }
                let c_in = (l + 2 * p - k - 1) % p;
                let r = self.chunks[c_in].clone();
                let Some(mut got) = self.receive(round, k, r.len(), &mut end, Activity::Push)
                else {
                    break 'rounds;
                };
                let t = sh.now();
                // What arrived plus its own: the sum keeps the ring's order.
                update::sum_into(&mut got, &grad[r]);
                spares.push(std::mem::replace(&mut acc, got));
                end.breakdown.add(Activity::ServerUpdate, sh.now() - t);
            }

            // The step on the owned chunk by the mean gradient.
            let t = sh.now();
            if p == 1 {
                acc.clear();
                acc.extend_from_slice(&grad[own.clone()]);
            }
            update::to_mean(&mut acc, p);
            update::apply(
                &mut params[own.clone()],
                &mut velocity,
                &acc,
                setup.learning_rate,
                setup.momentum,
                setup.weight_decay,
            );
            for _ in 0..p {
                end.staleness.record(0);
            }
            end.breakdown.add(Activity::ServerUpdate, sh.now() - t);

            // All-gather: the updated chunks travel the ring.
            for j in 0..p - 1 {
                let step = p - 1 + j;
                let c = (l + 1 + p - j) % p;
                let r = self.chunks[c].clone();
                if !self.send(
                    round,
                    step,
                    &params[r],
                    &mut spares,
                    &mut end,
                    Activity::Pull,
                ) {
                    break 'rounds;
                }
                let c_in = (l + p - j) % p;
                let r = self.chunks[c_in].clone();
                let Some(got) = self.receive(round, step, r.len(), &mut end, Activity::Pull) else {
                    break 'rounds;
                };
                let t = sh.now();
                params[r].copy_from_slice(&got);
                spares.push(got);
                end.breakdown.add(Activity::Pull, sh.now() - t);
            }

            self.c.round_done(round, &mut end, || Some(params.clone()));
        }
        end.params = params;
        end
    }
}

#[cfg(test)]
mod tests {
    use crate::input::Override;
    use crate::scenario::{self, Scenario};
    use std::path::Path;
    use std::sync::atomic::AtomicBool;

    fn quick(kind: &str, learners: usize, extra: &[&str]) -> Scenario {
        let sets = [
            format!("algorithm.kind={kind}"),
            format!("cluster.learners={learners}"),
            "workload.epochs=1".into(),
            "workload.dataset.train_samples=600".into(),
            "workload.dataset.test_samples=200".into(),
            "workload.eval_train_samples=200".into(),
            "algorithm.batch_size=16".into(),
        ];
        let overrides: Vec<Override> = sets
            .iter()
            .map(String::as_str)
            .chain(extra.iter().copied())
            .map(|s| Override::parse(s).unwrap())
            .collect();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quick.toml");
        scenario::load(path.to_str().unwrap(), &overrides).unwrap()
    }

    /// The real run and the simulator agree bit for bit, and the real run's bookkeeping adds up.
    fn same_as_simulator(kind: &str, learners: usize, extra: &[&str]) {
        let sc = quick(kind, learners, extra);
        let sim = crate::run::simulate(&sc, ()).unwrap();
        let stop = AtomicBool::new(false);
        let real = crate::real::run(&sc, (), &stop).unwrap();
        assert!(real.stopped.is_none(), "{:?}", real.stopped);
        assert_eq!(real.summary.backend, "real");
        assert!(!real.parameters.is_empty());
        assert!(
            real.parameters == sim.parameters,
            "{kind} with {learners} learners: real and simulated parameters differ"
        );
        let target = sc.iterations_per_epoch;
        let iterations: u64 = real.summary.per_learner.iter().map(|l| l.iterations).sum();
        assert_eq!(iterations, target);
        // Whole rounds: every learner computed the same number of gradients.
        assert_eq!(
            real.gradients,
            target.div_ceil(learners as u64) * learners as u64
        );
        assert_eq!(real.summary.staleness.max, 0);
        assert_eq!(real.summary.epoch_ends_s.len(), 1);
        assert_eq!(real.curve.len(), 2);
        assert!(real.summary.bytes_moved > 0 || learners == 1);
        assert!(real.curve[1].train_loss < real.curve[0].train_loss);
    }

    #[test]
    fn several_epochs_end_on_time_and_a_stop_ends_the_run() {
        for kind in ["ssgd-ps", "ssgd-allreduce"] {
            // 600 / 16 = 37 iterations an epoch: epochs end inside rounds of 3.
            let sc = quick(kind, 3, &["workload.epochs=2"]);
            assert!(!sc.iterations_per_epoch.is_multiple_of(3));
            let stop = AtomicBool::new(false);
            let real = crate::real::run(&sc, (), &stop).unwrap();
            assert!(real.stopped.is_none(), "{:?}", real.stopped);
            assert_eq!(real.summary.epoch_ends_s.len(), 2);
            assert_eq!(real.curve.len(), 3);
            let iterations: u64 = real.summary.per_learner.iter().map(|l| l.iterations).sum();
            assert_eq!(iterations, 2 * sc.iterations_per_epoch);
            // Stopped before it starts: it ends at once, with the initial parameters.
            let stop = AtomicBool::new(true);
            let real = crate::real::run(&sc, (), &stop).unwrap();
            assert!(
                real.stopped
                    .is_some_and(|s| s.starts_with("interrupted after 0"))
            );
            assert_eq!(real.gradients, 0);
        }
    }

    #[test]
    fn ssgd_ps_matches_the_simulator_bit_for_bit() {
        same_as_simulator("ssgd-ps", 3, &[]);
        same_as_simulator("ssgd-ps", 2, &["algorithm.momentum=0.9"]);
    }

    #[test]
    fn ssgd_allreduce_matches_the_simulator_bit_for_bit() {
        same_as_simulator("ssgd-allreduce", 3, &[]);
        same_as_simulator(
            "ssgd-allreduce",
            2,
            &["algorithm.momentum=0.9", "algorithm.weight_decay=0.001"],
        );
        same_as_simulator("ssgd-allreduce", 1, &[]);
    }
}
