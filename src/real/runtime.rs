//! The real backend's runtime, written once for every algorithm it runs: the state a run's
//! threads share (the clock, the iteration count, the stop flag, the first fault, the
//! snapshots taken at epoch ends), threads that turn a panic into a clear fault instead of a
//! hang, waits that give up when the run halts, and the assembly of what the threads measured
//! into the outcome and convergence curve both backends report.
//!
//! It knows no algorithm: what a learner or shard thread does is the caller's; this module
//! only starts, stops, joins and adds up.

use super::timeline::{ShardSpan, classify};
use crate::cluster::learner::Segment;
use crate::cluster::shard::Ledger;
use crate::data::{Dataset, Split};
use crate::numerics::Objective;
use crate::observe::Observer;
use crate::outcome::{Activity, Breakdown, CurvePoint, FaultRecord, Outcome};
use crate::stats::Histogram;
use crate::time::SimTime;
use crate::training::pool::Pool;
use crate::training::real::{RealSetup, evaluate};
use crate::training::sampler::Sampler;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant};

/// How often a waiting thread looks at the stop flag.
pub(super) const POLL: Duration = Duration::from_millis(50);

/// The server's parameters at an epoch end (or where the run stopped), evaluated after the run.
pub(super) struct Snapshot {
    pub epoch: u64,
    pub at_ns: u64,
    /// Iterations completed when it was taken.
    pub iterations: u64,
    pub params: Vec<f32>,
}

/// What a real run is given: the numeric set-up, the objective and data, how long it runs,
/// and the flag that stops it early (Ctrl-C).
#[derive(Clone, Copy)]
pub struct Job<'a> {
    pub setup: &'a RealSetup,
    pub objective: &'a Arc<dyn Objective>,
    pub dataset: &'a Arc<Dataset>,
    pub iterations_per_epoch: u64,
    pub epochs: u64,
    pub stop: &'a AtomicBool,
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
    /// Iterations each learner has completed, and the lock and signal of those waiting for
    /// the slowest (stale synchronous parallel).
    pub progress: Vec<AtomicU64>,
    /// Learners down after a failure (`[faults]`): the slowest is counted without them.
    pub down: Vec<AtomicBool>,
    gate: (Mutex<()>, Condvar),
    /// Epoch ends handled (snapshot kept, data dealt out again), and the signal of learners
    /// that wait for them before drawing their next batch (synchronous SGD's epoch gate).
    epochs_handled: (Mutex<u64>, Condvar),
}

/// The run's one clock: nanoseconds since its start.
pub(super) trait Clock {
    fn now(&self) -> u64;
}

impl Clock for Shared<'_> {
    fn now(&self) -> u64 {
        Shared::now(self)
    }
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

    /// Records why the run must end; the first fault is the one reported.
    pub fn fail(&self, why: String) {
        if let Ok(mut f) = self.fault.lock() {
            f.get_or_insert(why);
        }
    }

    /// Waits for the next message on `rx`, giving up when the run halts or the sender is gone.
    pub fn receive<T>(&self, rx: &Receiver<T>) -> Option<T> {
        loop {
            match rx.recv_timeout(POLL) {
                Ok(m) => return Some(m),
                Err(RecvTimeoutError::Timeout) if !self.halted() => {}
                Err(_) => return None,
            }
        }
    }

    /// Learner `l` completed `k` iterations: counts them and wakes the learners waiting for the
    /// slowest. Returns the epochs (1-based) they ended, at most the run's, and the iterations
    /// completed in all with them.
    pub fn complete(&self, l: usize, k: u64) -> (Range<u64>, u64) {
        let before = self.completed.fetch_add(k, Ordering::Relaxed);
        if let Ok(_held) = self.gate.0.lock() {
            self.progress[l].fetch_add(k, Ordering::Relaxed);
            self.gate.1.notify_all();
        }
        let done = before + k;
        let last = (done / self.per_epoch).min(self.total / self.per_epoch);
        (before / self.per_epoch + 1..last + 1, done)
    }

    /// Iterations the slowest learner that is up has completed (none up: nobody to wait for).
    fn slowest(&self) -> u64 {
        let up = |(p, d): (&AtomicU64, &AtomicBool)| {
            (!d.load(Ordering::Relaxed)).then(|| p.load(Ordering::Relaxed))
        };
        let each = self.progress.iter().zip(&self.down).filter_map(up);
        each.min().unwrap_or(u64::MAX)
    }

    /// Learner `l` failed (`down`), giving back the iteration it had claimed if it holds one
    /// (`unclaim`), or is back: it rejoins at the slowest running
    /// learner's count, so that nobody waits for it to catch up (as the simulator does).
    pub fn learner_fault(&self, l: usize, down: bool, unclaim: bool) {
        if unclaim {
            self.claimed.fetch_sub(1, Ordering::Relaxed);
        }
        if let Ok(_held) = self.gate.0.lock() {
            if !down {
                let slowest = self.slowest();
                if slowest != u64::MAX {
                    self.progress[l].fetch_max(slowest, Ordering::Relaxed);
                }
            }
            self.down[l].store(down, Ordering::Relaxed);
            self.gate.1.notify_all();
        }
    }

    /// Waits until every learner has completed `iterations` iterations, or no iteration is
    /// left to start (a learner that stopped claiming would never catch up), or the run halts.
    pub fn wait_for(&self, iterations: u64) {
        let Ok(mut held) = self.gate.0.lock() else {
            return;
        };
        while self.slowest() < iterations
            && self.claimed.load(Ordering::Relaxed) < self.total
            && !self.halted()
        {
            match self.gate.1.wait_timeout(held, POLL) {
                Ok((h, _)) => held = h,
                Err(_) => return,
            }
        }
    }

    /// Waits until `epochs` epoch ends are handled; false if the run halted first.
    pub fn await_epochs(&self, epochs: u64) -> bool {
        let Ok(mut done) = self.epochs_handled.0.lock() else {
            return false;
        };
        while *done < epochs {
            if self.halted() {
                return false;
            }
            match self.epochs_handled.1.wait_timeout(done, POLL) {
                Ok((d, _)) => done = d,
                Err(_) => return false,
            }
        }
        true
    }

    /// Epoch `epoch` is handled: learners waiting for it go on.
    fn epoch_handled(&self, epoch: u64) {
        if let Ok(mut done) = self.epochs_handled.0.lock() {
            *done = (*done).max(epoch);
        }
        self.epochs_handled.1.notify_all();
    }

    /// Sends `msg` to shard `k`; a shard that is gone is a fault of the run.
    pub fn send_to_shard<T>(&self, to_shards: &[Sender<T>], k: usize, msg: T) -> Option<()> {
        to_shards[k].send(msg).ok().or_else(|| {
            self.fail(format!("shard {k} stopped answering"));
            None
        })
    }
}

/// An epoch has ended at `at_ns` with `iterations` done: keeps `params` for evaluation after
/// the run, deals the data out again and reports the epoch.
pub(super) fn end_epoch<O: Observer>(
    shared: &Shared,
    sampler: &Mutex<Sampler>,
    observer: &Mutex<O>,
    epoch: u64,
    at_ns: u64,
    iterations: u64,
    params: Vec<f32>,
) {
    if let Ok(mut e) = shared.snapshots.lock() {
        e.push(Snapshot {
            epoch,
            at_ns,
            iterations,
            params,
        });
        // Two learners can end neighbouring epochs a hair apart; keep epoch order.
        e.sort_by_key(|s| s.epoch);
    }
    if let Ok(mut s) = sampler.lock() {
        s.repartition();
    }
    if let Ok(mut o) = observer.lock() {
        o.epoch_end(epoch, SimTime::from_nanos(at_ns));
    }
    shared.epoch_handled(epoch);
}

/// Everything a run sets up before its threads start.
pub(super) struct Start<'a, O> {
    pub p: usize,
    pub init: Vec<f32>,
    pub shared: Shared<'a>,
    pub sampler: Mutex<Sampler>,
    pub observer: Mutex<O>,
}

impl<'a, O> Start<'a, O> {
    /// The initial parameters (snapshot 0), a sampler dealing the data to `setup.learners`
    /// learners, and a clock started now.
    pub fn new(job: &Job<'a>, observer: O) -> Self {
        let Job {
            setup,
            objective,
            dataset,
            iterations_per_epoch,
            epochs,
            stop,
        } = *job;
        let p = setup.learners.max(1);
        let init = objective.init_params(setup.seed);
        Start {
            p,
            shared: Shared {
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
                progress: (0..p).map(|_| AtomicU64::new(0)).collect(),
                down: (0..p).map(|_| AtomicBool::new(false)).collect(),
                gate: (Mutex::new(()), Condvar::new()),
                epochs_handled: (Mutex::new(0), Condvar::new()),
            },
            init,
            sampler: Mutex::new(Sampler::for_run(dataset.len(Split::Train), p, setup.seed)),
            observer: Mutex::new(observer),
        }
    }
}

impl<'a, O> Start<'a, O> {
    /// The pieces, for a driver to lend its threads: learners, initial parameters, shared
    /// state, sampler, observer.
    pub fn parts(self) -> (usize, Vec<f32>, Shared<'a>, Mutex<Sampler>, Mutex<O>) {
        (self.p, self.init, self.shared, self.sampler, self.observer)
    }
}

/// Runs `f` on this thread; a panic in it becomes the run's fault, "`who` panicked: ...".
pub(super) fn guarded<T>(
    shared: &Shared,
    who: impl FnOnce() -> String,
    f: impl FnOnce() -> T,
) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|e| {
        let why = format!("{} panicked: {}", who(), panic_text(e));
        shared.fail(why.clone());
        why
    })
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs a parameter server's threads: one per shard range, starting from its slice of `init`
/// and reading its queue, and `p` learners, each with the shards' queues and its own reply
/// channel. When every learner is done the shards' queues close, which lets them stop. A
/// panic in either is the run's fault; a shard that returns an error is one too.
pub(super) fn serve<ToShard: Send, FromShard: Send, L: Default + Send>(
    shared: &Shared,
    p: usize,
    init: &[f32],
    ranges: &[Range<usize>],
    shard: impl Fn(usize, Vec<f32>, Receiver<ToShard>, &[Sender<FromShard>]) -> Result<ShardEnd, String>
    + Sync,
    learner: impl Fn(usize, &[Sender<ToShard>], &Receiver<FromShard>) -> L + Sync,
) -> (Vec<L>, Vec<Result<ShardEnd, String>>) {
    let (learner_tx, learner_rx): (Vec<_>, Vec<_>) = (0..p).map(|_| channel()).unzip();
    let (shard_tx, shard_rx): (Vec<_>, Vec<_>) = ranges.iter().map(|_| channel()).unzip();
    let (shard, learner) = (&shard, &learner);
    std::thread::scope(|s| {
        let shards: Vec<_> = shard_rx
            .into_iter()
            .enumerate()
            .map(|(k, rx)| {
                let slice = init[ranges[k].clone()].to_vec();
                let replies = learner_tx.clone();
                s.spawn(move || {
                    guarded(
                        shared,
                        || format!("shard {k}"),
                        || shard(k, slice, rx, &replies),
                    )
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
                let to_shards = shard_tx.clone();
                s.spawn(move || {
                    guarded(
                        shared,
                        || format!("learner {l}"),
                        || learner(l, &to_shards, &rx),
                    )
                    .unwrap_or_default()
                })
            })
            .collect();
        let learners = join(learners);
        drop(shard_tx);
        (learners, join_shards(shards))
    })
}

/// Joins learner threads; one that was lost hands back nothing.
pub(super) fn join<T: Default>(handles: Vec<ScopedJoinHandle<'_, T>>) -> Vec<T> {
    handles
        .into_iter()
        .map(|h| h.join().unwrap_or_default())
        .collect()
}

/// Joins shard threads.
pub(super) fn join_shards(
    handles: Vec<ScopedJoinHandle<'_, Result<ShardEnd, String>>>,
) -> Vec<Result<ShardEnd, String>> {
    handles
        .into_iter()
        .map(|h| h.join().unwrap_or_else(|_| Err("shard thread lost".into())))
        .collect()
}

/// What a learner thread (or process) hands back.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct LearnerEnd {
    pub breakdown: Breakdown,
    /// Mini-batches that count towards the target.
    pub iterations: u64,
    /// Gradients computed.
    pub gradients: u64,
    /// Gradients pushed but dropped unapplied (synchronous SGD's backup workers).
    #[serde(default)]
    pub dropped: u64,
    /// Bytes this learner's messages carried.
    pub bytes: u64,
    /// Staleness of updates the learner applied itself (none where shards apply them).
    pub staleness: Histogram,
    /// Its failure, as it happened (`[faults]`).
    #[serde(default)]
    pub faults: Vec<FaultRecord>,
    /// What the learner did when, in order, on the run's clock: the real run's timeline.
    pub spans: Vec<Span>,
}

/// One stretch of one activity, in nanoseconds since the run's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Span {
    pub activity: Activity,
    pub start: u64,
    pub end: u64,
}

impl LearnerEnd {
    /// The learner spent `[from, to)` in `activity`: its breakdown and its timeline.
    pub fn did(&mut self, activity: Activity, from: u64, to: u64) {
        let to = to.max(from);
        self.breakdown.add(activity, to - from);
        if to > from {
            self.spans.push(Span {
                activity,
                start: from,
                end: to,
            });
        }
    }

    /// A push begun at `began` and acknowledged by `now`: its time is push, server update or
    /// wait by what the shards did meanwhile (`spans`), on the run's clock. The timeline has
    /// it as one push, from the first byte sent to the last acknowledgement.
    pub fn charge_push(&mut self, began: u64, now: u64, spans: &[ShardSpan]) {
        let (push, server, wait) = classify(began, now, spans);
        self.breakdown.add(Activity::Push, push);
        self.breakdown.add(Activity::ServerUpdate, server);
        self.breakdown.add(Activity::Wait, wait);
        if now > began {
            self.spans.push(Span {
                activity: Activity::Push,
                start: began,
                end: now,
            });
        }
    }
}

/// How long a slowed learner's sleeps are at most, so that a halt reaches it soon.
pub(super) const SLOWDOWN_STEP: Duration = Duration::from_millis(20);

/// A learner `factor` times slower than its device waits out the difference after a gradient
/// that took `worked_ns` (the scenario's `[faults]`, applied for real), or until `halted`.
pub(super) fn slow_down(factor: f64, worked_ns: u64, halted: impl Fn() -> bool) {
    if factor <= 1.0 {
        return;
    }
    let until = Instant::now() + Duration::from_secs_f64((factor - 1.0) * worked_ns as f64 * 1e-9);
    while !halted() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(SLOWDOWN_STEP));
    }
}

/// What a shard thread hands back when it stops.
#[derive(Default)]
pub(super) struct ShardEnd {
    pub slice: Vec<f32>,
    /// The slice's version (updates, or synchronous steps, applied) and their staleness.
    pub ledger: Ledger,
    pub busy_ns: u64,
    /// Its failures, as they happened.
    pub faults: Vec<crate::outcome::ShardFaultRecord>,
}

/// What the server side measured (empty where there is no server).
#[derive(Default)]
pub(super) struct ServerEnd {
    pub staleness: Histogram,
    pub busy: Vec<u64>,
    pub updates: Vec<u64>,
    pub faults: Vec<crate::outcome::ShardFaultRecord>,
}

impl ServerEnd {
    /// Adds up the shards of `ranges` and writes their slices into `parameters` (a shard that
    /// failed leaves its slice as it was and counts nothing).
    pub fn of_shards(
        ranges: &[Range<usize>],
        shards: &[Result<ShardEnd, String>],
        parameters: &mut [f32],
    ) -> Self {
        let mut server = ServerEnd::default();
        for (k, sh) in shards.iter().enumerate() {
            match sh {
                Ok(e) => {
                    parameters[ranges[k].clone()].copy_from_slice(&e.slice);
                    server.staleness.merge(&e.ledger.staleness);
                    server.busy.push(e.busy_ns);
                    server.updates.push(e.ledger.version);
                    server.faults.extend(e.faults.iter().copied());
                }
                Err(_) => {
                    server.busy.push(0);
                    server.updates.push(0);
                }
            }
        }
        server
    }
}

/// Evaluates the snapshots (and, for a run that stopped short, the parameters where it
/// stopped) and assembles the run's outcome. Epoch ends are the snapshots taken during the
/// run; an exchange can carry the count past an epoch's end, so a snapshot's iteration count
/// need not be a multiple of the epoch's.
#[allow(clippy::too_many_arguments)]
pub(super) fn finish<O: Observer>(
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
    let epoch_ends = snapshots
        .iter()
        .filter(|s| s.epoch > 0)
        .map(|s| SimTime::from_nanos(s.at_ns))
        .collect();
    let last = snapshots.last().map_or(0, |s| s.iterations);
    if completed < shared.total && completed != last {
        snapshots.push(Snapshot {
            epoch: completed / shared.per_epoch,
            at_ns: end_ns,
            iterations: completed,
            params: parameters.clone(),
        });
    }
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
        learner_dropped: learners.iter().map(|e| e.dropped).collect(),
        staleness,
        shard_busy_ns: server.busy,
        shard_updates: server.updates,
        bytes_moved: learners.iter().map(|e| e.bytes).sum(),
        diverged: diverged || curve.iter().any(|c| !c.train_loss.is_finite()),
        faults: learners
            .iter()
            .flat_map(|e| e.faults.iter().copied())
            .collect(),
        shard_faults: server.faults,
        stalled: None,
    };
    let mut observer = observer.into_inner().unwrap_or_else(|p| p.into_inner());
    for (l, e) in learners.iter().enumerate() {
        for s in &e.spans {
            observer.learner_activity(
                l,
                Segment {
                    activity: s.activity,
                    start: SimTime::from_nanos(s.start),
                    end: SimTime::from_nanos(s.end),
                },
            );
        }
    }
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

/// The convergence curve from the snapshots taken at time 0 and at every epoch end.
fn evaluate_snapshots(
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A learner `factor` times slower waits `factor - 1` times the gradient it just computed,
    /// in steps short enough for a halt to reach it.
    #[test]
    fn a_slowed_learner_waits_its_factor_less_one_times_its_own_work() {
        let (worked, factor) = (10_000_000u64, 4.0);
        let polls = Cell::new(0);
        let t = Instant::now();
        slow_down(factor, worked, || {
            polls.set(polls.get() + 1);
            false
        });
        let waited = t.elapsed();
        assert!(waited >= Duration::from_millis(30), "{waited:?}");
        // 30 ms in steps of at most 20 ms: the halt is asked at least twice.
        assert!(polls.get() >= 2, "{}", polls.get());
    }

    /// A learner at its device's speed (or faster) does not wait, and a halted one stops
    /// waiting at once.
    #[test]
    fn no_wait_at_factor_one_or_once_halted() {
        let t = Instant::now();
        slow_down(1.0, 1_000_000_000, || false);
        slow_down(0.5, 1_000_000_000, || false);
        slow_down(100.0, 1_000_000_000, || true);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
    }
}
