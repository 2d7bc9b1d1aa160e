//! Hogwild (Recht, Re, Wright & Niu, NeurIPS 2011) for real on this host: one shared parameter
//! vector (and, with momentum, one shared velocity) of `f32`s held as `AtomicU32` bits, no
//! server thread and no lock. Every learner is an OS thread looping: read the whole vector
//! coordinate by coordinate with relaxed loads (a read may see another learner's update partly
//! written), compute a mini-batch gradient on what it read, then write its update coordinate
//! by coordinate with relaxed load / compute / store (two learners writing the same coordinate
//! at once can lose one's update, as in Hogwild). The per-coordinate arithmetic is exactly
//! `training::update::apply`'s, so one learner's run is sequential SGD bit for bit.
//!
//! Staleness: a global count of finished updates; an update's staleness is the count when it
//! is finished minus the count when its learner started reading (other learners' updates that
//! finished in between). The shared vector is reported as the run's one shard.
//!
//! A panicking learner, a diverged loss, or the stop flag ends the run cleanly with what was
//! measured so far.

use super::control::Local;
use super::learner::{Learner, Reach, Taken, Work};
use super::runtime::{Job, LearnerEnd, RealRun, ServerEnd, Shared, Start, finish, guarded, join};
use super::shard::Answer;
use super::sharded::Gradient;
use crate::cluster::shard::staleness;
use crate::observe::Observer;
use crate::outcome::Activity;
use crate::training::real::RealSetup;
use crate::training::update;
use std::ops::Range;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The shared vector and what is counted on it.
struct Vector {
    x: Vec<AtomicU32>,
    /// Heavy-ball velocity, empty without momentum.
    v: Vec<AtomicU32>,
    /// Updates finished so far.
    updates: AtomicU64,
    /// Nanoseconds spent writing updates, all learners together.
    busy_ns: AtomicU64,
}

fn atomics(values: &[f32]) -> Vec<AtomicU32> {
    values.iter().map(|v| AtomicU32::new(v.to_bits())).collect()
}

fn load(x: &[AtomicU32], into: &mut [f32]) {
    for (p, a) in into.iter_mut().zip(x) {
        *p = f32::from_bits(a.load(Ordering::Relaxed));
    }
}

/// Runs Hogwild with `setup.learners` learner threads on one shared vector until
/// `epochs * iterations_per_epoch` iterations are done (or the run is stopped).
pub fn run<O: Observer + Send>(job: &Job, observer: O) -> (RealRun, O) {
    let (setup, objective, dataset) = (job.setup, job.objective, job.dataset);
    let (p, init, shared, sampler, observer) = Start::new(job, observer).parts();
    let vector = Vector {
        x: atomics(&init),
        v: atomics(&setup.velocity(init.len())),
        updates: AtomicU64::new(0),
        busy_ns: AtomicU64::new(0),
    };

    let learners: Vec<LearnerEnd> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..p)
            .map(|l| {
                let (shared, sampler, observer, vector) = (&shared, &sampler, &observer, &vector);
                let (objective, dataset) = (&**objective, &**dataset);
                s.spawn(move || {
                    let control = Local::new(shared, sampler, observer);
                    let learner = Learner {
                        l,
                        setup,
                        control: &control,
                    };
                    let reach = Own {
                        setup,
                        shared,
                        vector,
                        read: 0,
                    };
                    let work = Gradient::new(objective, dataset);
                    let run = || learner.run(work, reach, 1);
                    guarded(shared, || format!("learner {l}"), run).unwrap_or_default()
                })
            })
            .collect();
        join(handles)
    });
    let end_ns = shared.now();
    let mut parameters = init;
    load(&vector.x, &mut parameters);
    // The shared vector is the one shard. Learners read and write shared memory themselves:
    // no message carries anything (the simulator's Hogwild on a host counts none either).
    let server = ServerEnd {
        busy: vec![vector.busy_ns.load(Ordering::Relaxed)],
        updates: vec![vector.updates.load(Ordering::Relaxed)],
        ..ServerEnd::default()
    };
    finish(
        setup, objective, dataset, shared, observer, end_ns, parameters, &learners, server,
    )
}

/// A learner's reach of the shared vector: it reads and writes it itself, without a lock.
struct Own<'a> {
    setup: &'a RealSetup,
    shared: &'a Shared<'a>,
    vector: &'a Vector,
    /// Updates finished when the learner last began to read.
    read: u64,
}

impl Reach for Own<'_> {
    /// Reads the shared vector as it is, other learners' writes and all.
    fn pull(&mut self, work: &mut impl Work, _end: &mut LearnerEnd) -> Option<()> {
        self.read = self.vector.updates.load(Ordering::SeqCst);
        load(&self.vector.x, work.destination(0..self.vector.x.len()));
        Some(())
    }

    /// Writes the update into the shared vector, coordinate by coordinate, no lock; the time
    /// is server update.
    fn push(
        &mut self,
        work: &mut impl Work,
        _targets: Range<usize>,
        began: u64,
        end: &mut LearnerEnd,
    ) -> Option<Answer> {
        self.write(work.gradient());
        let before = self.vector.updates.fetch_add(1, Ordering::SeqCst);
        end.staleness.record(staleness(before, self.read));
        let now = self.shared.now();
        let took = now.saturating_sub(began);
        end.did(Activity::ServerUpdate, began, now);
        self.vector.busy_ns.fetch_add(took, Ordering::Relaxed);
        Some(Answer::default())
    }

    /// The shared vector as it is, other learners' writes and all.
    fn snapshot(&mut self, _epoch: u64) -> Option<Taken> {
        let mut snapshot = vec![0.0f32; self.vector.x.len()];
        load(&self.vector.x, &mut snapshot);
        Some(Taken::Here(snapshot))
    }
}

impl Own<'_> {
    /// `training::update::apply` one coordinate at a time on the shared vector, through the
    /// same per-coordinate functions: each coordinate (and its velocity) is loaded, updated
    /// and stored on its own.
    fn write(&self, grad: &[f32]) {
        let (lr, mu, wd) = (
            self.setup.learning_rate,
            self.setup.momentum,
            self.setup.weight_decay,
        );
        let get = |a: &AtomicU32| f32::from_bits(a.load(Ordering::Relaxed));
        let set = |a: &AtomicU32, v: f32| a.store(v.to_bits(), Ordering::Relaxed);
        let xs = &self.vector.x;
        if mu == 0.0 && wd == 0.0 {
            for (a, &g) in xs.iter().zip(grad) {
                set(a, update::sgd(get(a), g, lr));
            }
        } else if mu == 0.0 {
            for (a, &g) in xs.iter().zip(grad) {
                set(a, update::decayed(get(a), g, lr, wd));
            }
        } else {
            for ((a, b), &g) in xs.iter().zip(&self.vector.v).zip(grad) {
                let (x, v) = update::momentum(get(a), get(b), g, lr, mu, wd);
                set(b, v);
                set(a, x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::real::testing::quick;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn one_learner_is_sequential_sgd() {
        // Plain SGD, weight decay, and momentum with weight decay: every branch of the rule.
        for rule in [
            &[][..],
            &["algorithm.weight_decay=0.001"][..],
            &["algorithm.momentum=0.9", "algorithm.weight_decay=0.001"][..],
        ] {
            let with = |kind: &str| {
                let mut sets = vec![format!("algorithm.kind={kind}")];
                sets.extend(["cluster.learners=1", "cluster.shards=1"].map(String::from));
                sets.extend(rule.iter().map(|s| s.to_string()));
                quick(&sets.iter().map(String::as_str).collect::<Vec<_>>())
            };
            let (hog, down) = (with("hogwild"), with("downpour"));
            let stop = AtomicBool::new(false);
            let real = crate::real::run(&hog, (), &stop).unwrap_or_else(|e| panic!("{e:?}"));
            let downpour = crate::real::run(&down, (), &stop).unwrap_or_else(|e| panic!("{e:?}"));
            let sim = crate::run::simulate(&hog, ()).unwrap_or_else(|e| panic!("{e:?}"));
            assert!(real.stopped.is_none());
            assert_eq!(real.parameters, downpour.parameters, "{rule:?}");
            assert_eq!(real.parameters, sim.parameters, "{rule:?}");
            assert_eq!(real.curve.len(), 2);
            assert_eq!(real.curve[1].test_loss, sim.curve[1].test_loss, "{rule:?}");
            let s = &real.summary;
            assert_eq!(real.gradients, hog.iterations_per_epoch);
            assert_eq!(s.per_shard.len(), 1);
            assert_eq!(s.per_shard[0].updates, hog.iterations_per_epoch);
            assert_eq!(s.staleness.max, 0, "one learner is never stale");
            assert_eq!(s.breakdown.push + s.breakdown.wait, 0.0);
        }
    }

    #[test]
    fn two_learners_run_lock_free_to_the_end() {
        let sc = quick(&[
            "algorithm.kind=hogwild",
            "cluster.learners=2",
            "workload.epochs=2",
        ]);
        let stop = AtomicBool::new(false);
        let r = crate::real::run(&sc, (), &stop).unwrap_or_else(|e| panic!("{e:?}"));
        let s = &r.summary;
        assert!(r.stopped.is_none());
        let total = 2 * sc.iterations_per_epoch;
        assert_eq!(r.gradients, total);
        assert_eq!(
            s.per_learner.iter().map(|l| l.iterations).sum::<u64>(),
            total
        );
        assert_eq!(s.per_shard[0].updates, total);
        assert_eq!(s.staleness.histogram.iter().sum::<u64>(), total);
        assert!(s.breakdown.compute > 0.0 && s.breakdown.server_update > 0.0);
        assert_eq!(s.epoch_ends_s.len(), 2);
        assert_eq!(r.curve.len(), 3);
        let chance = 1.0 / sc.dataset.as_ref().map_or(1, |d| d.classes()) as f64;
        // 600 samples: it fits the training set well, the test set above chance only.
        let end = &r.curve[2];
        assert!(end.train_accuracy > 4.0 * chance, "{end:?}");
        assert!(end.test_accuracy > 1.5 * chance, "{end:?}");
    }
}
