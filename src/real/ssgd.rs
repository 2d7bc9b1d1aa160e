//! Synchronous SGD for real, both ways the simulator models it: learners of a round-based
//! [`Common`] driven here as threads, with the same snapshot and shutdown machinery
//! (`super::runtime`) as every real run, and by `super::processes` as processes, through the
//! same [`ps_learner`] and [`RingLearner`] with other links and another `Control`.
//!
//! Both run in whole rounds: a round's step takes n gradients (n = p, or p - b with b backup
//! workers), so a round adds n iterations, and the learners agree on
//! `ceil(epochs * iterations_per_epoch / n)` rounds. The simulator ends its run at the ack that
//! reaches the target, but by then the last round's step has been taken with every gradient it
//! needs, so the parameters agree; the iterations past the target are computed but not counted
//! (the gradient in slot k of round r's learner order counts if `r n + k` is below the
//! target). The epoch ends falling in round r are handled by the learner in slot 0 (learner 0
//! without backups) once its round r is done: it snapshots the parameters, deals the data out
//! again and reports the epoch; without backups no learner draws its round r + 1 batch before
//! that (an epoch gate, `Control::await_epochs`), so the batches do not depend on the threads'
//! timing. With backups there is no gate (see [`Plan`]): a learner may draw a batch from the
//! old partition just after an epoch's end, and the epoch's snapshot may hold a later step of
//! some shard. A learner's round is the version of the slices it pulled. (The simulator's
//! learners draw their
//! next batch as their own round ends, the all-reduce's at once, the parameter server's after
//! their pull, so there a learner that ends round r before the epoch's last iteration can
//! still draw from the old partition; over more than one epoch the two backends can therefore
//! train on slightly different batches: bit-for-bit agreement is guaranteed over one epoch
//! only.)
//!
//! `Outcome.bytes_moved` counts the bytes copied into messages (slices, gradients, chunks);
//! epoch-end snapshots are not counted.

mod allreduce;
mod ps;

pub use allreduce::run_allreduce;
pub(super) use allreduce::{Chunk, Neighbours, RingLearner, ring_chunks, ring_parameters};
pub(super) use ps::{MeanStep, ps_learner};

use super::control::Control;
use super::learner::Taken;
use super::runtime::{self, Job};
use crate::algorithm::Algorithm;
use crate::data::{Dataset, Split};
use crate::numerics::{Objective, Scratch};
use crate::outcome::Activity;
use crate::training::real::RealSetup;
use crate::training::sampler::gradient_seed;
use crate::workload::model::BYTES_PER_PARAM;

/// The run in rounds.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    /// Gradients a round's step takes.
    p: u64,
    /// Whether the learners wait at the epoch gate: not with backup workers, where a round
    /// can need a learner that the gate holds (each shard keeps its own round, so the learner
    /// that handles an epoch end can be waiting for a shard whose round needs the others'
    /// next gradients).
    gated: bool,
    total: u64,
    per_epoch: u64,
    epochs: u64,
}

impl Plan {
    /// `p` learners' rounds of `algorithm` for `epochs` epochs of `iterations_per_epoch`
    /// iterations.
    pub fn new(algorithm: Algorithm, p: usize, iterations_per_epoch: u64, epochs: u64) -> Self {
        let need = algorithm.sync_round(p).need().max(1);
        Plan {
            gated: need >= p,
            p: need as u64,
            total: iterations_per_epoch * epochs,
            per_epoch: iterations_per_epoch.max(1),
            epochs,
        }
    }

    fn rounds(&self) -> u64 {
        self.total.div_ceil(self.p)
    }

    /// Epochs ended once `rounds` rounds are done.
    fn epochs_after(&self, rounds: u64) -> u64 {
        ((rounds * self.p).min(self.total) / self.per_epoch).min(self.epochs)
    }

    /// Whether the mini-batch in `slot` of `round`'s learner order counts towards the target.
    fn counts(&self, round: u64, slot: u32) -> bool {
        round * self.p + u64::from(slot) < self.total
    }
}

/// What a learner hands back: what every learner measures, and the rounds it did.
#[derive(Default)]
pub(super) struct LearnerEnd {
    /// Its time, iterations (those that count towards the target), gradients, the bytes it
    /// copied into messages (a shard's slice copies count for the learner that pulled) and,
    /// all-reduce, the zero staleness of its chunk updates.
    pub measured: runtime::LearnerEnd,
    /// Whole rounds done.
    pub rounds: u64,
    /// All-reduce: the learner's parameters at the end; empty for the parameter server.
    pub params: Vec<f32>,
}

/// What both kinds of learner share: who it is, the rounds, and the run around it (threads
/// on this host, or a coordinator across processes).
pub(super) struct Common<'a, C> {
    pub l: usize,
    pub setup: &'a RealSetup,
    pub plan: Plan,
    pub control: &'a C,
    pub objective: &'a dyn Objective,
    pub dataset: &'a Dataset,
}

impl<C: Control> Common<'_, C> {
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
        let c = self.control;
        let t0 = c.now();
        if self.plan.gated && !c.await_epochs(self.plan.epochs_after(round)) {
            return false;
        }
        let t1 = c.now();
        end.measured.did(Activity::Wait, t0, t1);
        let Some(indices) = c.next_batch(self.l, self.setup.batch_size) else {
            return false;
        };
        let batch = self.dataset.gather(Split::Train, &indices);
        let seed = gradient_seed(self.setup.seed, self.l, end.measured.gradients);
        let began = c.now();
        let loss = self
            .objective
            .loss_grad(params, &batch, seed, grad, scratch);
        let worked = c.now().saturating_sub(began);
        let slowdown = self.setup.slowdown_at(self.l, began as f64 * 1e-9);
        runtime::slow_down(slowdown, worked, || c.halted());
        end.measured.gradients += 1;
        end.measured.did(Activity::Compute, t1, c.now());
        if !loss.is_finite() {
            c.diverge();
            return false;
        }
        true
    }

    /// Round `round` is done for this learner, its mini-batch in `slot` of the round's
    /// learner order: counts the mini-batch and, in slot 0, handles the epoch ends that fall
    /// in the round (`snapshot(epoch)` takes the parameters), which opens the epoch gate.
    fn round_done(
        &self,
        round: u64,
        slot: u32,
        end: &mut LearnerEnd,
        mut snapshot: impl FnMut(u64) -> Option<Taken>,
    ) {
        let c = self.control;
        end.rounds += 1;
        if self.plan.counts(round, slot) {
            end.measured.iterations += 1;
            c.complete(self.l, 1);
        }
        if slot != 0 {
            return;
        }
        let (before, after) = (
            self.plan.epochs_after(round),
            self.plan.epochs_after(round + 1),
        );
        for epoch in before + 1..=after {
            let at = c.now();
            let params = match snapshot(epoch) {
                Some(Taken::Here(params)) => Some(params),
                Some(Taken::AtShards) => None,
                None => return,
            };
            c.end_epoch(epoch, at, epoch * self.plan.per_epoch, params);
        }
    }
}

/// The runtime's start of a run, and the rounds it is planned in.
pub(super) fn start<'a, O>(job: &Job<'a>, observer: O) -> (runtime::Start<'a, O>, Plan) {
    let run = runtime::Start::new(job, observer);
    let plan = Plan::new(
        job.setup.algorithm,
        run.p,
        job.iterations_per_epoch,
        job.epochs,
    );
    (run, plan)
}

impl From<runtime::LearnerEnd> for LearnerEnd {
    /// An asynchronous learner's end: no rounds, no parameters of its own.
    fn from(measured: runtime::LearnerEnd) -> Self {
        LearnerEnd {
            measured,
            ..LearnerEnd::default()
        }
    }
}

impl LearnerEnd {
    /// What the runtime adds up.
    pub fn into_end(self) -> runtime::LearnerEnd {
        self.measured
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
