//! Synchronous SGD for real on this host, both ways the simulator models it, with the same
//! thread, snapshot and shutdown machinery (`super::runtime`) as every real run.
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
//! `Outcome.bytes_moved` counts the bytes copied into messages (slices, gradients, chunks);
//! epoch-end snapshots are not counted.

mod allreduce;
mod ps;

pub use allreduce::run_allreduce;
pub use ps::run_ps;

use super::runtime::{self, Job, POLL, Shared, end_epoch};
use crate::data::{Dataset, Split};
use crate::numerics::{Objective, Scratch};
use crate::observe::Observer;
use crate::outcome::{Activity, Breakdown};
use crate::stats::Histogram;
use crate::training::real::RealSetup;
use crate::training::sampler::{Sampler, gradient_seed};
use crate::workload::model::BYTES_PER_PARAM;
use std::sync::atomic::Ordering;
use std::sync::{Condvar, Mutex};

/// The run in rounds.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
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
pub(super) struct EpochGate {
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
pub(super) struct LearnerEnd {
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
pub(super) struct Common<'a, O> {
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
        mut snapshot: impl FnMut() -> Option<Vec<f32>>,
    ) {
        let sh = self.shared;
        end.rounds += 1;
        if self.plan.counts(round, self.l) {
            end.iterations += 1;
            let done = sh.completed.fetch_add(1, Ordering::Relaxed) + 1;
            if let Ok(mut o) = self.observer.lock() {
                o.iterations(done);
            }
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
            end_epoch(
                sh,
                self.sampler,
                self.observer,
                epoch,
                at,
                epoch * sh.per_epoch,
                params,
            );
        }
        self.gate.open(after);
    }
}

/// The runtime's start of a run, and the rounds it is planned in, with the epoch gate.
pub(super) fn start<'a, O>(job: &Job<'a>, observer: O) -> (runtime::Start<'a, O>, Plan, EpochGate) {
    let run = runtime::Start::new(job, observer);
    let plan = Plan {
        p: run.p as u64,
        total: run.shared.total,
        per_epoch: run.shared.per_epoch,
        epochs: job.epochs,
    };
    (run, plan, EpochGate::new())
}

impl LearnerEnd {
    /// What the runtime adds up.
    fn into_end(self) -> runtime::LearnerEnd {
        runtime::LearnerEnd {
            breakdown: self.breakdown,
            iterations: self.iterations,
            gradients: self.gradients,
            bytes: self.bytes,
            staleness: self.staleness,
        }
    }
}

pub(super) fn bytes_of(values: usize) -> u64 {
    values as u64 * BYTES_PER_PARAM
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
