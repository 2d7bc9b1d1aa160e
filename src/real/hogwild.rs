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

use super::runtime::{
    Job, LearnerEnd, RealRun, ServerEnd, Shared, Start, end_epoch, finish, guarded, join,
};
use crate::cluster::shard::staleness;
use crate::data::{Dataset, Split};
use crate::numerics::{Objective, Scratch};
use crate::observe::Observer;
use crate::outcome::Activity;
use crate::training::real::RealSetup;
use crate::training::sampler::{Sampler, gradient_seed};
use crate::training::update;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
        v: if setup.momentum != 0.0 {
            atomics(&vec![0.0; init.len()])
        } else {
            vec![]
        },
        updates: AtomicU64::new(0),
        busy_ns: AtomicU64::new(0),
    };

    let learners: Vec<LearnerEnd> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..p)
            .map(|l| {
                let (shared, sampler, observer, vector) = (&shared, &sampler, &observer, &vector);
                let (objective, dataset) = (Arc::clone(objective), Arc::clone(dataset));
                s.spawn(move || {
                    let ctx = LearnerCtx {
                        l,
                        setup,
                        shared,
                        vector,
                        sampler,
                        observer,
                        objective: &*objective,
                        dataset: &dataset,
                    };
                    guarded(shared, || format!("learner {l}"), || ctx.run()).unwrap_or_default()
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

struct LearnerCtx<'a, O> {
    l: usize,
    setup: &'a RealSetup,
    shared: &'a Shared<'a>,
    vector: &'a Vector,
    sampler: &'a Mutex<Sampler>,
    observer: &'a Mutex<O>,
    objective: &'a dyn Objective,
    dataset: &'a Dataset,
}

impl<O: Observer> LearnerCtx<'_, O> {
    fn run(&self) -> LearnerEnd {
        let sh = self.shared;
        let vec = self.vector;
        let n = self.objective.num_params();
        let mut params = vec![0.0f32; n];
        let mut grad = vec![0.0f32; n];
        let mut scratch = Scratch::default();
        let mut end = LearnerEnd::default();
        while !sh.halted() && sh.claimed.fetch_add(1, Ordering::Relaxed) < sh.total {
            // Read the shared vector as it is, other learners' writes and all.
            let t0 = sh.now();
            let read = vec.updates.load(Ordering::SeqCst);
            load(&vec.x, &mut params);
            let t1 = sh.now();
            end.breakdown.add(Activity::Pull, t1 - t0);

            // Compute.
            let indices = match self.sampler.lock() {
                Ok(mut s) => s.next_batch(self.l, self.setup.batch_size),
                Err(_) => return end,
            };
            let batch = self.dataset.gather(Split::Train, &indices);
            let seed = gradient_seed(self.setup.seed, self.l, end.iterations);
            let loss = self
                .objective
                .loss_grad(&params, &batch, seed, &mut grad, &mut scratch);
            let t2 = sh.now();
            end.breakdown.add(Activity::Compute, t2 - t1);
            end.iterations += 1;
            end.gradients += 1;
            if !loss.is_finite() {
                sh.diverged.store(true, Ordering::Relaxed);
                return end;
            }

            // Write the update into the shared vector, coordinate by coordinate, no lock.
            self.write(&grad);
            let before = vec.updates.fetch_add(1, Ordering::SeqCst);
            end.staleness.record(staleness(before, read));
            let t3 = sh.now();
            end.breakdown.add(Activity::ServerUpdate, t3 - t2);
            vec.busy_ns.fetch_add(t3 - t2, Ordering::Relaxed);

            let done = sh.completed.fetch_add(1, Ordering::Relaxed) + 1;
            if done.is_multiple_of(sh.per_epoch) {
                self.end_epoch(done / sh.per_epoch);
            }
        }
        end
    }

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

    /// The learner that completes an epoch snapshots the shared vector (as it is, other
    /// learners' writes and all) for evaluation after the run, deals the data out again and
    /// reports the epoch.
    fn end_epoch(&self, epoch: u64) {
        let sh = self.shared;
        let at = sh.now();
        let mut snapshot = vec![0.0f32; self.vector.x.len()];
        load(&self.vector.x, &mut snapshot);
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

#[cfg(test)]
mod tests {
    use crate::input::Override;
    use crate::scenario::{self, Scenario};
    use std::path::Path;
    use std::sync::atomic::AtomicBool;

    fn quick(sets: &[&str]) -> Scenario {
        let overrides: Vec<Override> = [
            "workload.dataset.train_samples=600",
            "workload.dataset.test_samples=200",
            "workload.eval_train_samples=200",
            "workload.epochs=1",
        ]
        .iter()
        .chain(sets)
        .filter_map(|s| Override::parse(s).ok())
        .collect();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quick.toml");
        scenario::load(path.to_str().unwrap_or_default(), &overrides)
            .unwrap_or_else(|e| panic!("quick.toml: {e:?}"))
    }

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

    /// Sets the stop flag at the first epoch end, as Ctrl-C would.
    struct StopAtFirstEpoch<'a>(&'a AtomicBool);

    impl crate::observe::Observer for StopAtFirstEpoch<'_> {
        fn epoch_end(&mut self, _epoch: u64, _time: crate::time::SimTime) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn a_stop_ends_the_run_with_what_it_measured() {
        let sc = quick(&[
            "algorithm.kind=hogwild",
            "cluster.learners=2",
            "workload.epochs=3",
        ]);
        let stop = AtomicBool::new(false);
        let r = crate::real::run(&sc, StopAtFirstEpoch(&stop), &stop)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let why = r.stopped.unwrap_or_default();
        assert!(why.starts_with("interrupted after"), "{why}");
        assert!(r.gradients >= sc.iterations_per_epoch);
        assert!(r.gradients < 3 * sc.iterations_per_epoch);
        assert_eq!(r.summary.epoch_ends_s.len(), 1);
        assert!((2..=3).contains(&r.curve.len()));
        assert!(r.parameters.iter().all(|x| x.is_finite()));
    }
}
