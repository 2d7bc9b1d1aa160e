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

use super::timeline::{ShardSpan, classify};
use crate::algorithm::Algorithm;
use crate::data::{Dataset, Split};
use crate::numerics::{Objective, Scratch};
use crate::observe::Observer;
use crate::outcome::CurvePoint;
use crate::outcome::Outcome;
use crate::outcome::{Activity, Breakdown};
use crate::stats::Histogram;
use crate::time::SimTime;
use crate::training::pool::Pool;
use crate::training::real::{RealSetup, evaluate};
use crate::training::sampler::{Sampler, gradient_seed};
use crate::training::update;
use crate::workload::model::BYTES_PER_PARAM;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a waiting thread looks at the stop flag.
pub(super) const POLL: Duration = Duration::from_millis(50);

enum ToShard {
    Pull {
        learner: usize,
        /// A buffer of the learner's to copy the slice into (no allocation per pull).
        buf: Vec<f32>,
    },
    Push {
        learner: usize,
        read_version: u64,
        grad: Vec<f32>,
        /// When the learner enqueued it, ns since the run's start.
        arrived: u64,
    },
    Snapshot {
        reply: Sender<(usize, Vec<f32>)>,
    },
}

enum FromShard {
    Slice {
        shard: usize,
        version: u64,
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
    updates: u64,
}

/// The server's parameters at an epoch end (or where the run stopped), evaluated after the run.
pub(super) struct Snapshot {
    pub epoch: u64,
    pub at_ns: u64,
    /// Iterations completed when it was taken.
    pub iterations: u64,
    pub params: Vec<f32>,
}

/// What a real run measured.
pub struct RealRun {
    pub outcome: Outcome,
    pub curve: Vec<CurvePoint>,
    pub parameters: Vec<f32>,
    /// Gradients computed.
    pub gradients: u64,
    /// Why the run ended early, if it did (a panic, an interrupt).
    pub stopped: Option<String>,
}

/// Shared state of one run.
pub(super) struct Shared<'a> {
    pub start: Instant,
    pub total: u64,
    pub per_epoch: u64,
    pub claimed: AtomicU64,
    pub completed: AtomicU64,
    pub stop: &'a AtomicBool,
    pub diverged: AtomicBool,
    pub fault: Mutex<Option<String>>,
    pub snapshots: Mutex<Vec<Snapshot>>,
}

impl Shared<'_> {
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn halted(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
            || self.diverged.load(Ordering::Relaxed)
            || self.fault.lock().map_or(true, |f| f.is_some())
    }

    pub fn fail(&self, why: String) {
        if let Ok(mut f) = self.fault.lock() {
            f.get_or_insert(why);
        }
    }
}

pub(super) fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs Downpour with `setup.learners` learner threads and one thread per shard range until
/// `epochs * iterations_per_epoch` iterations are done (or the run is stopped).
pub fn run<O: Observer + Send>(
    setup: &RealSetup,
    objective: Arc<dyn Objective>,
    dataset: Arc<Dataset>,
    iterations_per_epoch: u64,
    epochs: u64,
    observer: O,
    stop: &AtomicBool,
) -> (RealRun, O) {
    let p = setup.learners.max(1);
    let ranges = &setup.shard_ranges;
    let init = objective.init_params(setup.seed);
    let shared = Shared {
        start: Instant::now(),
        total: iterations_per_epoch * epochs,
        per_epoch: iterations_per_epoch.max(1),
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
    };
    let sampler = Mutex::new(Sampler::for_run(dataset.len(Split::Train), p, setup.seed));
    let observer = Mutex::new(observer);
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
                    .map_err(|e| {
                        let why = format!("shard {k} panicked: {}", panic_text(e));
                        shared.fail(why.clone());
                        why
                    })
                    .and_then(|r| r)
                })
            })
            .collect();
        drop(learner_tx);
        let learners: Vec<_> = learner_rx
            .into_iter()
            .enumerate()
            .map(|(l, rx)| {
                let (shared, sampler, observer) = (&shared, &sampler, &observer);
                let shard_tx = shard_tx.clone();
                let (objective, dataset) = (Arc::clone(&objective), Arc::clone(&dataset));
                s.spawn(move || {
                    catch_unwind(AssertUnwindSafe(|| {
                        let ctx = LearnerCtx {
                            l,
                            setup,
                            ranges,
                            shared,
                            sampler,
                            observer,
                            objective: &*objective,
                            dataset: &dataset,
                            to_shards: &shard_tx,
                            replies: &rx,
                        };
                        ctx.run()
                    }))
                    .unwrap_or_else(|e| {
                        shared.fail(format!("learner {l} panicked: {}", panic_text(e)));
                        (Breakdown::default(), 0)
                    })
                })
            })
            .collect();
        let learners: Vec<(Breakdown, u64)> = learners
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
    let mut staleness = Histogram::default();
    let (mut busy, mut updates) = (vec![], vec![]);
    for (k, sh) in shards.iter().enumerate() {
        match sh {
            Ok(e) => {
                parameters[ranges[k].clone()].copy_from_slice(&e.slice);
                staleness.merge(&e.staleness);
                busy.push(e.busy_ns);
                updates.push(e.updates);
            }
            Err(_) => {
                busy.push(0);
                updates.push(0);
            }
        }
    }
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
    let curve = evaluate_snapshots(setup, &objective, &dataset, snapshots);
    // Every iteration pulls and pushes the whole vector once.
    let bytes = BYTES_PER_PARAM
        * parameters.len() as u64
        * 2
        * learners.iter().map(|(_, i)| i).sum::<u64>();
    let outcome = Outcome {
        end: SimTime::from_nanos(end_ns),
        epoch_ends,
        breakdowns: learners.iter().map(|(b, _)| *b).collect(),
        learner_iterations: learners.iter().map(|(_, i)| *i).collect(),
        staleness,
        shard_busy_ns: busy,
        shard_updates: updates,
        bytes_moved: bytes,
        diverged: diverged || curve.iter().any(|c| !c.train_loss.is_finite()),
    };
    let observer = observer.into_inner().unwrap_or_else(|p| p.into_inner());
    (
        RealRun {
            outcome,
            curve,
            parameters,
            gradients: learners.iter().map(|(_, i)| i).sum(),
            stopped,
        },
        observer,
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
    let mut velocity = if setup.momentum != 0.0 {
        vec![0.0; slice.len()]
    } else {
        vec![]
    };
    let rule = match setup.algorithm {
        Algorithm::Downpour { rule } => rule,
        _ => crate::algorithm::Rule::Sgd,
    };
    // Delay compensation needs the slice as each learner last read it.
    let mut backups: Vec<Vec<f32>> = if rule.needs_backup() {
        vec![vec![]; setup.learners]
    } else {
        vec![]
    };
    let mut end = ShardEnd {
        slice: vec![],
        staleness: Histogram::default(),
        busy_ns: 0,
        updates: 0,
    };
    // The queue closes when every learner is done; a learner that stopped early has dropped
    // its reply channel, so failed replies are not errors.
    while let Ok(msg) = rx.recv() {
        match msg {
            ToShard::Pull { learner, mut buf } => {
                buf.clear();
                buf.extend_from_slice(&slice);
                if let Some(b) = backups.get_mut(learner) {
                    b.clear();
                    b.extend_from_slice(&slice);
                }
                let _ = replies[learner].send(FromShard::Slice {
                    shard: k,
                    version: end.updates,
                    data: buf,
                });
            }
            ToShard::Push {
                learner,
                read_version,
                grad,
                arrived,
            } => {
                let started = shared.now();
                let staleness = end.updates.saturating_sub(read_version);
                update::apply_rule(
                    rule,
                    &mut slice,
                    &mut velocity,
                    &grad,
                    backups.get(learner).map_or(&[][..], Vec::as_slice),
                    staleness,
                    setup.learning_rate,
                    setup.momentum,
                    setup.weight_decay,
                );
                let finished = shared.now();
                end.staleness.record(staleness);
                end.updates += 1;
                end.busy_ns += finished - started;
                let _ = replies[learner].send(FromShard::Applied {
                    span: ShardSpan {
                        arrived,
                        started,
                        finished,
                        // Set by the learner when it takes the reply.
                        received: finished,
                    },
                    spare: grad,
                });
            }
            ToShard::Snapshot { reply } => {
                let _ = reply.send((k, slice.clone()));
            }
        }
    }
    end.slice = slice;
    Ok(end)
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
    /// Waits for the next reply, giving up when the run halts.
    fn reply(&self) -> Option<FromShard> {
        loop {
            match self.replies.recv_timeout(POLL) {
                Ok(m) => return Some(m),
                Err(RecvTimeoutError::Timeout) if !self.shared.halted() => {}
                Err(_) => return None,
            }
        }
    }

    fn send(&self, k: usize, msg: ToShard) -> Option<()> {
        self.to_shards[k].send(msg).ok().or_else(|| {
            self.shared.fail(format!("shard {k} stopped answering"));
            None
        })
    }

    fn run(&self) -> (Breakdown, u64) {
        let sh = self.shared;
        let n = self.objective.num_params();
        let mut params = vec![0.0f32; n];
        let mut grad = vec![0.0f32; n];
        let mut read = vec![0u64; self.ranges.len()];
        let mut spares: Vec<Vec<f32>> = vec![];
        let mut scratch = Scratch::default();
        let mut breakdown = Breakdown::default();
        let mut iterations = 0u64;
        while !sh.halted() && sh.claimed.fetch_add(1, Ordering::Relaxed) < sh.total {
            // Pull every slice.
            let t0 = sh.now();
            for k in 0..self.ranges.len() {
                let pull = ToShard::Pull {
                    learner: self.l,
                    buf: spares.pop().unwrap_or_default(),
                };
                if self.send(k, pull).is_none() {
                    return (breakdown, iterations);
                }
            }
            for _ in 0..self.ranges.len() {
                match self.reply() {
                    Some(FromShard::Slice {
                        shard,
                        version,
                        data,
                    }) => {
                        params[self.ranges[shard].clone()].copy_from_slice(&data);
                        read[shard] = version;
                        spares.push(data);
                    }
                    _ => return (breakdown, iterations),
                }
            }
            let t1 = sh.now();
            breakdown.add(Activity::Pull, t1 - t0);

            // Compute.
            let indices = match self.sampler.lock() {
                Ok(mut s) => s.next_batch(self.l, self.setup.batch_size),
                Err(_) => return (breakdown, iterations),
            };
            let batch = self.dataset.gather(Split::Train, &indices);
            let seed = gradient_seed(self.setup.seed, self.l, iterations);
            let loss = self
                .objective
                .loss_grad(&params, &batch, seed, &mut grad, &mut scratch);
            let t2 = sh.now();
            breakdown.add(Activity::Compute, t2 - t1);
            iterations += 1;
            if !loss.is_finite() {
                sh.diverged.store(true, Ordering::Relaxed);
                return (breakdown, iterations);
            }

            // Push every gradient slice (the partitioned model: this step's block only), then
            // wait for those shards to apply it.
            let targets = match self.setup.algorithm {
                Algorithm::Partitioned => {
                    let b = (self.l + iterations as usize - 1) % self.ranges.len();
                    b..b + 1
                }
                _ => 0..self.ranges.len(),
            };
            for k in targets.clone() {
                let r = &self.ranges[k];
                let mut buf = spares.pop().unwrap_or_default();
                buf.clear();
                buf.extend_from_slice(&grad[r.clone()]);
                let msg = ToShard::Push {
                    learner: self.l,
                    read_version: read[k],
                    grad: buf,
                    arrived: sh.now(),
                };
                if self.send(k, msg).is_none() {
                    return (breakdown, iterations);
                }
            }
            let mut spans = Vec::with_capacity(targets.len());
            for _ in targets {
                match self.reply() {
                    Some(FromShard::Applied { mut span, spare }) => {
                        span.received = sh.now();
                        spans.push(span);
                        spares.push(spare);
                    }
                    _ => return (breakdown, iterations),
                }
            }
            let t3 = sh.now();
            let (push, server, wait) = classify(t2, t3, &spans);
            breakdown.add(Activity::Push, push);
            breakdown.add(Activity::ServerUpdate, server);
            breakdown.add(Activity::Wait, wait);

            let done = sh.completed.fetch_add(1, Ordering::Relaxed) + 1;
            if done.is_multiple_of(sh.per_epoch) {
                self.end_epoch(done / sh.per_epoch);
            }
        }
        (breakdown, iterations)
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
        if let Ok(mut e) = sh.snapshots.lock() {
            e.push(Snapshot {
                epoch,
                at_ns: at,
                iterations: epoch * sh.per_epoch,
                params: snapshot,
            });
            // Two learners can end neighbouring epochs a hair apart; keep epoch order.
            e.sort_by_key(|s| s.epoch);
        }
        if let Ok(mut s) = self.sampler.lock() {
            s.repartition();
        }
        if let Ok(mut o) = self.observer.lock() {
            o.epoch_end(epoch, SimTime::from_nanos(at));
        }
    }
}

/// The convergence curve from the snapshots taken at time 0 and at every epoch end.
pub(super) fn evaluate_snapshots(
    setup: &RealSetup,
    objective: &Arc<dyn Objective>,
    dataset: &Arc<Dataset>,
    snapshots: Vec<Snapshot>,
) -> Vec<CurvePoint> {
    let pool = Pool::new(setup.workers);
    snapshots
        .into_iter()
        .map(|snap| {
            let params = Arc::new(snap.params);
            let k = setup.eval_train_samples.min(dataset.len(Split::Train));
            let (train_loss, train_accuracy) =
                evaluate(&pool, objective, dataset, &params, Split::Train, k);
            let n_test = dataset.len(Split::Test);
            let (test_loss, test_accuracy) =
                evaluate(&pool, objective, dataset, &params, Split::Test, n_test);
            CurvePoint {
                epoch: snap.epoch,
                samples: snap.iterations * setup.batch_size as u64,
                sim_time_s: snap.at_ns as f64 * 1e-9,
                train_loss,
                train_accuracy,
                test_loss,
                test_accuracy,
            }
        })
        .collect()
}
